"""PyMC models of the scaling laws, built on the law functions in :mod:`bayesfp.laws`.

Each model evaluates ``law.loss(params, inputs, xp=pytensor.tensor)``: the law is written once.
The likelihood is on log-loss,

.. math:: \\log L_i \\sim \\mathrm{Normal}(\\log \\hat L(N_i, D_i, E_i, M_i, B_i; \\theta),
          \\sigma_{s(i)})

(Student-t with 4 degrees of freedom when ``robust``), with one noise sd per value of the
``sigma_by`` column. Only runs with status ``ok`` and a finite positive loss enter it; the others
are counted in the fit's attrs.

Sampled variables are what the runs determine directly, at the centre of the data (see
:mod:`bayesfp.bayes.priors`). With cN, cD the mean log N and log D of the fitted runs and
T_N = n exp(-alpha cN), T_D = d exp(-beta cD) the two reducible terms there:

- ``log_level = log(eps + T_N + T_D)``: the base loss at the centre;
- ``k_N = log(T_N / eps)``, ``k_D = log(T_D / eps)``: how the level splits between the
  irreducible loss and the two terms (only the curvature of the data tells);
- ``s_N = log(alpha T_N)``, ``s_D = log(beta T_D)``: log slopes -dL/dlog N, -dL/dlog D there;
- Sun: ``pen_sum = delta + nu`` and ``pen_share = log(delta / nu)`` (the exponent share fixes the
  best split, E_opt + 0.5 = P delta / (delta + nu); delta and nu alone are strongly correlated);
- Sun: ``a_Q = -log gamma + beta cDq - alpha cNq - delta cE - nu cM``: the log penalty per unit
  log2 B at the penalty's own centre (cNq, cDq, cE, cM: means of log N, log D, log(E+0.5),
  log(M+0.5) over the quantized runs, weighted by the squared penalty under the prior medians
  alpha = beta = 0.35, delta = nu = 2.5, i.e. where the data inform the penalty).

The level and slopes are nearly uncorrelated with the weakly identified splits, so a diagonal
mass matrix suffices, where the naive ``log n, alpha, eps`` coordinates lie on a curved ridge
that needs far longer trajectories. The law coefficients ``eps``, ``alpha``, ``beta``,
``log_n``, ``log_d``, ``log_gamma`` are stored as deterministics.

Partial pooling (``pool_by`` a run-table column) gives each group an offset on the log of the
precision-sensitivity coefficient(s) (``gamma`` for Sun, ``gamma_w``/``gamma_a`` for Kumar),
non-centred and summing to zero, so the global coefficient is the mean over groups:

.. math:: \\log\\gamma_g = \\log\\gamma + \\tau z_g, \\quad z \\sim \\mathrm{ZeroSumNormal}(1),
          \\quad \\tau \\sim \\mathrm{HalfNormal}(0.5)

``pooling="none"`` replaces tau z by independent wide offsets (sd 2, still sum-to-zero): no
pooling. ``pool_by=None`` is complete pooling. Groups are the values the column takes on
quantized runs; unquantized runs carry no penalty and get the global coefficient.
"""

import hashlib
import json
from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayesfp import defaults
from bayesfp.bayes import priors as pr
from bayesfp.bayes.likelihood import ROBUST_NU, observe  # noqa: F401 (ROBUST_NU re-exported)
from bayesfp.bayes.sample import SamplerConfig, run_nuts
from bayesfp.errors import BayesfpInputError
from bayesfp.laws.base import natural
from bayesfp.laws.inputs import law_inputs
from bayesfp.laws.published import PUBLISHED
from bayesfp.laws.registry import get_law
from bayesfp.runs.select import fit_selection

MODEL_VERSION = 1
POOLINGS = ("partial", "none")
HIGH_BITS = 16.0


class LawModel:
    """Bayesian fit of one scaling law to a run table.

    Parameters
    ----------
    runs : pandas.DataFrame
        Validated run table (``docs/runs.md``): N, D, E, M, B, operands, loss, status, run_id.
    pool_by : str, optional
        Run-table column whose groups get partially pooled precision sensitivities.
    pooling : str
        ``partial`` (hierarchical) or ``none`` (independent offsets) when ``pool_by`` is set.
    prior : str, xarray.DataTree or path
        ``default`` (weakly informative, centred on the data), ``published`` (centred on the
        law's published constants, widths :data:`bayesfp.bayes.priors.PUBLISHED_WIDTH`), or a
        previous fit (DataTree or NetCDF path) to moment-match.
    priors : mapping, optional
        Per-variable overrides (name -> :class:`~bayesfp.bayes.priors.Prior` or its dict).
    robust : bool
        Student-t (nu = 4) instead of Normal likelihood on log-loss.
    sigma_by : str, optional
        Run-table column with one noise sd per value.
    inputs_kw : mapping, optional
        Passed to :func:`bayesfp.laws.law_inputs` (``channel_log2b``, ``tensor_log2b``).
    sampler : mapping or SamplerConfig, optional
        Overrides of :attr:`default_sampler_config`.
    centred : bool
        Centred group offsets (``offset ~ ZeroSumNormal(tau)``) instead of non-centred
        (``offset = tau z``). Non-centred suits groups with few or noisy runs; centred suits
        groups whose offsets the runs pin down (then ``z = offset / tau`` lies on a curved
        ridge).
    """

    law_name = "chinchilla"
    pooled_default: tuple[str, ...] = ()

    def __init__(self, runs: pd.DataFrame, *, pool_by: str | None = None,
                 pooling: str = "partial", prior="default", priors: Mapping | None = None,
                 robust: bool = False, sigma_by: str | None = None,
                 inputs_kw: Mapping | None = None, sampler=None, centred: bool = False):
        self.law = get_law(self.law_name)
        if pooling not in POOLINGS:
            raise BayesfpInputError(
                f"pooling: unknown pooling {pooling!r} (use {', '.join(POOLINGS)})")
        self.runs = runs.reset_index(drop=True)
        self.pool_by, self.pooling, self.robust, self.sigma_by = pool_by, pooling, robust, sigma_by
        self.centred = bool(centred)
        self.inputs_kw = dict(inputs_kw or {})
        self.sampler_config = self._sampler(sampler)
        self._select_runs()
        self.x = {k: v for k, v in law_inputs(self.ok, **self.inputs_kw).items()}
        self.y = np.log(self.ok["loss"].to_numpy(dtype=float))
        self.fixed = self._fixed()
        self.sampled = self._sampled()
        self.centres = self._centres()
        self._groups()
        self.prior_source = prior if isinstance(prior, str) else "previous fit"
        self.priors = self._priors(prior, priors)
        self._model = None

    # ------------------------------------------------------------------ configuration

    @property
    def default_sampler_config(self) -> SamplerConfig:
        """Default NUTS settings (:mod:`bayesfp.defaults`); pooled models use a higher target
        acceptance, since their group scale tau has a funnel near 0."""
        return SamplerConfig(target_accept=defaults.TARGET_ACCEPT_POOLED if self.pool_by
                             else defaults.TARGET_ACCEPT)

    def _sampler(self, sampler) -> SamplerConfig:
        if isinstance(sampler, SamplerConfig):
            return sampler
        base = self.default_sampler_config.to_dict()
        unknown = set(sampler or {}) - set(base)
        if unknown:
            raise BayesfpInputError(f"sampler: unknown settings {sorted(unknown)}")
        return SamplerConfig(**(base | dict(sampler or {})))

    @property
    def default_priors(self) -> dict:
        """Weakly informative priors centred on this run table (see
        :func:`bayesfp.bayes.priors.default_priors`)."""
        return pr.default_priors(self.sampled, self.centres)

    def _select_runs(self) -> None:
        df = self.runs
        for col in ("N", "D", "E", "M", "B", "operands", "loss"):
            if col not in df:
                raise BayesfpInputError(f"runs: column {col!r} is missing")
        selection = fit_selection(df, self.inputs_kw.get("tensor_log2b"))
        ok = selection.in_fit
        self.in_fit = ok
        self.excluded = selection.excluded
        ids = df["run_id"].astype(str) if "run_id" in df else pd.Series(df.index.astype(str))
        self.excluded_ids = list(ids[~ok])
        self.ok = df[ok].reset_index(drop=True)
        self.run_ids = list(ids[ok])
        if len(self.ok) < 2 * len(self.law.params):
            raise BayesfpInputError(f"runs: {len(self.ok)} usable runs are too few to fit law "
                                    f"{self.law.name!r}")
        if len(set(self.run_ids)) != len(self.run_ids):
            self.run_ids = [f"{r}#{i}" for i, r in enumerate(self.run_ids)]

    def _fixed(self) -> dict:
        """Coefficients held fixed: optional ones at their defaults (Kumar's offsets)."""
        return {p.name: float(p.optional) for p in self.law.params if p.optional is not None}

    def _sampled(self) -> dict:
        """Sampled variable -> prior kind."""
        return {"log_level": "level", "k_N": "log_ratio", "k_D": "log_ratio",
                "s_N": "log_slope", "s_D": "log_slope"}

    def _quantized(self) -> np.ndarray:
        return self.x["log2B"] > 0

    def _centres(self) -> dict:
        x, q = self.x, self._quantized()
        loss = np.exp(self.y)
        c = {"cN": float(np.mean(np.log(x["N"]))), "cD": float(np.mean(np.log(x["D"]))),
             "L_med": float(np.median(loss)), "L_min": float(np.min(loss)),
             "log2B_q": float(np.mean(x["log2B"][q])) if q.any() else 7.0,
             "cNq": 0.0, "cDq": 0.0, "cE": 0.0, "cM": 0.0}
        if q.any() and "E" in x:
            logs = {"cNq": np.log(x["N"][q]), "cDq": np.log(x["D"][q]),
                    "cE": np.log(x["E"][q] + 0.5), "cM": np.log(x["M"][q] + 0.5)}
            lb = np.log(np.maximum(x["log2B"][q], 1e-12))
            lw = 2.0 * (lb + 0.35 * (logs["cDq"] - logs["cNq"]) - 2.5 * (logs["cE"] + logs["cM"]))
            w = np.exp(lw - lw.max())
            w /= w.sum()
            c.update({k: float(np.sum(w * v)) for k, v in logs.items()})
        return c

    def _groups(self) -> None:
        self.pooled = ()
        self.groups: list[str] = []
        self.group_idx = np.full(len(self.ok), -1, dtype=int)
        if self.pool_by is not None:
            if self.pool_by not in self.ok:
                raise BayesfpInputError(f"pool_by: run table has no column {self.pool_by!r}")
            if not self.pooled_default:
                raise BayesfpInputError(
                    f"pool_by: law {self.law.name!r} has no precision coefficient "
                    "to pool")
            q = self._quantized()
            col = self.ok[self.pool_by].astype(str).to_numpy()
            self.groups = sorted(set(col[q]))
            if len(self.groups) < 2:
                raise BayesfpInputError(f"pool_by: column {self.pool_by!r} has fewer than 2 groups "
                                        "among quantized runs")
            lookup = {g: i for i, g in enumerate(self.groups)}
            self.group_idx = np.where(q, [lookup.get(v, -1) for v in col], -1)
            self.pooled = tuple(p for p in self.pooled_default if p not in self.fixed)
        self.sigma_groups: list[str] = []
        self.sigma_idx = np.zeros(len(self.ok), dtype=int)
        if self.sigma_by is not None:
            if self.sigma_by not in self.ok:
                raise BayesfpInputError(f"sigma_by: run table has no column {self.sigma_by!r}")
            col = self.ok[self.sigma_by].astype(str).to_numpy()
            self.sigma_groups = sorted(set(col))
            lookup = {g: i for i, g in enumerate(self.sigma_groups)}
            self.sigma_idx = np.array([lookup[v] for v in col], dtype=int)

    def _priors(self, prior, overrides) -> dict:
        base = self.default_priors
        if isinstance(prior, str) and prior == "default":
            out = base
        elif isinstance(prior, str) and prior == "published":
            values = self.sampled_from_law(natural(self.law, dict(PUBLISHED[self.law.name])))
            out = pr.centred_priors(self.sampled, values, base, width=pr.PUBLISHED_WIDTH)
        elif isinstance(prior, str) and not prior.endswith(".nc"):
            raise BayesfpInputError(f"prior: unknown prior {prior!r} (use default, published or a "
                                    "saved fit .nc)")
        else:
            from bayesfp.bayes.derived import coefficients
            from bayesfp.bayes.io import fit_info, load_fit

            prev = load_fit(prior) if isinstance(prior, str) else prior
            if fit_info(prev)["law"] != self.law.name:
                raise BayesfpInputError(
                    f"prior: the previous fit is of law {fit_info(prev)['law']!r},"
                    f" not {self.law.name!r}")
            draws = {k: np.asarray(v).ravel() for k, v in coefficients(prev).items()}
            values = self.sampled_from_law(natural(self.law, draws))
            out = pr.centred_priors(self.sampled, values, base)
        for k, v in (overrides or {}).items():
            if k not in out:
                raise BayesfpInputError(f"priors: {k!r} is not a sampled variable of law "
                                        f"{self.law.name!r} (choose from {', '.join(out)})")
            out[k] = v if isinstance(v, pr.Prior) else pr.Prior.from_dict(v)
        return out

    # ------------------------------------------------------------------ parametrisation

    def law_params(self, s: Mapping) -> dict:
        """Law coefficients (log form for positive ones) from sampled variables.

        Works on PyTensor variables and on NumPy arrays alike.
        """
        c = self.centres
        xp = _namespace(s["log_level"])
        lse = xp.logaddexp(xp.logaddexp(0.0 * s["k_N"], s["k_N"]), s["k_D"])
        log_tn = s["log_level"] + s["k_N"] - lse
        log_td = s["log_level"] + s["k_D"] - lse
        alpha, beta = xp.exp(s["s_N"] - log_tn), xp.exp(s["s_D"] - log_td)
        p = {"alpha": alpha, "beta": beta, "eps": xp.exp(s["log_level"] - lse),
             "log_n": log_tn + alpha * c["cN"], "log_d": log_td + beta * c["cD"]}
        p.update(self.fixed)
        return p

    def sampled_from_law(self, p: Mapping) -> dict:
        """Inverse of :meth:`law_params`: sampled variables from natural coefficients."""
        c = self.centres
        eps = np.asarray(p["eps"], dtype=float)
        if np.any(eps <= 0):
            raise BayesfpInputError("prior: eps must be positive to centre priors on it")
        log_tn = np.log(p["n"]) - p["alpha"] * c["cN"]
        log_td = np.log(p["d"]) - p["beta"] * c["cD"]
        return {"log_level": np.log(eps + np.exp(log_tn) + np.exp(log_td)),
                "k_N": log_tn - np.log(eps), "k_D": log_td - np.log(eps),
                "s_N": np.log(p["alpha"]) + log_tn, "s_D": np.log(p["beta"]) + log_td}

    def deterministics(self) -> tuple[str, ...]:
        """Law coefficients stored as deterministics (the rest are sampled directly)."""
        return ("eps", "alpha", "beta", "log_n", "log_d")

    # ------------------------------------------------------------------ model

    def config(self) -> dict:
        """Everything that defines the model apart from the data (JSON-serialisable)."""
        return {
            "law": self.law.name, "model_version": MODEL_VERSION, "pool_by": self.pool_by,
            "pooling": self.pooling if self.pool_by else None, "pooled": list(self.pooled),
            "centred": self.centred if self.pool_by else None,
            "groups": self.groups, "robust": self.robust, "sigma_by": self.sigma_by,
            "sigma_groups": self.sigma_groups, "priors": pr.priors_to_json(self.priors),
            "prior_source": self.prior_source, "fixed": self.fixed,
            "centres": self.centres, "inputs_kw": self.inputs_kw,
        }

    def _key(self) -> str:
        h = hashlib.sha256(json.dumps(self.config(), sort_keys=True).encode())
        for k in self.law.inputs:
            h.update(np.ascontiguousarray(self.x[k], dtype=float).tobytes())
        h.update(self.group_idx.tobytes())
        h.update(self.sigma_idx.tobytes())
        return h.hexdigest()

    def law_variables(self):
        """The observed log-losses and the law coefficients, inside a ``pm.Model`` context.

        Adds the data container ``log_loss_obs`` (dim ``run``), the sampled variables with their
        priors and the deterministics of :meth:`deterministics`.

        Returns
        -------
        obs : pytensor variable, shape (run,)
            Observed log-losses (log nats/token).
        params : dict
            Law coefficients as :meth:`law_params` gives them.
        """
        import pymc as pm

        obs = pm.Data("log_loss_obs", self.y, dims="run")
        p = self.law_params({name: self.priors[name].to_pymc(name) for name in self.sampled})
        p = self._adjust_params(p)
        for name in self.deterministics():
            pm.Deterministic(name, p[name])
        return obs, p

    def _adjust_params(self, p: dict) -> dict:
        """Hook for subclasses: change the law coefficients (PyTensor) before they are stored
        as deterministics; unchanged here."""
        return p

    def build_model(self):
        """Build (once) and return the PyMC model.

        Returns
        -------
        pymc.Model
            Observed variable ``log_loss`` (dim ``run``, log nats/token), data container
            ``log_loss_obs``.
        """
        if self._model is not None:
            return self._model
        import pymc as pm
        import pytensor.tensor as pt

        coords = {"run": self.run_ids}
        if self.pooled:
            coords["group"] = self.groups
        if self.sigma_by:
            coords["sigma_group"] = self.sigma_groups
        x = {k: self.x[k] for k in self.law.inputs}
        with pm.Model(coords=coords) as m:
            obs, p = self.law_variables()
            for c in self.pooled:
                key = "log_" + c
                if self.pooling == "partial" and not self.centred:
                    tau = self.priors["tau"].to_pymc(f"tau_{c}")
                    z = pm.ZeroSumNormal(f"z_{c}", sigma=1.0, dims="group")
                    off = pm.Deterministic(f"{key}_offset", tau * z, dims="group")
                elif self.pooling == "partial":
                    tau = self.priors["tau"].to_pymc(f"tau_{c}")
                    off = pm.ZeroSumNormal(f"{key}_offset", sigma=tau, dims="group")
                else:
                    off = pm.ZeroSumNormal(f"{key}_offset", sigma=pr.NO_POOLING_SD, dims="group")
                pm.Deterministic(f"{key}_group", p[key] + off, dims="group")
                full = pt.concatenate([pt.zeros(1), off])
                p[key] = p[key] + full[self.group_idx + 1]
            mu = pt.log(self.law.loss(p, x, xp=pt))
            if self.sigma_by:
                sigma = self.priors["sigma"].to_pymc("sigma", dims="sigma_group")
                sd = sigma[self.sigma_idx]
            else:
                sd = self.priors["sigma"].to_pymc("sigma")
            observe("log_loss", mu, sd, obs, robust=self.robust, dims="run")
        self._model = m
        return m

    def var_names(self) -> list[str]:
        """Posterior variables kept: free variables and the small deterministics."""
        m = self.build_model()
        names = [v.name for v in m.free_RVs] + [d.name for d in m.deterministics]
        return names

    def sample_prior_predictive(self, draws: int = 500, seed: int = 0):
        """Draws of coefficients and log-losses from the prior.

        Returns
        -------
        xarray.DataTree
            Groups ``prior`` and ``prior_predictive`` (``log_loss``, dims ``chain, draw, run``).
        """
        import pymc as pm

        return pm.sample_prior_predictive(draws=draws, model=self.build_model(),
                                          random_seed=seed)

    def _log_likelihood(self, tree, y: np.ndarray, seed: int):
        """The pointwise log-likelihood of the fitted runs under each draw.

        Returns
        -------
        tree : xarray.DataTree
            The sampled tree (models that draw latent terms after sampling add them here).
        log_likelihood : xarray.Dataset
            ``log_loss``, dims ``chain, draw, run``.
        """
        import pymc as pm

        ll = pm.compute_log_likelihood(tree, model=self.build_model(),
                                       extend_inferencedata=False, progressbar=False)
        ll.attrs = {}
        return tree, ll

    def fit(self, y: np.ndarray | None = None, gate=None, **sampler):
        """Sample the posterior, add the log-likelihood, run the diagnostics gate.

        Parameters
        ----------
        y : numpy.ndarray, shape (run,), optional
            Replacement observed log-losses for the same runs (calibration, simulation); the
            compiled model is reused.
        gate : mapping, optional
            Thresholds of :func:`bayesfp.bayes.diagnostics.check_fit`.
        **sampler
            Overrides of the sampler config for this call (``draws``, ``seed``, ...).

        Returns
        -------
        xarray.DataTree
            ``posterior``, ``sample_stats``, ``log_likelihood``, ``observed_data`` and
            ``fit_data`` (the run table) groups; ``attrs["bayesfp"]`` holds the configuration
            and the gate result as JSON. :func:`bayesfp.bayes.io.save_fit` writes it to a file.
        """
        import xarray as xr

        from bayesfp.bayes.diagnostics import check_fit
        from bayesfp.bayes.io import set_info, table_to_dataset

        cfg = self._sampler(self.sampler_config.to_dict() | sampler)
        yy = self.y if y is None else np.asarray(y, dtype=float)
        if yy.shape != self.y.shape:
            raise BayesfpInputError(f"y: expected shape {self.y.shape}, got {yy.shape}")
        m = self.build_model()
        tree = run_nuts(m, self._key(), {"log_loss_obs": yy}, cfg, self.var_names())
        tree, ll = self._log_likelihood(tree, yy, cfg.seed)
        obs = xr.Dataset({"log_loss": ("run", yy)}, coords={"run": self.run_ids})
        groups = {"posterior": tree["posterior"].to_dataset(),
                  "sample_stats": tree["sample_stats"].to_dataset(),
                  "log_likelihood": ll.astype("float32"), "observed_data": obs}
        table = self.runs.copy()
        if y is not None:
            table.loc[self.in_fit, "loss"] = np.exp(yy)
        groups["fit_data"] = table_to_dataset(table, self.in_fit)
        out = xr.DataTree.from_dict(groups)
        gate_result = check_fit(out, **(gate or {}))
        info = self.config() | {"sampler": cfg.to_dict(), "n_runs": len(self.ok),
                                "excluded": self.excluded, "excluded_ids": self.excluded_ids,
                                "gate": gate_result.to_dict()}
        return set_info(out, info)


class ChinchillaModel(LawModel):
    """Chinchilla base law ``L = eps + n N^-alpha + d D^-beta`` (no precision term)."""

    law_name = "chinchilla"

    def _quantized(self) -> np.ndarray:
        return np.zeros(len(self.ok), dtype=bool)


class SunModel(LawModel):
    """Sun et al. 2025: Chinchilla plus the penalty
    ``(D^beta / N^alpha) log2(B) / (gamma (E+0.5)^delta (M+0.5)^nu)``; pools ``gamma``."""

    law_name = "sun"
    pooled_default = ("gamma",)

    def _sampled(self) -> dict:
        return super()._sampled() | {"a_Q": "intercept_Q", "pen_sum": "penalty_sum",
                                     "pen_share": "penalty_share"}

    def _penalty_exponents(self, s):
        return s["alpha"], s["beta"]

    def law_params(self, s):
        c = self.centres
        p = super().law_params(s)
        aq, bq = self._penalty_exponents(p | dict(s))
        xp = _namespace(s["log_level"])
        delta = s["pen_sum"] / (1.0 + xp.exp(-s["pen_share"]))
        p.update(delta=delta, nu=s["pen_sum"] - delta)
        p["log_gamma"] = (-s["a_Q"] + bq * c["cDq"] - aq * c["cNq"] - p["delta"] * c["cE"]
                          - p["nu"] * c["cM"])
        return p

    def sampled_from_law(self, p):
        c = self.centres
        out = super().sampled_from_law(p)
        aq, bq = self._penalty_exponents(p)
        out.update(pen_sum=p["delta"] + p["nu"], pen_share=np.log(p["delta"] / p["nu"]))
        out["a_Q"] = (-np.log(p["gamma"]) + bq * c["cDq"] - aq * c["cNq"] - p["delta"] * c["cE"]
                      - p["nu"] * c["cM"])
        return out

    def deterministics(self):
        return super().deterministics() + ("delta", "nu", "log_gamma")


class SunSepModel(SunModel):
    """Sun law with separate penalty exponents alpha_q, beta_q on N and D."""

    law_name = "sun_sep"

    def _sampled(self) -> dict:
        return super()._sampled() | {"alpha_q": "sep_exponent", "beta_q": "sep_exponent"}

    def _penalty_exponents(self, s):
        return s["alpha_q"], s["beta_q"]

    def law_params(self, s):
        return super().law_params(s) | {"alpha_q": s["alpha_q"], "beta_q": s["beta_q"]}

    def sampled_from_law(self, p):
        return super().sampled_from_law(p) | {"alpha_q": p["alpha_q"], "beta_q": p["beta_q"]}


class KumarModel(LawModel):
    """Kumar et al. 2024: ``L = n N_eff^-alpha + d D^-beta + eps`` with
    ``N_eff = N prod_x (1 - exp(-P_x / gamma_x))``; pools ``gamma_w`` and ``gamma_a``.

    A sensitivity whose bits never vary in the runs (the KV cache here) is not identified and
    is fixed at 1 bit (its factor is then ~1); offsets n_x are fixed at 0.
    """

    law_name = "kumar"
    pooled_default = ("gamma_w", "gamma_a")
    _TARGETS = ("w", "a", "kv")

    def _quantized(self) -> np.ndarray:
        return (self.x["P_w"] < HIGH_BITS) | (self.x["P_a"] < HIGH_BITS)

    def _fixed(self) -> dict:
        out = super()._fixed()
        for t in self._TARGETS:
            if np.ptp(self.x[f"P_{t}"]) == 0:
                out[f"gamma_{t}"] = 1.0
        return out

    def _sampled(self) -> dict:
        out = super()._sampled()
        for t in self._TARGETS:
            if f"gamma_{t}" not in self.fixed:
                out[f"log_gamma_{t}"] = "log_gamma"
        return out

    def law_params(self, s):
        p = super().law_params(s)
        for t in self._TARGETS:
            if f"log_gamma_{t}" in s:
                p[f"log_gamma_{t}"] = s[f"log_gamma_{t}"]
        return p

    def sampled_from_law(self, p):
        out = super().sampled_from_law(p)
        for t in self._TARGETS:
            if f"gamma_{t}" not in self.fixed:
                out[f"log_gamma_{t}"] = np.log(p[f"gamma_{t}"])
        return out


def _namespace(v):
    """``pytensor.tensor`` for PyTensor variables, else ``numpy``."""
    from pytensor.graph.basic import Variable

    if isinstance(v, Variable):
        import pytensor.tensor as pt

        return pt
    return np


MODELS = {cls.law_name: cls for cls in (ChinchillaModel, KumarModel, SunModel, SunSepModel)}


def model_for(law: str, runs: pd.DataFrame, **kw) -> LawModel:
    """The model class of a law, built on a run table (keywords as in :class:`LawModel`)."""
    name = get_law(law).name
    if name not in MODELS:
        raise BayesfpInputError(
            f"law: no Bayesian model for {name!r} (choose from {', '.join(MODELS)})")
    return MODELS[name](runs, **kw)
