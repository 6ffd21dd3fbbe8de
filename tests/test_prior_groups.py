"""Fits made by ``fit_bayes`` hold ``prior`` and ``prior_predictive`` groups: 500 float32 draws
from the model's priors, seeded with the fit's seed, saved and loaded with the fit, usable by
ArviZ's prior predictive check; plain and structured models alike."""

import numpy as np
import pytest
import xarray as xr

from bayesfp.bayes.io import fit_info, load_fit, save_fit
from bayesfp.bayes.prior_groups import PRIOR_DRAWS, prior_groups
from bayesfp.bayes.priors import priors_from_json
from bayesfp.laws import SUN_2025
from bayesfp.simulate import run_grid, simulate_runs

SAMPLER = dict(draws=60, tune=60, chains=2, seed=7)


def _runs():
    grid = run_grid(N=(41e6, 85e6, 154e6), D=(10e9, 20e9, 50e9),
                    formats=((2, 1), (3, 2), (4, 3)), blocks=(32, 128), seeds=(0, 1))
    return simulate_runs(grid, SUN_2025, sigma=0.01, seed=3)


@pytest.fixture(scope="module")
def plain():
    from bayesfp.pipeline import fit_bayes

    return fit_bayes(_runs(), "sun", **SAMPLER)


@pytest.fixture(scope="module")
def structured():
    from bayesfp.cli.calibrate import structure_kw
    from bayesfp.pipeline import fit_bayes

    kw = structure_kw("cell,seed,sigma-d", None, None, "sun")
    return fit_bayes(_runs(), "sun", structure=kw, **SAMPLER)


def test_groups_hold_prior_draws_of_the_posteriors_variables(plain):
    prior, pred = plain["prior"], plain["prior_predictive"]["log_loss"]
    obs = plain["observed_data"]["log_loss"]
    assert pred.dims == ("chain", "draw", "run") and pred.shape == (1, PRIOR_DRAWS, obs.size)
    assert list(pred["run"].values) == list(obs["run"].values)
    assert pred.dtype == np.float32
    assert set(prior.data_vars) <= set(plain["posterior"].data_vars)
    assert {"log_n", "alpha", "log_d", "beta", "eps", "sigma", "k_N"} <= set(prior.data_vars)
    assert all(prior[k].dtype == np.float32 for k in prior.data_vars)
    # a sampled variable's draws follow its stored prior (500 draws: mean within 4 standard
    # errors, sd within 15%)
    stored = priors_from_json(fit_info(plain)["priors"])["k_N"]
    v = prior["k_N"].values.ravel().astype(float)
    assert stored.dist == "normal"
    assert abs(v.mean() - stored.mu) < 4 * stored.sigma / np.sqrt(v.size)
    assert v.std() == pytest.approx(stored.sigma, rel=0.15)
    # the prior predictive is far wider than the data: the priors are weakly informative
    assert float(pred.std(("chain", "draw")).median()) > 10 * float(obs.std())


def test_draws_are_seeded_with_the_fits_seed(plain):
    from bayesfp.bayes.models import model_for

    model = model_for("sun", _runs(), sampler=SAMPLER)
    again = prior_groups(plain, model)
    for name in ("prior", "prior_predictive"):
        xr.testing.assert_identical(again[name], plain[name].to_dataset())
    other = prior_groups(plain, model, seed=8)["prior"]["k_N"].values
    assert not np.array_equal(other, plain["prior"]["k_N"].values)


def test_save_load_round_trip_and_arviz_prior_predictive_check(plain, tmp_path):
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    path = save_fit(plain, tmp_path / "fit.nc")
    back = load_fit(path)
    xr.testing.assert_identical(back["prior"].to_dataset(), plain["prior"].to_dataset())
    # the prior predictive is stored to 15 mantissa bits: relative error at most 2**-16
    pp, pp0 = back["prior_predictive"]["log_loss"], plain["prior_predictive"]["log_loss"]
    assert pp.dims == pp0.dims and pp.shape == pp0.shape
    assert np.all(np.abs(pp.values - pp0.values) <= np.abs(pp0.values) * 2.0 ** -16)
    raw = xr.open_datatree(path, engine="h5netcdf")
    assert raw["prior_predictive"]["log_loss"].dtype == np.float32
    pc = az.plot_ppc_dist(back, group="prior_predictive", num_samples=20)
    fig = pc.viz["figure"].item()
    assert len(fig.axes) == 1 and len(fig.axes[0].get_lines()) == 20
    # one density per sampled prior draw
    drawn = pc.viz["predictive_dist"]["log_loss"]
    assert drawn.sizes["sample"] == 20
    assert set(drawn["draw"].values) <= set(range(PRIOR_DRAWS))


def test_a_fit_without_prior_groups_still_saves_and_loads(plain, tmp_path):
    bare = plain.copy()
    del bare["prior"]
    del bare["prior_predictive"]
    back = load_fit(save_fit(bare, tmp_path / "bare.nc"))
    assert "prior" not in back.children and "prior_predictive" not in back.children
    assert back["posterior"].sizes["draw"] == SAMPLER["draws"]


def test_structured_fit_has_prior_groups(structured, tmp_path):
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    assert fit_info(structured).get("structure")
    pred = structured["prior_predictive"]["log_loss"]
    assert pred.shape == (1, PRIOR_DRAWS, structured["observed_data"]["log_loss"].size)
    assert {"log_n", "alpha", "sigma_slope"} <= set(structured["prior"].data_vars)
    back = load_fit(save_fit(structured, tmp_path / "structured.nc"))
    pc = az.plot_ppc_dist(back, group="prior_predictive", num_samples=10)
    assert pc is not None


def test_report_thinning_keeps_the_prior_draws(plain):
    from bayesfp.report.quantities import thin

    th = thin(plain, max_draws=30)
    assert th["posterior"].sizes["draw"] == 15
    assert th["prior"].sizes["draw"] == PRIOR_DRAWS
    assert th["prior_predictive"].sizes["draw"] == PRIOR_DRAWS
