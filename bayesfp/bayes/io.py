"""Save and load Bayesian fits as one self-describing NetCDF file.

A fit is the ``xarray.DataTree`` returned by :meth:`bayesfp.bayes.models.LawModel.fit`:

- ``posterior``: sampled variables and the law coefficients (``log_n``, ``log_d``,
  ``log_gamma``, group-level ``log_gamma_group``), dims ``chain, draw`` (+ ``group``);
- ``sample_stats``: ``diverging``, ``energy``, ``tree_depth``, ... (ArviZ names);
- ``log_likelihood``: ``log_loss`` per draw and fitted run, float32 (needed for PSIS-LOO);
- ``observed_data``: the fitted log-losses;
- ``fit_data``: the whole run table (excluded runs too), dim ``row``, with ``in_fit``;
- ``attrs["bayesfp"]``: JSON with the law, pooling, priors, sampler config, fixed coefficients,
  data centres, excluded runs and the diagnostics gate; :func:`save_fit` adds
  ``format_version``, ``bayesfp_version`` and ``hash``, a sha256 of the run table, the model
  configuration and the priors.

:func:`load_fit` recomputes the hash from the file's own ``fit_data`` and configuration and
checks the format version; a mismatch raises ``ValueError`` (the file was altered or written by
an incompatible version), never a silent refit.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import bayesfp
from bayesfp.errors import BayesfpInputError

# Version of the file layout; a fit of another version is refused, never reinterpreted.
FORMAT_VERSION = 1

# Keys of the configuration that define the model (and so enter the hash).
_HASHED = ("law", "model_version", "pool_by", "pooling", "centred", "pooled", "groups", "robust",
           "sigma_by", "sigma_groups", "priors", "fixed", "centres", "inputs_kw")


def _text(value) -> str:
    """One cell of a text column as str: missing -> "", lists and dicts (a run's loss curves,
    its config) as JSON, anything else through str."""
    if isinstance(value, (list, tuple, dict, np.ndarray)):
        return json.dumps(value.tolist() if isinstance(value, np.ndarray) else value)
    return "" if pd.isna(value) else str(value)


def table_to_dataset(table: pd.DataFrame, in_fit: np.ndarray) -> xr.Dataset:
    """The run table as a Dataset on dim ``row``: text columns as str, numbers as float/int."""
    data = {}
    for col in table.columns:
        s = table[col]
        if pd.api.types.is_bool_dtype(s):
            data[col] = ("row", s.fillna(False).to_numpy(dtype=bool))
        elif pd.api.types.is_numeric_dtype(s):
            kind = "int64" if (pd.api.types.is_integer_dtype(s) and not s.isna().any()) \
                else "float64"
            data[col] = ("row", s.to_numpy(dtype=kind, na_value=np.nan)
                         if kind == "float64" else s.to_numpy(dtype=kind))
        else:
            data[col] = ("row", np.array([_text(v) for v in s], dtype=str))
    data["in_fit"] = ("row", np.asarray(in_fit, dtype=bool))
    return xr.Dataset(data)


def dataset_to_table(ds: xr.Dataset) -> pd.DataFrame:
    """The run table back from a ``fit_data`` Dataset (``in_fit`` kept as a column)."""
    return pd.DataFrame({k: np.asarray(ds[k].values) for k in ds.data_vars})


def _hash(ds: xr.Dataset, info: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({k: info.get(k) for k in _HASHED}, sort_keys=True).encode())
    for k in sorted(ds.data_vars):
        v = np.asarray(ds[k].values)
        h.update(k.encode())
        if v.dtype.kind in "biuf":
            h.update(np.ascontiguousarray(v, dtype=float).tobytes())
        else:
            h.update("\x1f".join(str(a) for a in v).encode())
    return h.hexdigest()


def set_info(tree: xr.DataTree, info: dict) -> xr.DataTree:
    """Store a fit's configuration and gate result (``info``) as JSON in ``tree.attrs``."""
    tree.attrs["bayesfp"] = json.dumps(info, sort_keys=True)
    tree.attrs["gate_passed"] = int(bool(info["gate"]["passed"]))
    return tree


def fit_info(tree: xr.DataTree) -> dict:
    """The configuration, gate result and hash of a fit (parsed from its attrs)."""
    try:
        return json.loads(tree.attrs["bayesfp"])
    except KeyError:
        raise BayesfpInputError("fit: not a bayesfp fit (attrs['bayesfp'] is missing)") from None


def fit_table(tree: xr.DataTree, fitted_only: bool = False) -> pd.DataFrame:
    """The run table stored in a fit (only the fitted runs with ``fitted_only``)."""
    df = dataset_to_table(tree["fit_data"].to_dataset())
    if fitted_only:
        df = df[df["in_fit"].astype(bool)].reset_index(drop=True)
    return df


def save_fit(tree: xr.DataTree, path: str | os.PathLike) -> Path:
    """Write a fit to one NetCDF file (h5netcdf; log-likelihood compressed).

    The file's attrs add the format version, the bayesfp version and the hash of the stored run
    table and configuration, which :func:`load_fit` checks.

    Returns
    -------
    pathlib.Path
    """
    info = fit_info(tree)
    if "fit_data" not in tree.children:
        raise BayesfpInputError("fit: has no fit_data group (not a fit from LawModel.fit)")
    info = info | {"format_version": FORMAT_VERSION, "bayesfp_version": bayesfp.__version__}
    info["hash"] = _hash(tree["fit_data"].to_dataset(), info)
    tree = set_info(tree.copy(), info)
    path = Path(path)
    if path.suffix != ".nc":
        raise BayesfpInputError(f"out: fit files end in .nc, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = {}
    for name in ("log_likelihood", "posterior"):
        if name in tree.children:
            enc[f"/{name}"] = {v: {"zlib": True, "complevel": 4, "shuffle": True}
                               for v in tree[name].to_dataset().data_vars}
    if path.is_dir():
        raise BayesfpInputError(f"out: {path} is a folder; give a file name")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tree.to_netcdf(tmp, engine="h5netcdf", encoding=enc)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_fit(path: str | os.PathLike) -> xr.DataTree:
    """Read a fit written by :func:`save_fit`, checking its format version and hash.

    Raises
    ------
    ValueError
        If the file is not a bayesfp fit, was written by another format version, or its data or
        configuration no longer match its hash.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    try:
        tree = xr.open_datatree(path, engine="h5netcdf").load()
    except (OSError, ValueError) as exc:
        raise BayesfpInputError(f"fit: cannot read {path}: {exc}") from None
    info = fit_info(tree)
    if info.get("format_version") != FORMAT_VERSION:
        raise BayesfpInputError(
            f"fit: {path} has format version {info.get('format_version')}, this "
            f"bayesfp reads version {FORMAT_VERSION}; refit it")
    if "fit_data" not in tree.children:
        raise BayesfpInputError(f"fit: {path} has no fit_data group")
    if _hash(tree["fit_data"].to_dataset(), info) != info.get("hash"):
        raise BayesfpInputError(f"fit: {path} does not match its hash (run table or model "
                                "configuration changed); refit it")
    return tree
