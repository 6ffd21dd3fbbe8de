"""Partial pooling of the precision sensitivity: it must pay off when groups truly differ and
cost nothing when they do not."""

import numpy as np
import pytest

from bayesfp.bayes.compare import compare, loo
from bayesfp.bayes.derived import predict_loss
from bayesfp.bayes.io import fit_info
from bayesfp.bayes.models import model_for
from bayesfp.laws import SUN_2025
from bayesfp.simulate import run_grid, simulate_runs

TRUTH = dict(SUN_2025, gamma=SUN_2025["gamma"] / 5.0)
GROUPS = ("w+w_bwd+x_bwd", "x+w+dy+w_bwd+dy2+x_bwd", "w+x")
SAMPLER = dict(draws=1000, tune=700, chains=4, seed=5)


def _runs(offsets, sigma, seed):
    grid = run_grid((41e6, 154e6, 679e6), (10e9, 30e9, 100e9),
                    ((2, 1), (3, 2), (4, 3), (2, 3)), (32, 512), operands=GROUPS)
    return simulate_runs(grid, TRUTH, "sun", sigma=sigma, seed=seed,
                         group_offsets=dict(zip(GROUPS, offsets, strict=True)))


@pytest.fixture(scope="module")
def fits():
    """Complete and partial pooling on runs whose groups differ and on runs whose groups are
    equal (the same runs, other losses: each model is compiled once, the losses swapped).

    Offsets the runs pin down (0.5% noise) sample best centred; offsets near zero with a
    scale tau near zero sample best non-centred (the default). Both pass the gate.
    """
    differ = _runs((0.0, -1.0, 0.8), sigma=0.005, seed=3)  # log gamma differs by up to 1.8
    equal = _runs((0.0, 0.0, 0.0), sigma=0.01, seed=4)
    y_equal = np.log(equal["loss"].to_numpy())
    complete = model_for("sun", differ, sampler=dict(SAMPLER, draws=500))
    centred = model_for("sun", differ, pool_by="operands", centred=True, sampler=SAMPLER)
    noncentred = model_for("sun", differ, pool_by="operands", sampler=SAMPLER)
    return {
        "differ": {"complete": complete.fit(), "partial": centred.fit()},
        "equal": {"complete": complete.fit(y=y_equal), "partial": noncentred.fit(y=y_equal)},
    }


@pytest.mark.slow
def test_all_fits_pass_the_gate(fits):
    for case in fits.values():
        for fit in case.values():
            assert fit_info(fit)["gate"]["passed"], fit_info(fit)["gate"]["failures"]


@pytest.mark.slow
def test_pooling_wins_when_groups_differ(fits):
    table = compare(fits["differ"])
    assert table.index[0] == "partial"
    diff = float(table.loc["complete", "elpd_diff"])
    assert abs(diff) > 4 * float(table.loc["complete", "dse"])
    # the group offsets are recovered: sum-to-zero version of the true offsets
    post = fits["differ"]["partial"]["posterior"]
    true = np.array([0.0, -1.0, 0.8])
    true = true - true.mean()
    order = [GROUPS.index(g) for g in post["group"].values]
    est = post["log_gamma_offset"]
    lo = est.quantile(0.05, ("chain", "draw")).values
    hi = est.quantile(0.95, ("chain", "draw")).values
    assert np.all((lo <= true[order]) & (true[order] <= hi)), (lo, hi, true[order])


@pytest.mark.slow
def test_pooling_does_not_overfit_equal_groups(fits):
    table = compare(fits["equal"])
    diff = float(table.loc[table.index[1], "elpd_diff"])
    assert abs(diff) < max(2.0, 2 * float(table.loc[table.index[1], "dse"]))
    tau = fits["equal"]["partial"]["posterior"]["tau_gamma"]
    # differences of log gamma between groups stay small (prior median of tau is 0.34)
    assert float(tau.quantile(0.5)) < 0.3
    assert loo(fits["equal"]["partial"])["n_bad_k"] == 0


@pytest.mark.slow
def test_unseen_group_gets_a_population_draw(fits):
    fit = fits["differ"]["partial"]
    grid = run_grid((154e6,), (30e9,), ((2, 1),), (32,), operands=("w+w_bwd+x_bwd", "dy"),
                    baselines=False)
    pred = predict_loss(fit, grid, noise=False)
    sd = np.log(pred).std(("chain", "draw")).values
    # a group never seen is far less certain than a fitted one
    assert sd[1] > 3 * sd[0]
