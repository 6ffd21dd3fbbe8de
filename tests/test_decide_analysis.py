"""Decision analysis on posterior draws: the identities of P(best), regret and EVPI, the
compute-optimal re-allocation per format, and decisions on draws whose truth is known."""

import numpy as np
import pandas as pd
import pytest

from bayesfp.decide.analysis import (
    build_actions,
    decide,
    evpi,
    expected_regret,
    expected_utility,
    golden_min,
    hdi,
    p_best,
    per_draw_allocation,
    summarize,
)
from bayesfp.decide.draws import PosteriorDraws
from bayesfp.decide.problem import make_problem
from bayesfp.laws import CHINCHILLA_HOFFMANN, SUN_2025, chinchilla_optimal, get_law
from bayesfp.laws.inputs import law_inputs
from bayesfp.simulate import run_grid, simulate_runs

FORMATS = "e2m1,e3m2,e4m3,bf16"


def _random_utilities(seed, S=500, A=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(S, A)) + rng.normal(size=A), rng.random(S)


def test_two_draws_by_hand():
    U = np.array([[0.0, 1.0], [2.0, 0.0]])
    assert np.allclose(expected_utility(U), [1.0, 0.5])
    assert np.allclose(p_best(U), [0.5, 0.5])
    assert np.allclose(expected_regret(U), [0.5, 1.0])
    assert evpi(U) == pytest.approx(0.5)
    # Weight on the second draw only: it is known, nothing is left to learn.
    assert evpi(U, w=[0.0, 1.0]) == 0.0
    assert np.allclose(p_best(U, w=[0.25, 0.75]), [0.75, 0.25])


@pytest.mark.parametrize("seed", range(5))
def test_identities_on_random_utilities(seed):
    U, w = _random_utilities(seed)
    for weights in (None, w):
        pb, reg, v = p_best(U, weights), expected_regret(U, weights), evpi(U, weights)
        assert pb.sum() == pytest.approx(1.0)
        assert np.all(pb >= 0)
        assert v >= 0
        best = int(np.argmax(expected_utility(U, weights)))
        assert reg[best] == pytest.approx(reg.min())
        assert reg[best] == pytest.approx(v)


def test_ties_share_p_best():
    U = np.zeros((10, 3))
    assert np.allclose(p_best(U), 1.0 / 3.0)
    assert evpi(U) == 0.0


def test_evpi_is_zero_when_draws_agree():
    U, _ = _random_utilities(0, S=1, A=5)
    same = np.repeat(U, 300, axis=0)
    assert evpi(same) == 0.0
    assert np.all(expected_regret(same)[np.argmax(U[0])] == 0.0)


def test_hdi_of_normal_draws():
    x = np.random.default_rng(1).normal(size=(200_000, 2)) * [1.0, 2.0]
    iv = hdi(x, 0.9)
    assert np.allclose(iv[:, 1] - iv[:, 0], [3.290, 6.580], rtol=0.005)
    assert np.allclose(iv.mean(axis=1), 0.0, atol=0.1)
    inside = (x >= iv[:, 0]) & (x <= iv[:, 1])
    assert np.allclose(inside.mean(axis=0), 0.9, atol=1e-4)
    with pytest.raises(ValueError, match="^hdi_prob:"):
        hdi(x, 1.5)


def test_golden_min_is_vectorised():
    x, fx = golden_min(lambda u: (u - np.array([1.0, -3.0])) ** 2 + 2.0, np.full(2, -10.0),
                       np.full(2, 10.0))
    assert np.allclose(x, [1.0, -3.0], atol=1e-6)
    assert np.allclose(fx, 2.0)


def _sun_draws(sd, S=2000, seed=0, sigma=0.01):
    """Draws of every Sun coefficient, log-normal around the published constants."""
    rng = np.random.default_rng(seed)
    p = {}
    for name, v in SUN_2025.items():
        p[name] = v * np.exp(sd * rng.standard_normal(S))
    return PosteriorDraws("sun", p, np.full(S, sigma))


def test_chinchilla_allocation_matches_the_closed_form():
    S = 3
    p = {k: np.full(S, v) for k, v in CHINCHILLA_HOFFMANN.items()}
    draws = PosteriorDraws("chinchilla", p, np.full(S, 0.01))
    problem = make_problem("bf16", budget=1e23)  # k (P + b) = 6/16 * 16 = 6 FLOPs
    alloc = per_draw_allocation(draws, problem, problem.formats[0])
    N, D = chinchilla_optimal(CHINCHILLA_HOFFMANN, 1e23)
    assert np.allclose(alloc["N"], N, rtol=1e-5)
    assert np.allclose(alloc["D"], D, rtol=1e-5)


def test_sun_allocation_is_the_minimum_over_a_fine_grid():
    draws = _sun_draws(0.0, S=2)
    problem = make_problem(FORMATS, budget=1e21)
    law = get_law("sun")
    for fmt in problem.formats:
        alloc = per_draw_allocation(draws, problem, fmt)
        N = np.exp(np.linspace(np.log(1e7), np.log(1e12), 20001))
        D = 1e21 / problem.cost.cost(fmt, N, 1.0)
        x = law_inputs(pd.DataFrame([fmt.run_row(1, 1)]))
        L = law.loss(SUN_2025, {"N": N, "D": D, "E": x["E"][0], "M": x["M"][0],
                                "log2B": x["log2B"][0]})
        assert alloc["loss"][0] <= L.min() + 1e-9
        assert alloc["N"][0] == pytest.approx(N[np.argmin(L)], rel=2e-3)


def _truth_best(problem):
    """The format the published constants say is best, with its loss."""
    truth = _sun_draws(0.0, S=1)
    d = decide(truth, problem)
    return d.choice.name, d.summary["expected_loss"]


@pytest.mark.parametrize("situation", [dict(budget=1e21), dict(budget=1e20, N=1e8),
                                       dict(N=1e9, D=2e11), dict(N=1e9, D=2e11, price=2e-22)])
def test_informative_draws_pick_the_true_best(situation):
    problem = make_problem(FORMATS, **situation)
    best, truth_loss = _truth_best(problem)
    d = decide(_sun_draws(0.002), problem)
    s = d.summary
    assert d.choice.name == best
    assert s["p_best"][s["choice"]] > 0.9
    assert s["p_best"].sum() == pytest.approx(1.0)
    assert s["regret"][s["choice"]] == pytest.approx(s["regret"].min())
    assert s["evpi"] == pytest.approx(s["regret"][s["choice"]])
    # Truth lies inside the intervals for every format.
    assert np.all((s["interval"][:, 0] <= truth_loss) & (truth_loss <= s["interval"][:, 1]))


def test_price_per_flop_favours_cheap_formats():
    free = decide(_sun_draws(0.002), make_problem(FORMATS, N=1e9, D=2e11))
    priced = decide(_sun_draws(0.002), make_problem(FORMATS, N=1e9, D=2e11, price=1e-20))
    assert free.choice.name != "e2m1"
    assert priced.choice.name == "e2m1"
    assert np.allclose(priced.actions.cost / free.actions.cost, 1.0)


def test_budget_reallocation_reports_intervals_around_truth():
    problem = make_problem(FORMATS, budget=1e21)
    truth = decide(_sun_draws(0.0, S=1), problem)
    d = decide(_sun_draws(0.002), problem)
    for i, fmt in enumerate(problem.formats):
        lo, hi = d.allocation[fmt.name]["N_hdi"]
        assert lo <= truth.actions.N[i] <= hi
        assert lo <= d.actions.N[i] <= hi
        assert d.actions.cost[i] == pytest.approx(1e21)
    assert d.evpi_allocation >= d.summary["evpi"]


def test_grid_actions_contain_the_bayes_allocation():
    problem = make_problem(FORMATS, budget=1e21)
    draws = _sun_draws(0.01, S=300)
    plain = build_actions(draws, problem)
    grid = build_actions(draws, problem, n_grid=8)
    assert grid.loss.shape == (300, 4 * 9)
    assert np.allclose(grid.N[::9], plain.N)
    # Re-allocating per draw can only help: each draw's best grid action is at least as good.
    assert np.all(grid.utility.max(axis=1) >= plain.utility.max(axis=1) - 1e-12)


# ---------------------------------------------------------------------------------------------
# EVPI shrinks as runs are added: posteriors from the same prior draws, updated on 1x and 4x the
# simulated runs (importance weights from the likelihood of the runs).
# ---------------------------------------------------------------------------------------------

SIGMA = 0.01


def _prior_penalty_draws(S=20000, seed=0):
    rng = np.random.default_rng(seed)
    p = {k: v for k, v in SUN_2025.items() if k != "gamma"}
    p["log_gamma"] = np.log(SUN_2025["gamma"]) + rng.normal(0.0, 1.0, S)
    p["delta"] = SUN_2025["delta"] + rng.normal(0.0, 0.5, S)
    p["nu"] = SUN_2025["nu"] + rng.normal(0.0, 0.5, S)
    return PosteriorDraws("sun", p, np.full(S, SIGMA))


def _posterior_weights(draws, replicates, seed):
    grid = run_grid((41e6, 85e6), (10e9, 20e9), ((2, 1), (3, 2), (4, 3)), (128,),
                    seeds=range(replicates), baselines=False)
    runs = simulate_runs(grid, SUN_2025, "sun", sigma=SIGMA, seed=seed)
    x = law_inputs(runs)
    law = get_law("sun")
    p = {k: (v[:, None] if np.ndim(v) else v) for k, v in draws.params.items()}
    mu = np.log(law.loss(p, {k: x[k][None, :] for k in law.inputs}))
    ll = -0.5 * (((np.log(runs["loss"].to_numpy())[None, :] - mu) / SIGMA) ** 2).sum(axis=1)
    w = np.exp(ll - ll.max())
    return w / w.sum()


@pytest.mark.parametrize("seed", range(3))
def test_evpi_shrinks_as_runs_are_added(seed):
    problem = make_problem(FORMATS, budget=1e20, N=1e8)
    draws = _prior_penalty_draws()
    actions = build_actions(draws, problem)
    U = actions.utility
    values = [evpi(U)]
    for reps in (1, 4):
        w = _posterior_weights(draws, reps, seed)
        assert 1.0 / np.sum(w ** 2) > 1000  # the weighted draws still describe the posterior
        values.append(evpi(U, w))
        s = summarize(U, actions.loss, w=w)
        assert s["evpi"] == pytest.approx(s["regret"][s["choice"]])
    assert values[0] > values[1] > values[2] >= 0
    best, _ = _truth_best(problem)
    assert problem.formats[int(np.argmax(expected_utility(U, w)))].name == best
