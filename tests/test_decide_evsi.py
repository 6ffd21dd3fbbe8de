"""What to run next: EVSI by pre-posterior importance reweighting ranks the informative run
first, gives 0 to runs every draw predicts alike, and flags collapsed weights."""

import numpy as np
import pandas as pd
import pytest

from bayesfp.decide.analysis import decide
from bayesfp.decide.draws import PosteriorDraws
from bayesfp.decide.evsi import (
    default_candidates,
    evsi_from_weights,
    make_experiment,
    preposterior,
    rank_experiments,
    read_candidates,
    reweight,
)
from bayesfp.decide.problem import make_problem
from bayesfp.laws import SUN_2025, critical_data_size
from bayesfp.simulate import run_grid

SIGMA = 0.01


def _penalty_draws(S=4000, seed=0, sigma=SIGMA, runs=None):
    """Base coefficients known (the published ones), penalty coefficients uncertain."""
    rng = np.random.default_rng(seed)
    p = {k: v for k, v in SUN_2025.items() if k != "gamma"}
    p["log_gamma"] = np.log(SUN_2025["gamma"]) + rng.normal(0.0, 0.7, S)
    p["delta"] = SUN_2025["delta"] + rng.normal(0.0, 0.3, S)
    p["nu"] = SUN_2025["nu"] + rng.normal(0.0, 0.3, S)
    return PosteriorDraws("sun", p, np.full(S, sigma), runs=runs)


def test_uniform_weights_give_no_value():
    U = np.random.default_rng(0).normal(size=(200, 3))
    W = np.full((50, 200), 1.0 / 200)
    assert evsi_from_weights(U, W) == 0.0


def test_perfect_information_gives_evpi():
    U = np.random.default_rng(1).normal(size=(100, 3))
    W = np.eye(100)  # each outcome singles out one draw
    assert evsi_from_weights(U, W) == pytest.approx(U.max(axis=1).mean() - U.mean(axis=0).max())


def test_reweight_is_normalised_with_kish_ess():
    ll = np.log(np.array([[1.0, 1.0, 1.0, 1.0], [1.0, 0.0, 0.0, 0.0]]) + 1e-300)
    W, ess = reweight(ll)
    assert np.allclose(W.sum(axis=1), 1.0)
    assert np.allclose(ess, [4.0, 1.0])


def test_identical_predictions_carry_no_information():
    U = np.random.default_rng(2).normal(size=(300, 4))
    res = preposterior(U, np.full(300, 1.2), np.full(300, 0.01), np.arange(100),
                       np.random.default_rng(3).standard_normal(100))
    assert res["evsi"] == 0.0
    assert np.allclose(res["ess"], 300.0)


@pytest.fixture(scope="module")
def case():
    draws = _penalty_draws()
    problem = make_problem("e2m1,e3m2,e4m3", budget=1e20, N=1e8)
    decision = decide(draws, problem)
    N = 85e6
    dcrit = float(np.median(critical_data_size(draws.params, N, 3, 2, 7.0)))
    cands = [
        make_experiment(problem, "bf16", N, 2e10, cost=1.0),     # no penalty: all draws agree
        make_experiment(problem, "e2m1", N, 1e8, cost=1.0),      # penalty negligible
        make_experiment(problem, "e4m3", N, 2e9, cost=1.0),      # penalty negligible
        make_experiment(problem, "e3m2", N, dcrit, cost=1.0),    # at D_crit: penalty matters
    ]
    return draws, problem, decision, cands, dcrit


def test_run_near_critical_data_size_ranks_first(case):
    draws, problem, decision, cands, dcrit = case
    assert decision.summary["evpi"] > 0  # there is something to learn
    ranking = rank_experiments(draws, decision, cands, n_outer=400, seed=0)
    by_run = ranking.set_index("format")
    assert ranking.loc[0, "format"] == "e3m2"
    assert ranking.loc[0, "D"] == pytest.approx(dcrit)
    assert by_run.loc["bf16", "evsi"] == 0.0
    assert by_run.loc["bf16", "signal"] == pytest.approx(0.0, abs=1e-9)
    top = by_run.loc["e3m2", "evsi"]
    assert by_run.loc["e2m1", "evsi"] < 0.1 * top
    assert by_run.loc["e4m3", "evsi"] < 0.1 * top
    # One run is worth less than knowing everything (up to Monte Carlo error).
    assert 0 < top <= 1.05 * decision.summary["evpi"]
    assert ranking["reliable"].all()
    assert list(ranking["rank"]) == [1, 2, 3, 4]


def test_ranking_is_per_unit_cost(case):
    draws, problem, decision, cands, _ = case
    priced = [make_experiment(problem, c.fmt, c.N, c.D) for c in cands]
    ranking = rank_experiments(draws, decision, priced, n_outer=200, seed=0)
    assert np.all(np.diff(ranking["evsi_per_cost"]) <= 0)
    assert np.allclose(ranking["evsi_per_cost"], ranking["evsi"] / ranking["cost"])
    e4m3 = priced[2]
    assert e4m3.cost == pytest.approx(6 * 8 / 16 * e4m3.N * e4m3.D)


def test_collapsed_weights_are_flagged(case):
    _, problem, _, cands, _ = case
    sharp = _penalty_draws(S=1000, sigma=1e-6)
    decision = decide(sharp, problem)
    ranking = rank_experiments(sharp, decision, cands[3:], n_outer=100, seed=0)
    assert not ranking.loc[0, "reliable"]
    assert ranking.loc[0, "ess_median"] < 30


def test_default_candidates_cover_the_data_and_d_crit():
    runs = run_grid((41e6, 85e6, 154e6), (1e10, 5e10), ((2, 1), (4, 3)), (128,))
    draws = _penalty_draws(S=500, runs=runs)
    problem = make_problem("e2m1,e4m3,bf16", budget=1e21)
    cands = default_candidates(draws, problem)
    keys = {(c.fmt.name, c.N, round(c.D)) for c in cands}
    assert ("bf16", 85e6, 5e10) in keys and ("bf16", 154e6, 2e11) in keys
    assert len(keys) == len(cands)
    dc = [c.D for c in cands if c.fmt.name == "e2m1" and c.N == 154e6]
    expect = np.median(critical_data_size(draws.params, 154e6, 2, 1, 7.0))
    assert any(np.isclose(d, min(expect, 5e12)) for d in dc)
    decision = decide(draws, problem)
    ranking = rank_experiments(draws, decision, cands, n_outer=50, seed=1)
    assert len(ranking) == len(cands)


def test_candidates_from_csv(tmp_path, case):
    _, problem, _, _, _ = case
    csv = tmp_path / "next.csv"
    pd.DataFrame({"N": [85e6, 85e6], "D": [1e10, 2e10], "format": ["e2m1", "fp8_e4m3"],
                  "cost": [3.0, float("nan")]}).to_csv(csv, index=False)
    cands = read_candidates(csv, problem)
    assert [c.fmt.name for c in cands] == ["e2m1", "e4m3"]
    assert cands[0].cost == 3.0
    assert cands[1].cost == pytest.approx(6 * 8 / 16 * 85e6 * 2e10)
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"N": [1e8], "format": ["e2m1"]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="^next_runs:"):
        read_candidates(bad, problem)
    with pytest.raises(ValueError, match="^formats:"):
        make_experiment(problem, "e9m9x", 1e8, 1e9)
    with pytest.raises(ValueError, match="^next_runs:"):
        make_experiment(problem, "e2m1", -1.0, 1e9)
