"""Within-range checks: does the posterior agree with what the runs show inside their own range?

Two posterior predictive checks on the law's mean loss (no noise), each comparing a simple raw
contrast of the runs with the same contrast under every posterior draw:

- :func:`d_slope_check`: per series of runs that differ only in D (same N, format, block size,
  operands), the sign of the loss change between consecutive D values. A posterior that puts the
  critical data size inside a range where the observed loss falls predicts a rise there; such
  steps are flagged.
- :func:`paired_contrast_check`: runs paired on everything but the format (same N, D, B,
  operands, seed) give a raw loss difference between two formats, or between a format and its
  BF16 baseline (the paired penalty); the posterior's difference should cover it.

Both take the mean loss draws of the runs, shape (draw, run), so they work with any model;
:func:`law_mean_draws` gives them for a fit (the law alone, without cell or seed effects) and
:func:`within_range` runs both on a fit's own runs (stored by
:func:`bayesfp.pipeline.fit_bayes` in the fit's record as ``within_range``).
"""

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

SERIES_KEYS = ("N", "E", "M", "B", "operands")
PAIR_KEYS = ("N", "D", "B", "operands", "seed")


def _key(df: pd.DataFrame, cols: Sequence[str]) -> pd.Series:
    """The columns' values joined by ``|``, one string per row."""
    parts = [df[c].astype(str) for c in cols]
    out = parts[0]
    for p in parts[1:]:
        out = out + "|" + p
    return out


def d_slope_check(runs: pd.DataFrame, mean_draws: np.ndarray, noise_sd: float | None = None,
                  p_flag: float = 0.5) -> pd.DataFrame:
    """Sign of the loss change between consecutive D values of each (N, format) series.

    Parameters
    ----------
    runs : pandas.DataFrame, shape (run, ...)
        Runs with N, D, E, M, B, operands and loss (nats/token).
    mean_draws : numpy.ndarray, shape (draw, run)
        Posterior draws of each run's mean loss (nats/token).
    noise_sd : float, optional
        A step counts as an observed fall only when the mean loss drops by more than this
        (nats/token); default 0 (any drop).
    p_flag : float
        Flag a step whose loss falls in the data when the posterior probability of a rise
        exceeds this.

    Returns
    -------
    pandas.DataFrame
        One row per step: the series keys, ``D_from``, ``D_to`` (tokens), ``observed`` (change of
        the mean observed loss over the series' runs at each D, nats/token), ``model_median``
        (posterior median of the same change), ``p_rise`` (posterior probability that the mean
        loss rises) and ``flagged``.
    """
    runs = runs.reset_index(drop=True)
    mean_draws = np.asarray(mean_draws, dtype=float)
    if mean_draws.shape[1] != len(runs):
        raise ValueError(f"mean_draws: expected {len(runs)} runs, got {mean_draws.shape[1]}")
    thr = 0.0 if noise_sd is None else float(noise_sd)
    series = _key(runs, SERIES_KEYS)
    loss = runs["loss"].to_numpy(dtype=float)
    dvals = runs["D"].to_numpy(dtype=float)
    rows = []
    for key, idx in runs.groupby(series).groups.items():
        idx = np.asarray(idx)
        ds = np.unique(dvals[idx])
        if len(ds) < 2:
            continue
        by_d = {d: idx[dvals[idx] == d] for d in ds}
        for a, b in zip(ds[:-1], ds[1:], strict=True):
            obs = float(loss[by_d[b]].mean() - loss[by_d[a]].mean())
            mod = mean_draws[:, by_d[b]].mean(1) - mean_draws[:, by_d[a]].mean(1)
            p_rise = float(np.mean(mod > 0))
            row = dict(zip(SERIES_KEYS, key.split("|"), strict=True))
            row.update(D_from=a, D_to=b, observed=obs, model_median=float(np.median(mod)),
                       p_rise=p_rise, flagged=bool(obs < -thr and p_rise > p_flag))
            rows.append(row)
    return pd.DataFrame(rows)


def paired_contrast_check(runs: pd.DataFrame, mean_draws: np.ndarray, a: tuple[int, int],
                          b: tuple[int, int] | None = None, level: float = 0.9,
                          keys: Sequence[str] = PAIR_KEYS) -> dict:
    """Paired loss difference of format ``a`` minus format ``b`` (or minus the BF16 baseline).

    Runs of ``a`` and ``b`` are paired when they agree on ``keys`` (N, D, B, operands, seed);
    with ``b=None`` each quantized run of ``a`` is paired with the unquantized run (operands
    ``none``) of the same N, D and seed: the paired penalty.

    Parameters
    ----------
    runs : pandas.DataFrame, shape (run, ...)
    mean_draws : numpy.ndarray, shape (draw, run)
        Posterior draws of each run's mean loss (nats/token).
    a, b : (E, M)
        Formats.
    level : float
        Level of the posterior interval of the mean difference.

    Returns
    -------
    dict
        ``pairs`` (number of pairs), ``observed`` (mean paired difference, nats/token),
        ``a_wins`` (fraction of pairs where ``a`` has the lower loss), ``model_median``,
        ``model_lo``, ``model_hi`` (posterior of the mean difference over the same pairs),
        ``p_a_better`` (posterior probability that the mean difference is negative) and
        ``covered`` (observed inside the interval; None without pairs).
    """
    runs = runs.reset_index(drop=True)
    draws = np.asarray(mean_draws, dtype=float)
    is_a = (runs["E"].astype(int) == a[0]) & (runs["M"].astype(int) == a[1])
    if b is None:
        is_a &= runs["operands"].astype(str) != "none"
        is_b = runs["operands"].astype(str) == "none"
        ka = _key(runs, ("N", "D", "seed"))
        kb = ka
    else:
        is_b = (runs["E"].astype(int) == b[0]) & (runs["M"].astype(int) == b[1])
        ka = kb = _key(runs, keys)
    lookup = {}
    for i in np.flatnonzero(is_b.to_numpy()):
        lookup.setdefault(kb.iloc[i], i)
    pa, pb = [], []
    for i in np.flatnonzero(is_a.to_numpy()):
        j = lookup.get(ka.iloc[i])
        if j is not None:
            pa.append(i)
            pb.append(j)
    out = {"pairs": len(pa)}
    if not pa:
        return out | {"observed": np.nan, "a_wins": np.nan, "model_median": np.nan,
                      "model_lo": np.nan, "model_hi": np.nan, "p_a_better": np.nan,
                      "covered": None}
    loss = runs["loss"].to_numpy(dtype=float)
    diff = loss[pa] - loss[pb]
    mod = (draws[:, pa] - draws[:, pb]).mean(1)
    q = (1.0 - level) / 2.0
    lo, hi = np.quantile(mod, [q, 1.0 - q])
    obs = float(diff.mean())
    return out | {"observed": obs, "a_wins": float(np.mean(diff < 0)),
                  "model_median": float(np.median(mod)), "model_lo": float(lo),
                  "model_hi": float(hi), "p_a_better": float(np.mean(mod < 0)),
                  "covered": bool(lo <= obs <= hi)}


def law_mean_draws(tree, runs: pd.DataFrame) -> np.ndarray:
    """The law's mean loss (nats/token) of runs under each posterior draw, shape (draw, run):
    the law with its pooled and format terms, without cell, seed or discrepancy terms."""
    from bayesfp.bayes.derived import predict_loss
    from bayesfp.bayes.io import fit_info
    from bayesfp.bayes.terms import predict_log_loss

    info = fit_info(tree)
    if info.get("structure"):
        return np.exp(predict_log_loss(tree["posterior"].to_dataset(), info, runs, noise=False,
                                       structure=False))
    pred = predict_loss(tree, runs, noise=False)
    a = np.asarray(pred.transpose("chain", "draw", "run").values, dtype=float)
    return a.reshape(-1, a.shape[-1])


def _thinned(tree, max_draws: int):
    """The fit with every k-th posterior draw, at most about ``max_draws`` in all (the fit
    itself when it has no more; a tree of a fit, or None for a stand-in law in tests)."""
    if tree is None or "posterior" not in getattr(tree, "children", {}):
        return tree
    post = tree["posterior"].to_dataset()
    step = max(1, post.sizes["chain"] * post.sizes["draw"] // max_draws)
    if step == 1:
        return tree
    out = tree.copy()
    out["posterior"] = type(tree)(post.isel(draw=slice(None, None, step)))
    return out


def minimum_inside_check(tree, steps: pd.DataFrame, runs: pd.DataFrame, grid: int = 9,
                         p_flag: float = 0.5, max_draws: int = 2000) -> pd.DataFrame:
    """Where the law's loss has its minimum in D (the critical data size) inside a step over
    which the runs' loss falls.

    A falling step (``observed < 0`` in :func:`d_slope_check`) can still hold the law's minimum:
    the law may fall to it and rise a little before the step's end. For each falling step of a
    quantized series the law's mean loss is evaluated at ``grid`` log-spaced D from ``D_from`` to
    ``D_to`` (the series' own N, format, block and operands); a draw places its minimum inside
    the step when its lowest loss on that grid is at neither end (a draw whose loss rises over
    the whole step is :func:`d_slope_check`'s to flag).

    Returns
    -------
    pandas.DataFrame
        One row per falling quantized step: the series keys, ``D_from``, ``D_to``, ``observed``,
        ``p_inside`` (posterior probability that the minimum lies inside) and ``flagged``
        (``p_inside > p_flag``).
    """
    if steps.empty:
        return steps.assign(p_inside=[], flagged=[])
    falling = steps[(steps["observed"] < 0) & (steps["operands"].astype(str) != "none")]
    if falling.empty:
        return falling.assign(p_inside=[], flagged=[])
    first = runs.groupby(_key(runs, SERIES_KEYS)).head(1)
    base = first.set_index(_key(first, SERIES_KEYS))
    rows = []
    for _, st in falling.iterrows():
        ref = base.loc["|".join(str(st[k]) for k in SERIES_KEYS)]
        for d in np.geomspace(float(st["D_from"]), float(st["D_to"]), grid):
            rows.append({**ref.to_dict(), "D": d})
    grid_runs = pd.DataFrame(rows).reset_index(drop=True)
    mean = law_mean_draws(_thinned(tree, max_draws), grid_runs)
    mean = mean.reshape(len(mean), len(falling), grid)
    lowest = mean.argmin(axis=2)  # (draw, step)
    p_inside = ((lowest > 0) & (lowest < grid - 1)).mean(axis=0)
    out = falling.reset_index(drop=True).copy()
    out["p_inside"] = p_inside
    out["flagged"] = p_inside > p_flag
    return out


def within_range(tree, p_confident: float = 0.6) -> dict:
    """Both within-range checks of a fit on its own fitted runs.

    Returns
    -------
    dict
        ``slope_steps`` and ``slope_flagged`` (:func:`d_slope_check` steps and those flagged),
        ``flagged_steps`` (their rows as dicts), ``pairs`` (one entry per two formats of the same
        total bits with paired runs: ``a``, ``b``, ``pairs``, ``observed``, ``a_wins``,
        ``p_a_better``, ``disagrees``: the data favour one format in most pairs and on average
        while the posterior favours the other with probability above ``p_confident``),
        ``minimum_steps`` and ``minimum_inside`` (:func:`minimum_inside_check`: falling steps of
        quantized series checked, and the rows of those where the posterior places the law's
        minimum in D inside the step with probability above 0.5) and ``passed`` (no flagged step,
        no disagreement, no minimum inside a falling step).
    """
    from bayesfp.bayes.io import fit_table

    runs = fit_table(tree, fitted_only=True)
    mean = law_mean_draws(tree, runs)
    steps = d_slope_check(runs, mean)
    quant = runs[runs["operands"].astype(str) != "none"]
    fmts = sorted({(int(e), int(m)) for e, m in zip(quant["E"], quant["M"], strict=True)})
    pairs = []
    for i, a in enumerate(fmts):
        for b in fmts[i + 1:]:
            if sum(a) != sum(b):
                continue
            r = paired_contrast_check(runs, mean, a, b)
            if r["pairs"] == 0:
                continue
            data_a = r["observed"] < 0 and r["a_wins"] > 0.5
            data_b = r["observed"] > 0 and r["a_wins"] < 0.5
            dis = bool((data_a and r["p_a_better"] < 1 - p_confident)
                       or (data_b and r["p_a_better"] > p_confident))
            pairs.append({"a": f"E{a[0]}M{a[1]}", "b": f"E{b[0]}M{b[1]}", "pairs": r["pairs"],
                          "observed": r["observed"], "a_wins": r["a_wins"],
                          "p_a_better": r["p_a_better"], "disagrees": dis})
    flagged = steps[steps["flagged"]] if len(steps) else steps
    minimum = minimum_inside_check(tree, steps, runs)
    inside = minimum[minimum["flagged"]] if len(minimum) else minimum
    return {"slope_steps": int(len(steps)), "slope_flagged": int(len(flagged)),
            "flagged_steps": json.loads(flagged.to_json(orient="records")) if len(flagged)
            else [], "pairs": pairs,
            "minimum_steps": int(len(minimum)),
            "minimum_inside": json.loads(inside.to_json(orient="records")) if len(inside)
            else [],
            "passed": bool(len(flagged) == 0 and len(inside) == 0
                           and not any(p["disagrees"] for p in pairs))}
