"""Point fits recover known coefficients from simulated run tables."""

import numpy as np
import pytest

from bayesfp.fit import fit_point
from bayesfp.laws import CHINCHILLA_HOFFMANN, KUMAR_2024, SUN_2025
from bayesfp.simulate import run_grid, simulate_runs

SUN_TRUE = dict(SUN_2025, gamma=2000.0)   # a penalty large enough to be identified
KUMAR_TRUE = {k: KUMAR_2024[k] for k in ("n", "alpha", "d", "beta", "eps", "gamma_w", "gamma_a")}
# The KV cache is never quantized in these runs: its sensitivity is simulated but not fitted.
KUMAR_SIM = dict(KUMAR_TRUE, gamma_kv=KUMAR_2024["gamma_kv"])
FORMATS = ((1, 2), (2, 1), (2, 2), (3, 2), (3, 3), (4, 3), (5, 2), (2, 4))


def chinchilla_grid():
    return run_grid(np.geomspace(1e7, 1e9, 5), np.geomspace(1e9, 1e11, 5), (), (),
                    baselines=True)


def sun_grid():
    return run_grid((41e6, 85e6, 154e6, 679e6), (10e9, 20e9, 50e9, 100e9), FORMATS,
                    (32, 128, 512))


def kumar_grid():
    return run_grid((30e6, 60e6, 110e6, 220e6), (1.5e9, 3e9, 6e9, 13e9, 26e9),
                    ((1, 2), (2, 2), (3, 2), (3, 3), (4, 3), (4, 4)), (128,),
                    operands=("w+w_bwd", "x", "x+w+w_bwd"))


CASES = {
    "chinchilla": (chinchilla_grid, CHINCHILLA_HOFFMANN),
    "sun": (sun_grid, SUN_TRUE),
    "kumar": (kumar_grid, KUMAR_TRUE),
}
SIM = {"chinchilla": CHINCHILLA_HOFFMANN, "sun": SUN_TRUE, "kumar": KUMAR_SIM}


@pytest.mark.parametrize("law", sorted(CASES))
def test_noise_free_fit_recovers_the_truth(law):
    grid_fn, truth = CASES[law]
    df = simulate_runs(grid_fn(), SIM[law], law=law, sigma=0.0, seed=0)
    fit = fit_point(df, law, n_boot=0)
    for k, v in truth.items():
        assert fit.estimates[k] == pytest.approx(v, rel=2e-3), k
    assert np.abs(fit.residuals).max() < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("law", sorted(CASES))
def test_bootstrap_intervals_cover_the_truth_at_nominal_rate(law):
    """Over repeated simulations, 90% bootstrap intervals contain the true coefficients at
    close to the nominal rate (pooled over coefficients and simulations)."""
    grid_fn, truth = CASES[law]
    grid = grid_fn()
    hits, total = 0, 0
    for rep in range(6):
        df = simulate_runs(grid, SIM[law], law=law, sigma=0.01, seed=100 + rep)
        fit = fit_point(df, law, n_boot=40, seed=rep)
        for k, v in truth.items():
            lo, hi = fit.interval(k, 0.9)
            hits += lo <= v <= hi
            total += 1
    rate = hits / total
    assert 0.75 <= rate <= 1.0, f"coverage {rate:.2f} over {total} intervals"


def test_diverged_runs_are_excluded_and_counted():
    df = simulate_runs(chinchilla_grid(), CHINCHILLA_HOFFMANN, law="chinchilla", sigma=0.0)
    df.loc[df.index[:3], "status"] = "diverged"
    df.loc[df.index[:3], "loss"] = np.nan
    fit = fit_point(df, "chinchilla", n_boot=0)
    assert fit.n_runs == len(df) - 3 and fit.excluded == {"diverged": 3}
    assert fit.estimates["alpha"] == pytest.approx(CHINCHILLA_HOFFMANN["alpha"], rel=2e-3)


def test_too_few_runs_is_a_clear_error():
    df = simulate_runs(chinchilla_grid(), CHINCHILLA_HOFFMANN, law="chinchilla").head(3)
    with pytest.raises(ValueError, match="cannot identify"):
        fit_point(df, "chinchilla")
