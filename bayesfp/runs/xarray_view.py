"""Views of a run table as xarray objects with dims named after the science.

``to_xarray`` keeps one entry per run along the dim ``run``; ``to_grid`` spreads one variable over
the design grid ``(N, D, format, B, operands, seed)`` with NaN where no run was made.
"""

import numpy as np
import pandas as pd
import xarray as xr

from bayesfp import dims
from bayesfp.errors import BayesfpInputError
from bayesfp.runs import schema
from bayesfp.runs.validate import validate_runs

# Run outcomes become data variables; every other column describes the run and becomes a
# coordinate along ``run``.
OUTCOMES = (dims.LOSS, "tokens_per_s", "wall_s", "epochs", "diverged_step")

UNITS = {
    dims.N: "non-embedding parameters",
    dims.D: "tokens",
    dims.E: "bits",
    dims.M: "bits",
    dims.P: "bits",
    schema.BLOCK: "elements per scale factor",
    dims.LOSS: "nats/token",
    "tokens_per_s": "tokens/s",
    "wall_s": "s",
    "diverged_step": "optimizer steps",
}

GRID_DIMS = (dims.N, dims.D, dims.FORMAT, dims.B, schema.OPERANDS, schema.SEED)


def _values(series):
    """Return a column as a NumPy array xarray can hold (NaN for missing numbers)."""
    if isinstance(series.dtype, pd.Int64Dtype):
        if series.isna().any():
            return series.astype("float64").to_numpy(na_value=np.nan)
        return series.astype("int64").to_numpy()
    if pd.api.types.is_string_dtype(series.dtype) and not pd.api.types.is_object_dtype(
        series.dtype
    ):
        return series.to_numpy(dtype=object, na_value=np.nan)
    return series.to_numpy()


def _attrs(column):
    units = UNITS.get(column)
    if units is None and schema.is_ptq_column(column):
        units = "nats/token"
    return {} if units is None else {"units": units}


def to_xarray(df):
    """Return a run table as an ``xarray.Dataset`` along the dim ``run``.

    Parameters
    ----------
    df : pandas.DataFrame
        A run table, validated or not (it is validated here).

    Returns
    -------
    xarray.Dataset
        Dim ``run`` (coordinate values: the run_ids). Data variables: ``loss`` (nats/token), the
        ``ptq_loss_<fmt>`` columns and the other run outcomes present (``tokens_per_s``,
        ``wall_s``, ``epochs``, ``diverged_step``, NaN where missing). Every other column (``N``,
        ``D``, ``E``, ``M``, ``P``, ``B``, ``block``, ``operands``, ``status``, ``seed``,
        ``format``, provenance ...) is a coordinate along ``run``. Units are in ``attrs``.

    Raises
    ------
    RunTableError
        If the table does not pass ``validate_runs``.
    """
    table, _ = validate_runs(df)
    data_vars, coords = {}, {dims.RUN: table[schema.RUN_ID].to_numpy(dtype=object)}
    table = table.rename(columns=str)
    for column in table.columns:
        if column == schema.RUN_ID:
            continue
        var = xr.Variable((dims.RUN,), _values(table[column]), attrs=_attrs(column))
        if column in OUTCOMES or schema.is_ptq_column(column):
            data_vars[column] = var
        else:
            coords[column] = var
    return xr.Dataset(data_vars, coords=coords)


def to_grid(df, var=dims.LOSS, *, only_ok=True):
    """Spread one run variable over the design grid.

    Parameters
    ----------
    df : pandas.DataFrame
        A run table, validated or not (it is validated here).
    var : str, default "loss"
        A numeric column, e.g. ``"loss"`` (nats/token) or ``"ptq_loss_e2m1"``.
    only_ok : bool, default True
        Use only runs with status ``ok`` (diverged and failed runs become NaN cells).

    Returns
    -------
    xarray.DataArray
        Dims ``(N, D, format, B, operands, seed)``, each coordinate holding the values that
        occur in the runs: ``N`` and ``D`` ascending, formats by (P, E, name), ``B`` by block
        size then ``channel``, ``tensor``, ``none``. NaN where no run was made. The ``format``
        dim carries coordinates ``E``, ``M``, ``P`` and the ``B`` dim carries ``block`` (NaN for
        the granularity words).

    Raises
    ------
    ValueError
        If ``var`` is not a numeric column, no runs are left, or two runs fall in one cell (for
        example runs that differ only in ``group`` or ``rounding``: select one first).
    """
    table, _ = validate_runs(df)
    if var not in table.columns:
        raise BayesfpInputError(f"var '{var}' is not a column of the run table")
    if table[var].dtype == bool or not pd.api.types.is_numeric_dtype(table[var].dtype):
        raise BayesfpInputError(f"var '{var}' is not a numeric column")
    if only_ok:
        table = table[table[schema.STATUS] == schema.STATUS_OK]
    if len(table) == 0:
        raise BayesfpInputError(
            "no runs to put on the grid (only_ok=True and no run has status ok)")
    key = list(GRID_DIMS)
    clash = table[table.duplicated(key, keep=False)]
    if len(clash):
        first = clash.groupby(key, sort=False)[schema.RUN_ID].apply(list).iloc[0]
        raise BayesfpInputError(
            f"var '{var}': runs {', '.join(first)} share one grid cell "
            f"({', '.join(key)}); select one of them first"
        )
    formats = (table[[dims.FORMAT, dims.E, dims.M, dims.P]].drop_duplicates()
               .sort_values([dims.P, dims.E, dims.FORMAT]))
    order = {
        dims.N: np.sort(table[dims.N].unique()),
        dims.D: np.sort(table[dims.D].unique()),
        dims.FORMAT: formats[dims.FORMAT].to_numpy(dtype=object),
        dims.B: np.array(sorted(table[dims.B].unique(), key=schema.b_sort_key), dtype=object),
        schema.OPERANDS: np.array(
            sorted(table[schema.OPERANDS].unique(), key=schema.operands_sort_key), dtype=object
        ),
        schema.SEED: np.sort(table[schema.SEED].unique()),
    }
    shape = tuple(len(order[d]) for d in key)
    grid = np.full(shape, np.nan)
    where = [
        pd.Index(order[d]).get_indexer(table[d].to_numpy(dtype=order[d].dtype)) for d in key
    ]
    assert all((w >= 0).all() for w in where)
    values = table[var].astype("float64").to_numpy(na_value=np.nan)
    grid[tuple(where)] = values
    block = [np.nan if not b.isdigit() else float(b) for b in order[dims.B]]
    coords = {d: order[d] for d in key}
    coords[dims.E] = (dims.FORMAT, formats[dims.E].to_numpy())
    coords[dims.M] = (dims.FORMAT, formats[dims.M].to_numpy())
    coords[dims.P] = (dims.FORMAT, formats[dims.P].to_numpy())
    coords[schema.BLOCK] = (dims.B, np.array(block))
    out = xr.DataArray(grid, dims=key, coords=coords, name=var, attrs=_attrs(var))
    for d in (dims.N, dims.D, dims.E, dims.M, dims.P):
        out[d].attrs.update(_attrs(d))
    out[schema.BLOCK].attrs.update(_attrs(schema.BLOCK))
    return out

