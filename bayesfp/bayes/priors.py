"""Priors of the Bayesian law models: one small, serialisable spec per sampled variable.

The law models sample what the runs determine directly, at the centre of the data (see
:mod:`bayesfp.bayes.models`): the base loss there (``log_level``), how it splits between the
irreducible loss and the two power-law terms (``k_N``, ``k_D``), the log slopes of the loss in
log N and log D (``s_N``, ``s_D``), and for the Sun laws the penalty's log intercept ``a_Q``, its
exponent sum ``pen_sum = delta + nu`` and share ``pen_share = log(delta / nu)`` (``alpha_q``,
``beta_q`` for ``sun_sep``; Kumar samples ``log_gamma_*``). Priors are stated on these sampled
variables, plus the noise sd ``sigma`` and the pooling scale ``tau``; the law coefficients
(``eps``, ``alpha``, ``beta``, ``log_n``, ``log_d``, ``delta``, ``nu``, ``log_gamma``) are
deterministic functions of them.

Three ways to set priors:

``"default"``
    Weakly informative and centred on the data (loss scale from the run table), see
    :func:`default_priors`.
``"published"``
    Centred on a law's published constants with the stated widths (:data:`PUBLISHED_WIDTH`).
``previous fit``
    Moment-matched from a saved posterior (:func:`centred_priors` on its draws, mapped to this
    model's sampled variables).
"""

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from bayesfp.errors import BayesfpInputError

DISTS = ("normal", "lognormal", "truncnormal", "halfnormal")


@dataclass(frozen=True)
class Prior:
    """A univariate prior.

    Parameters
    ----------
    dist : str
        ``normal`` (mu, sigma), ``lognormal`` (mu, sigma of the log), ``truncnormal`` (mu, sigma,
        truncated below at 0) or ``halfnormal`` (sigma).
    mu, sigma : float
        Location and scale, in the units of the variable (log units for ``lognormal``).
    """

    dist: str
    mu: float = 0.0
    sigma: float = 1.0

    def __post_init__(self):
        if self.dist not in DISTS:
            raise BayesfpInputError(
                f"prior: unknown distribution {self.dist!r} (use {', '.join(DISTS)})")
        if not (self.sigma > 0 and math.isfinite(self.sigma) and math.isfinite(self.mu)):
            raise BayesfpInputError(
                f"prior: need finite mu and sigma > 0, got {self.mu}, {self.sigma}")

    def to_pymc(self, name: str, **kw):
        """Create the PyMC random variable (inside a model context)."""
        import pymc as pm

        if self.dist == "normal":
            return pm.Normal(name, mu=self.mu, sigma=self.sigma, **kw)
        if self.dist == "lognormal":
            return pm.LogNormal(name, mu=self.mu, sigma=self.sigma, **kw)
        if self.dist == "truncnormal":
            return pm.TruncatedNormal(name, mu=self.mu, sigma=self.sigma, lower=0.0, **kw)
        return pm.HalfNormal(name, sigma=self.sigma, **kw)

    def sample(self, rng: np.random.Generator, size) -> np.ndarray:
        """Draws from the prior (NumPy), for checks that need no PyMC model."""
        if self.dist == "normal":
            return rng.normal(self.mu, self.sigma, size)
        if self.dist == "lognormal":
            return np.exp(rng.normal(self.mu, self.sigma, size))
        if self.dist == "halfnormal":
            return np.abs(rng.normal(0.0, self.sigma, size))
        out = rng.normal(self.mu, self.sigma, size)
        bad = out <= 0
        while bad.any():
            out[bad] = rng.normal(self.mu, self.sigma, int(bad.sum()))
            bad = out <= 0
        return out

    def transform(self, x):
        """Map values of the variable to the space where the prior is Normal (log for
        ``lognormal``): the space in which posterior and prior widths are compared."""
        return np.log(x) if self.dist == "lognormal" else np.asarray(x)

    def scale(self) -> float:
        """Prior sd in :meth:`transform` space (exact for normal/lognormal/halfnormal)."""
        if self.dist == "halfnormal":
            return self.sigma * math.sqrt(1.0 - 2.0 / math.pi)
        if self.dist == "truncnormal":
            from scipy.stats import truncnorm

            a = (0.0 - self.mu) / self.sigma
            return float(truncnorm(a, np.inf, loc=self.mu, scale=self.sigma).std())
        return self.sigma

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "Prior":
        return cls(str(d["dist"]), float(d.get("mu", 0.0)), float(d["sigma"]))


# Widths of priors centred on published constants: sd 0.5 for the log-scale variables (level,
# log ratios, log slopes, a_Q, log gamma: a factor of ~1.65), 0.2 for delta + nu (log-sd: 20%)
# and for log(delta / nu), 0.1 for the separate penalty exponents alpha_q and beta_q.
PUBLISHED_WIDTH = {"log": 0.5, "exponent": 0.2, "linear": 0.1}

# Sd of each group's offset under no pooling (log units): large next to any plausible difference.
NO_POOLING_SD = 2.0


def priors_to_json(priors: Mapping[str, Prior]) -> dict:
    return {k: v.to_dict() for k, v in priors.items()}


def priors_from_json(d: Mapping) -> dict:
    return {k: Prior.from_dict(v) for k, v in d.items()}


def default_priors(sampled: Mapping[str, str], centres: Mapping[str, float]) -> dict:
    """Weakly informative priors centred on the data.

    Parameters
    ----------
    sampled : mapping
        Sampled variable name -> kind (``level``, ``log_ratio``, ``log_slope``,
        ``intercept_Q``, ``penalty_sum``, ``penalty_share``, ``sep_exponent``, ``log_gamma``).
    centres : mapping
        Data summaries: ``L_med`` and ``L_min`` (median and lowest loss, nats/token) and
        ``log2B_q`` (mean log2 B of the quantized runs).

    Returns
    -------
    dict of Prior

    Notes
    -----
    - ``log_level``: Normal(log L_med, 0.5): the base loss at the data centre is near the
      median loss seen.
    - ``k_N``, ``k_D``: Normal(-0.5, 1): each reducible term at the centre is 0.6 times the
      irreducible loss, within a factor of 7 (2 sd).
    - ``s_N``, ``s_D``: Normal(log(0.0875 L_med), 1): slopes -dL/dlog N and -dL/dlog D at the
      centre near 0.35 x 0.25 L_med (an exponent of 0.35 on a term of a quarter of the loss),
      within a factor of 7 (2 sd).
    - ``a_Q``: Normal(log(0.01 L_med / log2B_q), 1.5): the penalty where it is largest is about
      1% of the loss, give or take a factor of 20 (2 sd).
    - ``pen_sum = delta + nu``: LogNormal(log 5, 0.6) (2 sd: 1.5 to 17).
    - ``pen_share = log(delta / nu)``: Normal(0, 0.7) (delta / nu within a factor 4, 2 sd).
    - ``alpha_q``, ``beta_q`` (``sun_sep``): Normal(0.35, 0.3).
    - Kumar's ``log_gamma_*``: Normal(log 2.5, 1) bits.
    - noise ``sigma`` of log-loss: HalfNormal(0.05); pooling scale ``tau``: HalfNormal(0.5).
    """
    lmed = float(centres["L_med"])
    q = float(centres.get("log2B_q", 7.0)) or 7.0
    table = {
        "level": Prior("normal", math.log(lmed), 0.5),
        "log_ratio": Prior("normal", -0.5, 1.0),
        "log_slope": Prior("normal", math.log(0.35 * 0.25 * lmed), 1.0),
        "intercept_Q": Prior("normal", math.log(0.01 * lmed / q), 1.5),
        "penalty_sum": Prior("lognormal", math.log(5.0), 0.6),
        "penalty_share": Prior("normal", 0.0, 0.7),
        "sep_exponent": Prior("normal", 0.35, 0.3),
        "log_gamma": Prior("normal", math.log(2.5), 1.0),
    }
    out = {name: table[kind] for name, kind in sampled.items()}
    out["sigma"] = Prior("halfnormal", 0.0, 0.05)
    out["tau"] = Prior("halfnormal", 0.0, 0.5)
    return out


def centred_priors(sampled: Mapping[str, str], values: Mapping[str, np.ndarray],
                   base: Mapping[str, Prior], width: Mapping[str, float] | None = None,
                   inflate: float = 1.0) -> dict:
    """Priors centred on given values of the sampled variables.

    With ``width`` (a dict like :data:`PUBLISHED_WIDTH`) each value is a point (published
    constants) and gets that fixed width; without it ``values`` are posterior draws and each
    prior is moment-matched (mean and sd, in log space for lognormal priors), sd times
    ``inflate``. Variables missing from ``values`` keep their ``base`` prior.
    """
    out = dict(base)
    for name, kind in sampled.items():
        if name not in values:
            continue
        v = np.asarray(values[name], dtype=float).ravel()
        dist = base[name].dist
        tv = np.log(v) if dist == "lognormal" else v
        mu = float(np.mean(tv))
        if width is None:
            sd = float(np.std(tv)) * inflate
        elif kind in ("level", "log_ratio", "log_slope", "intercept_Q", "log_gamma"):
            sd = width["log"]
        elif kind in ("penalty_sum", "penalty_share"):
            sd = width["exponent"]
        else:
            sd = width["linear"]
        if not (np.isfinite(mu) and np.isfinite(sd) and sd > 0):
            raise BayesfpInputError(f"prior: cannot centre {name!r} (mean {mu}, sd {sd})")
        out[name] = Prior(dist, mu, sd)
    return out
