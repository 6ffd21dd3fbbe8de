"""Prior draws stored with a fit: its ``prior`` and ``prior_predictive`` groups.

:func:`add_prior_groups` draws :data:`PRIOR_DRAWS` sets of the model's variables from their
priors, and under each the measured log-loss of every fitted run (law plus noise), with the
model's own ``sample_prior_predictive`` (plain and structured models alike) seeded with the
fit's sampler seed, so that the same fit always gets the same draws. Both groups are float32
and have one chain:

- ``prior``: the posterior's variables (sampled variables and law coefficients), named and
  shaped as in ``posterior``, dims ``chain, draw`` (+ their own);
- ``prior_predictive``: ``log_loss``, dims ``chain, draw, run``, named and shaped like
  ``observed_data.log_loss``.

So ``arviz.plot_ppc_dist(fit, group="prior_predictive")`` (the prior predictive check) and
``arviz.plot_prior_posterior(fit)`` work on a fit file.

The forward-sampling function is compiled in PyTensor's ``FAST_COMPILE`` mode: its compilation
dominates the cost, and on a run table the compiled-function cache has not seen it takes 1.6 to
2.6 s in that mode against 3.4 to 7 s with the default (numba) backend (the 500 draws
themselves take 0.1 to 0.9 s).
"""

import contextlib
import logging

import numpy as np
import xarray as xr

from bayesfp.bayes.info import fit_info

# Prior draws stored with a fit: enough for a prior predictive plot and the prior's quantiles,
# a small fraction of the posterior's size.
PRIOR_DRAWS = 500


def _clean(ds: xr.Dataset) -> xr.Dataset:
    """float32 values, no attributes (PyMC stamps a creation time that would make two
    otherwise identical files differ)."""
    out = ds.astype("float32")
    out.attrs = {}
    for v in out.variables.values():
        v.attrs = {}
    return out


@contextlib.contextmanager
def _quiet(name: str):
    """Silence a logger's INFO lines (PyMC lists the variables it samples)."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


def prior_groups(tree: xr.DataTree, model, draws: int = PRIOR_DRAWS,
                 seed: int | None = None) -> dict[str, xr.Dataset]:
    """The ``prior`` and ``prior_predictive`` Datasets of a fit (see the module docstring).

    Parameters
    ----------
    tree : xarray.DataTree
        The fit of ``model`` (:meth:`bayesfp.bayes.models.LawModel.fit`).
    model : LawModel
        The model that made the fit (plain or structured), with ``sample_prior_predictive``.
    draws : int
        Prior draws.
    seed : int, optional
        Seed of the draws; default the fit's sampler seed.

    Returns
    -------
    dict
        ``{"prior": Dataset, "prior_predictive": Dataset}``.
    """
    import pytensor

    if seed is None:
        seed = (fit_info(tree).get("sampler") or {}).get("seed")
    with pytensor.config.change_flags(mode="FAST_COMPILE"), _quiet("pymc.sampling.forward"):
        drawn = model.sample_prior_predictive(draws=int(draws), seed=seed)
    post = tree["posterior"]
    prior = drawn["prior"].to_dataset()
    prior = prior[[k for k in prior.data_vars if k in post.data_vars]]
    pred = drawn["prior_predictive"].to_dataset()[["log_loss"]]
    obs = tree["observed_data"]["log_loss"]
    if pred.sizes["run"] != obs.sizes["run"]:
        raise ValueError(f"prior predictive: {pred.sizes['run']} runs, the fit has "
                         f"{obs.sizes['run']}")
    pred = pred.assign_coords(run=obs["run"].values)
    with np.errstate(over="ignore"):
        return {"prior": _clean(prior), "prior_predictive": _clean(pred)}


def add_prior_groups(tree: xr.DataTree, model, draws: int = PRIOR_DRAWS,
                     seed: int | None = None) -> xr.DataTree:
    """Add the ``prior`` and ``prior_predictive`` groups of :func:`prior_groups` to a fit
    (in place); returns the fit."""
    for name, ds in prior_groups(tree, model, draws, seed).items():
        tree[name] = xr.DataTree(ds)
    return tree
