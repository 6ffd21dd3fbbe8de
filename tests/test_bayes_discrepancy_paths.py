"""Joint paths of the Brownian discrepancy (bayesfp.bayes.terms.bm_path / path_at) against the
Brownian motion's own moments, and the decision's draws of the shipped fit, whose loss at any
(N, D) is the law's times exp of the discrepancy there."""

from pathlib import Path

import numpy as np
import pytest

from bayesfp.bayes.terms import bm_path, path_at

S = 40_000
LEVELS = np.array([0.0, 1.0, 1.6])
WALK = np.array([0.05, -0.10, 0.20])
TAU = 0.4


@pytest.fixture(scope="module")
def path():
    rng = np.random.default_rng(7)
    tau = np.full(S, TAU)
    return bm_path(LEVELS, np.tile(WALK, (S, 1)), tau, rng, reach=4.0, step=0.1)


def test_path_passes_through_the_fitted_walk(path):
    grid, values = path
    assert np.all(np.diff(grid) > 0)
    np.testing.assert_allclose(path_at(grid, values, LEVELS[None, :]), np.tile(WALK, (S, 1)),
                               rtol=0, atol=1e-12)


def test_bridge_between_levels_has_the_brownian_bridge_moments(path):
    grid, values = path
    x = 0.5  # a grid point between levels 0 and 1: variance tau^2 a b / (a + b)
    v = path_at(grid, values, np.array([x]))
    assert v.mean() == pytest.approx((WALK[0] + WALK[1]) / 2, abs=4 * TAU * 0.5 / np.sqrt(S))
    assert v.var() == pytest.approx(TAU ** 2 * 0.5 * 0.5 / 1.0, rel=0.03)


def test_beyond_the_edges_variance_grows_with_distance_and_increments_are_independent(path):
    grid, values = path
    right = path_at(grid, values, np.array([[1.6 + 0.8, 1.6 + 2.0]]))
    first, second = right[:, 0] - WALK[-1], right[:, 1] - right[:, 0]
    assert first.var() == pytest.approx(TAU ** 2 * 0.8, rel=0.03)
    assert second.var() == pytest.approx(TAU ** 2 * 1.2, rel=0.03)
    assert abs(np.corrcoef(first, second)[0, 1]) < 0.02
    assert abs(first.mean()) < 4 * TAU * np.sqrt(0.8 / S)
    left = path_at(grid, values, np.array([-1.5]))
    assert (left - WALK[0]).var() == pytest.approx(TAU ** 2 * 1.5, rel=0.03)


def test_reading_a_path_is_consistent_across_calls_and_shapes(path):
    grid, values = path
    xs = np.array([-0.7, 0.33, 1.25, 2.9])
    both = path_at(grid, values, xs[None, :])
    for j, x in enumerate(xs):
        np.testing.assert_array_equal(path_at(grid, values, x), both[:, j])
        np.testing.assert_array_equal(path_at(grid, values, np.full(S, x)), both[:, j])
    per_draw = np.tile(xs, (S, 1))
    np.testing.assert_array_equal(path_at(grid, values, per_draw), both)


@pytest.fixture(scope="module")
def shipped():
    from bayesfp.bayes.io import fit_info, load_fit
    from bayesfp.decide.draws import draws_from_fit

    tree = load_fit(Path(__file__).resolve().parents[1] / "models" / "runs_sun.nc")
    return tree, fit_info(tree), draws_from_fit(tree, group="w+w_bwd+x_bwd")


def _walk(post, levels, ax):
    # the centred Brownian motion at the levels, from the stored rate and standard increments
    tau = post[f"tau_d{ax}"].values.reshape(-1)
    z = post[f"z_d{ax}"].values.reshape(len(tau), -1)
    inc = tau[:, None] * z * np.sqrt(np.diff(levels))[None, :]
    w = np.concatenate([np.zeros((len(tau), 1)), np.cumsum(inc, 1)], 1)
    return w - w.mean(1, keepdims=True), tau


def test_decision_draws_carry_the_fitted_discrepancy(shipped):
    from bayesfp.decide.problem import parse_format

    tree, info, draws = shipped
    assert info["structure"]["discrepancy"]
    post = tree["posterior"]
    lv_n, lv_d = np.asarray(info["levels"]["N"]), np.asarray(info["levels"]["D"])
    wn, tau_n = _walk(post, lv_n, "N")
    wd, tau_d = _walk(post, lv_d, "D")
    fmt = parse_format("e3m2")
    # at fitted levels: exactly the fitted walks
    N, D = np.exp(lv_n[-1]), np.exp(lv_d[1])
    ratio = draws.loss(fmt, N, D) / draws.loss(fmt, N, D, discrepancy=False)
    np.testing.assert_allclose(np.log(ratio), wn[:, -1] + wd[:, 1], rtol=0, atol=1e-9)
    # 10x beyond the largest N: the edge value plus a motion of variance tau^2 ln 10
    far = np.log(draws.loss(fmt, 10 * N, D) / draws.loss(fmt, 10 * N, D, discrepancy=False))
    step = far - (wn[:, -1] + wd[:, 1])
    assert step.mean() == pytest.approx(0.0, abs=4 * step.std() / np.sqrt(step.size))
    assert step.var() == pytest.approx(np.mean(tau_n ** 2) * np.log(10), rel=0.06)
    # thinning keeps each draw's own path
    sub = draws.take(np.arange(0, draws.size, 7))
    np.testing.assert_array_equal(sub.loss(fmt, 10 * N, D), draws.loss(fmt, 10 * N, D)[::7])
