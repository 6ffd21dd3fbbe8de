"""Choose the runs of a table a fit uses: ``COLUMN=VALUE[,VALUE...]`` conditions (no I/O).

    where(df, ["group=core", "operands=w+w_bwd+x_bwd"])

Conditions are ANDed; the values of one condition are ORed. Values compare as text after
stripping, so ``B=128`` matches an integer or text column alike. Used by ``bayesfp fit --where``
and ``bayesfp pipeline --where``.
"""

import pandas as pd


def parse_condition(text: str) -> tuple[str, list[str]]:
    """``"col=a,b"`` -> ``("col", ["a", "b"])``; a clear ValueError otherwise."""
    col, sep, values = str(text).partition("=")
    col = col.strip()
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not col or not vals:
        raise ValueError(f"--where: expected COLUMN=VALUE[,VALUE...], got {text!r}")
    return col, vals


def where(df: pd.DataFrame, conditions) -> pd.DataFrame:
    """The rows of ``df`` meeting every condition, in their order, index kept.

    Raises
    ------
    ValueError
        On a malformed condition, a column the table lacks, or when no row is left.
    """
    keep = pd.Series(True, index=df.index)
    for text in conditions or ():
        col, vals = parse_condition(text)
        if col not in df.columns:
            raise ValueError(f"--where: the run table has no column {col!r} "
                             f"(columns: {', '.join(map(str, df.columns))})")
        cell = df[col].astype(object).where(df[col].notna(), "").astype(str).str.strip()
        hit = cell.isin(vals)
        if not hit.any():
            seen = sorted(cell.unique())[:12]
            raise ValueError(f"--where {text}: no run has {col} in {vals} "
                             f"(values: {', '.join(seen)})")
        keep &= hit
    if not keep.any():
        raise ValueError(f"--where: no run meets all of {list(conditions)}")
    return df[keep]
