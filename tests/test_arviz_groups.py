"""ArviZ works on bayesfp fit files: ``az.summary`` and the posterior predictive check
(``az.plot_ppc_dist``, ArviZ 1.x's ``plot_ppc``) run on the shipped fit, and a saved fit holds
a ``posterior_predictive`` group that matches the observed data."""

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "runs_sun.nc"


@pytest.fixture(scope="module")
def shipped():
    from bayesfp.bayes.io import load_fit

    return load_fit(SHIPPED)


def test_summary_and_ppc_on_the_shipped_fit(shipped):
    import arviz as az
    import matplotlib

    matplotlib.use("Agg")
    s = az.summary(shipped, var_names=["k_N", "a_Q"])
    assert list(s.index) == ["k_N", "a_Q"]
    post = shipped["posterior"]
    # the mean is the plain mean of the draws (independent of arviz's code path)
    assert float(s.loc["k_N", "mean"]) == pytest.approx(float(post["k_N"].mean()), abs=1e-3)
    pp = shipped["posterior_predictive"]["log_loss"]
    obs = shipped["observed_data"]["log_loss"]
    assert pp.dims == ("chain", "draw", "run") and list(pp["run"].values) == list(
        obs["run"].values)
    # a calibrated predictive puts about 90% of the observed runs in its central 90%
    lo, hi = pp.quantile([0.05, 0.95], dim=("chain", "draw")).values
    inside = float(np.mean((obs.values >= lo) & (obs.values <= hi)))
    assert 0.8 <= inside <= 0.98
    pc = az.plot_ppc_dist(shipped, num_samples=20)
    assert pc is not None


def test_saved_fit_has_the_groups_without_bayesfp(tmp_path, shipped):
    """A fit written now opens with plain xarray and has every group ArviZ's PPC needs."""
    from bayesfp.bayes.io import save_fit

    small = shipped.copy()
    for name in ("posterior", "sample_stats", "log_likelihood"):
        small[name] = xr.DataTree(small[name].to_dataset().isel(draw=slice(0, 50)))
    del small["posterior_predictive"]
    path = save_fit(small, tmp_path / "fit.nc")
    tree = xr.open_datatree(path, engine="h5netcdf")
    assert {"posterior", "posterior_predictive", "observed_data", "log_likelihood",
            "sample_stats", "fit_data"} <= set(tree.children)
    assert tree["posterior_predictive"]["log_loss"].shape == (4, 50, obs_runs(shipped))
    assert tree.attrs["format_version"] == 2 and tree.attrs["law"] == "sun"
    assert tree.attrs["pool_by"] == "operands"


def obs_runs(tree) -> int:
    return tree["observed_data"]["log_loss"].sizes["run"]
