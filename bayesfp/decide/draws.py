"""Posterior draws of a law as flat arrays, and the loss they predict for a format.

A decision needs, per posterior draw s, the mean loss of each candidate and the noise sd of a
new run's measured log-loss. :class:`PosteriorDraws` holds exactly that: the law, its
coefficients as arrays of shape ``(S,)``, the noise sd ``sigma`` (log-loss) and, for a
structured fit with a discrepancy, one joint path of it per draw, so that the mean loss at any
(N, D) is the law's times the exponential of the path there. It is built from a saved fit by
:func:`draws_from_fit` or directly from arrays (simulations, tests).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bayesfp.decide.problem import Format
from bayesfp.errors import BayesfpInputError
from bayesfp.laws.base import Law
from bayesfp.laws.inputs import law_inputs
from bayesfp.laws.registry import get_law

__all__ = ["PosteriorDraws", "draws_from_fit"]


@dataclass(frozen=True)
class PosteriorDraws:
    """Coefficient draws of one law, flattened over chains.

    Parameters
    ----------
    law : Law or str
        The law the coefficients belong to.
    params : mapping
        Coefficients by name (``log_<name>`` or ``<name>``), arrays of shape ``(S,)`` or scalars
        (fixed coefficients).
    sigma : array, shape (S,)
        Sd of a new run's measured log-loss around the law (noise, and for a structured fit
        a new cell's and seed's effects).
    robust : bool
        Student-t noise (:data:`bayesfp.bayes.likelihood.ROBUST_NU` degrees of freedom)
        instead of normal.
    inputs_kw : mapping
        Keywords of :func:`bayesfp.laws.law_inputs` the fit used (``channel_log2b``, ...).
    runs : pandas.DataFrame, optional
        The fitted run table (used to place default candidate runs near the data).
    format_shift : callable, optional
        ``format_shift(E, M, log2B) -> array (S,)``: what a format adds to ``log_gamma`` per
        draw beyond the law's own (E, M, B) terms (a structured fit's flexible format effect
        and block-size power).
    discrepancy : callable, optional
        ``discrepancy(N, D) -> array`` of log-loss offsets per draw (a structured fit's
        Brownian discrepancy over log N and log D, :class:`bayesfp.bayes.terms.Discrepancy`);
        ``loss`` multiplies the law's loss by its exponential. Needs ``take(idx)``.
    """

    law: Law
    params: Mapping
    sigma: np.ndarray
    robust: bool = False
    inputs_kw: Mapping = field(default_factory=dict)
    runs: pd.DataFrame | None = None
    format_shift: object = None
    discrepancy: object = None

    def __post_init__(self):
        object.__setattr__(self, "law", get_law(self.law))
        params = {k: (np.asarray(v, dtype=float).ravel() if np.ndim(v) else float(v))
                  for k, v in self.params.items()}
        sizes = {v.size for v in params.values() if isinstance(v, np.ndarray)}
        sigma = np.asarray(self.sigma, dtype=float).ravel()
        sizes.add(sigma.size)
        if len(sizes - {1}) > 1:
            raise BayesfpInputError(f"draws: coefficient arrays differ in length ({sorted(sizes)})")
        n = max(sizes)
        if sigma.size == 1:
            sigma = np.full(n, float(sigma[0]))
        if np.any(~np.isfinite(sigma)) or np.any(sigma <= 0):
            raise BayesfpInputError("draws: noise sd sigma must be positive and finite")
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "sigma", sigma)
        object.__setattr__(self, "_inputs", {})

    @property
    def size(self) -> int:
        """Number of draws S."""
        return int(self.sigma.size)

    def take(self, idx) -> "PosteriorDraws":
        """The draws at the given indices (thinning, resampling)."""
        idx = np.asarray(idx)
        params = {k: (v[idx] if isinstance(v, np.ndarray) and v.size > 1 else v)
                  for k, v in self.params.items()}
        shift = None
        if self.format_shift is not None:
            def shift(E, M, log2B, _f=self.format_shift):
                return _f(E, M, log2B)[idx]
        disc = None if self.discrepancy is None else self.discrepancy.take(idx)
        return PosteriorDraws(self.law, params, self.sigma[idx], self.robust, self.inputs_kw,
                              self.runs, shift, disc)

    def format_inputs(self, fmt: Format) -> dict:
        """The law's inputs other than N and D for a run in ``fmt`` (floats)."""
        if fmt not in self._inputs:
            row = pd.DataFrame([fmt.run_row(1.0, 1.0)])
            x = law_inputs(row, **dict(self.inputs_kw))
            self._inputs[fmt] = {k: float(x[k][0]) for k in self.law.inputs
                                 if k not in ("N", "D")}
        return self._inputs[fmt]

    def loss(self, fmt: Format, N, D, discrepancy: bool = True):
        """Mean loss (nats/token) of each draw for runs in ``fmt``.

        Parameters
        ----------
        N, D : float or array
            Scalars, shape ``(S,)``, or shape ``(S, k)`` / ``(1, k)`` (k runs per draw; the
            coefficients are then broadcast as ``(S, 1)``).
        discrepancy : bool
            Include the draws' discrepancy (when they have one); False gives the law alone.

        Returns
        -------
        numpy.ndarray
            Shape ``np.broadcast(draws, N, D)``.
        """
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        extra = max(N.ndim, D.ndim, 1) - 1
        params = {k: (v.reshape(v.shape + (1,) * extra) if isinstance(v, np.ndarray)
                      and extra > 0 else v) for k, v in self.params.items()}
        x = self.format_inputs(fmt)
        if (self.format_shift is not None and "log_gamma" in params
                and x.get("log2B", 0.0) > 0):
            shift = np.asarray(self.format_shift(x["E"], x["M"], x["log2B"]), dtype=float)
            params["log_gamma"] = params["log_gamma"] + shift.reshape(shift.shape + (1,) * extra)
        shape = np.broadcast_shapes(N.shape, D.shape)
        x = {k: np.full(shape, v) for k, v in x.items()} | {"N": N, "D": D}
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.law.loss(params, x)
        full = np.broadcast_shapes(np.shape(out), (self.size,) + (1,) * extra)
        out = np.array(np.broadcast_to(out, full), dtype=float)
        if discrepancy and self.discrepancy is not None:
            N, D = np.broadcast_arrays(N, D)
            out = out * np.exp(self.discrepancy(N, D).reshape(full))
        return out


def _flatten(da) -> np.ndarray:
    return np.asarray(da.transpose("chain", "draw", ...).values, dtype=float).reshape(-1)


def _new_run_sd(post, info, sigma) -> np.ndarray:
    """The sd of a new run's log-loss around the law, flat over draws (S,): the noise sd, and
    for a structured fit also the spread of a new cell's and a new seed's effects, at the
    centre of the fitted D."""
    from bayesfp.bayes.terms import cell_sd, seed_sd

    var = _flatten(sigma) ** 2
    if info.get("structure"):
        post = post.to_dataset()
        at = [info["centres"]["cD"]]
        for sd in (cell_sd(post, info, at), seed_sd(post, info, at)):
            if sd is not None:
                var = var + sd[:, 0] ** 2
    return np.sqrt(var)


def draws_from_fit(tree, group: str | None = None, sigma_group: str | None = None,
                   thin: int = 1) -> PosteriorDraws:
    """Posterior draws of a saved Bayesian fit (see :mod:`bayesfp.bayes.io`).

    Parameters
    ----------
    tree : xarray.DataTree or path
        A fit, or the path of its NetCDF file (loaded with its hash checked).
    group : str, optional
        For a pooled fit, use this group's precision sensitivity (default: the global one,
        the mean over groups).
    sigma_group : str, optional
        For a fit with one noise sd per group, the group a new run would belong to (default:
        the root mean square over groups).
    thin : int
        Keep every thin-th draw.

    Returns
    -------
    PosteriorDraws
    """
    from bayesfp.bayes.derived import coefficients
    from bayesfp.bayes.io import fit_info, fit_table, load_fit

    if not hasattr(tree, "children"):
        tree = load_fit(tree)
    if thin < 1:
        raise BayesfpInputError(f"thin: must be at least 1, got {thin}")
    info = fit_info(tree)
    coefs = coefficients(tree, group)
    params = {k: (_flatten(v)[::thin] if hasattr(v, "dims") else float(v))
              for k, v in coefs.items()}
    sig = tree["posterior"]["sigma"]
    if "sigma_group" in sig.dims:
        if sigma_group is None:
            sigma = np.sqrt((sig ** 2).mean("sigma_group"))
        else:
            if sigma_group not in list(sig["sigma_group"].values):
                raise BayesfpInputError(
                    f"sigma_group: {sigma_group!r} has no fitted noise sd (groups: "
                    f"{', '.join(map(str, sig['sigma_group'].values))})")
            sigma = sig.sel(sigma_group=sigma_group)
    else:
        sigma = sig
    sigma = _new_run_sd(tree["posterior"], info, sigma)
    from bayesfp.bayes.terms import has_format_terms, log_gamma_shift

    shift = None
    if "log_gamma" in params and has_format_terms(info):
        post, cache = tree["posterior"].to_dataset(), {}

        def shift(E, M, log2B):
            key = (float(E), float(M), float(log2B))
            if key not in cache:  # one draw of an unseen level's offset per format
                cache[key] = log_gamma_shift(post, info, [E], [M], log2B)[::thin, 0]
            return cache[key]
    from bayesfp.bayes.terms import discrepancy_paths

    disc = discrepancy_paths(tree["posterior"].to_dataset(), info)
    return PosteriorDraws(info["law"], params, sigma[::thin],
                          robust=bool(info.get("robust", False)),
                          inputs_kw=info.get("inputs_kw") or {},
                          runs=fit_table(tree, fitted_only=True), format_shift=shift,
                          discrepancy=None if disc is None else disc.take(slice(None, None, thin)))
