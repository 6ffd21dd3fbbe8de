"""The run table: one row per training run, its schema, readers, validation and xarray views.

The schema is described column by column in ``docs/runs.md``.
"""

from bayesfp.runs.io import read_runs, write_runs
from bayesfp.runs.validate import RunTableReport, ok_runs, validate_runs
from bayesfp.runs.xarray_view import to_grid, to_xarray

__all__ = [
    "RunTableReport",
    "ok_runs",
    "read_runs",
    "to_grid",
    "to_xarray",
    "validate_runs",
    "write_runs",
]
