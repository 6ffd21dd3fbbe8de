"""Pure-NumPy parts of the calibration harness, the within-range checks, the Brownian
discrepancy and the misspecified simulator, against analytic values and known truth."""

import numpy as np
import pandas as pd
import pytest

from bayesfp.bayes.calibrate import cut_mask, extrapolation_factor, interval_coverage
from bayesfp.bayes.checks import d_slope_check, paired_contrast_check
from bayesfp.bayes.structured import parse_pool
from bayesfp.bayes.terms import bm_at
from bayesfp.laws import SUN_2025
from bayesfp.laws.derived import critical_data_size
from bayesfp.simulate import run_grid
from bayesfp.simulate_misspec import simulate_misspecified

N5 = (2e5, 4e5, 8e5, 1.6e6, 3.2e6)
D4 = (5e6, 1e7, 2e7, 4e7)


def _grid():
    return run_grid(N5, D4, ((2, 1), (4, 3)), (128,), seeds=(0, 1))


def test_cuts_hold_out_whole_values():
    runs = _grid()
    top_n = cut_mask(runs, "top20_N")
    assert set(runs.loc[top_n, "N"]) == {3.2e6} and top_n.sum() == len(runs) // 5
    assert set(runs.loc[cut_mask(runs, "top2_N"), "N"]) == {1.6e6, 3.2e6}
    assert set(runs.loc[cut_mask(runs, "top20_D"), "D"]) == {4e7}
    assert extrapolation_factor(runs, "top20_N") == pytest.approx(2.0)
    assert extrapolation_factor(runs, "top2_N") == pytest.approx(4.0)
    assert extrapolation_factor(runs, "top20_D") == pytest.approx(2.0)
    with pytest.raises(ValueError, match="unknown cut"):
        cut_mask(runs, "top3_N")


def test_interval_coverage_is_nominal_for_exchangeable_draws():
    rng = np.random.default_rng(0)
    pred = rng.standard_normal((4000, 1))
    obs = rng.standard_normal(5000)
    cov = interval_coverage(np.broadcast_to(pred, (4000, obs.size)), obs)
    assert cov[0.5] == pytest.approx(0.5, abs=0.02)
    assert cov[0.9] == pytest.approx(0.9, abs=0.015)
    # intervals twice too narrow cover a Normal at P(|z| < 0.337) = 0.264 and P(|z| < 0.822) = 0.589
    cov = interval_coverage(np.broadcast_to(pred / 2, (4000, obs.size)), obs)
    assert cov[0.5] == pytest.approx(0.264, abs=0.02)
    assert cov[0.9] == pytest.approx(0.589, abs=0.02)


def test_brownian_discrepancy_extrapolates_with_linear_variance():
    rng = np.random.default_rng(1)
    S, tau = 200_000, 0.03
    levels = [0.0, 1.0, 2.0]
    walk = np.zeros((S, 3))
    walk[:, 2] = 0.1
    out = bm_at(np.array([2.0, 3.0, 6.0, -1.0, 1.5, 3.0]), levels, walk, np.full(S, tau), rng)
    assert np.all(out[:, 0] == 0.1)                                  # at a fitted level
    assert out[:, 1].var() == pytest.approx(tau ** 2 * 1.0, rel=0.02)  # 1 beyond the edge
    assert out[:, 2].var() == pytest.approx(tau ** 2 * 4.0, rel=0.02)  # 4 beyond
    assert out[:, 1].mean() == pytest.approx(0.1, abs=1e-3)           # from the edge value
    assert out[:, 3].var() == pytest.approx(tau ** 2, rel=0.02)       # below the range
    assert out[:, 4].mean() == pytest.approx(0.05, abs=1e-3)          # bridge: midpoint mean
    assert out[:, 4].var() == pytest.approx(tau ** 2 * 0.25, rel=0.02)  # and a b / (a + b)
    assert np.array_equal(out[:, 1], out[:, 5])                       # one draw per input


def test_parse_pool():
    assert parse_pool(["eps,n,d=dataset", "gamma=operands"]) == {
        "eps": "dataset", "n": "dataset", "d": "dataset", "gamma": "operands"}
    assert parse_pool("alpha=model") == {"alpha": "model"}
    with pytest.raises(ValueError, match="COEFS=COLUMN"):
        parse_pool("eps")


def _sun_mean(runs, params):
    from bayesfp.laws.inputs import law_inputs
    from bayesfp.laws.registry import get_law

    law = get_law("sun")
    x = law_inputs(runs)
    return np.asarray(law.loss(params, {k: x[k] for k in law.inputs}), dtype=float)


def test_d_slope_check_flags_a_rise_the_data_do_not_show():
    # a penalty 6000x the published one puts E2M1's D_crit at N = 2e5 near 1.2e7 tokens
    strong = dict(SUN_2025, gamma=SUN_2025["gamma"] / 6000)
    dc = critical_data_size(strong, N=2e5, E=2, M=1, log2B=7)
    assert 5e6 < dc < 4e7
    runs = run_grid((2e5,), D4, ((2, 1),), (128,), baselines=False)
    # observed: the loss falls at every step (the published law); model: the strong penalty
    runs["loss"] = _sun_mean(runs, SUN_2025)
    model = _sun_mean(runs, strong)
    assert np.any(np.diff(model) > 0)
    res = d_slope_check(runs, np.tile(model, (10, 1)))
    assert len(res) == 3
    assert (res["observed"] < 0).all()
    # flagged exactly where the strong law rises
    assert list(res["flagged"]) == list(np.diff(model) > 0)
    # a model that agrees flags nothing
    assert not d_slope_check(runs, np.tile(runs["loss"].to_numpy(), (10, 1)))["flagged"].any()


def test_paired_contrast_check_recovers_a_known_penalty():
    runs = run_grid((2e5, 4e5), D4, ((2, 1), (3, 2)), (128,), seeds=(0, 1))
    rng = np.random.default_rng(2)
    seed_eff = runs["seed"].map({0: 0.0, 1: 0.05}).to_numpy()
    pen = np.where(runs["operands"] == "none", 0.0,
                   np.where(runs["E"] == 2, 0.04, 0.01))
    runs["loss"] = 3.0 + seed_eff + pen
    mean = np.tile(3.0 + pen, (500, 1)) + 0.001 * rng.standard_normal((500, len(runs)))
    res = paired_contrast_check(runs, mean, (2, 1))
    assert res["pairs"] == 16                      # 2 N x 4 D x 2 seeds
    assert res["observed"] == pytest.approx(0.04)  # the seed effect cancels in each pair
    assert res["covered"]
    res = paired_contrast_check(runs, mean, (3, 2), (2, 1))
    assert res["observed"] == pytest.approx(-0.03)
    assert res["a_wins"] == 1.0 and res["p_a_better"] == 1.0 and res["covered"]
    # a model with the opposite ordering misses
    res = paired_contrast_check(runs, np.tile(3.0 - pen, (500, 1)), (3, 2), (2, 1))
    assert not res["covered"] and res["p_a_better"] == 0.0


def test_misspecified_simulator_terms():
    runs = _grid()
    base = simulate_misspecified(runs, SUN_2025, cell_sd=0.0, confound=0.0, seed_sd=0.0,
                                 sigma=0.0)
    assert np.allclose(base["loss"], _sun_mean(runs, SUN_2025))
    sim = simulate_misspecified(runs, SUN_2025, cell_sd=0.03, confound=0.0, seed_sd=0.0,
                                sigma=0.0, seed=3)
    dev = np.log(sim["loss"] / sim["loss_true"])
    per_cell = pd.Series(dev).groupby([runs["N"], runs["D"]]).agg(["min", "max"])
    assert np.allclose(per_cell["min"], per_cell["max"])   # one deviation per (N, D) cell
    assert 0.01 < per_cell["min"].std() < 0.06
    conf = simulate_misspecified(runs, SUN_2025, cell_sd=0.0, confound=0.02, seed_sd=0.0,
                                 sigma=0.0, confound_N=1.6e6)
    dev = np.log(conf["loss"] / conf["loss_true"]).to_numpy()
    big = runs["N"].to_numpy() >= 1.6e6
    assert np.allclose(dev[~big], 0.0)
    assert np.allclose(dev[big], 0.02 * np.sqrt(5e6 / runs["D"].to_numpy()[big]))
    noisy = simulate_misspecified(runs, SUN_2025, cell_sd=0.0, confound=0.0, seed_sd=0.0,
                                  sigma=0.01, sd_slope=-1.0, seed=4)
    dev = np.log(noisy["loss"] / noisy["loss_true"])
    sd = dev.groupby(runs["D"]).std()
    assert sd[5e6] > 4 * sd[4e7]                             # sd falls 8x from 5M to 40M


def test_minimum_inside_a_falling_step_against_an_analytic_law(monkeypatch):
    """The law's loss (log D - log D_c)^2 per draw, D_c drawn around 30M, against two falling
    steps: 20M -> 40M holds the minimum when D_c < 40M, 5M -> 10M never does."""
    import pandas as pd

    from bayesfp.bayes import checks

    rng = np.random.default_rng(0)
    log_dc = np.log(30e6) + 0.4 * rng.standard_normal(4000)

    def law(_tree, runs):
        return (np.log(runs["D"].to_numpy(float))[None, :] - log_dc[:, None]) ** 2

    monkeypatch.setattr(checks, "law_mean_draws", law)
    runs = pd.DataFrame({"N": 1e6, "E": 1, "M": 0, "B": "128", "operands": "w",
                         "D": [5e6, 1e7, 2e7, 4e7], "loss": [4.0, 3.9, 3.8, 3.75]})
    steps = pd.DataFrame([{"N": "1000000.0", "E": "1", "M": "0", "B": "128", "operands": "w",
                           "D_from": a, "D_to": b, "observed": -0.05}
                          for a, b in ((5e6, 1e7), (2e7, 4e7))])
    out = checks.minimum_inside_check(None, steps, runs.astype({"N": float}), grid=41)
    # the minimum is inside (20M, 40M) when D_c lies there (the grid resolves it to ~2%)
    want = np.mean((log_dc > np.log(2e7)) & (log_dc < np.log(4e7)))
    assert abs(out["p_inside"].iloc[1] - want) < 0.03
    assert out["flagged"].tolist() == [False, want > 0.5]
    assert out["p_inside"].iloc[0] < 0.01
    # a rising step (observed > 0) and an unquantized series are not checked
    steps.loc[0, "observed"] = 0.01
    assert len(checks.minimum_inside_check(None, steps, runs.astype({"N": float}))) == 1
