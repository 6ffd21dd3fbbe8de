"""The record a fit carries in its attrs: configuration, gate result, provenance (JSON).

Kept apart from :mod:`bayesfp.bayes.io` (files) so that the modules computing from a fit
(:mod:`bayesfp.bayes.derived`) and the file layer can both read it without importing each other.
"""

import json

import xarray as xr

from bayesfp.errors import BayesfpInputError


def fit_info(tree: xr.DataTree) -> dict:
    """The configuration, gate result and hash of a fit (parsed from its attrs)."""
    try:
        return json.loads(tree.attrs["bayesfp"])
    except KeyError:
        raise BayesfpInputError("fit: not a bayesfp fit (attrs['bayesfp'] is missing)") from None


def set_info(tree: xr.DataTree, info: dict) -> xr.DataTree:
    """Store a fit's configuration and gate result (``info``) as JSON in ``tree.attrs``."""
    tree.attrs["bayesfp"] = json.dumps(info, sort_keys=True)
    tree.attrs["gate_passed"] = int(bool(info["gate"]["passed"]))
    return tree


def group_column(info: dict) -> str | None:
    """The run-table column whose values are a pooled fit's groups: ``pool_by``, or the column a
    structured fit pools its precision coefficient by (None for an unpooled fit)."""
    if info.get("pool_by"):
        return info["pool_by"]
    pool = info.get("pool") or {}
    for c in info.get("pooled") or []:
        if c in pool:
            return pool[c]
    return None
