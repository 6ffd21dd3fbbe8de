"""Run NUTS on a built PyMC model: nutpie by default, PyMC's own NUTS as the fallback.

Compiling a model for nutpie (numba) dominates the time of small fits, so compiled models are
cached by a key that covers everything except the observed losses; a refit on new losses of
the same runs (simulation-based calibration, bootstrap-like checks) swaps the data in.

Models are compiled with numba's fastmath off (:data:`DETERMINISTIC_FLAGS`). With fastmath on,
code compiled in this process and code loaded from PyTensor's disk cache may round differently
(LLVM is free to reorder and fuse floating-point operations), so the same seed gave a different
posterior on a cold compile cache than on a warm one. With it off, a seed gives bit-identical
draws whatever the state of the cache.
"""

import warnings
from dataclasses import asdict, dataclass

import xarray as xr

from bayesfp import defaults
from bayesfp.errors import BayesfpInputError

# Sample statistics kept in a fit, under ArviZ's names (nutpie name -> kept name).
_NUTPIE_STATS = {
    "diverging": "diverging", "energy": "energy", "depth": "tree_depth", "n_steps": "n_steps",
    "step_size": "step_size", "logp": "lp", "mean_tree_accept": "acceptance_rate",
    "maxdepth_reached": "reached_max_treedepth",
}
_PYMC_STATS = ("diverging", "energy", "tree_depth", "n_steps", "step_size", "lp",
               "acceptance_rate", "reached_max_treedepth")

SAMPLERS = ("nutpie", "pymc")
ADAPTATIONS = ("diag", "low_rank")

_COMPILED: dict = {}

# PyTensor flags every model is compiled under: IEEE floating-point semantics in numba.
DETERMINISTIC_FLAGS = {"numba__fastmath": False}


@dataclass
class SamplerConfig:
    """How to run NUTS.

    Parameters
    ----------
    draws, tune : int
        Kept draws and tuning steps per chain (defaults: :mod:`bayesfp.defaults`).
    chains : int
        Independent chains (several, so that R-hat can see disagreement).
    cores : int
        Chains run in parallel on this many cores.
    target_accept : float
        Target acceptance rate of the step-size adaptation.
    sampler : str
        ``nutpie`` (default; falls back to ``pymc`` with a warning if it cannot compile the
        model) or ``pymc``.
    seed : int
        Random seed.
    progressbar : bool
        Show a progress bar.
    adaptation : str
        nutpie's mass-matrix adaptation: ``diag`` (a diagonal mass matrix) or ``low_rank``
        (diagonal plus the leading eigenvectors of the draws' covariance: follows correlated
        directions such as the penalty exponents and their format offsets in far shorter
        trajectories). PyMC's NUTS always adapts a diagonal one.
    """

    draws: int = defaults.DRAWS
    tune: int = defaults.TUNE
    chains: int = defaults.CHAINS
    cores: int = defaults.CORES
    target_accept: float = defaults.TARGET_ACCEPT
    sampler: str = defaults.SAMPLER
    seed: int = defaults.SEED
    progressbar: bool = False
    adaptation: str = "diag"

    def __post_init__(self):
        if self.adaptation not in ADAPTATIONS:
            raise BayesfpInputError(f"adaptation: unknown {self.adaptation!r} "
                                    f"(use {', '.join(ADAPTATIONS)})")
        if self.sampler not in SAMPLERS:
            raise BayesfpInputError(f"sampler: unknown sampler {self.sampler!r} "
                                    f"(use {', '.join(SAMPLERS)})")
        for key in ("draws", "chains", "cores"):
            if int(getattr(self, key)) < 1:
                raise BayesfpInputError(f"{key}: must be at least 1, got {getattr(self, key)}")
        if int(self.tune) < 0:
            raise BayesfpInputError(f"tune: must be >= 0, got {self.tune}")
        if not 0.0 < float(self.target_accept) < 1.0:
            raise BayesfpInputError(f"target_accept: must lie in (0, 1), got {self.target_accept}")

    def to_dict(self) -> dict:
        return asdict(self)


def _nutpie_compiled(model, key: str, var_names):
    import nutpie
    import pytensor

    if key not in _COMPILED:
        with pytensor.config.change_flags(**DETERMINISTIC_FLAGS):
            _COMPILED[key] = nutpie.compile_pymc_model(model, var_names=var_names)
    return _COMPILED[key]


def run_nuts(model, key: str, data: dict, config: SamplerConfig, var_names=None) -> xr.DataTree:
    """Sample a model's posterior.

    Parameters
    ----------
    model : pymc.Model
        Built model whose observed losses live in ``pm.Data`` containers named in ``data``.
    key : str
        Cache key of the compiled model (everything but the observed data).
    data : dict
        Values for the model's data containers for this fit.
    config : SamplerConfig
    var_names : list of str, optional
        Posterior variables to keep (free variables and small deterministics).

    Returns
    -------
    xarray.DataTree
        Groups ``posterior`` and ``sample_stats`` (ArviZ names: ``diverging``, ``energy``,
        ``tree_depth``, ...), dims ``chain, draw``.
    """
    import pymc as pm

    with model:
        pm.set_data(data)
    tree = None
    if config.sampler == "nutpie":
        try:
            compiled = _nutpie_compiled(model, key, var_names)
        except Exception as exc:  # noqa: BLE001 - any compile failure means: use PyMC's NUTS
            warnings.warn(f"nutpie could not compile the model ({exc}); using PyMC's NUTS",
                          RuntimeWarning, stacklevel=2)
        else:
            import nutpie

            tree = nutpie.sample(
                compiled.with_data(**data), draws=config.draws, tune=config.tune,
                chains=config.chains, cores=config.cores, seed=config.seed,
                progress_bar=config.progressbar, target_accept=config.target_accept,
                save_warmup=False, adaptation=config.adaptation,
            )
            stats = tree["sample_stats"].to_dataset()
            stats = stats[[k for k in _NUTPIE_STATS if k in stats]].rename(
                {k: v for k, v in _NUTPIE_STATS.items() if k in stats})
            post = tree["posterior"].to_dataset()
    if tree is None:
        import pytensor

        with pytensor.config.change_flags(**DETERMINISTIC_FLAGS):
            tree = pm.sample(draws=config.draws, tune=config.tune, chains=config.chains,
                             cores=config.cores, random_seed=config.seed, nuts_sampler="pymc",
                             target_accept=config.target_accept,
                             progressbar=config.progressbar, var_names=var_names, model=model,
                             compute_convergence_checks=False)
        stats = tree["sample_stats"].to_dataset()
        stats = stats[[k for k in _PYMC_STATS if k in stats]]
        post = tree["posterior"].to_dataset()
    post.attrs, stats.attrs = {}, {}
    stats["diverging"] = stats["diverging"].astype(bool)
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def clear_cache() -> None:
    """Forget every compiled model."""
    _COMPILED.clear()

