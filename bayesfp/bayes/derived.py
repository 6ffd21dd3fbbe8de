"""Derived quantities as posteriors: each one is the law's own function applied to every draw.

All functions take a fit (the DataTree of :meth:`bayesfp.bayes.models.LawModel.fit` or
:func:`bayesfp.bayes.io.load_fit`) and return xarray objects with dims ``chain, draw`` plus
science dims (``N``, ``format``, ``P``, ``E``, ``C``, ``run``). Intervals come from
:func:`hdi`. Nothing is clipped: where the penalty is small next to the noise, the posterior of
D_crit is as wide as the data leave it.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayesfp.bayes.info import fit_info
from bayesfp.bayes.likelihood import standard_noise
from bayesfp.bayes.priors import NO_POOLING_SD
from bayesfp.errors import BayesfpInputError
from bayesfp.laws import derived as law_derived
from bayesfp.laws.inputs import law_inputs
from bayesfp.laws.registry import get_law

# Formats D_crit is reported for by default: (E, M) of FP4 E2M1, FP6 E3M2, FP8 E4M3, BF16 E8M7.
DEFAULT_FORMATS = ((2, 1), (3, 2), (4, 3), (8, 7))
SAMPLE_DIMS = ("chain", "draw")


def format_label(e: int, m: int) -> str:
    return f"E{int(e)}M{int(m)}"


def coefficients(tree: xr.DataTree, group: str | None = None) -> dict:
    """Posterior draws of every law coefficient, as the law functions take them.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit.
    group : str, optional
        For a pooled fit, use this group's precision sensitivity instead of the global one
        (the mean over groups).

    Returns
    -------
    dict
        ``log_<name>`` for positive coefficients, ``<name>`` otherwise; DataArrays with dims
        ``chain, draw``, floats for fixed coefficients.
    """
    info = fit_info(tree)
    law = get_law(info["law"])
    post = tree["posterior"].to_dataset()
    if group is not None and group not in info["groups"]:
        raise BayesfpInputError(f"group: {group!r} is not a group of this fit "
                                f"(groups: {', '.join(info['groups']) or 'none, not pooled'})")
    out = {}
    for p in law.params:
        if p.name in info["fixed"]:
            out[p.name] = float(info["fixed"][p.name])
            continue
        key = ("log_" + p.name) if p.positive else p.name
        if group is not None and p.name in info["pooled"]:
            out[key] = post[f"{key}_group"].sel(group=group, drop=True)
        else:
            out[key] = post[key]
    return out


def _flat(params: dict, extra_dims: int = 0) -> tuple[dict, tuple]:
    """DataArrays (chain, draw) -> NumPy arrays (chain, draw, 1, ...) for broadcasting."""
    shape = None
    out = {}
    for k, v in params.items():
        if isinstance(v, xr.DataArray):
            a = np.asarray(v.transpose(*SAMPLE_DIMS).values, dtype=float)
            shape = a.shape
            out[k] = a.reshape(a.shape + (1,) * extra_dims)
        else:
            out[k] = v
    assert shape is not None, "no sampled coefficient"
    return out, shape


def _format_shifted(tree: xr.DataTree, p: dict, shape: tuple, E, M, log2B) -> dict:
    """``p`` (arrays (chain, draw, 1, ..., 1)) with log gamma per format (last axis) shifted
    by a structured fit's flexible format effect and block-size power
    (:func:`bayesfp.bayes.terms.log_gamma_shift`); unchanged for other fits."""
    from bayesfp.bayes.terms import has_format_terms, log_gamma_shift

    info = fit_info(tree)
    if "log_gamma" not in p or not has_format_terms(info):
        return p
    shift = log_gamma_shift(tree["posterior"].to_dataset(), info, E, M, log2B)
    lg = p["log_gamma"]
    p = dict(p)
    p["log_gamma"] = lg + shift.reshape(shape + (1,) * (lg.ndim - len(shape) - 1) + (-1,))
    return p


def _coords(tree: xr.DataTree) -> dict:
    post = tree["posterior"]
    return {d: post[d].values for d in SAMPLE_DIMS}


def d_crit(tree: xr.DataTree, N: Sequence[float], formats: Sequence = DEFAULT_FORMATS,
           log2B: float = 7.0, group: str | None = None) -> xr.DataArray:
    """Posterior of the critical data size D_crit (tokens) of the Sun law.

    Parameters
    ----------
    N : sequence of float
        Non-embedding parameter counts.
    formats : sequence of (E, M)
        Formats.
    log2B : float
        log2 of the block size (7 for B = 128; 13.1567 for channel-wise).
    group : str, optional
        Group of a pooled fit (default: the global coefficient).

    Returns
    -------
    xarray.DataArray
        Dims ``chain, draw, N, format`` (format labels ``E4M3``), tokens.
    """
    law = fit_info(tree)["law"]
    p, shape = _flat(coefficients(tree, group), extra_dims=2)
    N = np.asarray(N, dtype=float)
    E = np.array([f[0] for f in formats], dtype=float)
    M = np.array([f[1] for f in formats], dtype=float)
    p = _format_shifted(tree, p, shape, E, M, log2B)
    val = law_derived.critical_data_size(p, N[:, None], E[None, :], M[None, :], log2B, law)
    return xr.DataArray(val, dims=(*SAMPLE_DIMS, "N", "format"),
                        coords=_coords(tree) | {"N": N, "format": [format_label(*f)
                                                                   for f in formats]},
                        name="D_crit", attrs={"units": "tokens", "log2B": log2B})


def split_probabilities(tree: xr.DataTree, P: Sequence[int] = tuple(range(4, 13)),
                        e_min: int = 1, e_max: int = 8, group: str | None = None) -> xr.DataArray:
    """Posterior probability that each integer (E, M) split is the best one for P bits.

    At fixed N, D and B the loss differs between splits of P = 1 + E + M only through the
    penalty's format factor, so the best split is the one with the smallest factor, per draw.

    Returns
    -------
    xarray.DataArray
        Dims ``P, E`` (M = P - 1 - E); probabilities summing to 1 over E for each P, NaN where
        E is not a candidate.
    """
    law = fit_info(tree)["law"]
    p, _ = _flat(coefficients(tree, group))
    p = {k: (v.ravel() if isinstance(v, np.ndarray) else v) for k, v in p.items()}
    Es = list(range(e_min, e_max + 1))
    out = np.full((len(P), len(Es)), np.nan)
    flex = fit_info(tree).get("format_effect") == "flex" and group is None
    for i, bits in enumerate(P):
        cands, logpen = law_derived.split_log_penalty(p, int(bits), law, e_min, e_max)
        if flex:  # per-E / per-M effects of a structured fit (fresh ones for unseen levels)
            from bayesfp.bayes.terms import format_log_penalty

            logpen = format_log_penalty(tree["posterior"].to_dataset(), fit_info(tree),
                                        [c[0] for c in cands], [c[1] for c in cands])
        best = np.argmin(logpen, axis=-1)
        for j, (e, _m) in enumerate(cands):
            out[i, Es.index(e)] = float(np.mean(best == j))
    return xr.DataArray(out, dims=("P", "E"), coords={"P": list(P), "E": Es},
                        name="p_best_split")


def best_splits(probs: xr.DataArray) -> pd.DataFrame:
    """The most probable split per P with its probability (from :func:`split_probabilities`)."""
    rows = []
    for bits in probs["P"].values:
        row = probs.sel(P=bits)
        e = int(row.fillna(-1).idxmax("E"))
        rows.append({"P": int(bits), "E": e, "M": int(bits) - 1 - e,
                     "format": format_label(e, int(bits) - 1 - e),
                     "probability": float(row.sel(E=e))})
    return pd.DataFrame(rows).set_index("P")


def split_continuous(tree: xr.DataTree, P: Sequence[int] = tuple(range(4, 13)),
                     group: str | None = None) -> xr.Dataset:
    """Posterior of the continuous optimum (E_opt, M_opt) for each P (dims chain, draw, P)."""
    law = fit_info(tree)["law"]
    p, _ = _flat(coefficients(tree, group), extra_dims=1)
    Pa = np.asarray(P, dtype=float)
    E, M = law_derived.optimal_split_continuous(p, Pa, law)
    coords = _coords(tree) | {"P": list(P)}
    dims = (*SAMPLE_DIMS, "P")
    return xr.Dataset({"E_opt": (dims, E), "M_opt": (dims, M)}, coords=coords)


def compute_optimal_precision(tree: xr.DataTree, C: Sequence[float], thin: int = 1,
                              k: float = 6.0 / 16.0, b: float = 0.0, log2B: float = 7.0,
                              group: str | None = None) -> xr.Dataset:
    """Posterior of the compute-optimal (N, D, P) at each FLOP budget C = k (P + b) N D.

    Each draw is minimised with :func:`bayesfp.laws.compute_optimal` (nested golden sections,
    one search per draw and budget); ``thin`` keeps every thin-th draw.

    Returns
    -------
    xarray.Dataset
        ``N``, ``D``, ``P``, ``loss`` (and ``E``, ``M`` for Sun laws), dims ``chain, draw, C``.
    """
    if thin < 1:
        raise BayesfpInputError(f"thin: must be at least 1, got {thin}")
    law = fit_info(tree)["law"]
    coefs = {k_: (v.isel(draw=slice(None, None, thin)) if isinstance(v, xr.DataArray) else v)
             for k_, v in coefficients(tree, group).items()}
    p, shape = _flat(coefs)
    info = fit_info(tree)
    if info.get("log2b_power") and "log_gamma" in p and "log2b_power" in tree["posterior"]:
        # the format offsets are defined at integer widths only; the search over continuous
        # (E, M) uses the parametric trend (delta, nu) and the fitted power of log2 B
        k_draws = tree["posterior"]["log2b_power"].isel(draw=slice(None, None, thin))
        k_draws = np.asarray(k_draws.transpose(*SAMPLE_DIMS).values, dtype=float)
        p["log_gamma"] = p["log_gamma"] - (k_draws - 1.0) * np.log(log2B)
    p = {k_: (v.ravel() if isinstance(v, np.ndarray) else v) for k_, v in p.items()}
    res = {}
    for c in C:
        r = law_derived.compute_optimal(p, float(c), law, k=k, b=b, log2B=log2B)
        for name, v in r.items():
            res.setdefault(name, []).append(np.asarray(v).reshape(shape))
    some = next(v for v in coefs.values() if isinstance(v, xr.DataArray))
    coords = {d: some[d].values for d in SAMPLE_DIMS} | {"C": np.asarray(C, dtype=float)}
    return xr.Dataset({name: ((*SAMPLE_DIMS, "C"), np.stack(v, axis=-1))
                       for name, v in res.items()}, coords=coords)


def _predict_structured(tree, info, runs, noise, seed) -> xr.DataArray:
    """:func:`predict_loss` of a structured fit (:func:`bayesfp.bayes.terms.predict_log_loss`:
    cell, seed and discrepancy terms included, fresh effects for unseen cells)."""
    from bayesfp.bayes.terms import predict_log_loss

    post = tree["posterior"].to_dataset()
    runs = runs.reset_index(drop=True)
    logmu = predict_log_loss(post, info, runs, noise=noise, seed=seed)
    shape = (post.sizes["chain"], post.sizes["draw"], len(runs))
    run_ids = runs["run_id"].astype(str).to_numpy() if "run_id" in runs else np.arange(len(runs))
    return xr.DataArray(np.exp(logmu).reshape(shape), dims=(*SAMPLE_DIMS, "run"),
                        coords=_coords(tree) | {"run": run_ids}, name="loss",
                        attrs={"units": "nats/token"})


def predict_loss(tree: xr.DataTree, runs: pd.DataFrame, noise: bool = True,
                 seed: int = 0) -> xr.DataArray:
    """Posterior predictive loss (nats/token) for runs, new or fitted.

    Parameters
    ----------
    runs : pandas.DataFrame
        Run table rows: N, D, E, M, B, operands (and the ``pool_by`` / ``sigma_by`` columns of
        the fit). A group the fit has not seen gets a new offset drawn from the fitted
        population (partial pooling) or from the wide no-pooling prior.
    noise : bool
        Add observation noise (the predictive distribution of a new run's measured loss);
        without it, the posterior of the law's mean loss.
    seed : int
        Seed of the noise and new-group draws.

    Returns
    -------
    xarray.DataArray
        Dims ``chain, draw, run``.
    """
    info = fit_info(tree)
    if info.get("structure"):
        return _predict_structured(tree, info, runs, noise, seed)
    law = get_law(info["law"])
    post = tree["posterior"].to_dataset()
    rng = np.random.default_rng(seed)
    runs = runs.reset_index(drop=True)
    x = law_inputs(runs, **info.get("inputs_kw", {}))
    x = {k: x[k] for k in law.inputs}
    params = coefficients(tree)
    nchain, ndraw = post.sizes["chain"], post.sizes["draw"]
    n = len(runs)
    if info["pooled"]:
        col = info["pool_by"]
        if col not in runs:
            raise BayesfpInputError(f"runs: column {col!r} (pool_by of the fit) is missing")
        vals = runs[col].astype(str).to_numpy()
        quant = (x["log2B"] > 0) if "log2B" in x else np.ones(n, dtype=bool)
        for c in info["pooled"]:
            key = "log_" + c
            glob = post[key].values[..., None]
            grp = post[f"{key}_group"].transpose(*SAMPLE_DIMS, "group")
            arr = np.repeat(glob, n, axis=-1)
            where = {str(g): j for j, g in enumerate(grp["group"].values)}
            known = [i for i, v in enumerate(vals) if quant[i] and v in where]
            if known:  # one fancy-indexing copy instead of a selection per run
                arr[..., known] = grp.values[..., [where[vals[i]] for i in known]]
            for i, v in enumerate(vals):
                if quant[i] and v not in where:
                    scale = (post[f"tau_{c}"].values if info["pooling"] == "partial"
                             else NO_POOLING_SD)
                    arr[..., i] = glob[..., 0] + scale * rng.standard_normal((nchain, ndraw))
            params[key] = xr.DataArray(arr, dims=(*SAMPLE_DIMS, "run"))
    mu = law.loss(params, x)
    mu = mu.transpose(*SAMPLE_DIMS, "run")
    with np.errstate(invalid="ignore"):
        logmu = np.log(np.asarray(mu.values, dtype=float))
    if noise:
        sig = post["sigma"]
        if info["sigma_by"]:
            col = info["sigma_by"]
            if col not in runs:
                raise BayesfpInputError(f"runs: column {col!r} (sigma_by of the fit) is missing")
            vals = runs[col].astype(str)
            unknown = sorted(set(vals) - set(info["sigma_groups"]))
            if unknown:
                raise BayesfpInputError(f"runs: {col} values {unknown} have no fitted noise sd")
            sd = sig.sel(sigma_group=xr.DataArray(vals.to_numpy(), dims="run")).values
        else:
            sd = sig.values[..., None]
        logmu = logmu + sd * standard_noise(rng, logmu.shape, info["robust"])
    run_ids = runs["run_id"].astype(str).to_numpy() if "run_id" in runs else np.arange(n)
    return xr.DataArray(np.exp(logmu), dims=(*SAMPLE_DIMS, "run"),
                        coords=_coords(tree) | {"run": run_ids}, name="loss",
                        attrs={"units": "nats/token"})


def hdi(da: xr.DataArray, prob: float = 0.9) -> xr.DataArray:
    """Highest-density interval over ``chain, draw`` (dim ``ci_bound``: lower, upper)."""
    import arviz as az

    if not 0.0 < prob < 1.0:
        raise BayesfpInputError(f"prob: must lie in (0, 1), got {prob}")
    return az.hdi(da, prob=prob)


def central_interval(da: xr.DataArray, prob: float = 0.9) -> tuple[xr.DataArray, xr.DataArray]:
    """Equal-tailed interval over ``chain, draw``: (lower, upper)."""
    return central_intervals(da, (prob,))[float(prob)]


def central_intervals(da: xr.DataArray, probs=(0.9,)) -> dict:
    """Equal-tailed intervals over ``chain, draw`` at every level of ``probs``, from one
    quantile pass over the draws: ``{prob: (lower, upper)}``."""
    qs = []
    for p in probs:
        q = (1.0 - p) / 2.0
        qs += [q, 1.0 - q]
    v = da.quantile(qs, dim=SAMPLE_DIMS)
    return {float(p): (v.isel(quantile=2 * i, drop=True), v.isel(quantile=2 * i + 1, drop=True))
            for i, p in enumerate(probs)}
