"""Simulation-based calibration (Talts et al. 2018) of a law model.

Coefficients and losses are drawn from the model's prior; the model is refitted to each
simulated data set (compiled once, data swapped) and the rank of each true coefficient among its
posterior draws is recorded. For a correct sampler and model these ranks are uniform and the
central posterior intervals cover the truth at their nominal rate.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesfp.bayes.models import LawModel
from bayesfp.bayes.sample import SamplerConfig, run_nuts


@dataclass
class SBCResult:
    """Outcome of :func:`sbc`.

    Attributes
    ----------
    ranks : pandas.DataFrame
        One row per replicate, one column per sampled variable: rank of the true value among
        ``n_post`` thinned posterior draws (0 .. n_post).
    covered : dict
        {level: DataFrame of bool}: whether the central interval at that level held the truth.
    n_post : int
        Posterior draws each rank is taken over.
    divergences : numpy.ndarray
        Divergent transitions per replicate.
    n_skipped : int
        Prior draws whose simulated losses were not finite (not fitted).
    """

    ranks: pd.DataFrame
    covered: dict
    n_post: int
    divergences: np.ndarray
    n_skipped: int

    def uniformity_pvalues(self, bins: int = 10) -> pd.Series:
        """Chi-square test of uniform ranks per variable (ranks binned into ``bins``)."""
        from scipy.stats import chisquare

        out = {}
        for col in self.ranks:
            r = self.ranks[col].to_numpy()
            counts = np.bincount(np.minimum(r * bins // (self.n_post + 1), bins - 1),
                                 minlength=bins)
            out[col] = float(chisquare(counts).pvalue)
        return pd.Series(out)

    def coverage(self) -> pd.DataFrame:
        """Fraction of replicates whose interval covered the truth (variables x levels)."""
        return pd.DataFrame({lv: c.mean() for lv, c in self.covered.items()})


def sbc(model: LawModel, n_sims: int = 100, draws: int = 250, tune: int = 300,
        chains: int = 2, thin: int = 5, levels=(0.5, 0.9), seed: int = 0) -> SBCResult:
    """Simulation-based calibration of ``model`` on its own runs (N, D, formats).

    Parameters
    ----------
    model : LawModel
        Defines the runs and the priors; compiled once.
    n_sims : int
        Prior draws (replicates).
    draws, tune, chains : int
        Sampler settings per replicate.
    thin : int
        Keep every thin-th draw for the rank (reduces autocorrelation).
    levels : tuple of float
        Central interval levels whose coverage is recorded.

    Returns
    -------
    SBCResult
    """
    prior = model.sample_prior_predictive(draws=n_sims, seed=seed)
    theta = prior["prior"].to_dataset()
    ysim = np.asarray(prior["prior_predictive"]["log_loss"].values)[0]
    names = list(model.sampled) + ["sigma"]
    m = model.build_model()
    key = model._key()
    ranks, covered, divs, skipped = [], {lv: [] for lv in levels}, [], 0
    for i in range(n_sims):
        y = ysim[i]
        if not np.all(np.isfinite(y)):
            skipped += 1
            continue
        cfg = SamplerConfig(draws=draws, tune=tune, chains=chains, cores=min(chains, 2),
                            seed=seed + 1 + i, target_accept=model.sampler_config.target_accept)
        tree = run_nuts(m, key, {"log_loss_obs": y}, cfg, model.var_names())
        post = tree["posterior"].to_dataset()
        divs.append(int(tree["sample_stats"]["diverging"].sum()))
        row, cov = {}, {lv: {} for lv in levels}
        for name in names:
            d = np.asarray(post[name].values)[:, ::thin].ravel()
            t = float(np.asarray(theta[name].values)[0, i])
            row[name] = int(np.sum(d < t))
            for lv in levels:
                lo, hi = np.quantile(d, [(1 - lv) / 2, (1 + lv) / 2])
                cov[lv][name] = bool(lo <= t <= hi)
        ranks.append(row)
        for lv in levels:
            covered[lv].append(cov[lv])
    n_post = chains * len(range(0, draws, thin))
    return SBCResult(ranks=pd.DataFrame(ranks), n_post=n_post,
                     covered={lv: pd.DataFrame(v) for lv, v in covered.items()},
                     divergences=np.array(divs), n_skipped=skipped)
