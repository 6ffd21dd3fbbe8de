"""Read and write run tables as CSV, Parquet or JSONL (one JSON record per line).

The training side appends one JSONL record per finished run; people bring CSV; Parquet keeps
types exactly. All three read back to the same validated frame.
"""

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bayesfp.errors import RunTableError
from bayesfp.runs import schema
from bayesfp.runs.validate import validate_runs

SUFFIXES = (".csv", ".parquet", ".jsonl")


def _suffix(path):
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        shown = suffix or "no extension"
        raise RunTableError(
            f"unknown file extension '{shown}' (use {', '.join(SUFFIXES)})", path
        )
    return suffix


def _read_jsonl(path):
    records = []
    with open(path, encoding="utf-8") as f:
        for k, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise RunTableError(f"line {k} is not valid JSON ({exc.msg})", path) from None
            if not isinstance(record, dict):
                raise RunTableError(f"line {k} is not a JSON object", path)
            records.append(record)
    return pd.DataFrame.from_records(records)


def _read_raw(path, suffix):
    if suffix == ".csv":
        text = {c: "str" for c in schema.TEXT_COLUMNS}
        try:
            return pd.read_csv(path, dtype=text)
        except pd.errors.EmptyDataError:
            return pd.DataFrame()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    return _read_jsonl(path)


def read_runs(path):
    """Read a run table file and validate it.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.csv``, ``.parquet`` or ``.jsonl`` file, one row (record) per training run.

    Returns
    -------
    pandas.DataFrame
        The validated table (see ``validate_runs``), diverged and failed runs included.

    Raises
    ------
    RunTableError
        If the file is missing or unreadable, has an unknown extension, holds no runs, or does
        not follow the schema (then every problem is listed).
    """
    suffix = _suffix(path)
    try:
        raw = _read_raw(path, suffix)
    except RunTableError:
        raise
    except FileNotFoundError:
        raise RunTableError("no such file", path) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RunTableError(f"cannot read {suffix[1:]} file ({reason})", path) from None
    except Exception as exc:  # pyarrow raises its own error types for corrupt Parquet files
        if type(exc).__module__.startswith("pyarrow"):
            reason = str(exc).strip().splitlines()[0]
            raise RunTableError(f"cannot read parquet file ({reason})", path) from None
        raise
    table, _ = validate_runs(raw, source=path)
    return table


def _json_value(value):
    """Return a cell as a JSON-ready Python value (None for missing), lists and dicts included."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, (np.ndarray, list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


def write_runs(df, path):
    """Validate a run table and write it atomically (temporary file, then ``os.replace``).

    The derived columns (``P``, ``block``, ``granularity``, ``quantized``) are not written;
    ``read_runs`` computes them again.

    Parameters
    ----------
    df : pandas.DataFrame
        A run table, validated or not.
    path : str or os.PathLike
        Destination ending in ``.csv``, ``.parquet`` or ``.jsonl``.

    Raises
    ------
    RunTableError
        If the extension is unknown or the table does not pass ``validate_runs``.
    """
    suffix = _suffix(path)
    table, _ = validate_runs(df, source=path)
    table = table.drop(columns=list(schema.DERIVED))
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            if suffix == ".csv":
                table.to_csv(f, index=False)
            elif suffix == ".jsonl":
                for record in table.to_dict(orient="records"):
                    rec = {k: _json_value(v) for k, v in record.items()}
                    f.write(json.dumps(rec, default=str) + "\n")
        if suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
