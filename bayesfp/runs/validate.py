"""Check a run table against the schema and bring it to canonical form.

``validate_runs`` collects every problem in a table before it raises, so one pass tells the user
all that is wrong. Diverged and failed runs are kept; ``ok_runs`` is the view fitting code uses.
"""

import functools
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bayesfp import dims
from bayesfp.errors import RunTableError
from bayesfp.runs import schema

# How many run ids a problem line names before it says "and K more".
MAX_NAMED = 5


@dataclass(frozen=True)
class RunTableReport:
    """What validation found in a run table that passed.

    Attributes
    ----------
    n_runs : int
        Rows in the table, whatever their status.
    counts : dict of str to int
        Runs per status, with every status in ``("ok", "diverged", "failed")`` as a key.
    diverged, failed : tuple of str
        The run_ids of diverged and of failed runs, in table order. They are kept in the table
        and left out of fits by ``ok_runs``.
    """

    n_runs: int
    counts: dict
    diverged: tuple
    failed: tuple

    @classmethod
    def of(cls, table):
        """Return the report of a table that passed validation (without validating it again).

        Parameters
        ----------
        table : pandas.DataFrame
            Output of :func:`validate_runs` (or rows of it), columns ``run_id`` and ``status``.
        """
        ids, statuses = list(table[schema.RUN_ID]), list(table[schema.STATUS])
        return cls(
            n_runs=len(statuses),
            counts={s: statuses.count(s) for s in schema.STATUSES},
            diverged=tuple(i for i, s in zip(ids, statuses) if s == schema.STATUS_DIVERGED),
            failed=tuple(i for i, s in zip(ids, statuses) if s == schema.STATUS_FAILED),
        )

    @property
    def n_ok(self):
        """int : Runs with status ``ok``, the ones fits use."""
        return self.counts[schema.STATUS_OK]

    @property
    def n_excluded(self):
        """int : Runs kept in the table but left out of fits (diverged or failed)."""
        return self.n_runs - self.n_ok

    def excluded_message(self):
        """Return one line saying which runs are kept but excluded from fits.

        Returns
        -------
        str
            For example ``"2 diverged runs, 1 failed run kept, excluded from fits"``, or
            ``"no diverged or failed runs"``.
        """
        parts = []
        for status in (schema.STATUS_DIVERGED, schema.STATUS_FAILED):
            k = self.counts[status]
            if k:
                parts.append(f"{k} {status} run{'s' if k != 1 else ''}")
        if not parts:
            return "no diverged or failed runs"
        return ", ".join(parts) + " kept, excluded from fits"


class _Problems:
    """Problem lines, each naming a column and the runs (or rows) at fault."""

    def __init__(self):
        self.lines = []

    def add(self, column, what, labels=()):
        line = f"column '{column}': {what}"
        if len(labels):
            line += f" in {_name_list(labels)}"
        self.lines.append(line)


def _name_list(labels):
    labels = [str(x) for x in labels]
    named = ", ".join(labels[:MAX_NAMED])
    if len(labels) > MAX_NAMED:
        named += f" and {len(labels) - MAX_NAMED} more"
    return named


def _text(value):
    """Return the text of one cell, or None when the cell is missing."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    return str(value).strip()


def _texts(series):
    return [_text(v) for v in series]


def _numbers(series):
    """Return (float array with NaN where missing or not a number, mask of cells not a number)."""
    missing = series.isna().to_numpy()
    values = pd.to_numeric(series, errors="coerce")
    values = np.asarray(values, dtype=float)
    bad = np.isnan(values) & ~missing
    return values, bad


def _check_int(df, column, labels, problems, minimum=None):
    """Check an integer column with no missing values; return its int64 values or None."""
    values, bad = _numbers(df[column])
    missing = df[column].isna().to_numpy()
    number = ~bad & ~missing
    infinite = number & ~np.isfinite(values)
    with np.errstate(invalid="ignore"):
        frac = number & ~infinite & (values != np.round(values))
        low = number & ~infinite & ~frac & (values < (minimum if minimum is not None else -np.inf))
        huge = number & ~infinite & (np.abs(values) > 2.0 ** 62)  # beyond int64
    word = "> 0" if minimum == 1 else f">= {minimum}"
    for mask, what in ((missing, "missing values"), (bad, "not a number"),
                       (infinite, "not finite"), (frac, "not an integer"),
                       (low, f"must be {word}"), (huge, "too large")):
        if mask.any():
            problems.add(column, what, labels[mask])
    if (missing | bad | infinite | frac | low | huge).any():
        return None
    return values.astype(np.int64)


def _check_positive(df, column, labels, problems):
    """Check a number column that must be finite and > 0; return float64 values or None."""
    values, bad = _numbers(df[column])
    missing = df[column].isna().to_numpy()
    if missing.any():
        problems.add(column, "missing values", labels[missing])
    if bad.any():
        problems.add(column, "not a number", labels[bad])
    with np.errstate(invalid="ignore"):
        nonpos = ~missing & ~bad & ~(values > 0)
    inf = ~missing & ~bad & np.isinf(values) & (values > 0)
    if nonpos.any():
        problems.add(column, "must be > 0", labels[nonpos])
    if inf.any():
        problems.add(column, "not finite", labels[inf])
    if missing.any() or bad.any() or nonpos.any() or inf.any():
        return None
    return values


def _parse_b(texts, labels, problems):
    """Parse ``B``: return (B strings, block ints or None, granularity words) or None."""
    b_out, blocks, grans = [], [], []
    missing, not_int, words = [], [], {}
    for label, t in zip(labels, texts):
        if t is None:
            missing.append(label)
            continue
        word = t.lower()
        if word in schema.B_WORDS:
            b_out.append(word)
            blocks.append(None)
            grans.append(word)
            continue
        try:
            x = float(word)
        except ValueError:
            words.setdefault(t, []).append(label)
            continue
        if not (math.isfinite(x) and x.is_integer() and x > 0):
            not_int.append(label)
            continue
        b_out.append(str(int(x)))
        blocks.append(int(x))
        grans.append(schema.GRANULARITY_BLOCK)
    if missing:
        problems.add(dims.B, "missing values", missing)
    if not_int:
        problems.add(dims.B, "bad block size (must be a positive integer)", not_int)
    for word, where in words.items():
        problems.add(
            dims.B,
            f"unknown granularity word '{word}' (use a positive block size, "
            f"{', '.join(schema.B_WORDS)})",
            where,
        )
    if missing or not_int or words:
        return None
    return b_out, blocks, grans


def _parse_operands(texts, labels, problems):
    """Parse ``operands``: return canonical strings or None."""
    out, missing, unknown = [], [], {}
    for label, t in zip(labels, texts):
        if t is None:
            missing.append(label)
            continue
        canonical, bad = schema.canonical_operands(t)
        if canonical is None:
            for name in bad:
                unknown.setdefault(name, []).append(label)
            continue
        out.append(canonical)
    if missing:
        problems.add(schema.OPERANDS, "missing values", missing)
    allowed = ", ".join(dims.OPERANDS)
    for name, where in unknown.items():
        problems.add(
            schema.OPERANDS,
            f"unknown operand name '{name}' (use '+'-joined names from {allowed}, or none)",
            where,
        )
    if missing or unknown:
        return None
    return out


def _check_choice(texts, column, allowed, labels, problems, required):
    """Check text cells against allowed words (lower case); return the lower-cased cells."""
    out, missing, unknown = [], [], {}
    for label, t in zip(labels, texts):
        if t is None:
            if required:
                missing.append(label)
            out.append(None)
            continue
        word = t.lower()
        if word not in allowed:
            unknown.setdefault(t, []).append(label)
        out.append(word)
    if missing:
        problems.add(column, "missing values", missing)
    for word, where in unknown.items():
        problems.add(column, f"unknown value '{word}' (allowed: {', '.join(allowed)})", where)
    return out


def _check_optional(df, column, kind, labels, problems):
    """Check an optional known column; return the cleaned Series or None."""
    if kind == "str":
        texts = _texts(df[column])
        if column in schema.ALLOWED:
            texts = _check_choice(texts, column, schema.ALLOWED[column], labels, problems, False)
        if column == "config":
            bad = []
            for label, t in zip(labels, texts):
                if t is None:
                    continue
                try:
                    json.loads(t)
                except ValueError:
                    bad.append(label)
            if bad:
                problems.add(column, "not valid JSON", bad)
        return pd.Series(texts, dtype="str")
    values, bad = _numbers(df[column])
    if bad.any():
        problems.add(column, "not a number", labels[bad])
        return None
    if kind == "float":
        return pd.Series(values, dtype="float64")
    assert kind == "int"
    present = ~np.isnan(values)
    with np.errstate(invalid="ignore"):
        frac = present & ~(np.isfinite(values) & (values == np.round(values)))
    if frac.any():
        problems.add(column, "not an integer", labels[frac])
        return None
    out = pd.Series(pd.array([int(v) if p else pd.NA for v, p in zip(values, present)],
                             dtype="Int64"))
    return out


def _row_labels(df):
    """Label each row by its run_id, or by "row k" (1-based) where the run_id is missing."""
    if schema.RUN_ID in df.columns:
        ids = _texts(df[schema.RUN_ID])
    else:
        ids = [None] * len(df)
    labels = [i if i is not None else f"row {k + 1}" for k, i in enumerate(ids)]
    return np.array(labels, dtype=object), ids


def _check_derived(df, clean, labels, problems):
    """A derived column given in the input must agree with the one validation computes."""
    for column in schema.DERIVED:
        if column not in df.columns or column not in clean:
            continue
        given = _texts(df[column])
        want = _texts(clean[column])
        if column == schema.QUANTIZED:
            given = [None if g is None else str(g.lower() in ("true", "1", "1.0")) for g in given]
        wrong = [lab for lab, g, w in zip(labels, given, want) if g != w]
        if wrong:
            rule = {
                dims.P: "1 + E + M",
                schema.BLOCK: "the block size in B",
                schema.GRANULARITY: "the granularity of B",
                schema.QUANTIZED: "operands != none",
            }[column]
            problems.add(column, f"disagrees with {rule}", wrong)


def _check_ids(df, column, labels, problems):
    """``run_id``: present on every row and unique; return the ids as text."""
    ids = _texts(df[column])
    missing = [f"row {k + 1}" for k, i in enumerate(ids) if i is None]
    if missing:
        problems.add(column, "missing values", missing)
    seen = {}
    for k, i in enumerate(ids):
        if i is not None:
            seen.setdefault(i, []).append(k + 1)
    dups = [f"'{i}' (rows {', '.join(map(str, rows))})" for i, rows in seen.items()
            if len(rows) > 1]
    if dups:
        problems.add(column, f"duplicated run_id {_name_list(dups)}")
    return ids


def _check_loss(df, column, labels, problems):
    """``loss``: a number where given (ok runs are checked against ``status`` afterwards)."""
    loss, bad = _numbers(df[column])
    if bad.any():
        problems.add(column, "not a number", labels[bad])
    return loss


# The check of each kind of required column (schema.REQUIRED_KINDS): it adds problem lines and
# returns the cleaned values, or None when the column cannot be used.
_CHECKS = {
    "id": _check_ids,
    "count": functools.partial(_check_int, minimum=1),
    "bits": functools.partial(_check_int, minimum=0),
    "int": _check_int,
    "positive": _check_positive,
    "loss": _check_loss,
    "status": lambda df, column, labels, problems: _check_choice(
        _texts(df[column]), column, schema.STATUSES, labels, problems, True),
    "block": lambda df, column, labels, problems: _parse_b(_texts(df[column]), labels, problems),
    "operands": lambda df, column, labels, problems: _parse_operands(
        _texts(df[column]), labels, problems),
}

# dtype of each kind of required column in a validated table.
_DTYPES = {"id": "str", "count": "int64", "bits": "int64", "int": "int64", "positive": "float64",
           "loss": "float64", "status": "str", "block": "str", "operands": "str"}


def _check_ok_losses(df, clean, labels, problems):
    """Runs with status ok need a finite loss > 0 (cells that are not numbers are said already)."""
    if clean.get(schema.STATUS) is None or clean.get(dims.LOSS) is None:
        return
    loss = clean[dims.LOSS]
    _, bad = _numbers(df[dims.LOSS])
    is_ok = np.array([s == schema.STATUS_OK for s in clean[schema.STATUS]])
    no_loss = is_ok & ~bad & ~np.isfinite(loss)
    if no_loss.any():
        problems.add(dims.LOSS, "missing (NaN) or infinite on ok runs", labels[no_loss])
    with np.errstate(invalid="ignore"):
        nonpos = is_ok & np.isfinite(loss) & (loss <= 0)
    if nonpos.any():
        problems.add(dims.LOSS, "must be > 0 (nats/token) on ok runs", labels[nonpos])


# Sane ranges of the numeric columns (inclusive): values outside are typing or unit mistakes
# (a loss in bits or percent, N in FLOPs), not runs. E8M23 is float32; a language model's loss
# above 50 nats/token is worse than guessing among 2^70 tokens.
BOUNDS = {dims.N: (1.0, 1e15, "non-embedding parameters"), dims.D: (1.0, 1e17, "tokens"),
          dims.E: (0, 8, "exponent bits"), dims.M: (0, 23, "mantissa bits"),
          dims.LOSS: (0.0, 50.0, "nats/token")}


def _check_bounds(clean, labels, problems):
    """Values outside :data:`BOUNDS` (missing losses of runs that did not finish are fine)."""
    for column, (lo, hi, unit) in BOUNDS.items():
        values = clean.get(column)
        if values is None:
            continue
        v = np.asarray(values, dtype=float)
        with np.errstate(invalid="ignore"):
            out = np.isfinite(v) & ((v < lo) | (v > hi))
        if out.any():
            problems.add(column, f"outside {lo:g} to {hi:g} {unit}", labels[out])


def _derive(clean, labels, problems):
    """Split B and operands into their derived columns, check they agree, and add P."""
    b, ops = clean.get(dims.B), clean.get(schema.OPERANDS)
    if b is not None and ops is not None:
        mismatch = [lab for lab, bb, oo in zip(labels, b[0], ops)
                    if (bb == schema.NONE) != (oo == schema.NONE)]
        if mismatch:
            problems.add(
                f"{dims.B}/{schema.OPERANDS}",
                "B is 'none' exactly when operands is 'none' (unquantized run); mismatch",
                mismatch,
            )
    if b is not None:
        clean[dims.B], blocks, clean[schema.GRANULARITY] = b
        clean[schema.BLOCK] = pd.array(blocks, dtype="Int64")
    if ops is not None:
        clean[schema.QUANTIZED] = np.array([o != schema.NONE for o in ops])
    if clean.get(dims.E) is not None and clean.get(dims.M) is not None:
        clean[dims.P] = 1 + clean[dims.E] + clean[dims.M]


def _name_formats(df, clean, optional, labels, problems):
    """Fill ``format`` where absent (:func:`schema.format_name`); one name, one (E, M)."""
    if any(clean.get(c) is None for c in (dims.E, dims.M, schema.QUANTIZED)):
        return
    given = optional.get(schema.FORMAT)
    if schema.FORMAT in df.columns and given is None:
        return
    default = [schema.format_name(int(e), int(m), bool(q)) for e, m, q in
               zip(clean[dims.E], clean[dims.M], clean[schema.QUANTIZED])]
    names = default if given is None else [d if pd.isna(g) else g for g, d in zip(given, default)]
    optional[schema.FORMAT] = pd.Series(names, dtype="str")
    em = {}
    for name, e, m, lab in zip(names, clean[dims.E], clean[dims.M], labels):
        em.setdefault(name, {}).setdefault(f"E{e}M{m}", []).append(lab)
    for name, pairs in em.items():
        if len(pairs) > 1:
            where = [lab for labs in pairs.values() for lab in labs]
            problems.add(schema.FORMAT,
                         f"'{name}' names more than one (E, M): {', '.join(pairs)}", where)


def validate_runs(df, *, source=None):
    """Check a run table and return it in canonical form.

    Each required column is checked by its kind in :data:`bayesfp.runs.schema.REQUIRED_KINDS`,
    each optional known column by its kind in :data:`bayesfp.runs.schema.OPTIONAL`; then the
    rules across columns (losses of ok runs, B against operands, format names, derived columns
    given in the input).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per training run, with the columns described in ``docs/runs.md``.
    source : str, optional
        Where the table came from, named in error messages.

    Returns
    -------
    df_clean : pandas.DataFrame
        A new frame with a RangeIndex: required columns normalised (``B`` and ``operands`` as
        canonical lower-case text, numbers as int64/float64), the derived columns ``P`` (bits),
        ``block`` (Int64, NA for granularity words), ``granularity`` and ``quantized`` added,
        ``format`` filled where absent, optional known columns typed, free columns untouched.
        Diverged and failed runs are kept.
    report : RunTableReport
        Counts by status and the ids of diverged and failed runs.

    Raises
    ------
    RunTableError
        Listing every problem found, one line each, naming the column and the runs.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"validate_runs needs a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise RunTableError("table has no runs", source)
    df = df.rename(columns=lambda c: c.strip() if isinstance(c, str) else c)
    df = df.reset_index(drop=True)
    problems = _Problems()
    labels, _ = _row_labels(df)
    clean = {}
    for column, kind in schema.REQUIRED_KINDS.items():
        if column in df.columns:
            clean[column] = _CHECKS[kind](df, column, labels, problems)
        else:
            problems.add(column, "missing required column")
    _check_ok_losses(df, clean, labels, problems)
    _check_bounds(clean, labels, problems)
    _derive(clean, labels, problems)
    optional = {}
    for column in df.columns:
        kind = schema.OPTIONAL.get(column)
        if kind is None and schema.is_ptq_column(column):
            kind = "float"
        if kind is not None:
            optional[column] = _check_optional(df, column, kind, labels, problems)
    _name_formats(df, clean, optional, labels, problems)
    _check_derived(df, clean, labels, problems)
    if problems.lines:
        raise RunTableError(problems.lines, source)

    out = {c: pd.Series(clean[c], dtype=_DTYPES[k]) for c, k in schema.REQUIRED_KINDS.items()}
    out[dims.P] = pd.Series(clean[dims.P], dtype="int64")
    out[schema.BLOCK] = pd.Series(clean[schema.BLOCK], dtype="Int64")
    out[schema.GRANULARITY] = pd.Series(clean[schema.GRANULARITY], dtype="str")
    out[schema.QUANTIZED] = pd.Series(clean[schema.QUANTIZED], dtype="bool")
    out.update(optional)
    for column in df.columns:
        if column not in out:
            out[column] = df[column]
    table = pd.DataFrame(out)
    table = table[schema.column_order(table.columns)]
    return table, RunTableReport.of(table)


def ok_runs(df):
    """Return the runs with status ``ok`` of a table, validating it first.

    Parameters
    ----------
    df : pandas.DataFrame
        Any run table.

    Returns
    -------
    pandas.DataFrame
        The validated rows with ``status == "ok"``, re-indexed from 0.

    Raises
    ------
    RunTableError
        If the table does not pass ``validate_runs``.
    """
    table, _ = validate_runs(df)
    return table[table[schema.STATUS] == schema.STATUS_OK].reset_index(drop=True)
