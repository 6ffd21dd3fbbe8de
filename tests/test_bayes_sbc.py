"""Simulation-based calibration of the Sun-law model: ranks of the true coefficients among
posterior draws are uniform, and central intervals cover at their nominal rate."""

import numpy as np
import pytest

from bayesfp.bayes.calibration import sbc
from bayesfp.bayes.models import model_for
from bayesfp.laws import SUN_2025
from bayesfp.simulate import run_grid, simulate_runs

N_SIMS = 100


@pytest.fixture(scope="module")
def result():
    # a smaller grid than the paper's (99 runs): 3 N x 3 D x 5 formats x 2 block sizes + baselines
    grid = run_grid((41e6, 154e6, 679e6), (10e9, 30e9, 100e9),
                    ((1, 2), (2, 1), (3, 2), (4, 3), (2, 3)), (32, 512))
    runs = simulate_runs(grid, SUN_2025, "sun", sigma=0.01, seed=0)
    return sbc(model_for("sun", runs), n_sims=N_SIMS, draws=300, tune=600, chains=2, thin=3,
               seed=11)


@pytest.mark.slow
def test_ranks_are_uniform(result):
    assert len(result.ranks) + result.n_skipped == N_SIMS
    assert len(result.ranks) >= 95
    assert result.ranks.to_numpy().min() >= 0
    assert result.ranks.to_numpy().max() <= result.n_post
    p = result.uniformity_pvalues(bins=10)
    # chi-square per coefficient, family-wise alpha 0.01 over the 9 sampled variables
    assert (p > 0.01 / len(p)).all(), p.to_dict()


@pytest.mark.slow
def test_intervals_cover_at_nominal_rate(result):
    cov = result.coverage()
    n = len(result.ranks)
    for level in (0.5, 0.9):
        mc_sd = np.sqrt(level * (1 - level) / n)
        # each coefficient within 3.5 Monte-Carlo sd of nominal
        assert (abs(cov[level] - level) < 3.5 * mc_sd).all(), cov[level].to_dict()
        # the average over coefficients (correlated, so the bound uses the single-variable sd)
        assert abs(cov[level].mean() - level) < 2.5 * mc_sd, cov[level].mean()
