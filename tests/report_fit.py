"""A small fitted posterior and its rendered report, shared by the report tests (built once)."""

import functools
import tempfile
from pathlib import Path

from bayesfp.laws import SUN_2025
from bayesfp.simulate import run_grid, simulate_runs

DECISION = {
    "choice": "E4M3",
    "situation": {"mode": "budget", "budget": 1e21},
    "candidates": [
        {"format": "E2M1", "expected_loss": 2.95, "interval": [2.9, 3.0], "p_best": 0.1,
         "regret": 0.02},
        {"format": "E4M3", "expected_loss": 2.91, "interval": [2.88, 2.94], "p_best": 0.9,
         "regret": 0.001},
    ],
    "evpi": 0.0015,
    "next_runs": [{"run": "e3m2 N=1e9 D=1e11", "evsi": 0.001, "cost": 1e20}],
    "notes": ["N is extrapolated"],
}


@functools.lru_cache(maxsize=1)
def small_fit():
    """A Sun-law fit to 150 simulated runs, 2 chains x 150 draws (too few for the gate)."""
    from bayesfp.bayes.models import model_for

    grid = run_grid(N=(41e6, 85e6, 154e6), D=(10e9, 20e9, 50e9),
                    formats=((2, 1), (3, 2), (4, 3), (2, 3)), blocks=(32, 128, 512),
                    seeds=(0,))
    runs = simulate_runs(grid, SUN_2025, sigma=0.01, seed=3,
                         diverge={"max_P": 4, "rate": 0.2})
    model = model_for("sun", runs, sampler=dict(draws=150, tune=300, chains=2, seed=1))
    return model.fit()


def calibration_table(tree, cov90=(0.88, 0.91, 0.83), model=None):
    """A held-out calibration table (as ``bayesfp calibrate`` writes it, no fits made) that
    matches a fit's model settings and run count; ``cov90`` per cut top20_N, top20_D, top2_N."""
    import pandas as pd

    from bayesfp.bayes.calibrate import model_settings, settings_text
    from bayesfp.bayes.io import fit_info

    info = fit_info(tree)
    n = int(info["n_runs"])
    held = [max(1, n // 5), max(1, n // 4), max(1, n // 6)]
    return pd.DataFrame({
        "cut": ["top20_N", "top20_D", "top2_N"], "n_fit": [n - h for h in held],
        "n_held": held, "cells_held": [3, 3, 2], "factor": [2.0, 2.5, 3.75],
        "cov50": [0.48, 0.52, 0.41], "cov90": list(cov90), "gate": [True, True, False],
        "rhat_max": [1.004, 1.003, 1.02], "ess_bulk_min": [900.0, 850.0, 300.0],
        "divergences": [0, 0, 2], "seconds": [50.1, 47.2, 44.0],
        "model": [model or settings_text(model_settings(info))] * 3})


@functools.lru_cache(maxsize=1)
def rendered():
    """The report of :func:`small_fit` with a decision and a calibration table, written to a
    temporary folder."""
    import matplotlib

    matplotlib.use("Agg")
    from bayesfp.report.html import write_report

    out = Path(tempfile.mkdtemp(prefix="bayesfp-report-")) / "report"
    path = write_report(small_fit(), out, decision=DECISION, svg=True,
                        calibration=calibration_table(small_fit()))
    return path
