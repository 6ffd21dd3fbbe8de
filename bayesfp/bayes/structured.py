"""Structured likelihoods for the law models: what the runs share besides the law.

The plain models of :mod:`bayesfp.bayes.models` treat every run as an independent draw around
the law. Real runs are not: every format trained at one model shape and token count (one *cell*,
a pair (N, D)) shares that cell's deviation from the base law; runs of one cell that share a seed
share data order and initialisation; and seed-to-seed noise shrinks as training gets longer. The
structured models add, on log-loss (log nats/token),

.. math::

    \\log L_i = \\log \\hat L(x_i; \\theta_{g(i)}) + u_N(\\log N_i) + u_D(\\log D_i)
                + c_{\\mathrm{cell}(i)} + s_{\\mathrm{cell}(i), \\mathrm{seed}(i)}
                + \\sigma(D_i)\\, \\epsilon_i

with each term an option:

``cell``
    :math:`c \\sim \\mathrm{Normal}(0, \\tau_{cell})` per (N, D) cell (non-centred).
``seed_effect``
    :math:`s \\sim \\mathrm{Normal}(0, \\tau_{seed})` per (N, D, seed): paired runs.
``sigma_d``
    :math:`\\log \\sigma(D) = \\log \\sigma_0 + b_\\sigma (\\log D - c_D)` instead of one sd.
``robust``
    Student-t noise (:data:`bayesfp.bayes.models.ROBUST_NU` degrees of freedom).
``discrepancy``
    :math:`u_N`, :math:`u_D`: Brownian motions over log N and log D (increment variance
    :math:`\\tau_{dN}^2 |\\Delta \\log N|`), centred over the fitted levels. Inside the
    fitted range they absorb smooth misfit of the law the cell effects cannot; beyond it a
    prediction continues from the edge level with variance growing linearly in the log distance,
    at the rate learned from the in-range misfit.
``pool``
    ``{coefficient: column}``: partial pooling of any law coefficient by any run-table column
    (``eps``, ``n``, ``d``, ``alpha``, ``beta``, ``gamma``, ...): each group's coefficient is the
    global one plus a sum-to-zero offset, :math:`\\log n_g = \\log n + \\tau_n z_g`
    (positive coefficients and ``eps`` on the log scale, exponents additively);
    ``pooling="none"`` gives independent wide offsets instead.

Predictions for new runs (:meth:`StructuredMixin.predict`) draw fresh cell and seed effects for
cells the fit has not seen, so a new (N, D) carries the spread of cell deviations, and the
discrepancy extrapolates as above.
"""

import hashlib
import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayesfp.bayes import models as bm
from bayesfp.bayes import priors as pr
from bayesfp.laws.inputs import law_inputs

STRUCTURE = ("cell", "seed_effect", "sigma_d", "discrepancy")

# Scales of structural priors (log-loss units unless stated).
STRUCTURE_PRIORS = {
    "tau_cell": pr.Prior("halfnormal", 0.0, 0.05),
    "tau_seed": pr.Prior("halfnormal", 0.0, 0.03),
    "log_sigma": pr.Prior("normal", float(np.log(0.01)), 1.5),
    "sigma_slope": pr.Prior("normal", 0.0, 1.0),
    "tau_dN": pr.Prior("halfnormal", 0.0, 0.03),
    "tau_dD": pr.Prior("halfnormal", 0.0, 0.03),
}
# Prior scale of a pooled coefficient's group spread: log units for scales (n, d, gamma, eps),
# natural units for exponents.
POOL_TAU = {"log": 0.5, "exponent": 0.1}


def cell_keys(df: pd.DataFrame) -> np.ndarray:
    """One string per run naming its (N, D) cell."""
    return (df["N"].astype(float).map("{:.6g}".format) + "|"
            + df["D"].astype(float).map("{:.6g}".format)).to_numpy()


def seed_keys(df: pd.DataFrame) -> np.ndarray:
    """One string per run naming its (N, D, seed)."""
    seed = df["seed"].astype(str) if "seed" in df else pd.Series("0", index=df.index)
    return cell_keys(df) + "|" + seed.to_numpy()


def parse_pool(specs) -> dict:
    """``["eps,n,d=dataset", "gamma=operands"]`` (or one such string, or a mapping) ->
    ``{"eps": "dataset", "n": "dataset", "d": "dataset", "gamma": "operands"}``."""
    if specs is None:
        return {}
    if isinstance(specs, Mapping):
        return {str(k): str(v) for k, v in specs.items()}
    if isinstance(specs, str):
        specs = [specs]
    out = {}
    for spec in specs:
        if "=" not in spec:
            raise ValueError(f"pool: expected COEFS=COLUMN, got {spec!r}")
        coefs, col = spec.split("=", 1)
        for c in coefs.split(","):
            if c.strip():
                out[c.strip()] = col.strip()
    return out


def _index(values: np.ndarray, levels: list) -> np.ndarray:
    lookup = {v: i for i, v in enumerate(levels)}
    return np.array([lookup.get(v, -1) for v in values], dtype=int)


class StructuredMixin:
    """Adds the structure options of this module to a :class:`~bayesfp.bayes.models.LawModel`.

    Parameters
    ----------
    runs : pandas.DataFrame
        Validated run table (needs ``seed`` for ``seed_effect``).
    cell, seed_effect, sigma_d, discrepancy : bool
        Structure terms (module docstring).
    pool : mapping or list of str, optional
        Coefficients to pool and the column each is pooled by (:func:`parse_pool`).
    **kw
        Keywords of :class:`~bayesfp.bayes.models.LawModel` (``pool_by`` must stay None:
        use ``pool={"gamma": column}``).
    """

    def __init__(self, runs: pd.DataFrame, *, cell: bool = False, seed_effect: bool = False,
                 sigma_d: bool = False, discrepancy: bool = False, pool=None, **kw):
        if kw.get("pool_by") is not None:
            raise ValueError("pool_by: use pool={'gamma': column} with structured models")
        self.cell, self.seed_effect = bool(cell), bool(seed_effect)
        self.sigma_d, self.discrepancy = bool(sigma_d), bool(discrepancy)
        self.pool = parse_pool(pool)
        super().__init__(runs, **kw)
        names = self.law.param_names
        for c in self.pool:
            if c not in names or c in self.fixed:
                raise ValueError(f"pool: {c!r} is not a fitted coefficient of law "
                                 f"{self.law.name!r} (choose from {', '.join(names)})")
        self._structure()

    # ------------------------------------------------------------------ configuration

    @property
    def default_sampler_config(self):
        cfg = super().default_sampler_config
        if self.pool or self.cell or self.seed_effect or self.discrepancy:
            cfg.target_accept = 0.95
        return cfg

    @property
    def default_priors(self) -> dict:
        out = super().default_priors
        out.update(STRUCTURE_PRIORS)
        for c in self.pool:
            kind = "log" if (self.law.param(c).positive or c == "eps") else "exponent"
            out[f"tau_{c}"] = pr.Prior("halfnormal", 0.0, POOL_TAU[kind])
        return out

    def _structure(self) -> None:
        ok = self.ok
        logN, logD = np.log(self.x["N"]), np.log(self.x["D"])
        self.cells = sorted(set(cell_keys(ok)))
        self.cell_idx = _index(cell_keys(ok), self.cells)
        self.seed_cells = sorted(set(seed_keys(ok)))
        self.seed_idx = _index(seed_keys(ok), self.seed_cells)
        self.levels_N = sorted(set(np.round(logN, 9)))
        self.levels_D = sorted(set(np.round(logD, 9)))
        self.iN = _index(np.round(logN, 9), self.levels_N)
        self.iD = _index(np.round(logD, 9), self.levels_D)
        self.pool_groups, self.pool_idx = {}, {}
        q = self._quantized()
        for c, col in self.pool.items():
            if col not in ok:
                raise ValueError(f"pool: run table has no column {col!r}")
            vals = ok[col].astype(str).to_numpy()
            precision = c in self.law.penalty_params or c.startswith("gamma")
            mask = q if precision else np.ones(len(ok), dtype=bool)
            groups = sorted(set(vals[mask]))
            if len(groups) < 2:
                raise ValueError(f"pool: column {col!r} has fewer than 2 groups for {c!r}")
            self.pool_groups[c] = groups
            self.pool_idx[c] = np.where(mask, _index(vals, groups), -1)

    def config(self) -> dict:
        out = super().config()
        out.update({"structure": {k: getattr(self, k) for k in STRUCTURE},
                    "pool": self.pool, "pool_groups": getattr(self, "pool_groups", {})})
        return out

    def _key(self) -> str:
        h = hashlib.sha256(super()._key().encode())
        h.update(json.dumps(self.config(), sort_keys=True, default=str).encode())
        for a in (self.cell_idx, self.seed_idx, self.iN, self.iD, *self.pool_idx.values()):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    # ------------------------------------------------------------------ model

    def _coef_key(self, p: Mapping, c: str) -> str:
        return ("log_" + c) if ("log_" + c) in p else c

    def _apply_pool(self, p: dict, offsets: Mapping, idx: Mapping, xp) -> dict:
        """Add group offsets (arrays over runs, 0 where the run has no group) to ``p``."""
        p = dict(p)
        for c in self.pool:
            off = offsets[c]
            key = self._coef_key(p, c)
            if c == "eps":
                p["eps"] = p["eps"] * xp.exp(off)
            else:
                p[key] = p[key] + off
        return p

    def _bm_levels(self, levels: list, z, tau, xp):
        """Brownian motion at sorted levels from standard normal increments z (len - 1),
        centred to mean zero over the levels."""
        gaps = np.sqrt(np.diff(np.asarray(levels, dtype=float)))
        if xp is np:
            inc = tau[..., None] * z * gaps
            walk = np.concatenate([np.zeros(inc.shape[:-1] + (1,)), np.cumsum(inc, -1)], -1)
            return walk - walk.mean(-1, keepdims=True)
        walk = xp.concatenate([xp.zeros(1), xp.cumsum(tau * z * gaps)])
        return walk - walk.mean()

    def build_model(self):
        if self._model is not None:
            return self._model
        import pymc as pm
        import pytensor.tensor as pt

        coords = {"run": self.run_ids}
        for c, groups in self.pool_groups.items():
            coords[f"group_{c}"] = groups
        if self.cell:
            coords["cell"] = self.cells
        if self.seed_effect:
            coords["seed_cell"] = self.seed_cells
        if self.discrepancy:
            coords["step_N"] = list(range(len(self.levels_N) - 1))
            coords["step_D"] = list(range(len(self.levels_D) - 1))
        x = {k: self.x[k] for k in self.law.inputs}
        with pm.Model(coords=coords) as m:
            obs = pm.Data("log_loss_obs", self.y, dims="run")
            s = {name: self.priors[name].to_pymc(name) for name in self.sampled}
            p = self.law_params(s)
            for name in self.deterministics():
                pm.Deterministic(name, p[name])
            offs = {}
            for c in self.pool:
                dim = f"group_{c}"
                if self.pooling == "partial":
                    tau = self.priors[f"tau_{c}"].to_pymc(f"tau_{c}")
                    z = pm.ZeroSumNormal(f"z_{c}", sigma=1.0, dims=dim)
                    off = pm.Deterministic(f"{c}_offset", tau * z, dims=dim)
                else:
                    off = pm.ZeroSumNormal(f"{c}_offset", sigma=pr.NO_POOLING_SD, dims=dim)
                full = pt.concatenate([pt.zeros(1), off])
                offs[c] = full[self.pool_idx[c] + 1]
            p = self._apply_pool(p, offs, self.pool_idx, pt)
            mu = pt.log(self.law.loss(p, x, xp=pt))
            if self.cell:
                tau = self.priors["tau_cell"].to_pymc("tau_cell")
                z = pm.Normal("z_cell", 0.0, 1.0, dims="cell")
                mu = mu + (tau * z)[self.cell_idx]
            if self.seed_effect:
                tau = self.priors["tau_seed"].to_pymc("tau_seed")
                z = pm.Normal("z_seed", 0.0, 1.0, dims="seed_cell")
                mu = mu + (tau * z)[self.seed_idx]
            if self.discrepancy:
                for ax, levels, idx in (("N", self.levels_N, self.iN),
                                        ("D", self.levels_D, self.iD)):
                    if len(levels) < 2:
                        continue
                    tau = self.priors[f"tau_d{ax}"].to_pymc(f"tau_d{ax}")
                    z = pm.Normal(f"z_d{ax}", 0.0, 1.0, dims=f"step_{ax}")
                    mu = mu + self._bm_levels(levels, z, tau, pt)[idx]
            if self.sigma_d:
                ls = self.priors["log_sigma"].to_pymc("log_sigma")
                slope = self.priors["sigma_slope"].to_pymc("sigma_slope")
                sd = pt.exp(ls + slope * (np.log(self.x["D"]) - self.centres["cD"]))
            else:
                sd = self.priors["sigma"].to_pymc("sigma")
            if self.robust:
                pm.StudentT("log_loss", nu=bm.ROBUST_NU, mu=mu, sigma=sd, observed=obs,
                            dims="run")
            else:
                pm.Normal("log_loss", mu=mu, sigma=sd, observed=obs, dims="run")
        self._model = m
        return m

    # ------------------------------------------------------------------ prediction

    def predict(self, tree, runs: pd.DataFrame, noise: bool = True, seed: int = 0,
                structure: bool = True) -> np.ndarray:
        """Posterior predictive log-loss of runs, new or fitted.

        Parameters
        ----------
        tree : xarray.DataTree
            A fit of this model (:meth:`fit`).
        runs : pandas.DataFrame
            Rows with N, D, E, M, B, operands (and ``seed``, pooled columns).
        noise : bool
            Add the observation noise (a new run's measured loss) or not (the mean).
        seed : int
            Seed of the noise and of the effects drawn for unseen cells, seeds and groups.
        structure : bool
            Include cell, seed and discrepancy terms (False: the law alone).

        Returns
        -------
        numpy.ndarray, shape (chain * draw, run)
            Log-loss (log nats/token).
        """
        rng = np.random.default_rng(seed)
        post = tree["posterior"].to_dataset()
        runs = runs.reset_index(drop=True)
        n = len(runs)

        def draws(name):
            v = post[name]
            extra = [d for d in v.dims if d not in ("chain", "draw")]
            a = np.asarray(v.transpose("chain", "draw", *extra).values, dtype=float)
            return a.reshape((-1,) + a.shape[2:])

        S = post.sizes["chain"] * post.sizes["draw"]
        x = law_inputs(runs, **self.inputs_kw)
        x = {k: x[k] for k in self.law.inputs}
        s = {name: draws(name)[:, None] for name in self.sampled}
        p = self.law_params(s)
        offs, idx = {}, {}
        q = x["log2B"] > 0 if "log2B" in x else np.ones(n, dtype=bool)
        for c, col in self.pool.items():
            groups = self.pool_groups[c]
            vals = runs[col].astype(str).to_numpy()
            gi = _index(vals, groups)
            precision = c in self.law.penalty_params or c.startswith("gamma")
            off = np.zeros((S, n))
            fitted = draws(f"{c}_offset")
            scale = (draws(f"tau_{c}") if self.pooling == "partial"
                     else np.full(S, pr.NO_POOLING_SD))
            for i in range(n):
                if precision and not q[i]:
                    continue
                off[:, i] = (fitted[:, gi[i]] if gi[i] >= 0
                             else scale * rng.standard_normal(S))
            offs[c], idx[c] = off, gi
        p = self._apply_pool(p, offs, idx, np)
        with np.errstate(invalid="ignore", over="ignore"):
            mu = np.log(np.asarray(self.law.loss(p, x, xp=np), dtype=float))
        mu = np.broadcast_to(mu, (S, n)).copy()
        if structure:
            mu += self._effects(draws, runs, S, rng)
        if noise:
            if self.sigma_d:
                sd = np.exp(draws("log_sigma")[:, None] + draws("sigma_slope")[:, None]
                            * (np.log(x["D"])[None, :] - self.centres["cD"]))
            else:
                sd = draws("sigma")[:, None]
            z = (rng.standard_t(bm.ROBUST_NU, (S, n)) if self.robust
                 else rng.standard_normal((S, n)))
            mu += sd * z
        return mu

    def _effects(self, draws, runs, S, rng) -> np.ndarray:
        n = len(runs)
        out = np.zeros((S, n))
        if self.cell:
            out += self._iid_effect(draws("tau_cell"), draws("z_cell"), cell_keys(runs),
                                    self.cells, rng)
        if self.seed_effect:
            out += self._iid_effect(draws("tau_seed"), draws("z_seed"), seed_keys(runs),
                                    self.seed_cells, rng)
        if self.discrepancy:
            for ax, levels in (("N", self.levels_N), ("D", self.levels_D)):
                if len(levels) < 2:
                    continue
                tau, z = draws(f"tau_d{ax}"), draws(f"z_d{ax}")
                walk = self._bm_levels(levels, z, tau, np)
                out += _bm_at(np.log(runs[ax].to_numpy(dtype=float)), levels, walk, tau, rng)
        return out

    @staticmethod
    def _iid_effect(tau, z, keys, levels, rng) -> np.ndarray:
        """Fitted effects where the key was seen, fresh Normal(0, tau) draws where not (one draw
        per unseen key, shared by its runs). Shape (S, run)."""
        S = len(tau)
        idx = _index(keys, levels)
        out = np.empty((S, len(keys)))
        fresh = {}
        for i, (k, j) in enumerate(zip(keys, idx, strict=True)):
            if j >= 0:
                out[:, i] = tau * z[:, j]
            else:
                if k not in fresh:
                    fresh[k] = tau * rng.standard_normal(S)
                out[:, i] = fresh[k]
        return out


def _bm_at(logx: np.ndarray, levels: list, walk: np.ndarray, tau: np.ndarray,
           rng) -> np.ndarray:
    """Brownian motion values at log inputs, given its values ``walk`` (S, levels) at the
    fitted levels: exact at a level, a Brownian bridge between levels, the edge value plus
    Normal(0, tau^2 * distance) beyond the range. Shape (S, run); one draw per distinct input."""
    lv = np.asarray(levels, dtype=float)
    S = walk.shape[0]
    out = np.empty((S, len(logx)))
    cache = {}
    for i, v in enumerate(np.round(logx, 9)):
        if v in cache:
            out[:, i] = cache[v]
            continue
        j = int(np.searchsorted(lv, v))
        if j < len(lv) and abs(lv[j] - v) < 1e-9:
            val = walk[:, j]
        elif j == 0:
            val = walk[:, 0] + tau * np.sqrt(lv[0] - v) * rng.standard_normal(S)
        elif j == len(lv):
            val = walk[:, -1] + tau * np.sqrt(v - lv[-1]) * rng.standard_normal(S)
        else:
            a, b = v - lv[j - 1], lv[j] - v
            mean = (walk[:, j - 1] * b + walk[:, j] * a) / (a + b)
            val = mean + tau * np.sqrt(a * b / (a + b)) * rng.standard_normal(S)
        cache[v] = val
        out[:, i] = val
    return out


class StructuredSunModel(StructuredMixin, bm.SunModel):
    """Sun et al. 2025 law with the structure options of this module."""


class StructuredSunSepModel(StructuredMixin, bm.SunSepModel):
    """Sun law with separate penalty exponents and the structure options of this module."""


class StructuredChinchillaModel(StructuredMixin, bm.ChinchillaModel):
    """Chinchilla law with the structure options of this module."""


class StructuredKumarModel(StructuredMixin, bm.KumarModel):
    """Kumar et al. 2024 law with the structure options of this module."""


STRUCTURED = {cls.law_name: cls for cls in (StructuredChinchillaModel, StructuredKumarModel,
                                            StructuredSunModel, StructuredSunSepModel)}


def structured_model(law: str, runs: pd.DataFrame, **kw):
    """The structured model class of a law, built on a run table (keywords as in
    :class:`StructuredMixin` and :class:`~bayesfp.bayes.models.LawModel`)."""
    from bayesfp.laws.registry import get_law

    name = get_law(law).name
    if name not in STRUCTURED:
        raise ValueError(f"law: no structured model for {name!r}")
    return STRUCTURED[name](runs, **kw)
