"""Tables of derived quantities from point estimates (no printing, no I/O)."""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayesfp.laws.derived import best_split, critical_data_size


def dcrit_table(params: Mapping, N: Sequence[float], formats: Sequence[tuple[int, int]],
                log2B: float, law: str = "sun") -> pd.DataFrame:
    """D_crit (tokens) for each N (rows) and (E, M) format (columns)."""
    E, M = (np.array([f[i] for f in formats], dtype=float) for i in (0, 1))
    dc = critical_data_size(params, np.asarray(N, dtype=float)[:, None], E, M, log2B, law)
    return pd.DataFrame(dc, index=pd.Index(list(N), name="N"),
                        columns=[f"e{e}m{m}" for e, m in formats])


def split_table(params: Mapping, bits: Sequence[int], law: str = "sun") -> pd.DataFrame:
    """Best integer (E, M) split for each total bit width P, by direct evaluation."""
    rows = []
    for P in bits:
        e, m = best_split(params, P, law)
        rows.append({"P": P, "E": int(e), "M": int(m), "format": f"e{int(e)}m{int(m)}"})
    return pd.DataFrame(rows).set_index("P")


def point_derived(fit, table: pd.DataFrame) -> dict | None:
    """Derived quantities of a Sun-law point fit at the runs' most common block size.

    Parameters
    ----------
    fit : bayesfp.fit.PointFit
        A point fit of law ``sun`` or ``sun_sep``.
    table : pandas.DataFrame
        The validated run table it was fitted to.

    Returns
    -------
    dict or None
        ``log2B`` (float), ``dcrit`` (:func:`dcrit_table` at every N of the table and every
        quantized format, tokens) and ``best_split`` (:func:`split_table` for P = 4..12, 16);
        None for other laws.
    """
    if fit.law not in ("sun", "sun_sep"):
        return None
    quant = table[(table["operands"] != "none") & (table["status"] == "ok")]
    formats = sorted({(int(e), int(m)) for e, m in zip(quant["E"], quant["M"])})
    blocks = quant["B"][quant["B"].str.fullmatch(r"\d+")]
    log2B = float(np.log2(int(blocks.mode().iloc[0]))) if len(blocks) else 7.0
    return {"log2B": log2B,
            "dcrit": dcrit_table(fit.estimates, sorted(table["N"].unique()), formats, log2B,
                                 fit.law),
            "best_split": split_table(fit.estimates, [*range(4, 13), 16], fit.law)}


def point_fit_dict(fit, level: float, derived: dict | None = None, **about) -> dict:
    """A point fit as built-in types (the JSON of ``bayesfp fit --method point -o FIT.json``).

    Parameters
    ----------
    fit : bayesfp.fit.PointFit
    level : float
        Mass of the bootstrap intervals.
    derived : dict, optional
        Output of :func:`point_derived`.
    **about
        Added as they are (``runs_file``, ``n_boot``, ``seed``).
    """
    summary = fit.summary(level)
    out = {"law": fit.law, "method": "point", **about, "n_runs": fit.n_runs,
           "excluded": fit.excluded, "level": level, "estimates": fit.estimates,
           "fixed": fit.fixed,
           "intervals": {k: [float(r["lo"]), float(r["hi"])] for k, r in summary.iterrows()},
           "bootstrap": fit.boot.to_dict(orient="list"),
           "residual_sd": float(np.std(fit.residuals)), "derived": {}}
    if derived is not None:
        dc, sp = derived["dcrit"], derived["best_split"]
        out["derived"] = {
            "log2B": derived["log2B"],
            "dcrit": {c: dict(zip(map(float, dc.index), map(float, dc[c]))) for c in dc.columns},
            "best_split": {int(P): r["format"] for P, r in sp.iterrows()}}
    return out
