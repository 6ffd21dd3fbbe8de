"""Model comparison and predictive checks: PSIS-LOO, posterior predictive coverage, held-out
extrapolation."""

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import xarray as xr

from bayesfp.bayes import psis
from bayesfp.bayes.derived import central_intervals, predict_loss
from bayesfp.bayes.io import fit_table
from bayesfp.errors import BayesfpInputError
from bayesfp.runs.select import fit_selection

# Pareto k above this means the PSIS-LOO estimate for that run is unreliable.
PARETO_K_MAX = 0.7


def loo(tree: xr.DataTree) -> dict:
    """PSIS-LOO of a fit.

    Returns
    -------
    dict
        ``elpd`` (expected log predictive density of log-loss, summed over runs), ``se``,
        ``p_loo`` (effective parameters), ``pareto_k_max``, ``n_bad_k`` (runs with k > 0.7) and
        ``bad_runs`` (their ids), ``warning`` (ArviZ's flag). One log-likelihood variable
        over one observation dimension (what bayesfp's fits store) goes through
        :func:`bayesfp.bayes.psis.loo`, for all runs at once; other layouts through
        ``arviz.loo``.
    """
    fast = psis.loo(tree, PARETO_K_MAX)
    if fast is not None:
        return fast
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        res = az.loo(tree)
    k = np.asarray(res.pareto_k.values if hasattr(res.pareto_k, "values") else res.pareto_k)
    runs = tree["log_likelihood"]["run"].values
    bad = [str(r) for r, kk in zip(runs, k, strict=True) if kk > PARETO_K_MAX]
    return {"elpd": float(res.elpd), "se": float(res.se), "p_loo": float(res.p),
            "pareto_k_max": float(np.max(k)), "n_bad_k": len(bad), "bad_runs": bad,
            "warning": bool(res.warning)}


def compare(fits: Mapping[str, xr.DataTree]) -> pd.DataFrame:
    """Rank fits of the same runs by PSIS-LOO ELPD (``arviz.compare``).

    Returns
    -------
    pandas.DataFrame
        ArviZ's table (``rank``, ``elpd``, ``elpd_diff``, ``dse``, ``p``, ``weight``, ...) plus
        ``n_bad_k`` (runs with Pareto k > 0.7 in that fit) and ``gate_passed``.
    """
    import arviz as az

    if len(fits) < 2:
        raise BayesfpInputError("fits: need at least two fits to compare")
    ids = [tuple(t["log_likelihood"]["run"].values) for t in fits.values()]
    if any(i != ids[0] for i in ids[1:]):
        raise BayesfpInputError("fits: ELPD compares fits of the same runs only")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = az.compare(dict(fits))
    table["n_bad_k"] = [loo(fits[name])["n_bad_k"] for name in table.index]
    table["gate_passed"] = [bool(fits[name].attrs.get("gate_passed", 0))
                            for name in table.index]
    return table


def coverage(pred: xr.DataArray, observed: np.ndarray,
             levels=(0.5, 0.9)) -> dict[float, float]:
    """Fraction of observed losses inside the central predictive interval at each level (all
    levels from one quantile pass over the draws)."""
    obs = xr.DataArray(np.asarray(observed, dtype=float), dims="run",
                       coords={"run": pred["run"].values})
    return {lv: float(((obs >= lo) & (obs <= hi)).mean())
            for lv, (lo, hi) in central_intervals(pred, levels).items()}


def ppc_coverage(tree: xr.DataTree, levels=(0.5, 0.9), seed: int = 0) -> dict[float, float]:
    """Posterior predictive check: coverage of the fitted runs' losses at each level.

    Close to nominal (0.5, 0.9) when the law and noise model describe the runs; far below it
    when runs deviate systematically.
    """
    runs = fit_table(tree, fitted_only=True)
    pred = predict_loss(tree, runs, noise=True, seed=seed)
    return coverage(pred, runs["loss"].to_numpy(dtype=float), levels)


def holdout_check(runs: pd.DataFrame, law: str = "sun", levels=(0.5, 0.9), seed: int = 0,
                  model_kw: Mapping | None = None, sampler: Mapping | None = None) -> dict:
    """Extrapolation check: fit without the runs at the largest N, predict them.

    Parameters
    ----------
    runs : pandas.DataFrame
        Validated run table; the runs at its largest N are held out.
    law : str
        ``chinchilla``, ``kumar``, ``sun`` or ``sun_sep``.
    levels : tuple of float
        Interval levels whose coverage of the held-out losses is reported.
    model_kw : mapping, optional
        Keywords of :class:`bayesfp.bayes.models.LawModel` (``pool_by``, ``prior``, ...), or
        of a structured model (:func:`bayesfp.bayes.calibrate.make_model`).
    sampler : mapping, optional
        Sampler settings for the fit.

    Returns
    -------
    dict
        ``N_held`` (the held-out N), ``n_held`` (ok runs held out and predicted),
        ``n_unplaced`` (held-out tensor-wise runs left out: no effective block size), ``coverage``
        ({level: fraction}), ``gate_passed`` and ``fit`` (the DataTree fitted on the rest).
    """
    from bayesfp.bayes.calibrate import make_model

    n_max = float(runs["N"].max())
    train = runs[runs["N"] < n_max]
    # held-out runs the law cannot place (tensor-wise without an effective block size) are left
    # out of the check, as the fit leaves them out of the likelihood
    tensor_log2b = dict((model_kw or {}).get("inputs_kw") or {}).get("tensor_log2b")
    selection = fit_selection(runs, tensor_log2b)
    held = (runs["N"] == n_max).to_numpy()
    unplaced = held & selection.unplaced
    test = runs[held & selection.in_fit]
    if train["N"].nunique() < 2 or len(test) == 0:
        raise BayesfpInputError("runs: the held-out check needs at least 3 distinct N with ok runs")
    model = make_model(train, law, model_kw, sampler)
    fit = model.fit()
    pred = predict_loss(fit, test, noise=True, seed=seed)
    cov = coverage(pred, test["loss"].to_numpy(dtype=float), levels)
    return {"N_held": n_max, "n_held": int(len(test)), "n_unplaced": int(unplaced.sum()),
            "coverage": cov,
            "gate_passed": bool(fit.attrs["gate_passed"]), "fit": fit}
