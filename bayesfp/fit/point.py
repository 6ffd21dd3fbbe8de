"""Point fits of any law: summed Huber loss on log-loss, L-BFGS from a grid, bootstrap intervals.

This is the procedure the Chinchilla replication (Besiroglu et al. 2024) asks for: minimise
``sum_i Huber_delta(log L_pred_i - log L_obs_i)`` with delta = 1e-3, by L-BFGS started from the
best points of a grid of initial values, and resample runs to get intervals. It is the baseline
the Bayesian fits must beat.
"""

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from bayesfp.errors import BayesfpInputError
from bayesfp.laws.base import Law
from bayesfp.laws.inputs import law_inputs
from bayesfp.laws.registry import get_law
from bayesfp.runs.select import fit_selection

HUBER_DELTA = 1e-3

# Candidate starting values per coefficient, in fit space (log for positive coefficients).
_GRID = {
    "n": (0.0, 5.0, 10.0, 15.0), "d": (0.0, 5.0, 10.0, 15.0),
    "alpha": (0.1, 0.3, 0.6), "beta": (0.1, 0.3, 0.6),
    "gamma": (0.0, 5.0, 10.0, 15.0), "delta": (1.0, 3.0), "nu": (1.0, 3.0),
    "alpha_q": (0.2, 0.5), "beta_q": (0.2, 0.5),
    "gamma_w": (0.0, 1.0, 2.0), "gamma_a": (0.0, 1.0, 2.0), "gamma_kv": (0.0, 1.0),
    "C_T": (-5.0, 0.0), "gamma_D": (0.2, 0.5), "gamma_N": (0.2, 0.5), "gamma_post": (0.0, 1.0),
    "n_w": (0.0,), "n_a": (0.0,), "n_kv": (0.0,),
}
_BOUNDS = {
    "alpha": (1e-3, 3.0), "beta": (1e-3, 3.0), "alpha_q": (-3.0, 3.0), "beta_q": (-3.0, 3.0),
    "delta": (0.0, 15.0), "nu": (0.0, 15.0), "gamma_D": (-3.0, 3.0), "gamma_N": (-3.0, 3.0),
    "n_w": (-8.0, 8.0), "n_a": (-8.0, 8.0), "n_kv": (-8.0, 8.0),
}
_LOG_BOUNDS = (-30.0, 60.0)
_LBFGS_OPTIONS = {"maxiter": 3000, "maxfun": 10000, "ftol": 1e-12, "gtol": 1e-9}


def huber(r, delta: float = HUBER_DELTA, xp=np):
    """Huber loss of residuals ``r`` (elementwise), in ``numpy`` or ``pytensor.tensor``."""
    a = xp.abs(r)
    return xp.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta))


@dataclass
class PointFit:
    """Result of :func:`fit_point`.

    Attributes
    ----------
    law : str
        Law name.
    estimates : dict
        Coefficient estimates (natural units) on all runs.
    boot : pandas.DataFrame
        One row per bootstrap replicate, one column per free coefficient.
    residuals : numpy.ndarray, shape (run,)
        ``log L_obs - log L_pred`` on the fitted runs.
    objective : float
        Summed Huber loss at the estimate.
    n_runs : int
        Runs in the fit (ok runs only).
    fixed : dict
        Coefficients held fixed.
    run_ids : list of str
        The fitted runs.
    """

    law: str
    estimates: dict
    boot: pd.DataFrame
    residuals: np.ndarray
    objective: float
    n_runs: int
    fixed: dict = field(default_factory=dict)
    run_ids: list = field(default_factory=list)
    excluded: dict = field(default_factory=dict)

    def summary(self, level: float = 0.9) -> pd.DataFrame:
        """Estimates with percentile bootstrap intervals at ``level``."""
        q = (1.0 - level) / 2.0
        rows = []
        for name, est in self.estimates.items():
            row = {"param": name, "estimate": est, "fixed": name in self.fixed}
            if name in self.boot.columns and len(self.boot):
                col = self.boot[name].to_numpy()
                row.update(lo=np.nanquantile(col, q), hi=np.nanquantile(col, 1 - q),
                           sd=np.nanstd(col))
            else:
                row.update(lo=np.nan, hi=np.nan, sd=np.nan)
            rows.append(row)
        return pd.DataFrame(rows).set_index("param")

    def interval(self, name: str, level: float = 0.9) -> tuple[float, float]:
        """Percentile bootstrap interval of one coefficient."""
        s = self.summary(level)
        return float(s.loc[name, "lo"]), float(s.loc[name, "hi"])


_COMPILED: dict = {}


def _compiled_value_and_grad(law: Law, free: tuple, fixed: tuple):
    """PyTensor function (theta, logy, *inputs) -> (summed Huber loss, gradient), cached.

    The law's own expression is evaluated on PyTensor variables, so the gradient is exact.
    """
    key = (law.name, free, fixed)
    if key not in _COMPILED:
        import pytensor
        import pytensor.tensor as pt

        theta = pt.dvector("theta")
        logy = pt.dvector("logy")
        xs = [pt.dvector(k) for k in law.inputs]
        p = dict(fixed)
        for i, name in enumerate(free):
            p[("log_" + name) if law.param(name).positive else name] = theta[i]
        r = pt.log(law.loss(p, dict(zip(law.inputs, xs, strict=True)), xp=pt)) - logy
        h = huber(r, xp=pt).sum()
        _COMPILED[key] = pytensor.function([theta, logy, *xs], [h, pytensor.grad(h, theta)])
    return _COMPILED[key]


class _Objective:
    def __init__(self, law: Law, free: list, fixed: dict, x: dict, logy: np.ndarray):
        self.law, self.free, self.fixed, self.x, self.logy = law, free, fixed, x, logy
        self._fg = None

    def value_and_grad(self, theta):
        if self._fg is None:
            self._fg = _compiled_value_and_grad(self.law, tuple(self.free),
                                                tuple(sorted(self.fixed.items())))
        v, g = self._fg(np.asarray(theta, dtype=float), self.logy,
                        *[self.x[k] for k in self.law.inputs])
        if not np.isfinite(v) or not np.all(np.isfinite(g)):
            return 1e30, np.zeros_like(theta)
        return float(v), np.asarray(g, dtype=float)

    def params(self, theta) -> dict:
        p = dict(self.fixed)
        for name, v in zip(self.free, np.moveaxis(np.asarray(theta), -1, 0), strict=True):
            p[("log_" + name) if self.law.param(name).positive else name] = v
        return p

    def residuals(self, theta) -> np.ndarray:
        pred = self.law.loss(self.params(theta), self.x)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log(pred) - self.logy

    def batch(self, thetas: np.ndarray) -> np.ndarray:
        """Objective for many parameter vectors at once: thetas (K, P) -> (K,)."""
        xs = {k: v[None, :] for k, v in self.x.items()}
        p = {k: (np.asarray(v)[:, None] if np.ndim(v) else v)
             for k, v in self.params(thetas).items()}
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            r = np.log(self.law.loss(p, xs)) - self.logy[None, :]
            v = np.sum(huber(r), axis=1)
        return np.where(np.isfinite(v), v, np.inf)


def _bounds(law: Law, free: list, eps_hi: float) -> list:
    out = []
    for name in free:
        if law.param(name).positive:
            out.append(_LOG_BOUNDS)
        elif name == "eps":
            out.append((0.0, eps_hi))
        else:
            out.append(_BOUNDS.get(name, (-10.0, 10.0)))
    return out


def _grid(law: Law, free: list, logy: np.ndarray, max_points: int = 200_000) -> np.ndarray:
    axes = []
    for name in free:
        if name == "eps":
            lmin = float(np.exp(logy.min()))
            axes.append((0.5 * lmin, 0.8 * lmin, 0.95 * lmin))
        else:
            axes.append(_GRID.get(name, (0.0, 1.0)))
    size = int(np.prod([len(a) for a in axes]))
    if size <= max_points:
        return np.array(list(itertools.product(*axes)), dtype=float)
    rng = np.random.default_rng(0)
    return np.stack([rng.choice(a, size=max_points) for a in axes], axis=1).astype(float)


def _minimise(obj: _Objective, starts: np.ndarray, bounds: list):
    best = None
    for s in starts:
        res = minimize(obj.value_and_grad, s, jac=True, method="L-BFGS-B", bounds=bounds,
                       options=_LBFGS_OPTIONS)
        if best is None or res.fun < best.fun:
            best = res
    return best


def _default_fixed(law: Law, x: dict) -> dict:
    fixed = {p.name: p.optional for p in law.params if p.optional is not None}
    if law.name.startswith("kumar"):
        for t in ("w", "a", "kv"):
            if np.ptp(x[f"P_{t}"]) == 0:   # constant bits: sensitivity not identifiable
                fixed[f"gamma_{t}"] = 1.0
    return fixed


def fit_point(runs: pd.DataFrame, law: Law | str = "sun", n_boot: int = 200,
              fixed: Mapping | None = None, seed: int = 0, n_starts: int = 5,
              inputs_kw: Mapping | None = None, progress=None) -> PointFit:
    """Fit a law to a run table by summed Huber loss on log-loss, with bootstrap intervals.

    Parameters
    ----------
    runs : pandas.DataFrame
        Validated run table (``docs/runs.md``). Only the runs
        :func:`bayesfp.runs.select.fit_selection` keeps are fitted; the others are counted in
        ``PointFit.excluded``.
    law : str or Law
        ``chinchilla``, ``kumar``, ``sun`` or ``sun_sep``.
    n_boot : int
        Bootstrap replicates (runs resampled with replacement). 0 for none.
    fixed : mapping, optional
        Coefficients to hold fixed (natural units). Kumar's offsets default to 0, and the
        sensitivity of a precision that never varies in the data is fixed (it is not identified).
    seed : int
        Seed of the bootstrap.
    n_starts : int
        Number of best grid points L-BFGS starts from.
    inputs_kw : mapping, optional
        Passed to :func:`bayesfp.laws.law_inputs` (``channel_log2b``, ``tensor_log2b``).
    progress : callable, optional
        Called with the number of finished bootstrap replicates.

    Returns
    -------
    PointFit
    """
    law = get_law(law)
    selection = fit_selection(runs, (inputs_kw or {}).get("tensor_log2b"))
    ok = runs[selection.in_fit]
    excluded = selection.excluded
    if len(ok) == 0:
        raise BayesfpInputError("runs: no run with status 'ok' to fit")
    x = law_inputs(ok, **(inputs_kw or {}))
    x = {k: x[k] for k in law.inputs}
    logy = np.log(ok["loss"].to_numpy(dtype=float))
    fix = _default_fixed(law, x)
    for k, v in (fixed or {}).items():
        law.param(k)
        fix[k] = float(v)
    free = [p.name for p in law.params if p.name not in fix]
    if len(ok) < len(free):
        raise BayesfpInputError(f"runs: {len(ok)} ok runs cannot identify {len(free)} coefficients "
                                f"of law {law.name!r}")
    fixed_params = {k: v for k, v in fix.items()}
    obj = _Objective(law, free, fixed_params, x, logy)
    bounds = _bounds(law, free, eps_hi=float(np.exp(logy.min())))
    grid = _grid(law, free, logy)
    vals = np.concatenate([obj.batch(g) for g in np.array_split(grid, max(1, len(grid) // 5000))])
    starts = grid[np.argsort(vals)[:n_starts]]
    best = _minimise(obj, starts, bounds)
    theta = best.x
    if not np.isfinite(best.fun) or not np.all(np.isfinite(theta)):
        raise BayesfpInputError(f"fit: the {law.name} point fit failed: the objective is not "
                                "finite at any start (the law cannot predict these runs)")
    if best.nit == 0:
        raise BayesfpInputError(f"fit: the {law.name} point fit failed: L-BFGS did not move "
                                f"from its start ({best.message})")

    rng = np.random.default_rng(seed)
    boot = []
    n = len(ok)
    for i in range(n_boot):
        idx = rng.integers(0, n, size=n)
        ob = _Objective(law, free, fixed_params, {k: v[idx] for k, v in x.items()}, logy[idx])
        res = minimize(ob.value_and_grad, theta, jac=True, method="L-BFGS-B", bounds=bounds,
                       options=_LBFGS_OPTIONS)
        boot.append(_to_natural(law, free, res.x))
        if progress is not None:
            progress(i + 1)
    est = _to_natural(law, free, theta)
    est.update(fix)
    est = {p.name: est[p.name] for p in law.params}
    return PointFit(
        law=law.name, estimates=est,
        boot=pd.DataFrame(boot, columns=free) if boot else pd.DataFrame(columns=free),
        residuals=-obj.residuals(theta), objective=float(best.fun), n_runs=n,
        fixed=dict(fix), run_ids=list(ok["run_id"]) if "run_id" in ok else [],
        excluded=excluded,
    )


def _to_natural(law: Law, free: list, theta) -> dict:
    return {name: float(np.exp(v)) if law.param(name).positive else float(v)
            for name, v in zip(free, theta, strict=True)}
