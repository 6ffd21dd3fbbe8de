"""Cell and seed effects integrated out of the likelihood (bayesfp.bayes.marginal): the density
against scipy's multivariate Normal with the explicit covariance, the effect draws against
Gaussian conditioning done with dense linear algebra, the flexible-effect basis, and the
marginal model's posterior against the model with the effects sampled."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from bayesfp.bayes.marginal import Groups, draw_design_effects, draw_effects, log_density_pt
from bayesfp.bayes.structured import flex_basis, structured_model
from bayesfp.laws import CHINCHILLA_HOFFMANN
from bayesfp.simulate import run_grid
from bayesfp.simulate_misspec import simulate_misspecified

CELL_OF_GROUP = np.array([0, 0, 1, 1, 1, 2, 3])
SIZES = [3, 2, 4, 1, 2, 5, 1]
SEED_IDX = np.repeat(np.arange(len(SIZES)), SIZES)


def _design(rng):
    sig2 = rng.uniform(1e-5, 1e-4, len(SIZES))
    ts2 = rng.uniform(1e-5, 4e-4, len(SIZES))
    tc2 = rng.uniform(1e-4, 1e-3, CELL_OF_GROUP.max() + 1)
    return sig2, ts2, tc2


def _cov(sig2, ts2, tc2):
    same_seed = SEED_IDX[:, None] == SEED_IDX[None, :]
    cell = CELL_OF_GROUP[SEED_IDX]
    same_cell = cell[:, None] == cell[None, :]
    cov = np.diag(sig2[SEED_IDX]) + same_seed * ts2[SEED_IDX][:, None]
    if tc2 is not None:
        cov = cov + same_cell * tc2[cell][:, None]
    return cov


def _conditional(A, prior_var, noise_var, rng):
    """Residuals r = A x + noise drawn from x ~ N(0, diag(prior_var)), and the mean and variance
    of x given r, by dense Gaussian conditioning."""
    prior = np.diag(prior_var)
    cov_r = A @ prior @ A.T + np.diag(noise_var)
    gain = prior @ A.T @ np.linalg.inv(cov_r)
    r = rng.multivariate_normal(np.zeros(len(noise_var)), cov_r)
    return r, gain @ r, np.diag(prior - gain @ A @ prior)


def _assert_draws_follow(draws, mean, var):
    se = np.sqrt(var / len(draws))
    assert np.all(np.abs(draws.mean(0) - mean) < 5 * se)
    np.testing.assert_allclose(draws.var(0), var, rtol=0.05)


@pytest.mark.parametrize("with_seed,with_cell", [(True, True), (False, True), (True, False)])
def test_marginal_density_matches_the_multivariate_normal(with_seed, with_cell):
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(0)
    g = Groups(SEED_IDX, CELL_OF_GROUP)
    for _ in range(3):
        sig2, ts2, tc2 = _design(rng)
        ts2 = ts2 if with_seed else np.zeros_like(ts2)
        tc2 = tc2 if with_cell else None
        cov = _cov(sig2, ts2, tc2)
        r = rng.multivariate_normal(np.zeros(len(SEED_IDX)), cov)
        ref = multivariate_normal(np.zeros(len(SEED_IDX)), cov).logpdf(r)
        rv = pt.dvector()
        f = pytensor.function([rv], log_density_pt(
            rv, g, pt.as_tensor(sig2), pt.as_tensor(ts2) if with_seed else None,
            None if tc2 is None else pt.as_tensor(tc2)))
        np.testing.assert_allclose(f(r), ref, rtol=1e-10)


def test_effect_draws_follow_the_gaussian_conditional():
    rng = np.random.default_rng(1)
    sig2, ts2, tc2 = _design(rng)
    K, J, n = CELL_OF_GROUP.max() + 1, len(SIZES), len(SEED_IDX)
    # joint covariance of (cell effects, seed effects, residuals) by linear algebra
    A = np.zeros((n, K + J))
    A[np.arange(n), CELL_OF_GROUP[SEED_IDX]] = 1.0
    A[np.arange(n), K + SEED_IDX] = 1.0
    r, mean, var = _conditional(A, np.concatenate([tc2, ts2]), sig2[SEED_IDX], rng)
    S = 40000
    cell, seed = draw_effects(np.repeat(r[None], S, 0), Groups(SEED_IDX, CELL_OF_GROUP),
                              np.repeat(sig2[None], S, 0), np.repeat(ts2[None], S, 0),
                              np.repeat(tc2[None], S, 0), np.random.default_rng(2))
    _assert_draws_follow(np.concatenate([cell, seed], 1), mean, var)


DESIGN = np.array([[1.0, 0.0, -0.5], [0.3, 1.0, 0.0], [-0.7, 0.2, 1.0], [0.0, -1.0, 0.4]])


@pytest.mark.parametrize("with_seed,with_cell", [(True, True), (False, True), (True, False),
                                                 (False, False)])
def test_marginal_density_with_a_shared_cell_term_matches_the_multivariate_normal(
        with_seed, with_cell):
    # cell shifts B diag(s) z with z ~ N(0, I): covariance of the runs gains A B diag(s^2) B' A'
    import pytensor
    import pytensor.tensor as pt

    rng = np.random.default_rng(3)
    g = Groups(SEED_IDX, CELL_OF_GROUP)
    A = np.zeros((len(SEED_IDX), DESIGN.shape[0]))
    A[np.arange(len(SEED_IDX)), CELL_OF_GROUP[SEED_IDX]] = 1.0
    for _ in range(3):
        sig2, ts2, tc2 = _design(rng)
        ts2 = ts2 if with_seed else np.zeros_like(ts2)
        tc2 = tc2 if with_cell else None
        s = rng.uniform(0.005, 0.05, DESIGN.shape[1])
        cov = _cov(sig2, ts2, tc2) + A @ DESIGN @ np.diag(s * s) @ DESIGN.T @ A.T
        r = rng.multivariate_normal(np.zeros(len(SEED_IDX)), cov)
        ref = multivariate_normal(np.zeros(len(SEED_IDX)), cov).logpdf(r)
        rv, sv = pt.dvector(), pt.dvector()
        f = pytensor.function([rv, sv], log_density_pt(
            rv, g, pt.as_tensor(sig2), pt.as_tensor(ts2) if with_seed else None,
            None if tc2 is None else pt.as_tensor(tc2), design=DESIGN, design_sd=sv))
        np.testing.assert_allclose(f(r, s), ref, rtol=1e-10)


def test_shared_term_draws_follow_the_gaussian_conditional():
    rng = np.random.default_rng(4)
    sig2, ts2, tc2 = _design(rng)
    s = np.array([0.03, 0.01, 0.02])
    K, J, n, q = CELL_OF_GROUP.max() + 1, len(SIZES), len(SEED_IDX), DESIGN.shape[1]
    # joint covariance of (z, cell effects, seed effects) and the residuals
    A = np.zeros((n, q + K + J))
    cell = CELL_OF_GROUP[SEED_IDX]
    A[:, :q] = DESIGN[cell] * s
    A[np.arange(n), q + cell] = 1.0
    A[np.arange(n), q + K + SEED_IDX] = 1.0
    r, mean, var = _conditional(A, np.concatenate([np.ones(q), tc2, ts2]), sig2[SEED_IDX], rng)
    S = 40000
    g = Groups(SEED_IDX, CELL_OF_GROUP)
    rep = lambda a: np.repeat(a[None], S, 0)  # noqa: E731
    z = draw_design_effects(rep(r), g, rep(sig2), rep(ts2), rep(tc2), DESIGN, rep(s),
                            np.random.default_rng(5))
    # then the cells and seeds given z, on the residuals with z's term taken out
    shift = (z * s) @ DESIGN.T
    c, sd = draw_effects(rep(r) - shift[:, cell], g, rep(sig2), rep(ts2), rep(tc2),
                         np.random.default_rng(6))
    _assert_draws_follow(np.concatenate([z, c, sd], 1), mean, var)


def test_flex_basis_is_orthonormal_and_free_of_the_power_law_trend():
    cases = (([1, 2, 3, 4, 5], None), ([0, 1, 2, 3, 4, 5, 6], [20, 108, 94, 128, 20, 20, 20]),
             ([1, 4, 7], [5, 1, 9]))
    for levels, weights in cases:
        q = flex_basis(levels, weights)
        w = np.asarray(levels, dtype=float)
        wt = np.ones_like(w) if weights is None else np.asarray(weights, dtype=float)
        assert q.shape == (len(w), len(w) - 2)
        np.testing.assert_allclose(q.T @ q, np.eye(len(w) - 2), atol=1e-12)
        # neither the (run-weighted) level nor the trend in log(w + 0.5) moves
        np.testing.assert_allclose(q.T @ wt, 0.0, atol=1e-10)
        np.testing.assert_allclose(q.T @ (wt * np.log(w + 0.5)), 0.0, atol=1e-10)
    assert flex_basis([2, 3]).shape == (2, 0)


@pytest.mark.slow
def test_marginal_and_sampled_effects_give_the_same_posterior():
    # Chinchilla runs with cell effects (sd 0.02) and paired seeds (sd 0.01 at 5M tokens)
    # (four runs per seed: three formats the law ignores and the BF16 run)
    grid = run_grid((2e5, 4e5, 8e5, 1.6e6), (5e6, 1e7, 2e7), ((2, 1), (3, 2), (4, 3)), (128,),
                    baselines=True, seeds=(0, 1, 2))
    runs = simulate_misspecified(grid, dict(CHINCHILLA_HOFFMANN, eps=1.8), law="chinchilla",
                                 cell_sd=0.02, confound=0.0, seed_sd=0.01, sigma=0.004,
                                 sd_slope=0.0, seed=11)
    sampler = dict(draws=800, tune=800, chains=2, seed=6)
    fits = {m: structured_model("chinchilla", runs, cell=True, seed_effect=True, marginal=m,
                                sampler=sampler).fit()["posterior"] for m in (True, False)}
    for name in ("alpha", "beta", "eps", "tau_cell", "tau_seed", "sigma"):
        a, b = (fits[m][name].values.ravel() for m in (True, False))
        # means agree within 4 Monte Carlo standard errors (ESS taken as a quarter of the draws)
        se = np.hypot(a.std(), b.std()) / np.sqrt(len(a) / 4)
        assert abs(a.mean() - b.mean()) < 4 * se, (name, a.mean(), b.mean())
        assert 0.8 < a.std() / b.std() < 1.25, (name, a.std(), b.std())
    # the effects drawn back carry the sampled ones' posterior: every cell's mean agrees
    za, zb = (fits[m]["z_cell"] * fits[m]["tau_cell"] for m in (True, False))
    diff = (za.mean(("chain", "draw")) - zb.mean(("chain", "draw"))).values
    assert np.all(np.abs(diff) < 0.004), diff


@pytest.mark.slow
def test_flex_fit_derived_quantities_use_the_format_offsets():
    """D_crit and the decision's loss of a fit with the flexible format effect and a free power
    of log2 B agree with the fit's own predictions of the law's mean loss (format offsets and
    block-size power included): D_crit is where that loss stops falling in D."""
    import pandas as pd

    from bayesfp.bayes import derived as dv
    from bayesfp.bayes.io import fit_info
    from bayesfp.bayes.terms import predict_log_loss
    from bayesfp.decide.draws import draws_from_fit
    from bayesfp.decide.problem import parse_format
    from bayesfp.laws import SUN_2025
    from bayesfp.report.quantities import law_loss_draws
    from bayesfp.simulate import simulate_runs

    truth = dict(SUN_2025, gamma=SUN_2025["gamma"] / 20.0)
    grid = run_grid((2e5, 4e5, 8e5, 1.6e6), (5e6, 1e7, 2e7, 4e7),
                    ((1, 1), (2, 1), (3, 2), (4, 3), (5, 2), (2, 3)), (32, 128), seeds=(0,))
    runs = simulate_runs(grid, truth, "sun", sigma=0.01, seed=2)
    fit = structured_model("sun", runs, cell=True, log2b_power=True, format_effect="flex",
                           sampler=dict(draws=150, tune=300, chains=2, seed=1)).fit()
    info = fit_info(fit)
    post = fit["posterior"].to_dataset()
    # the law's mean loss along D at N = 1e6 for E2M1 and E3M2 at B = 32 (log2 B = 5)
    D = np.geomspace(1e5, 1e17, 700)
    operands = runs.loc[runs["B"].astype(str) == "32", "operands"].iloc[0]
    for e, m in ((2, 1), (3, 2)):
        rows = pd.DataFrame({"N": 1e6, "D": D, "E": e, "M": m, "B": "32",
                             "operands": operands})
        mu = predict_log_loss(post, info, rows, noise=False, structure=False)  # (S, D)
        dc = np.log(dv.d_crit(fit, [1e6], [(e, m)], log2B=5.0).values.reshape(-1))
        inside = (dc > np.log(D[1])) & (dc < np.log(D[-2]))
        grid_min = np.log(D[np.argmin(mu, axis=1)])
        # within one step of the D grid
        assert np.all(np.abs(grid_min - dc)[inside] < 1.01 * np.log(D[1] / D[0])), (e, m)
        assert inside.mean() > 0.9
        # the decision's loss for this format is the same law mean
        draws = draws_from_fit(fit)
        fmt = parse_format(f"e{e}m{m}", block=32, operands=operands)
        got = draws.loss(fmt, 1e6, 2e7)
        want = np.exp(predict_log_loss(post, info, rows.assign(D=2e7).iloc[:1], noise=False,
                                       structure=False)[:, 0])
        np.testing.assert_allclose(got, want, rtol=1e-9)
        # and the report's loss curves
        np.testing.assert_allclose(law_loss_draws(fit, rows.assign(D=2e7).iloc[:1])[:, 0],
                                   got, rtol=1e-9)
    # a new run's sd around the law (the value-of-information weights) includes a new cell's
    want_sd = np.hypot(post["sigma"].values, post["tau_cell"].values).ravel()
    np.testing.assert_allclose(draws_from_fit(fit).sigma, want_sd, rtol=1e-12)


def test_bm_design_is_the_linear_map_of_the_walk():
    from bayesfp.bayes.terms import bm_design, bm_walk

    rng = np.random.default_rng(7)
    levels = np.log([2e5, 4.3e5, 8.5e5, 1.7e6, 3.4e6])
    z, tau = rng.standard_normal((50, 4)), rng.uniform(0.01, 0.05, 50)
    np.testing.assert_allclose((tau[:, None] * z) @ bm_design(levels).T,
                               bm_walk(levels, z, tau), atol=1e-15)


@pytest.mark.slow
def test_integrated_and_sampled_discrepancy_give_the_same_posterior():
    # Chinchilla runs whose N trend bends away from the law (a smooth misfit over log N of
    # 0.03 in log-loss) besides cell and seed effects: the discrepancy integrated out with the
    # cells and seeds and drawn back agrees with the one sampled as latent increments
    grid = run_grid((2e5, 4e5, 8e5, 1.6e6, 3.2e6), (5e6, 1e7, 2e7),
                    ((2, 1), (3, 2), (4, 3)), (128,), baselines=True, seeds=(0, 1))
    runs = simulate_misspecified(grid, dict(CHINCHILLA_HOFFMANN, eps=1.8), law="chinchilla",
                                 cell_sd=0.01, confound=0.0, seed_sd=0.01, sigma=0.004,
                                 sd_slope=0.0, seed=12)
    x = np.log(runs["N"].to_numpy())
    runs["loss"] = runs["loss"] * np.exp(0.03 * np.sin(2.0 * (x - x.min())))
    sampler = dict(draws=1000, tune=1000, chains=2, seed=3)
    fits = {}
    for m in (True, False):
        model = structured_model("chinchilla", runs, cell=True, seed_effect=True,
                                 discrepancy=True, marginal=m, sampler=sampler)
        assert model.marginal is m
        fits[m] = model.fit()["posterior"]
    for name in ("alpha", "beta", "eps", "tau_cell", "tau_dN", "tau_dD", "sigma"):
        a, b = (fits[m][name].values.ravel() for m in (True, False))
        se = np.hypot(a.std(), b.std()) / np.sqrt(len(a) / 4)
        assert abs(a.mean() - b.mean()) < 4 * se, (name, a.mean(), b.mean())
        assert 0.75 < a.std() / b.std() < 1.33, (name, a.std(), b.std())
    # the walk over the N levels drawn back has the sampled one's posterior mean
    from bayesfp.bayes.terms import bm_walk, draws_of

    levels = sorted(set(np.round(np.log(runs["N"].to_numpy()), 9)))
    walk = {m: bm_walk(levels, draws_of(fits[m], "z_dN"), draws_of(fits[m], "tau_dN"))
            for m in (True, False)}
    diff = walk[True].mean(0) - walk[False].mean(0)
    assert np.all(np.abs(diff) < 0.004), diff
