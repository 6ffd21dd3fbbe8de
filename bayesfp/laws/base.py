"""The common interface of every scaling law: parameters as a mapping, inputs as arrays.

A law is a pure function ``loss(params, inputs, xp)``. ``params`` maps parameter names to scalars,
NumPy arrays, xarray DataArrays (e.g. posterior draws with dims ``chain, draw``) or PyTensor
variables; ``inputs`` maps input names (``N``, ``D``, ``E``, ``M``, ``log2B``, ...) to arrays of
shape ``(run,)``; ``xp`` is the array namespace (``numpy`` or ``pytensor.tensor``): the law only
uses arithmetic operators and ``xp.exp``, ``xp.log``, ``xp.log1p``, so the same expression builds a
PyTensor graph for the PyMC models.

Positive coefficients may be given either directly (``n``) or as their natural log (``log_n``);
the log form is used where present, so samplers can work in log space without an extra
``exp``/``log`` round trip.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType

import numpy as np

from bayesfp.errors import BayesfpInputError


@dataclass(frozen=True)
class Param:
    """One coefficient of a law.

    Parameters
    ----------
    name : str
        Name used in parameter mappings and posteriors.
    positive : bool
        Whether the coefficient is a positive scale (fitted and sampled in log space).
    paper : str
        The symbol the source paper uses.
    description : str
        What it means, with units.
    optional : float or None
        Default value when the mapping does not give it (``None``: required).
    """

    name: str
    positive: bool
    paper: str
    description: str
    optional: float | None = None


@dataclass(frozen=True)
class Law:
    """A scaling law: its coefficients, the inputs it needs and its loss function.

    Parameters
    ----------
    name : str
        Short name (``chinchilla``, ``kumar``, ``sun``).
    params : tuple of Param
        Coefficients, in a fixed order (the order of point-fit vectors).
    inputs : tuple of str
        Names of the per-run inputs the loss needs.
    fn : callable
        ``fn(get, x, xp)`` with ``get(name)`` returning a coefficient and ``lget(name)`` its log.
    reference : str
        The paper the law comes from.
    """

    name: str
    params: tuple[Param, ...]
    inputs: tuple[str, ...]
    fn: Callable = field(repr=False)
    reference: str = ""
    penalty_params: tuple[str, ...] = ()

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise BayesfpInputError(f"law {self.name!r} has no parameter {name!r}")

    def loss(self, params: Mapping, inputs: Mapping, xp: ModuleType = np):
        """Predicted final validation loss (nats/token) for each run.

        Parameters
        ----------
        params : mapping or xarray.Dataset
            Coefficients by name (``n`` or ``log_n`` for positive ones).
        inputs : mapping
            Arrays of shape ``(run,)`` for every name in :attr:`inputs`.
        xp : module
            ``numpy`` (default) or ``pytensor.tensor``.

        Returns
        -------
        array
            Loss in nats/token, broadcast over parameter and input shapes. When ``params``
            holds xarray DataArrays, inputs become DataArrays on dim ``run`` so that the result
            has dims ``(*param_dims, run)``.
        """
        missing = [k for k in self.inputs if k not in inputs]
        if missing:
            raise BayesfpInputError(f"law {self.name!r} needs inputs {missing}")
        x = _align_inputs(params, {k: inputs[k] for k in self.inputs})
        return self.fn(_Getter(self, params, xp), x, xp)


class _Getter:
    """Access coefficients by name, in natural or log form."""

    def __init__(self, law: Law, params: Mapping, xp: ModuleType):
        self.law, self.params, self.xp = law, params, xp

    def _has(self, key: str) -> bool:
        try:
            return key in self.params
        except TypeError:
            return False

    def __call__(self, name: str):
        if self._has(name):
            return self.params[name]
        if self._has("log_" + name):
            return self.xp.exp(self.params["log_" + name])
        default = self.law.param(name).optional
        if default is None:
            raise BayesfpInputError(f"law {self.law.name!r}: parameter {name!r} is missing")
        return default

    def log(self, name: str):
        if self._has("log_" + name):
            return self.params["log_" + name]
        return self.xp.log(self(name))


def _align_inputs(params: Mapping, x: dict) -> dict:
    """Wrap plain input arrays as DataArrays on dim ``run`` when parameters are xarray objects."""
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover - xarray is a dependency
        return x
    values = params.data_vars.values() if isinstance(params, xr.Dataset) else params.values()
    if not any(isinstance(v, xr.DataArray) for v in values):
        return x
    return {k: v if isinstance(v, xr.DataArray) else xr.DataArray(np.asarray(v), dims=("run",))
            for k, v in x.items()}


def as_params(law: Law, values, log_positive: bool = False) -> dict:
    """Turn a vector in the order of ``law.params`` into a mapping.

    With ``log_positive`` the positive coefficients in ``values`` are logs and the keys become
    ``log_<name>``.
    """
    out = {}
    for p, v in zip(law.params, values, strict=True):
        out[("log_" + p.name) if (log_positive and p.positive) else p.name] = v
    return out


def natural(law: Law, params: Mapping) -> dict:
    """Return every coefficient of ``law`` in natural (not log) form, defaults filled in."""
    get = _Getter(law, params, np)
    return {p.name: get(p.name) for p in law.params}
