"""Checks on a fit: the convergence gate, identification of each coefficient, prior predictive.

The gate runs after every fit. A fit that fails it is flagged in its attrs (``gate`` in
``attrs["bayesfp"]`` and ``attrs["gate_passed"] == 0``) and by the command line in red; it must
not be presented as trustworthy.
"""

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

# Default thresholds (Vehtari et al. 2021 for R-hat and ESS; Betancourt 2016 for E-BFMI).
RHAT_MAX = 1.01
ESS_MIN = 400
EBFMI_MIN = 0.3
MAX_DIVERGENCES = 0


@dataclass
class GateResult:
    """Outcome of :func:`check_fit`.

    Attributes
    ----------
    passed : bool
        Every check passed.
    rhat_max, ess_bulk_min, ess_tail_min, ebfmi_min : float
        Worst values over the posterior variables (and chains for E-BFMI).
    divergences : int
        Divergent transitions after tuning.
    worst : dict
        For R-hat and ESS, the variable with the worst value.
    failures : list of str
        One line per failed check.
    thresholds : dict
    """

    passed: bool
    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    ebfmi_min: float
    worst: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    thresholds: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, np.floating) else v)
                for k, v in asdict(self).items()}


def _worst(ds: xr.Dataset, fn) -> tuple[float, str]:
    """Worst (fn: max for R-hat, min for ESS) over every element of every variable."""
    best, name = None, ""
    for k, da in ds.data_vars.items():
        v = np.asarray(da.values, dtype=float)
        v = v[np.isfinite(v)]
        if v.size == 0:
            continue
        w = float(fn(v))
        if best is None or fn([w, best]) == w:
            best, name = w, k
    return (float("nan") if best is None else best), name


def _varying(post: xr.Dataset) -> list[str]:
    """Posterior variables that actually vary (constant ones have undefined R-hat)."""
    out = []
    for k, da in post.data_vars.items():
        if float(np.nanmax(np.asarray(da.std(("chain", "draw"))))) > 0:
            out.append(k)
    return out


def ebfmi(energy: np.ndarray) -> np.ndarray:
    """E-BFMI per chain from energies of shape (chain, draw)."""
    e = np.asarray(energy, dtype=float)
    return np.sum(np.diff(e, axis=1) ** 2, axis=1) / np.sum(
        (e - e.mean(axis=1, keepdims=True)) ** 2, axis=1)


def check_fit(tree: xr.DataTree, rhat_max: float = RHAT_MAX, ess_min: float = ESS_MIN,
              ebfmi_min: float = EBFMI_MIN, max_divergences: int = MAX_DIVERGENCES) -> GateResult:
    """The diagnostics gate: R-hat, bulk and tail ESS, divergences and E-BFMI.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit with ``posterior`` and ``sample_stats``.
    rhat_max : float
        Largest rank-normalised split R-hat allowed (1.01).
    ess_min : float
        Smallest bulk and tail ESS allowed (400).
    ebfmi_min : float
        Smallest E-BFMI of any chain (0.3).
    max_divergences : int
        Divergent transitions allowed (0).

    Returns
    -------
    GateResult
    """
    import arviz as az

    post = tree["posterior"].to_dataset()
    names = _varying(post)
    sub = xr.DataTree.from_dict({"posterior": post[names]})
    rhat, rname = _worst(az.rhat(sub).to_dataset(), np.max)
    ess_b, bname = _worst(az.ess(sub, method="bulk").to_dataset(), np.min)
    ess_t, tname = _worst(az.ess(sub, method="tail").to_dataset(), np.min)
    stats = tree["sample_stats"].to_dataset()
    div = int(stats["diverging"].sum())
    bfmi = float(np.min(ebfmi(stats["energy"].values)))
    fails = []
    if not rhat <= rhat_max:
        fails.append(f"R-hat {rhat:.3f} > {rhat_max} ({rname})")
    if not ess_b >= ess_min:
        fails.append(f"bulk ESS {ess_b:.0f} < {ess_min:g} ({bname})")
    if not ess_t >= ess_min:
        fails.append(f"tail ESS {ess_t:.0f} < {ess_min:g} ({tname})")
    if div > max_divergences:
        fails.append(f"{div} divergent transitions (allowed {max_divergences})")
    if not bfmi >= ebfmi_min:
        fails.append(f"E-BFMI {bfmi:.2f} < {ebfmi_min}")
    return GateResult(
        passed=not fails, rhat_max=rhat, ess_bulk_min=ess_b, ess_tail_min=ess_t,
        divergences=div, ebfmi_min=bfmi, worst={"rhat": rname, "ess_bulk": bname,
                                                 "ess_tail": tname},
        failures=fails, thresholds={"rhat_max": rhat_max, "ess_min": ess_min,
                                    "ebfmi_min": ebfmi_min, "max_divergences": max_divergences})


def identification(tree: xr.DataTree) -> pd.DataFrame:
    """How much the data taught about each sampled variable.

    For each variable with a prior, the posterior sd divided by the prior sd (both in the
    prior's Normal space: log for lognormal priors). Near 1 the posterior is the prior (not
    identified by these runs); below 0.1 the data dominate.

    Returns
    -------
    pandas.DataFrame
        Index: variable; columns ``prior_sd``, ``post_sd``, ``ratio``, ``verdict``
        (``data-dominated`` < 0.1 <= ``informed`` < 0.5 <= ``weak`` < 0.9 <= ``prior-dominated``).
    """
    from bayesfp.bayes.io import fit_info
    from bayesfp.bayes.priors import priors_from_json

    info = fit_info(tree)
    priors = priors_from_json(info["priors"])
    post = tree["posterior"].to_dataset()
    rows = []
    for name, prior in priors.items():
        if name == "tau":
            targets = [k for k in post.data_vars if str(k).startswith("tau_")]
        else:
            targets = [name] if name in post else []
        for t in targets:
            draws = np.asarray(post[t].values, dtype=float)
            if draws.ndim != 2:
                continue
            sd = float(np.std(prior.transform(draws)))
            ps = prior.scale()
            r = sd / ps
            verdict = ("data-dominated" if r < 0.1 else "informed" if r < 0.5
                       else "weak" if r < 0.9 else "prior-dominated")
            rows.append({"variable": t, "prior_sd": ps, "post_sd": sd, "ratio": r,
                         "verdict": verdict})
    return pd.DataFrame(rows).set_index("variable")


@dataclass
class PriorPredictiveResult:
    """Outcome of :func:`prior_predictive_check`.

    Attributes
    ----------
    passed : bool
        At least ``min_frac`` of prior predictive losses lie in ``(lo, hi)``.
    frac_in_range : float
    quantiles : dict
        5%, 50% and 95% quantiles of prior predictive loss (nats/token).
    lo, hi, min_frac : float
    """

    passed: bool
    frac_in_range: float
    quantiles: dict
    lo: float
    hi: float
    min_frac: float


def prior_predictive_check(model, draws: int = 500, lo: float = 0.5, hi: float = 15.0,
                           min_frac: float = 0.9, seed: int = 0) -> PriorPredictiveResult:
    """Simulate losses from the priors and check they land in a plausible range.

    Parameters
    ----------
    model : bayesfp.bayes.models.LawModel
    draws : int
        Prior draws.
    lo, hi : float
        Plausible loss range in nats/token (0.5 to 15: above the entropy of text at the low end,
        below log(vocab) of an untrained model at the high end).
    min_frac : float
        Fraction of simulated losses that must lie in the range (0.9).

    Returns
    -------
    PriorPredictiveResult
    """
    prior = model.sample_prior_predictive(draws=draws, seed=seed)
    with np.errstate(over="ignore"):
        loss = np.exp(np.asarray(prior["prior_predictive"]["log_loss"].values, dtype=float))
    loss = loss.ravel()
    frac = float(np.mean((loss > lo) & (loss < hi)))
    q = {f"q{int(p * 100):02d}": float(np.nanquantile(loss, p)) for p in (0.05, 0.5, 0.95)}
    return PriorPredictiveResult(passed=frac >= min_frac, frac_in_range=frac, quantiles=q,
                                 lo=lo, hi=hi, min_frac=min_frac)
