"""Bayesian fits of the other laws and model options on simulated runs with known truth: Kumar and
sun_sep recovery, no pooling against partial pooling, one noise sd per group, and the Student-t
likelihood against gross outliers."""

import numpy as np
import pytest

from bayesfp.bayes.io import fit_info
from bayesfp.bayes.models import model_for
from bayesfp.laws import KUMAR_2024, SUN_2025
from bayesfp.simulate import run_grid, simulate_runs

# Two chains on the two CI cores; 1000 draws each so that the gate (bulk ESS >= 400) can pass.
SAMPLER = dict(draws=1000, tune=700, chains=2)
SUN_TRUE = dict(SUN_2025, gamma=SUN_2025["gamma"] / 5.0)


def _interval(da, level=0.9):
    """Central interval over chain and draw, per remaining coordinate."""
    q = (1 - level) / 2
    lo = da.quantile(q, ("chain", "draw")).values
    hi = da.quantile(1 - q, ("chain", "draw")).values
    return lo, hi


def _misses(post, truth, level=0.9):
    out = []
    for name, t in truth.items():
        lo, hi = _interval(post[name], level)
        if not np.all((lo <= t) & (t <= hi)):
            out.append((name, t, lo, hi))
    return out


def _passed(fit):
    gate = fit_info(fit)["gate"]
    return gate["passed"], gate["failures"]


# ---------------------------------------------------------------------------------- Kumar

KUMAR_TRUE = {k: KUMAR_2024[k] for k in ("n", "alpha", "d", "beta", "eps", "gamma_w", "gamma_a")}


@pytest.fixture(scope="module")
def kumar_fit():
    # weights alone, activations alone and both, at 3 to 8 bits: gamma_w and gamma_a are
    # identified separately (the KV cache is never quantized: its sensitivity is fixed)
    grid = run_grid((30e6, 60e6, 110e6, 220e6), (1.5e9, 3e9, 6e9, 13e9, 26e9),
                    ((1, 2), (2, 2), (3, 2), (3, 3), (4, 3), (4, 4)), (128,),
                    operands=("w+w_bwd", "x", "x+w+w_bwd"))
    runs = simulate_runs(grid, dict(KUMAR_TRUE, gamma_kv=KUMAR_2024["gamma_kv"]), "kumar",
                         sigma=0.005, seed=1)
    model = model_for("kumar", runs, sampler=dict(SAMPLER, seed=11))
    assert set(model.sampled) >= {"log_gamma_w", "log_gamma_a"}
    assert model.fixed["gamma_kv"] == 1.0
    return model.fit()


@pytest.mark.slow
def test_kumar_recovers_true_coefficients(kumar_fit):
    ok, failures = _passed(kumar_fit)
    assert ok, failures
    t = KUMAR_TRUE
    truth = {"alpha": t["alpha"], "beta": t["beta"], "eps": t["eps"], "log_n": np.log(t["n"]),
             "log_d": np.log(t["d"]), "log_gamma_w": np.log(t["gamma_w"]),
             "log_gamma_a": np.log(t["gamma_a"])}
    missed = _misses(kumar_fit["posterior"], truth)
    assert not missed, missed


# ---------------------------------------------------------------------------------- sun_sep

# A penalty 500x Sun et al.'s (gamma / 500) with its own exponents on N and D, 0.5% noise: the
# regime where alpha_q and beta_q are identified by a 4 x 4 grid (at gamma / 20 the 90%
# interval of alpha_q spans -0.13 to 0.36).
SEP_TRUE = dict(SUN_2025, gamma=SUN_2025["gamma"] / 500.0, alpha_q=0.3, beta_q=0.4)


@pytest.fixture(scope="module")
def sep_fit():
    grid = run_grid((41e6, 85e6, 154e6, 679e6), (10e9, 20e9, 50e9, 100e9),
                    ((1, 2), (2, 1), (2, 2), (3, 2), (3, 3), (4, 3)), (32, 512))
    runs = simulate_runs(grid, SEP_TRUE, "sun_sep", sigma=0.005, seed=3)
    return model_for("sun_sep", runs, sampler=dict(SAMPLER, tune=1000, seed=11)).fit()


@pytest.mark.slow
def test_sun_sep_recovers_true_coefficients(sep_fit):
    ok, failures = _passed(sep_fit)
    assert ok, failures
    t = SEP_TRUE
    truth = {"alpha": t["alpha"], "beta": t["beta"], "eps": t["eps"], "log_n": np.log(t["n"]),
             "log_d": np.log(t["d"]), "log_gamma": np.log(t["gamma"]), "delta": t["delta"],
             "nu": t["nu"], "alpha_q": t["alpha_q"], "beta_q": t["beta_q"]}
    missed = _misses(sep_fit["posterior"], truth)
    assert not missed, missed
    # the penalty's exponents are told apart from the base exponents
    post = sep_fit["posterior"]
    lo, hi = _interval(post["alpha_q"] - post["alpha"])
    assert lo > 0, (lo, hi)
    lo, hi = _interval(post["beta_q"] - post["beta"])
    assert hi < 0, (lo, hi)


# ---------------------------------------------------------------------------------- pooling

GROUPS = ("w+w_bwd+x_bwd", "x+w+dy+w_bwd+dy2+x_bwd", "w+x")
OFFSETS = (0.0, -1.0, 0.8)
# a penalty 50x Sun et al.'s: at gamma / 5 the global log gamma is uncertain by +-1 and that
# shared uncertainty, not the group's own, sets the width of every group's interval
NOISY_OFFSETS = (0.0, -0.3, 0.3)
POOL_TRUE = dict(SUN_2025, gamma=SUN_2025["gamma"] / 50.0)


@pytest.fixture(scope="module")
def pooled_fits():
    """No pooling and partial pooling of log gamma by operand set on groups that truly differ,
    in two regimes of the same runs (each model compiled once, the losses swapped): ``pinned``
    (1% noise, offsets of up to 1.8 that the runs pin down) and ``noisy`` (3% noise, offsets of
    +-0.3 that the runs leave uncertain)."""
    grid = run_grid((41e6, 154e6, 679e6), (10e9, 30e9, 100e9),
                    ((2, 1), (3, 2), (4, 3), (2, 3)), (32, 512), operands=GROUPS)
    pinned = simulate_runs(grid, POOL_TRUE, "sun", sigma=0.01, seed=3,
                           group_offsets=dict(zip(GROUPS, OFFSETS, strict=True)))
    noisy = simulate_runs(grid, POOL_TRUE, "sun", sigma=0.03, seed=4,
                          group_offsets=dict(zip(GROUPS, NOISY_OFFSETS, strict=True)))
    out = {"pinned": {}, "noisy": {}}
    for pooling in ("none", "partial"):
        model = model_for("sun", pinned, pool_by="operands", pooling=pooling, centred=True,
                          sampler=dict(SAMPLER, seed=12))
        out["pinned"][pooling] = model.fit()
        out["noisy"][pooling] = model.fit(y=np.log(noisy["loss"].to_numpy()))
    return out


def _group_truth(post, offsets):
    return np.array([np.log(POOL_TRUE["gamma"]) + offsets[GROUPS.index(g)]
                     for g in post["group"].values])


def _widths(fit):
    post = fit["posterior"]
    out = {}
    for name in ("log_gamma_group", "log_gamma_offset"):
        lo, hi = _interval(post[name])
        out[name] = hi - lo
    return out


def _offset_truth(post, offsets):
    true = np.asarray(offsets) - np.mean(offsets)
    return np.array([true[GROUPS.index(g)] for g in post["group"].values])


@pytest.mark.slow
def test_no_pooling_recovers_each_group(pooled_fits):
    fit = pooled_fits["pinned"]["none"]
    ok, failures = _passed(fit)
    assert ok, failures
    info = fit_info(fit)
    assert info["pooling"] == "none" and info["pooled"] == ["gamma"]
    post = fit["posterior"]
    assert "tau_gamma" not in post
    missed = _misses(post, {"log_gamma_group": _group_truth(post, OFFSETS),
                            "log_gamma_offset": _offset_truth(post, OFFSETS)})
    assert not missed, missed


@pytest.mark.slow
def test_both_poolings_recover_offsets(pooled_fits):
    """Partial and no pooling recover the offsets in both regimes. Shrinkage is not asserted:
    with 72 runs per group the offsets are pinned even at 3% noise (90% width 0.05 for true
    offsets of +-0.3) and partial pooling's intervals came out 0-7% wider than no pooling's,
    not narrower (see docs/bayes.md)."""
    widths = {}
    for regime, offsets in (("pinned", OFFSETS), ("noisy", NOISY_OFFSETS)):
        for pooling, fit in pooled_fits[regime].items():
            ok, failures = _passed(fit)
            assert ok, (regime, pooling, failures)
            post = fit["posterior"]
            # offsets (group minus the mean over groups): the global log gamma, shared by all
            # groups, is uncertain by +-0.8 at 3% noise and is checked in the pinned regime
            missed = _misses(post, {"log_gamma_offset": _offset_truth(post, offsets)})
            assert not missed, (regime, pooling, missed)
            widths[regime, pooling] = _widths(fit)
    print("90% widths:", widths)


# ---------------------------------------------------------------------------------- sigma_by

SIGMAS = {"quiet": 0.003, "noisy": 0.012}


@pytest.fixture(scope="module")
def sigma_runs():
    grid = run_grid((41e6, 85e6, 154e6, 679e6), (10e9, 20e9, 50e9, 100e9),
                    ((1, 2), (2, 1), (3, 2), (4, 3)), (32, 512))
    # two clusters, each holding every other run of the grid
    grid["cluster"] = np.where(np.arange(len(grid)) % 2 == 0, "quiet", "noisy")
    return simulate_runs(grid, SUN_TRUE, "sun", sigma=SIGMAS, group_col="cluster", seed=5)


@pytest.fixture(scope="module")
def sigma_fit(sigma_runs):
    return model_for("sun", sigma_runs, sigma_by="cluster", sampler=dict(SAMPLER, seed=13)).fit()


@pytest.mark.slow
def test_sigma_by_recovers_each_noise_level(sigma_fit, sigma_runs):
    ok, failures = _passed(sigma_fit)
    assert ok, failures
    post = sigma_fit["posterior"]
    assert list(post["sigma_group"].values) == ["noisy", "quiet"]
    true = np.array([SIGMAS[g] for g in post["sigma_group"].values])
    missed = _misses(post, {"sigma": true})
    assert not missed, missed
    # ordered: the noisy cluster's sd exceeds the quiet one's in (nearly) every draw
    diff = post["sigma"].sel(sigma_group="noisy") - post["sigma"].sel(sigma_group="quiet")
    assert float((diff > 0).mean()) > 0.99
    # the coefficients are still recovered
    t = SUN_TRUE
    truth = {"alpha": t["alpha"], "beta": t["beta"], "eps": t["eps"],
             "log_gamma": np.log(t["gamma"]), "delta": t["delta"], "nu": t["nu"]}
    missed = _misses(post, truth)
    assert not missed, missed


# ---------------------------------------------------------------------------------- robust

ROBUST_TRUTH = {"alpha": SUN_TRUE["alpha"], "beta": SUN_TRUE["beta"], "eps": SUN_TRUE["eps"],
                "log_n": np.log(SUN_TRUE["n"]), "log_d": np.log(SUN_TRUE["d"]),
                "log_gamma": np.log(SUN_TRUE["gamma"]), "delta": SUN_TRUE["delta"],
                "nu": SUN_TRUE["nu"]}


@pytest.fixture(scope="module")
def robust_fits():
    """Normal and Student-t fits of runs with 3 gross outliers (loss x 1.3)."""
    grid = run_grid((41e6, 85e6, 154e6, 679e6), (10e9, 20e9, 50e9, 100e9),
                    ((1, 2), (2, 1), (3, 2), (4, 3)), (32, 512))
    runs = simulate_runs(grid, SUN_TRUE, "sun", sigma=0.005, seed=6)
    hit = np.random.default_rng(0).choice(len(runs), size=3, replace=False)
    runs.loc[hit, "loss"] = runs.loc[hit, "loss"] * 1.3
    return {robust: model_for("sun", runs, robust=robust, sampler=dict(SAMPLER, seed=14)).fit()
            for robust in (False, True)}


@pytest.mark.slow
def test_student_t_resists_outliers(robust_fits):
    robust = robust_fits[True]
    ok, failures = _passed(robust)
    assert ok, failures
    missed = _misses(robust["posterior"], ROBUST_TRUTH)
    assert not missed, missed
    # distance of each posterior mean from the truth, in units of the robust posterior sd
    dist = {}
    for key, fit in robust_fits.items():
        post = fit["posterior"]
        dist[key] = {k: abs(float(post[k].mean()) - t) / float(robust["posterior"][k].std())
                     for k, t in ROBUST_TRUTH.items()}
    print("|mean - truth| / robust sd, Normal:", dist[False])
    print("|mean - truth| / robust sd, Student-t:", dist[True])
    assert any(dist[False][k] > dist[True][k] for k in ROBUST_TRUTH)
