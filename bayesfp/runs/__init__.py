"""The run table: one row per training run, its schema, readers, validation and xarray views.

The schema is described column by column in ``docs/runs.md``. :mod:`bayesfp.runs.schema` needs
only the standard library (``training`` imports its names); the functions below load pandas and
xarray when first used.
"""

import importlib

# Public name -> the module that defines it (imported on first use).
_PUBLIC = {
    "FitSelection": "bayesfp.runs.select",
    "RunTableReport": "bayesfp.runs.validate",
    "fit_selection": "bayesfp.runs.select",
    "ok_runs": "bayesfp.runs.validate",
    "read_runs": "bayesfp.runs.io",
    "to_grid": "bayesfp.runs.xarray_view",
    "to_xarray": "bayesfp.runs.xarray_view",
    "validate_runs": "bayesfp.runs.validate",
    "write_runs": "bayesfp.runs.io",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'bayesfp.runs' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
