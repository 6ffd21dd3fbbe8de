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
    :math:`c \\sim \\mathrm{Normal}(0, \\tau_{cell})` per (N, D) cell (non-centred; with
    ``centred=True`` sampled directly as ``cell_effect``, better when the runs pin each cell
    down).
``cell_d``
    the cell effects' sd depends on D,
    :math:`\\log \\tau_{cell}(D) = \\log \\tau_c + b_c (\\log D - c_D)` (implies ``cell``).
``seed_effect``
    :math:`s \\sim \\mathrm{Normal}(0, \\tau_{seed})` per (N, D, seed): paired runs. With
    ``sigma_d`` its sd follows the noise sd in D, :math:`\\tau_{seed} e^{b_\\sigma (\\log D - c_D)}`
    (seed-to-seed variation shrinks as runs get longer).
``sigma_d``
    :math:`\\log \\sigma(D) = \\log \\sigma_0 + b_\\sigma (\\log D - c_D)` instead of one sd (the
    posterior's ``sigma`` is then the sd at the centre, :math:`\\sigma_0`).
``robust``
    Student-t noise (:data:`bayesfp.bayes.likelihood.ROBUST_NU` degrees of freedom).
``discrepancy``
    :math:`u_N`, :math:`u_D`: Brownian motions over log N and log D (increment variance
    :math:`\\tau_{dN}^2 |\\Delta \\log N|`), centred over the fitted levels. Inside the
    fitted range they absorb smooth misfit of the law the cell effects cannot; beyond it a
    prediction continues from the edge level with variance growing linearly in the log distance,
    at the rate learned from the in-range misfit. The motions are constant within a cell, so
    in the models with the cell or seed effects integrated out they are integrated out with
    them (:func:`bayesfp.bayes.marginal.log_density_pt`'s ``design``) and drawn back after
    sampling (``z_dN``, ``z_dD``); only their rates are sampled.
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

from bayesfp import defaults
from bayesfp.bayes import models as bm
from bayesfp.bayes import priors as pr
from bayesfp.bayes import terms
from bayesfp.bayes.likelihood import observe
from bayesfp.bayes.marginal import (
    LOG_2PI,
    Groups,
    draw_design_effects,
    draw_effects,
    log_density_pt,
)
from bayesfp.errors import BayesfpInputError

STRUCTURE = ("cell", "cell_d", "seed_effect", "sigma_d", "discrepancy")

# Scales of structural priors (log-loss units unless stated).
FORMAT_EFFECTS = ("parametric", "flex")

STRUCTURE_PRIORS = {
    # kept away from 0 (5% quantile 0.07): the offsets are sampled centred, which a scale
    # near 0 would turn into a funnel; Sun's form is an approximation, not exact
    "tau_fmt": pr.Prior("lognormal", float(np.log(0.25)), 0.75),
    "log2b_power": pr.Prior("normal", 1.0, 1.0),
    "tau_cell": pr.Prior("halfnormal", 0.0, 0.05),
    "log_tau_cell": pr.Prior("normal", float(np.log(0.02)), 1.0),
    "tau_cell_slope": pr.Prior("normal", 0.0, 1.0),
    "tau_seed": pr.Prior("halfnormal", 0.0, 0.03),
    "log_sigma": pr.Prior("normal", float(np.log(0.01)), 1.5),
    "sigma_slope": pr.Prior("normal", 0.0, 1.0),
    "tau_dN": pr.Prior("halfnormal", 0.0, 0.03),
    "tau_dD": pr.Prior("halfnormal", 0.0, 0.03),
}
# Prior scale of a pooled coefficient's group spread: log units for scales (n, d, gamma, eps),
# natural units for exponents.
POOL_TAU = {"log": 0.5, "exponent": 0.1}


STRUCTURE_FLAGS = {"cell": "cell", "cell-d": "cell_d", "seed": "seed_effect",
                   "sigma-d": "sigma_d", "discrepancy": "discrepancy",
                   "log2b-power": "log2b_power"}


def structure_options(structure: str | None, pool: list[str] | None = None,
                 format_effect: str | None = None, law: str = defaults.LAW) -> dict:
    """Model keywords from the ``--structure cell,seed,...``, ``--pool`` and
    ``--format-effect`` options of the command line (the keywords of :class:`StructuredMixin`).

    ``structure=None`` is the default likelihood (:data:`bayesfp.defaults.STRUCTURE`, with the
    flexible format effect), ``"none"`` the plain one; ``format_effect=None`` is ``flex`` with
    any structure term and ``parametric`` without. A law with no precision term (chinchilla)
    drops the block-size power and format effect from the default and refuses them when asked.
    """
    from bayesfp.laws.registry import get_law

    precision = bool(get_law(law).penalty_params)
    asked = structure is not None
    items = [i.strip().lower() for i in (defaults.STRUCTURE if structure is None
                                         else structure).split(",")]
    kw = {}
    for item in items:
        if not item or item == "none":
            continue
        if item not in STRUCTURE_FLAGS:
            raise BayesfpInputError(f"structure: unknown term {item!r} (choose from "
                                    f"{', '.join(STRUCTURE_FLAGS)}, or none)")
        if item == "log2b-power" and not precision:
            if asked:
                raise BayesfpInputError(f"structure: log2b-power needs a law with a precision "
                                        f"term; {law!r} has none")
            continue
        kw[STRUCTURE_FLAGS[item]] = True
    if format_effect is None:
        format_effect = defaults.FORMAT_EFFECT if (kw and precision) else "parametric"
    elif format_effect != "parametric" and not precision:
        raise BayesfpInputError(f"format-effect: {format_effect!r} needs a law with a precision "
                                f"term; {law!r} has none")
    if pool:
        kw["pool"] = list(pool)
    if format_effect != "parametric":
        kw["format_effect"] = format_effect
    return kw


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
            raise BayesfpInputError(f"pool: expected COEFS=COLUMN, got {spec!r}")
        coefs, col = spec.split("=", 1)
        for c in coefs.split(","):
            if c.strip():
                out[c.strip()] = col.strip()
    return out


def flex_basis(levels, weights=None) -> np.ndarray:
    """Orthonormal basis (shape (level, level - 2)) of the per-level offsets of the flexible
    format effect: vectors v over the levels (exponent or mantissa widths w) with
    sum(weights * v) = 0 and sum(weights * v * log(w + 0.5)) = 0 (weights: runs per level;
    default equal). The offsets are departures from Sun's power law that change neither gamma
    nor the exponent (delta or nu) fitted to the runs, which the parametric terms keep; without
    the constraint an offset pattern and the exponent describe the same trend and the sampler
    must follow the ridge between them. Empty (0 columns) with fewer than 3 levels."""
    w = np.asarray(levels, dtype=float)
    if len(w) < 3:
        return np.zeros((len(w), 0))
    wt = np.ones_like(w) if weights is None else np.asarray(weights, dtype=float)
    trend = np.column_stack([wt, wt * np.log(w + 0.5)])
    q, _ = np.linalg.qr(trend, mode="complete")
    return q[:, 2:]


class StructuredMixin:
    """Adds the structure options of this module to a :class:`~bayesfp.bayes.models.LawModel`.

    Parameters
    ----------
    runs : pandas.DataFrame
        Validated run table (needs ``seed`` for ``seed_effect``).
    cell, cell_d, seed_effect, sigma_d, discrepancy : bool
        Structure terms (module docstring).
    pool : mapping or list of str, optional
        Coefficients to pool and the column each is pooled by (:func:`parse_pool`).
    **kw
        Keywords of :class:`~bayesfp.bayes.models.LawModel` (``pool_by`` must stay None:
        use ``pool={"gamma": column}``).
    """

    def __init__(self, runs: pd.DataFrame, *, cell: bool = False, cell_d: bool = False,
                 seed_effect: bool = False, sigma_d: bool = False, discrepancy: bool = False,
                 pool=None, format_effect: str = "parametric", log2b_power: bool = False,
                 marginal: bool = True, **kw):
        if kw.get("pool_by") is not None:
            raise BayesfpInputError("pool_by: use pool={'gamma': column} with structured models")
        if kw.get("sigma_by") is not None:
            raise BayesfpInputError("sigma_by: one noise sd per group does not combine with a "
                                    "structured likelihood (use sigma-d, or --structure none)")
        self.cell, self.cell_d = bool(cell or cell_d), bool(cell_d)
        self.seed_effect = bool(seed_effect)
        self.sigma_d, self.discrepancy = bool(sigma_d), bool(discrepancy)
        self.pool = parse_pool(pool)
        if format_effect not in FORMAT_EFFECTS:
            raise BayesfpInputError(f"format_effect: unknown {format_effect!r} "
                             f"(use {', '.join(FORMAT_EFFECTS)})")
        self.format_effect, self.log2b_power = format_effect, bool(log2b_power)
        self.marginal = (bool(marginal) and not kw.get("robust", False)
                         and (self.cell or self.seed_effect))
        self._generative = None
        super().__init__(runs, **kw)
        names = self.law.param_names
        for c in self.pool:
            if c not in names or c in self.fixed:
                raise BayesfpInputError(f"pool: {c!r} is not a fitted coefficient of law "
                                 f"{self.law.name!r} (choose from {', '.join(names)})")
        self._structure()

    # ------------------------------------------------------------------ configuration

    @property
    def default_sampler_config(self):
        """As the plain models; models with group or cell scales use the pooled models' higher
        target acceptance (their scales have funnels near 0), and models with the effects
        integrated out nutpie's low-rank mass matrix (their posterior is close to Gaussian, with
        a few correlated directions among the penalty terms)."""
        cfg = super().default_sampler_config
        if self.pool or self.cell or self.seed_effect or self.discrepancy:
            cfg.target_accept = defaults.TARGET_ACCEPT_POOLED
        if self.marginal:
            cfg.adaptation = "low_rank"
        return cfg

    @property
    def default_priors(self) -> dict:
        out = super().default_priors
        out.pop("tau", None)
        wanted = {"tau_cell": self.cell and not self.cell_d,
                  "log_tau_cell": self.cell_d, "tau_cell_slope": self.cell_d,
                  "tau_seed": self.seed_effect, "log_sigma": self.sigma_d,
                  "sigma_slope": self.sigma_d, "tau_dN": self.discrepancy,
                  "tau_dD": self.discrepancy, "tau_fmt": self.format_effect == "flex",
                  "log2b_power": self.log2b_power}
        out.update({k: v for k, v in STRUCTURE_PRIORS.items() if wanted[k]})
        if self.sigma_d:
            out.pop("sigma", None)
        for c in self.pool:
            kind = "log" if (self.law.param(c).positive or c == "eps") else "exponent"
            out[f"tau_{c}"] = pr.Prior("halfnormal", 0.0, POOL_TAU[kind])
        return out

    def _groups(self) -> None:
        super()._groups()
        self._drop_unidentified()

    def _drop_unidentified(self) -> None:
        """Turn off terms these runs cannot tell apart from another: a seed effect when every
        cell has one seed (it is then the cell effect), a cell effect when every cell holds one
        run (it is then the noise). Recorded in the configuration as ``dropped``."""
        cells, seeds = terms.cell_keys(self.ok), terms.seed_keys(self.ok)
        self.dropped = []
        if self.seed_effect and len(set(seeds)) == len(set(cells)):
            self.seed_effect = False
            self.dropped.append("seed")
        if self.cell and not self.seed_effect and len(set(cells)) == len(cells):
            self.cell = self.cell_d = False
            self.dropped.append("cell")
        self.marginal = self.marginal and (self.cell or self.seed_effect)

    def _structure(self) -> None:
        ok = self.ok
        logN, logD = np.log(self.x["N"]), np.log(self.x["D"])
        self.cells = sorted(set(terms.cell_keys(ok)))
        self.cell_idx = terms.index_of(terms.cell_keys(ok), self.cells)
        self.cell_logD = terms.cell_log_d(self.cells)
        self.seed_cells = sorted(set(terms.seed_keys(ok)))
        self.seed_idx = terms.index_of(terms.seed_keys(ok), self.seed_cells)
        self.effect_groups = Groups(self.seed_idx, terms.index_of(
            [k.rsplit("|", 1)[0] for k in self.seed_cells], self.cells))
        self.levels_N = sorted({float(v) for v in np.round(logN, 9)})
        self.levels_D = sorted({float(v) for v in np.round(logD, 9)})
        self.iN = terms.index_of(np.round(logN, 9), self.levels_N)
        self.iD = terms.index_of(np.round(logD, 9), self.levels_D)
        first = np.unique(self.cell_idx, return_index=True)[1]
        self.cell_iN, self.cell_iD = self.iN[first], self.iD[first]
        self.levels_E, self.levels_M = [], []
        if "E" in self.x and "log_gamma" in self.deterministics():
            q = self._quantized()
            self.levels_E = sorted({int(v) for v in self.x["E"][q]})
            self.levels_M = sorted({int(v) for v in self.x["M"][q]})
        self.pool_groups, self.pool_idx, self.pool_weights = {}, {}, {}
        q = self._quantized()
        for c, col in self.pool.items():
            if col not in ok:
                raise BayesfpInputError(f"pool: run table has no column {col!r}")
            vals = ok[col].astype(str).to_numpy()
            precision = c in self.law.penalty_params or c.startswith("gamma")
            mask = q if precision else np.ones(len(ok), dtype=bool)
            groups = sorted(set(vals[mask]))
            if len(groups) < 2:
                raise BayesfpInputError(f"pool: column {col!r} has fewer than 2 groups for {c!r}")
            self.pool_groups[c] = groups
            self.pool_idx[c] = np.where(mask, terms.index_of(vals, groups), -1)
            counts = np.bincount(self.pool_idx[c][mask], minlength=len(groups)).astype(float)
            self.pool_weights[c] = counts / counts.sum()

    def _precision_pooled(self) -> list:
        """Pooled precision-sensitivity coefficients (gamma of Sun, gamma_w / gamma_a of
        Kumar) pooled by one column: its groups are the fit's ``groups``, as with
        ``pool_by``."""
        prec = [c for c in self.pool if c in self.law.penalty_params or c.startswith("gamma")]
        return [c for c in prec if self.pool[c] == self.pool[prec[0]]]

    def config(self) -> dict:
        out = super().config()
        prec = self._precision_pooled() if hasattr(self, "pool_groups") else []
        if prec:
            # decisions, D_crit and the report choose a group of these, as for pool_by fits
            out.update({"groups": self.pool_groups[prec[0]], "pooled": prec})
        out.update({"structure": {k: getattr(self, k) for k in STRUCTURE}
                    | {"centred": self.centred},
                    "format_effect": self.format_effect, "log2b_power": self.log2b_power,
                    "marginal": getattr(self, "marginal", False),
                    "dropped": list(getattr(self, "dropped", [])),
                    "levels": {"cells": getattr(self, "cells", []),
                               "seed_cells": getattr(self, "seed_cells", []),
                               "N": getattr(self, "levels_N", []),
                               "D": getattr(self, "levels_D", []),
                               "E": getattr(self, "levels_E", []),
                               "M": getattr(self, "levels_M", [])},
                    "pool": self.pool, "pool_groups": getattr(self, "pool_groups", {})})
        return out

    def _key(self) -> str:
        h = hashlib.sha256(super()._key().encode())
        h.update(json.dumps(self.config(), sort_keys=True, default=str).encode())
        for a in (self.cell_idx, self.seed_idx, self.iN, self.iD, *self.pool_idx.values()):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()

    # ------------------------------------------------------------------ model

    def _adjust_params(self, p: dict) -> dict:
        """With ``log2b_power`` the power k is sampled here and ``log_gamma`` is shifted by
        (k - 1) c_B (c_B: mean log log2(B) of the quantized runs), so that the sampled penalty
        intercept is the penalty at the runs' typical block size whatever k is (otherwise k and
        gamma trade off along a ridge)."""
        self._k = None
        if self.log2b_power and "log_gamma" in p:
            self._k = self.priors["log2b_power"].to_pymc("log2b_power")
            p = dict(p, log_gamma=p["log_gamma"] + (self._k - 1.0) * self.centre_log_log2b)
        return p

    @property
    def centre_log_log2b(self) -> float:
        """Mean log log2(B) of the fitted quantized runs (0 without any)."""
        lb = np.asarray(self.x.get("log2B", np.zeros(0)), dtype=float)
        lb = lb[lb > 0]
        return float(np.log(lb).mean()) if len(lb) else 0.0

    def _coef_key(self, p: Mapping, c: str) -> str:
        return ("log_" + c) if ("log_" + c) in p else c

    @staticmethod
    def _bm_levels(levels: list, z, tau):
        """Brownian motion (PyTensor) at sorted levels from standard normal increments z
        (len - 1) and rate tau, centred to mean zero over the levels (numpy twin:
        :func:`bayesfp.bayes.terms.bm_walk`)."""
        import pytensor.tensor as pt

        gaps = np.sqrt(np.diff(np.asarray(levels, dtype=float)))
        walk = pt.concatenate([pt.zeros(1), pt.cumsum(tau * z * gaps)])
        return walk - walk.mean()

    def discrepancy_design(self) -> list:
        """``[(axis, design)]`` of the discrepancy's Brownian motions on the fitted cells: the
        cell shifts are ``design @ (tau_d<axis> * z_d<axis>)``, design of shape
        (cell, levels - 1) (:func:`bayesfp.bayes.terms.bm_design`); axes with one level are
        left out."""
        out = []
        for ax, levels, idx in (("N", self.levels_N, self.cell_iN),
                                ("D", self.levels_D, self.cell_iD)):
            if len(levels) >= 2:
                out.append((ax, terms.bm_design(levels)[idx]))
        return out

    def build_model(self):
        if self._model is None:
            self._model = self._build(self.marginal)
        return self._model

    def generative_model(self):
        """The model with every cell and seed effect sampled explicitly (what prior predictive
        draws need: the marginal model has no per-run observed variable)."""
        if not self.marginal:
            return self.build_model()
        if self._generative is None:
            self._generative = self._build(False)
        return self._generative

    def sample_prior_predictive(self, draws: int = 500, seed: int = 0):
        import pymc as pm

        return pm.sample_prior_predictive(draws=draws, model=self.generative_model(),
                                          random_seed=seed)

    def _build(self, marginal: bool):
        import pymc as pm
        import pytensor.tensor as pt

        coords = {"run": self.run_ids}
        for c, groups in self.pool_groups.items():
            coords[f"group_{c}"] = groups
        prec = self._precision_pooled()
        if prec:
            coords["group"] = self.pool_groups[prec[0]]
        if self.cell:
            coords["cell"] = self.cells
        if self.seed_effect:
            coords["seed_cell"] = self.seed_cells
        if self.format_effect == "flex":
            for ax, levels in (("E", self.levels_E), ("M", self.levels_M)):
                if flex_basis(levels).shape[1]:
                    coords[f"fmt_{ax}"] = levels
        if self.discrepancy:
            coords["step_N"] = list(range(len(self.levels_N) - 1))
            coords["step_D"] = list(range(len(self.levels_D) - 1))
        x = {k: self.x[k] for k in self.law.inputs}
        cD = self.centres["cD"]
        group_logD = terms.cell_log_d(self.seed_cells)
        with pm.Model(coords=coords) as m:
            obs, p = self.law_variables()
            offs = {}
            for c in self.pool:
                dim = f"group_{c}"
                w = self.pool_weights[c]
                if self.pooling == "partial":
                    tau = self.priors[f"tau_{c}"].to_pymc(f"tau_{c}")
                    z = pm.Normal(f"z_{c}", 0.0, 1.0, dims=dim)
                else:
                    tau, z = 1.0, pm.Normal(f"z_{c}", 0.0, pr.NO_POOLING_SD, dims=dim)
                off = pm.Deterministic(f"{c}_offset", tau * (z - pt.dot(w, z)), dims=dim)
                base = p[self._coef_key(p, c)]
                pm.Deterministic(f"{self._coef_key(p, c)}_in_{self.pool[c]}",
                                 base * pt.exp(off) if c == "eps" else base + off, dims=dim)
                if c in prec:
                    pm.Deterministic(f"{self._coef_key(p, c)}_group", base + off, dims="group")
                full = pt.concatenate([pt.zeros(1), off])
                offs[c] = full[self.pool_idx[c] + 1]
            p = terms.apply_pool(p, offs)
            p = terms.format_terms(p, self.x, self._format_graph())
            mu = pt.log(self.law.loss(p, x, xp=pt))
            # the discrepancy: integrated out with the cells and seeds, or sampled
            shared, shared_sd = [], []
            if self.discrepancy and marginal:
                for ax, d in self.discrepancy_design():
                    tau = self.priors[f"tau_d{ax}"].to_pymc(f"tau_d{ax}")
                    shared.append(d)
                    shared_sd.append(tau * pt.ones(d.shape[1]))
            elif self.discrepancy:
                for ax, levels, idx in (("N", self.levels_N, self.iN),
                                        ("D", self.levels_D, self.iD)):
                    if len(levels) < 2:
                        continue
                    tau = self.priors[f"tau_d{ax}"].to_pymc(f"tau_d{ax}")
                    z = pm.Normal(f"z_d{ax}", 0.0, 1.0, dims=f"step_{ax}")
                    mu = mu + self._bm_levels(levels, z, tau)[idx]
            # Cell-effect sd: per cell (cell_d) or one.
            tau_cell = None
            if self.cell_d:
                lt = self.priors["log_tau_cell"].to_pymc("log_tau_cell")
                slope_c = self.priors["tau_cell_slope"].to_pymc("tau_cell_slope")
                tau_cell = pt.exp(lt + slope_c * (self.cell_logD - cD))
            elif self.cell:
                tau_cell = self.priors["tau_cell"].to_pymc("tau_cell")
            # Noise sd: per run and per seed group (one value per D), or one.
            if self.sigma_d:
                ls = self.priors["log_sigma"].to_pymc("log_sigma")
                slope = self.priors["sigma_slope"].to_pymc("sigma_slope")
                pm.Deterministic("sigma", pt.exp(ls))
                sd = pt.exp(ls + slope * (np.log(self.x["D"]) - cD))
                sd_group = pt.exp(ls + slope * (group_logD - cD))
            else:
                sd = self.priors["sigma"].to_pymc("sigma")
                sd_group = sd * np.ones(len(self.seed_cells))
            tau_seed = None
            if self.seed_effect:
                tau_seed = self.priors["tau_seed"].to_pymc("tau_seed")
                if self.sigma_d:
                    tau_seed = tau_seed * pt.exp(slope * (group_logD - cD))
            if marginal:
                pm.Potential("log_loss", log_density_pt(
                    obs - mu, self.effect_groups, sd_group ** 2,
                    None if tau_seed is None else tau_seed ** 2 * np.ones(len(self.seed_cells)),
                    None if tau_cell is None else tau_cell ** 2,
                    design=np.hstack(shared) if shared else None,
                    design_sd=pt.concatenate(shared_sd) if shared_sd else None))
            else:
                if self.cell and self.centred and not self.cell_d:
                    c = pm.Normal("cell_effect", 0.0, tau_cell, dims="cell")
                    pm.Deterministic("z_cell", c / tau_cell, dims="cell")
                    mu = mu + c[self.cell_idx]
                elif self.cell:
                    z = pm.Normal("z_cell", 0.0, 1.0, dims="cell")
                    mu = mu + (tau_cell * z)[self.cell_idx]
                if self.seed_effect:
                    z = pm.Normal("z_seed", 0.0, 1.0, dims="seed_cell")
                    mu = mu + (tau_seed * z)[self.seed_idx]
                observe("log_loss", mu, sd, obs, robust=self.robust, dims="run")
        return m

    def _log_likelihood(self, tree, y, seed: int):
        """Models with the effects integrated out draw them back per posterior draw
        (:func:`bayesfp.bayes.marginal.draw_effects`, seeded), store them as ``z_cell`` and
        ``z_seed``, and give the pointwise log-likelihood given them, as the model with the
        effects sampled does."""
        if not self.marginal:
            return super()._log_likelihood(tree, y, seed)
        import xarray as xr

        post = tree["posterior"].to_dataset()
        info = self.config()
        plain = dict(info, structure=dict(info["structure"], cell=False, cell_d=False,
                                          seed_effect=False))
        runs = self.ok.reset_index(drop=True)
        group_logD = terms.cell_log_d(self.seed_cells)
        sd_group = terms.noise_sd(post, info, np.exp(group_logD))
        tau_s = terms.seed_sd(post, info, group_logD)
        tau_c = terms.cell_sd(post, info, self.cell_logD)
        rng = np.random.default_rng([int(seed), 0x5EED])
        shape = (post.sizes["chain"], post.sizes["draw"])
        y = np.asarray(y, dtype=float)
        var = (sd_group ** 2, None if tau_s is None else tau_s ** 2,
               None if tau_c is None else tau_c ** 2)
        design = self.discrepancy_design() if self.discrepancy else []
        if design:
            # the discrepancy's increments first (cells and seeds integrated out), then the
            # cells and seeds given them
            bare = dict(plain, structure=dict(plain["structure"], discrepancy=False))
            r0 = y[None, :] - terms.predict_log_loss(post, bare, runs, noise=False)
            sd = np.concatenate([np.repeat(terms.draws_of(post, f"tau_d{ax}")[:, None],
                                           d.shape[1], 1) for ax, d in design], 1)
            z = draw_design_effects(r0, self.effect_groups, *var,
                                    np.hstack([d for _, d in design]), sd, rng)
            start = 0
            for ax, d in design:
                q = d.shape[1]
                post[f"z_d{ax}"] = (("chain", "draw", f"step_{ax}"),
                                    z[:, start:start + q].reshape(shape + (q,)))
                post = post.assign_coords({f"step_{ax}": list(range(q))})
                start += q
        mu = terms.predict_log_loss(post, plain, runs, noise=False)
        r = y[None, :] - mu
        cell, seed_eff = draw_effects(r, self.effect_groups, *var, rng)
        if cell is not None:
            mu = mu + cell[:, self.cell_idx]
            post["z_cell"] = (("chain", "draw", "cell"),
                              (cell / tau_c).reshape(shape + (-1,)))
            post = post.assign_coords(cell=self.cells)
        if seed_eff is not None:
            mu = mu + seed_eff[:, self.seed_idx]
            post["z_seed"] = (("chain", "draw", "seed_cell"),
                              (seed_eff / tau_s).reshape(shape + (-1,)))
            post = post.assign_coords(seed_cell=self.seed_cells)
        sd = terms.noise_sd(post, info, self.x["D"])
        z = (y[None, :] - mu) / sd
        ll = -np.log(sd) - 0.5 * (z * z + LOG_2PI)
        ll = xr.Dataset({"log_loss": (("chain", "draw", "run"), ll.reshape(shape + (-1,)))},
                        coords={"chain": post["chain"], "draw": post["draw"],
                                "run": self.run_ids})
        out = xr.DataTree.from_dict({"posterior": post,
                                     "sample_stats": tree["sample_stats"].to_dataset()})
        return out, ll

    # ------------------------------------------------------------------ format terms

    def _format_graph(self):
        """PyMC variables of the flexible format effect and block-size power (or None)."""
        import pymc as pm
        import pytensor.tensor as pt

        out = {}
        if self.format_effect == "flex" and self.levels_E:
            tau = self.priors["tau_fmt"].to_pymc("tau_fmt")
            q = self._quantized()
            for ax, levels in (("E", self.levels_E), ("M", self.levels_M)):
                counts = [np.sum(self.x[ax][q] == v) for v in levels]
                basis = flex_basis(levels, counts)
                if basis.shape[1] == 0:
                    continue
                v = pm.Normal(f"v_fmt_{ax}", 0.0, tau, shape=basis.shape[1])
                off = pm.Deterministic(f"fmt_{ax}_offset", pt.dot(basis, v), dims=f"fmt_{ax}")
                full = pt.concatenate([pt.zeros(1), off])
                out[ax] = full[terms.index_of(self.x[ax].astype(int), levels) + 1]
        if self._k is not None:
            out["k"] = self._k
        return out

    def format_log_penalty(self, tree, E, M, seed: int = 0) -> np.ndarray:
        """Posterior draws of the log format factor for formats (E, M), shape (S, format)
        (:func:`bayesfp.bayes.terms.format_log_penalty`)."""
        return terms.format_log_penalty(tree["posterior"].to_dataset(), self.config(), E, M,
                                        seed=seed)

    # ------------------------------------------------------------------ prediction

    def predict(self, tree, runs: pd.DataFrame, noise: bool = True, seed: int = 0,
                structure: bool = True) -> np.ndarray:
        """Posterior predictive log-loss of runs, new or fitted
        (:func:`bayesfp.bayes.terms.predict_log_loss` with this model's configuration).

        Returns
        -------
        numpy.ndarray, shape (chain * draw, run)
            Log-loss (log nats/token).
        """
        return terms.predict_log_loss(tree["posterior"].to_dataset(), self.config(), runs,
                                      noise=noise, seed=seed, structure=structure)


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
        raise BayesfpInputError(f"law: no structured model for {name!r}")
    return STRUCTURED[name](runs, **kw)
