"""Calibration harness: refit on held-out cuts of a run table and measure predictive coverage.

Each *cut* holds out every run at the largest values of one input, never a single run:

- ``top20_N``: the largest 20% of the distinct N values (at least one value);
- ``top20_D``: the largest 20% of the distinct D values (at least one value);
- ``top2_N``: the two largest N values.

The model is refitted on the remaining runs and predicts the held-out ones (noise included); the
fraction of held-out losses inside the central 50% and 90% predictive intervals is the coverage.
A calibrated model covers about 50% and 90%. Each cut's *extrapolation factor* is the largest
held-out value of the cut's input over the largest fitted one (2.0: the predictions reach twice
the largest fitted N or D).
"""

import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayesfp.errors import BayesfpInputError

LEVELS = (0.5, 0.9)
CUTS = ("top20_N", "top20_D", "top2_N")


def cut_mask(runs: pd.DataFrame, cut: str) -> np.ndarray:
    """Boolean mask (shape (run,)) of the runs a cut holds out."""
    if cut not in CUTS:
        raise BayesfpInputError(f"cut: unknown cut {cut!r} (choose from {', '.join(CUTS)})")
    col = cut.split("_")[1]
    values = np.sort(runs[col].astype(float).unique())[::-1]
    k = 2 if cut == "top2_N" else max(1, int(round(0.2 * len(values))))
    if len(values) - k < 3:
        raise BayesfpInputError(f"cut {cut}: {len(values)} distinct {col} values leave fewer "
                                "than 3 to fit")
    return runs[col].astype(float).isin(values[:k]).to_numpy()


def extrapolation_factor(runs: pd.DataFrame, cut: str) -> float:
    """Largest held-out value of the cut's input over the largest fitted one."""
    col = cut.split("_")[1]
    held = cut_mask(runs, cut)
    v = runs[col].astype(float).to_numpy()
    return float(v[held].max() / v[~held].max())


def interval_coverage(pred: np.ndarray, observed: np.ndarray,
                      levels: Sequence[float] = LEVELS) -> dict:
    """Fraction of observed values inside the central predictive interval at each level.

    Parameters
    ----------
    pred : numpy.ndarray, shape (draw, run)
        Predictive draws (any monotone scale of the observed values, e.g. log-loss).
    observed : numpy.ndarray, shape (run,)
    """
    out = {}
    for lv in levels:
        q = (1.0 - lv) / 2.0
        lo, hi = np.quantile(pred, [q, 1.0 - q], axis=0)
        out[float(lv)] = float(np.mean((observed >= lo) & (observed <= hi)))
    return out


def _usable(runs: pd.DataFrame, model) -> np.ndarray:
    from bayesfp.laws.inputs import unplaced_runs

    loss = pd.to_numeric(runs["loss"], errors="coerce").to_numpy()
    status = runs["status"].astype(str) if "status" in runs else pd.Series("ok", index=runs.index)
    tl = dict(model.inputs_kw).get("tensor_log2b")
    return ((status == "ok").to_numpy() & np.isfinite(loss) & (loss > 0)
            & ~unplaced_runs(runs, tl))


def make_model(runs: pd.DataFrame, law: str = "sun", model_kw: Mapping | None = None,
               sampler: Mapping | None = None):
    """A plain model (:func:`bayesfp.bayes.models.model_for`) when ``model_kw`` holds only
    LawModel keywords, else a structured one (:func:`bayesfp.bayes.structured.structured_model`)."""
    from bayesfp.bayes.models import model_for
    from bayesfp.bayes.structured import STRUCTURE, structured_model

    kw = dict(model_kw or {})
    if any(k in kw for k in (*STRUCTURE, "pool")):
        return structured_model(law, runs, sampler=sampler, **kw)
    return model_for(law, runs, sampler=sampler, **kw)


def predict_log_loss(model, fit, runs: pd.DataFrame, seed: int = 0) -> np.ndarray:
    """Predictive log-loss draws, shape (draw, run), of any model of this package."""
    if hasattr(model, "predict") and hasattr(model, "cells"):
        return model.predict(fit, runs, noise=True, seed=seed)
    from bayesfp.bayes.derived import predict_loss

    pred = predict_loss(fit, runs, noise=True, seed=seed)
    a = np.log(np.asarray(pred.transpose("chain", "draw", "run").values, dtype=float))
    return a.reshape(-1, a.shape[-1])


def calibrate(runs: pd.DataFrame, law: str = "sun", model_kw: Mapping | None = None,
              cuts: Sequence[str] = CUTS, sampler: Mapping | None = None,
              levels: Sequence[float] = LEVELS, seed: int = 0, y: Mapping | None = None,
              models: dict | None = None, truth: Mapping | None = None) -> pd.DataFrame:
    """Refit on each cut and report the predictive coverage of the held-out runs.

    Parameters
    ----------
    runs : pandas.DataFrame
        Validated run table.
    law : str
        Law to fit.
    model_kw : mapping, optional
        Model keywords (``pool_by``, ``robust``, or structure options ``cell``, ``seed_effect``,
        ``sigma_d``, ``discrepancy``, ``pool``).
    cuts : sequence of str
        Cuts to run (:data:`CUTS`).
    sampler : mapping, optional
        Sampler settings (``draws``, ``tune``, ``chains``, ``seed``).
    levels : sequence of float
        Interval levels.
    seed : int
        Seed of the predictive draws.
    y : mapping, optional
        Replacement losses: ``loss`` column values for ``runs`` (for repeated simulated data
        sets on one grid: the compiled models in ``models`` are reused).
    models : dict, optional
        Cache of built models per cut (filled in and reused across calls).
    truth : mapping, optional
        ``{name: (function(fit) -> draws array, true value)}``: also report whether each true
        value lies in the central interval at each level.

    Returns
    -------
    pandas.DataFrame
        One row per cut: ``cut``, ``n_fit``, ``n_held``, ``cells_held`` (distinct (N, D) among
        the held-out runs: the runs of one cell share its deviation from the law, so coverage
        varies in steps of about one cell's runs), ``factor`` (extrapolation factor),
        ``cov50``, ``cov90`` (held-out coverage at the levels), ``gate``, ``rhat_max``,
        ``ess_bulk_min``, ``divergences``, ``seconds``, and ``in90_<name>`` per truth entry.
    """
    from bayesfp.bayes.io import fit_info

    runs = runs.reset_index(drop=True)
    if y is not None:
        runs = runs.assign(loss=np.asarray(y, dtype=float))
    models = {} if models is None else models
    rows = []
    for cut in cuts:
        held = cut_mask(runs, cut)
        train, test = runs[~held], runs[held]
        t0 = time.perf_counter()
        model = models.get(cut)
        if model is None:
            model = make_model(train, law, model_kw, sampler)
            models[cut] = model
            fit = model.fit()
        else:
            fit = model.fit(y=np.log(train["loss"].to_numpy(float)[model.in_fit]))
        secs = time.perf_counter() - t0
        test = test[_usable(test, model)]
        pred = predict_log_loss(model, fit, test, seed=seed)
        cov = interval_coverage(pred, np.log(test["loss"].to_numpy(float)), levels)
        gate = fit_info(fit)["gate"]
        n_cells = len(set(zip(test["N"].astype(float), test["D"].astype(float), strict=True)))
        row = {"cut": cut, "n_fit": len(model.ok), "n_held": len(test), "cells_held": n_cells,
               "factor": extrapolation_factor(runs, cut)}
        row.update({f"cov{int(round(100 * lv))}": c for lv, c in cov.items()})
        row.update({"gate": bool(gate["passed"]), "rhat_max": gate["rhat_max"],
                    "ess_bulk_min": gate["ess_bulk_min"],
                    "divergences": int(fit["sample_stats"]["diverging"].sum()),
                    "seconds": secs})
        for name, (fn, true) in (truth or {}).items():
            d = np.asarray(fn(fit), dtype=float).ravel()
            for lv in levels:
                q = (1.0 - lv) / 2.0
                lo, hi = np.quantile(d, [q, 1.0 - q])
                row[f"in{int(round(100 * lv))}_{name}"] = bool(lo <= true <= hi)
        rows.append(row)
    return pd.DataFrame(rows)


def markdown_table(df: pd.DataFrame, columns: Sequence[str] | None = None,
                   digits: int = 3) -> str:
    """A results table as GitHub Markdown."""
    cols = list(columns or df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df[cols].iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, (float, np.floating)):
                cells.append(f"{v:.{digits}g}" if abs(v) >= 1e4 or v != round(v, digits)
                             else f"{v:.{digits}f}".rstrip("0").rstrip("."))
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
