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

Every row of the table records the model it calibrates in the column ``model``
(:func:`settings_text` of :func:`model_settings`) and the runs it was computed on (``n_fit +
n_held``), so that a report can check that a table speaks for its fit
(:func:`read_calibration`, :func:`check_calibration`).
"""

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from bayesfp.errors import BayesfpInputError

LEVELS = (0.5, 0.9)
CUTS = ("top20_N", "top20_D", "top2_N")
# Likelihood terms as the command line names them, in its order (model attribute -> option).
TERMS = {"cell": "cell", "cell_d": "cell-d", "seed_effect": "seed", "sigma_d": "sigma-d",
         "discrepancy": "discrepancy"}
# Terms a model drops when its runs cannot identify them (recorded as ``dropped``).
DROPPED_TERMS = {"seed": "seed_effect", "cell": "cell"}
# Columns a calibration table must have to be shown in a report.
REQUIRED = ("cut", "n_fit", "n_held", "factor", "cov50", "cov90", "model")


def model_settings(info: Mapping) -> dict:
    """The options that define a fit's model, as opposed to its runs and sampler.

    Law, likelihood terms (as asked for: a term the runs could not identify, which the model
    dropped, counts as asked for), format effect, pooled coefficients with their column and the
    pooling, robust noise, noise groups, the effective log2 B of tensor-wise runs and the prior
    source. A calibration speaks for a fit when both have equal settings.

    Parameters
    ----------
    info : mapping
        A fit's record (:func:`bayesfp.bayes.io.fit_info`) or a model's ``config()``.

    Returns
    -------
    dict
        Keys ``law``, ``structure``, ``format_effect``, ``pool``, ``pooling``, ``robust``,
        ``sigma_by``, ``tensor_log2b``, ``prior``; values are text.
    """
    st = dict(info.get("structure") or {})
    asked = {k for k in TERMS if st.get(k)}
    asked |= {DROPPED_TERMS[d] for d in info.get("dropped") or [] if d in DROPPED_TERMS}
    terms = [TERMS[k] for k in TERMS if k in asked]
    if info.get("log2b_power"):
        terms.append("log2b-power")
    pool = {str(k): str(v) for k, v in (info.get("pool") or {}).items()}
    if not pool and info.get("pool_by"):
        pool = {str(c): str(info["pool_by"]) for c in info.get("pooled") or []}
    tl = (info.get("inputs_kw") or {}).get("tensor_log2b")
    return {"law": str(info["law"]), "structure": ",".join(terms) or "none",
            "format_effect": str(info.get("format_effect") or "parametric"),
            "pool": ",".join(f"{k}={v}" for k, v in sorted(pool.items())) or "none",
            "pooling": str(info.get("pooling") or "partial") if pool else "none",
            "robust": "yes" if info.get("robust") else "no",
            "sigma_by": str(info.get("sigma_by") or "none"),
            "tensor_log2b": "none" if tl is None else f"{float(tl):g}",
            "prior": str(info.get("prior_source") or "default")}


def model_kw_of(info: Mapping) -> dict:
    """Keywords of :func:`make_model` that rebuild a fit's model from its record
    (:func:`bayesfp.bayes.io.fit_info`), for refits of the same model on other runs.

    The prior is the fit's prior source (``default`` or ``published``; priors taken from a
    previous fit become ``default``)."""
    prior = info.get("prior_source") if info.get("prior_source") in ("default", "published") \
        else "default"
    kw = {"pool_by": info.get("pool_by"), "pooling": info.get("pooling") or "partial",
          "robust": info.get("robust", False), "sigma_by": info.get("sigma_by"),
          "inputs_kw": info.get("inputs_kw") or {}, "prior": prior}
    if info.get("centred") is not None:
        kw["centred"] = bool(info["centred"])
    if info.get("structure"):  # a structured fit: the same structure
        st = dict(info["structure"])
        kw.update({k: bool(v) for k, v in st.items() if k != "centred"},
                  centred=bool(st.get("centred", False)), pool=info.get("pool") or {},
                  format_effect=info.get("format_effect", "parametric"),
                  log2b_power=bool(info.get("log2b_power", False)))
        kw.pop("pool_by")
    return kw


def settings_text(settings: Mapping) -> str:
    """Model settings as one line: ``law=sun; structure=cell,seed; ...``."""
    return "; ".join(f"{k}={v}" for k, v in settings.items())


def parse_settings(text: str) -> dict:
    """The settings of :func:`settings_text` back as a dict."""
    out = {}
    for part in str(text).split(";"):
        if "=" in part:
            k, v = part.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def _read_markdown(path: Path) -> pd.DataFrame:
    """A GitHub Markdown table (as :func:`markdown_table` writes it) as a DataFrame of text."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip().startswith("|")]
    rows = [r for r in rows if not all(set(c) <= set("-: ") for c in r)]
    if len(rows) < 2 or any(len(r) != len(rows[0]) for r in rows):
        raise BayesfpInputError(f"calibration: {path} is not a Markdown table of "
                                "bayesfp calibrate")
    return pd.DataFrame(rows[1:], columns=rows[0])


def read_calibration(path) -> pd.DataFrame:
    """Read a table written by ``bayesfp calibrate -o`` (``.csv`` or ``.md``) and check it.

    ``path`` may also be the DataFrame of :func:`calibrate` (checked alike).

    Returns
    -------
    pandas.DataFrame
        One row per cut with the columns of :func:`calibrate` (numbers as numbers, ``gate`` as
        bool) and ``model``.

    Raises
    ------
    BayesfpInputError
        For a table that is not one of ``bayesfp calibrate``: not CSV or Markdown, missing
        columns, unknown cuts, coverages outside [0, 1], rows of different models.
    """
    if isinstance(path, pd.DataFrame):
        df, path = path.astype(str), "the calibration table"
    elif Path(path).suffix == ".md":
        path = Path(path)
        df = _read_markdown(path)
    else:  # bayesfp calibrate -o writes CSV to any other name
        path = Path(path)
        try:
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise BayesfpInputError(f"calibration: cannot read {path} as CSV: "
                                    f"{str(exc).splitlines()[0]}") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        extra = (" (no model settings: written before bayesfp calibrate recorded them; "
                 "rerun it)" if missing == ["model"] else "")
        raise BayesfpInputError(f"calibration: {path} lacks the columns {missing}{extra}")
    if df.empty:
        raise BayesfpInputError(f"calibration: {path} has no cut")
    unknown = sorted(set(df["cut"]) - set(CUTS))
    if unknown:
        raise BayesfpInputError(f"calibration: {path} has unknown cuts {unknown} (bayesfp "
                                f"calibrate writes {', '.join(CUTS)})")
    for c in ("n_fit", "n_held", "cells_held", "factor", "cov50", "cov90", "rhat_max",
              "ess_bulk_min", "divergences", "seconds"):
        if c in df.columns:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    bad = [c for c in ("cov50", "cov90") if not df[c].between(0.0, 1.0).all()]
    if bad or not (df["n_held"] > 0).all() or not (df["factor"] > 0).all():
        raise BayesfpInputError(f"calibration: {path} has coverages outside 0 to 1 or no "
                                "held-out runs in a cut")
    if "gate" in df.columns:
        df["gate"] = df["gate"].astype(str).str.lower().isin(("true", "1", "yes"))
    if df["model"].nunique() != 1:
        raise BayesfpInputError(f"calibration: {path} mixes the cuts of different models")
    return df.reset_index(drop=True)


def check_calibration(table: pd.DataFrame, info: Mapping, source: str = "table") -> None:
    """Refuse a calibration table that was not made with a fit's model and runs.

    Raises
    ------
    BayesfpInputError
        One line naming the settings that differ, or the run counts.
    """
    ours = model_settings(info)
    theirs = parse_settings(table["model"].iloc[0])
    diff = [k for k in ours if theirs.get(k) != ours[k]]
    if diff:
        raise BayesfpInputError(
            f"calibration: {source} was made with "
            + ", ".join(f"{k}={theirs.get(k, '?')}" for k in diff) + "; the fit has "
            + ", ".join(f"{k}={ours[k]}" for k in diff))
    n = (table["n_fit"] + table["n_held"]).astype(int)
    if "n_runs" in info and not (n == int(info["n_runs"])).all():
        raise BayesfpInputError(
            f"calibration: {source} was computed on {int(n.iloc[0])} runs, the fit on "
            f"{int(info['n_runs'])} (another run table or --where)")


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
    if any(k in kw for k in (*STRUCTURE, "pool", "format_effect", "log2b_power")):
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
        ``ess_bulk_min``, ``divergences``, ``seconds``, ``model`` (the model's settings,
        :func:`settings_text` of :func:`model_settings`) and ``in90_<name>`` per truth entry.
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
        row["model"] = settings_text(model_settings(model.config()))
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
