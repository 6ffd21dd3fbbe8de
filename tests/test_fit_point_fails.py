"""A point fit that did not fit is an error, never a result: a non-finite objective at every
start, or L-BFGS that never moved from its start."""

import numpy as np
import pytest
from scipy.optimize import OptimizeResult

from bayesfp.errors import BayesfpInputError
from bayesfp.fit import fit_point
from bayesfp.laws import SUN_2025
from bayesfp.simulate import run_grid, simulate_runs


@pytest.fixture(scope="module")
def runs():
    grid = run_grid(N=(41e6, 85e6, 154e6), D=(10e9, 20e9, 50e9), formats=((2, 1), (4, 3)),
                    blocks=(128,), seeds=(0,))
    return simulate_runs(grid, SUN_2025, sigma=0.01, seed=3)


def _optimiser(fun, nit):
    def minimize(f, x0, **kw):
        return OptimizeResult(x=np.asarray(x0, dtype=float), fun=fun, nit=nit, success=False,
                              message="stub optimiser")
    return minimize


@pytest.mark.parametrize("fun, nit, text", [(np.inf, 5, "not finite"),
                                            (1.0, 0, "did not move")])
def test_failed_point_fit_is_an_error(runs, monkeypatch, fun, nit, text):
    monkeypatch.setattr("bayesfp.fit.point.minimize", _optimiser(fun, nit))
    with pytest.raises(BayesfpInputError, match=text):
        fit_point(runs, "sun", n_boot=0)


def test_a_real_fit_moves_and_is_finite(runs):
    fit = fit_point(runs, "sun", n_boot=0)
    assert np.isfinite(fit.objective)
    # the runs were simulated with noise sd 0.01 on log-loss: a fit that moved gets near it
    assert 0.003 < float(np.std(fit.residuals)) < 0.02
