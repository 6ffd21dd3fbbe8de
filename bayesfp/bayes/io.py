"""Save and load Bayesian fits as one self-describing NetCDF file.

A fit is the ``xarray.DataTree`` returned by :meth:`bayesfp.bayes.models.LawModel.fit`:

- ``posterior``: sampled variables and the law coefficients (``log_n``, ``log_d``,
  ``log_gamma``, group-level ``log_gamma_group``), dims ``chain, draw`` (+ ``group``);
- ``sample_stats``: ``diverging``, ``energy``, ``tree_depth``, ... (ArviZ names);
- ``log_likelihood``: ``log_loss`` per draw and fitted run, float32 (needed for PSIS-LOO),
  stored to ``STORED_MANTISSA_BITS`` mantissa bits (see :func:`round_mantissa`);
- ``observed_data``: the fitted log-losses;
- ``fit_data``: the whole run table (excluded runs too), dim ``row``, with ``in_fit``;
- ``posterior_predictive``: ``log_loss`` per draw and fitted run (float32), a new run's
  measured log-loss under each draw (law plus noise), so that ``arviz.plot_ppc`` works; stored
  to ``STORED_MANTISSA_BITS`` mantissa bits like the log-likelihood;
- ``attrs["bayesfp"]``: JSON with the law, pooling, priors, sampler config, fixed coefficients,
  data centres, excluded runs, the diagnostics gate and ``provenance`` (the run file's path and
  sha256, the ``--where`` conditions and the options of the command that made the fit);
  :func:`save_fit` adds ``format_version``, ``bayesfp_version`` and ``hash``, a sha256 of the
  run table, the model configuration and the priors;
- plain attributes for tools that do not parse JSON: ``law``, ``pool_by``, ``n_runs``,
  ``gate_passed``, ``format_version``, ``bayesfp_version``, ``hash``, ``runs_file``,
  ``runs_sha256`` and ``where`` (text; ``""`` when not known).

:func:`load_fit` recomputes the hash from the file's own ``fit_data`` and configuration and
checks the format version; a mismatch raises ``ValueError`` (the file was altered or written by
an incompatible version), never a silent refit. Version 1 files (no posterior predictive, no
plain attributes, no provenance) are still read; their ``posterior_predictive`` group is
computed on loading.
"""

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

import bayesfp
from bayesfp.bayes.info import fit_info, group_column, set_info  # fit_info: re-exported
from bayesfp.errors import BayesfpInputError

# Version of the file layout written; files of the versions in READABLE are read, any other
# is refused, never reinterpreted.
FORMAT_VERSION = 2
READABLE = (1, 2)
# Plain attributes written beside the JSON record (see the module docstring).
# float32 draws of these groups are stored rounded to this many mantissa bits (of 23): a
# relative error of at most 2**-16 (1.5e-5), far below the noise of a measured log-loss, and
# files about a third smaller (the low bits of random draws do not compress).
ROUNDED_GROUPS = ("log_likelihood", "posterior_predictive", "prior_predictive")
STORED_MANTISSA_BITS = 15

PLAIN_ATTRS = ("law", "pool_by", "n_runs", "format_version", "bayesfp_version", "hash")
PROVENANCE_ATTRS = ("runs_file", "runs_sha256", "where")

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


def file_sha256(path) -> str:
    """sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def record_provenance(tree: xr.DataTree, runs_file=None, where=None,
                      options: dict | None = None) -> xr.DataTree:
    """Record where a fit's runs came from and how it was made, in its attrs (in place).

    Parameters
    ----------
    runs_file : path, optional
        The run table read (its path and sha256 are recorded).
    where : sequence of str, optional
        The ``COLUMN=VALUE[,VALUE...]`` conditions that chose the runs.
    options : dict, optional
        The options of the command or call that made the fit (JSON-serialisable).

    Returns
    -------
    xarray.DataTree
        ``tree``, with ``provenance`` in its ``bayesfp`` record.
    """
    info = fit_info(tree)
    prov = {"runs_file": None, "runs_sha256": None, "where": list(where or []),
            "options": dict(options or {})}
    if runs_file is not None:
        prov["runs_file"] = str(Path(runs_file).resolve())
        prov["runs_sha256"] = file_sha256(runs_file)
    info["provenance"] = prov
    return set_info(tree, info)


def add_posterior_predictive(tree: xr.DataTree, seed: int = 0) -> xr.DataTree:
    """Add the ``posterior_predictive`` group (``log_loss``, dims chain, draw, run) if missing.

    Each draw's prediction of the measured log-loss (nats/token, natural log) of every fitted
    run, noise included (:func:`bayesfp.bayes.derived.predict_loss`), named and shaped like
    ``observed_data.log_loss`` so that ``arviz.plot_ppc(tree)`` compares them.
    """
    from bayesfp.bayes.derived import predict_loss

    if "posterior_predictive" in tree.children or "observed_data" not in tree.children:
        return tree
    runs = fit_table(tree, fitted_only=True)
    pred = predict_loss(tree, runs, noise=True, seed=seed)
    obs = tree["observed_data"]["log_loss"]
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.log(np.asarray(pred.transpose("chain", "draw", "run").values))
    da = xr.DataArray(values.astype("float32"), dims=("chain", "draw", "run"),
                      coords={"chain": tree["posterior"]["chain"].values,
                              "draw": tree["posterior"]["draw"].values,
                              "run": obs["run"].values})
    tree["posterior_predictive"] = xr.DataTree(xr.Dataset({"log_loss": da}))
    return tree


def round_mantissa(values, bits: int = STORED_MANTISSA_BITS) -> np.ndarray:
    """float32 ``values`` rounded to ``bits`` mantissa bits, half to even (float32, same shape).

    Non-finite values stay as they are; a value whose rounding carries past the largest
    float32 becomes infinite, as in any float rounding.
    """
    a = np.ascontiguousarray(values, dtype=np.float32)
    if not 0 < bits < 23:
        return a.copy()
    drop = 23 - bits
    u = a.view(np.uint32)
    lsb = (u >> np.uint32(drop)) & np.uint32(1)
    out = (u + np.uint32((1 << (drop - 1)) - 1) + lsb) & np.uint32((0xFFFFFFFF << drop)
                                                                    & 0xFFFFFFFF)
    out = out.view(np.float32)
    return np.where(np.isfinite(a), out, a)


def _plain_attrs(tree: xr.DataTree, info: dict) -> None:
    for key in PLAIN_ATTRS:
        # pool_by: the column of the groups, also for a structured fit's pooled gamma
        v = group_column(info) if key == "pool_by" else info.get(key)
        tree.attrs[key] = "" if v is None else v
    prov = info.get("provenance") or {}
    for key in PROVENANCE_ATTRS:
        v = prov.get(key)
        tree.attrs[key] = " ".join(v) if isinstance(v, list) else ("" if v is None else v)


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
    path = Path(path)
    if path.suffix != ".nc":
        raise BayesfpInputError(f"out: fit files end in .nc, got {path.name!r}")
    tree = add_posterior_predictive(set_info(tree.copy(), info))
    _plain_attrs(tree, info)
    for name in ROUNDED_GROUPS:
        if name in tree.children:
            ds = tree[name].to_dataset()
            for v in ds.data_vars:
                if ds[v].dtype == np.float32:
                    ds[v] = ds[v].copy(data=round_mantissa(ds[v].values))
            tree[name] = xr.DataTree(ds)
    path.parent.mkdir(parents=True, exist_ok=True)
    enc = {}
    for name in ("log_likelihood", "posterior", "posterior_predictive", "prior",
                 "prior_predictive"):
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


def load_fit(path: str | os.PathLike, predictive: bool = True) -> xr.DataTree:
    """Read a fit written by :func:`save_fit`, checking its format version and hash.

    ``predictive=False`` leaves out the ``posterior_predictive`` group: a version 1 file's is
    not computed (a second of CPU for 8000 draws of 480 runs), a later file's is not read.

    Raises
    ------
    ValueError
        If the file is not a bayesfp fit, was written by another format version, or its data or
        configuration no longer match its hash.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    if path.suffix.lower() == ".json":
        raise BayesfpInputError(f"fit: {path} is a JSON file (a point fit?); this needs a "
                                "Bayesian fit (.nc) from bayesfp fit --method bayes")
    try:
        tree = xr.open_datatree(path, engine="h5netcdf")
        if not predictive and "posterior_predictive" in tree.children:
            del tree["posterior_predictive"]
        tree = tree.load()
    except (OSError, ValueError) as exc:
        raise BayesfpInputError(f"fit: cannot read {path}: {exc}") from None
    info = fit_info(tree)
    if info.get("format_version") not in READABLE:
        raise BayesfpInputError(
            f"fit: {path} has format version {info.get('format_version')}, this "
            f"bayesfp reads versions {', '.join(map(str, READABLE))}; refit it")
    if "fit_data" not in tree.children:
        raise BayesfpInputError(f"fit: {path} has no fit_data group")
    if _hash(tree["fit_data"].to_dataset(), info) != info.get("hash"):
        raise BayesfpInputError(f"fit: {path} does not match its hash (run table or model "
                                "configuration changed); refit it")
    if info["format_version"] < 2 and predictive:
        tree = add_posterior_predictive(tree)
    return tree
