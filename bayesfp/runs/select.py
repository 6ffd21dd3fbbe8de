"""Choose the runs of a table a fit uses (no I/O).

:func:`where` keeps the runs meeting ``COLUMN=VALUE[,VALUE...]`` conditions (``bayesfp fit
--where``, ``bayesfp pipeline --where``)::

    where(df, ["group=core", "operands=w+w_bwd+x_bwd"])

Conditions are ANDed; the values of one condition are ORed. Values compare as text after
stripping, so ``B=128`` matches an integer or text column alike.

:func:`fit_selection` is the one rule of which runs enter a fit: status ``ok``, a finite positive
loss, and a block size the law can place.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesfp import dims
from bayesfp.errors import BayesfpInputError
from bayesfp.laws.inputs import TENSOR_UNPLACED, unplaced_runs
from bayesfp.runs import schema

# Why an ok run whose loss is missing, infinite or not positive is left out of a fit.
NO_FINITE_LOSS = "no finite loss"


def parse_condition(text: str) -> tuple[str, list[str]]:
    """``"col=a,b"`` -> ``("col", ["a", "b"])``; a BayesfpInputError otherwise."""
    col, sep, values = str(text).partition("=")
    col = col.strip()
    vals = [v.strip() for v in values.split(",") if v.strip()]
    if not sep or not col or not vals:
        raise BayesfpInputError(f"--where: expected COLUMN=VALUE[,VALUE...], got {text!r}")
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
            raise BayesfpInputError(f"--where: the run table has no column {col!r} "
                                    f"(columns: {', '.join(map(str, df.columns))})")
        cell = df[col].astype(object).where(df[col].notna(), "").astype(str).str.strip()
        hit = cell.isin(vals)
        if not hit.any():
            seen = sorted(cell.unique())[:12]
            raise BayesfpInputError(f"--where {text}: no run has {col} in {vals} "
                                    f"(values: {', '.join(seen)})")
        keep &= hit
    if not keep.any():
        raise BayesfpInputError(f"--where: no run meets all of {list(conditions)}")
    return df[keep]


@dataclass(frozen=True)
class FitSelection:
    """Which runs of a table a fit uses, and why the others are left out.

    Attributes
    ----------
    in_fit : numpy.ndarray of bool, shape (run,)
        Status ``ok``, a finite positive loss, and a block size the law can place.
    usable : numpy.ndarray of bool, shape (run,)
        Status ``ok`` and a finite positive loss (``in_fit`` plus the unplaced runs).
    reasons : pandas.Series of str
        Why each run is left out: its status (``diverged``, ``failed``), ``no finite loss`` or
        :data:`bayesfp.laws.inputs.TENSOR_UNPLACED`; ``""`` for runs in the fit. Same index as
        the table.
    """

    in_fit: np.ndarray
    usable: np.ndarray
    reasons: pd.Series

    @property
    def unplaced(self) -> np.ndarray:
        """numpy.ndarray of bool : Usable runs the law cannot place on its block-size axis."""
        return self.usable & ~self.in_fit

    @property
    def excluded(self) -> dict:
        """dict of str to int : Runs left out, counted by reason."""
        left = self.reasons[~self.in_fit]
        return {str(k): int(v) for k, v in left.value_counts(sort=False).items()}


def fit_selection(df: pd.DataFrame, tensor_log2b: float | None = None) -> FitSelection:
    """The runs a fit uses: status ``ok``, a finite positive loss, not tensor-wise unplaced.

    Parameters
    ----------
    df : pandas.DataFrame
        Run table (columns ``status``, ``loss``, ``B``, ``operands``); a table without
        ``status`` counts every run as ``ok``.
    tensor_log2b : float, optional
        Effective log2(B) of tensor-wise scaling; without it, quantized tensor-wise runs cannot
        be placed (:func:`bayesfp.laws.inputs.unplaced_runs`).

    Returns
    -------
    FitSelection
    """
    status = (df[schema.STATUS].astype(str) if schema.STATUS in df
              else pd.Series(schema.STATUS_OK, index=df.index))
    loss = pd.to_numeric(df[dims.LOSS], errors="coerce").to_numpy(dtype=float)
    ok = (status == schema.STATUS_OK).to_numpy()
    with np.errstate(invalid="ignore"):
        usable = ok & np.isfinite(loss) & (loss > 0)
    unplaced = usable & unplaced_runs(df, tensor_log2b)
    reasons = status.where(~ok, NO_FINITE_LOSS).where(~usable, "")
    reasons = reasons.where(~unplaced, TENSOR_UNPLACED)
    return FitSelection(in_fit=usable & ~unplaced, usable=usable, reasons=reasons)
