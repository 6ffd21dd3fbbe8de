"""What to run next: the expected value of sample information (EVSI) of candidate runs.

Pre-posterior analysis of one candidate run e (N, D, format):

1. draw an outcome from the posterior predictive: a draw s_j, then
   ``y_j = log L_{s_j}(e) + sigma_{s_j} z_j`` (z normal, or Student-t for robust fits);
2. update the posterior by importance reweighting of the existing draws,
   ``w_{js} ∝ p(y_j | s) = Normal(y_j; log L_s(e), sigma_s)``;
3. re-solve the decision under the reweighted draws: ``max_a sum_s w_{js} U_{sa}``;
4. average over outcomes:

.. math::

    \\mathrm{EVSI}(e) = \\frac{1}{J}\\sum_j \\max_a \\bar U_a^{(j)}
                      - \\max_a \\frac{1}{J}\\sum_j \\bar U_a^{(j)},
    \\qquad \\bar U_a^{(j)} = \\sum_s w_{js} U_{sa}

The second term is the prior value computed from the same reweighted estimates (it equals
``max_a E[U_a]`` up to Monte Carlo error), which makes the estimate >= 0 exactly and cancels
part of the Monte Carlo noise. Reweighting treats the existing draws as a sample from the
updated posterior: it holds while the new run leaves enough draws with appreciable weight.
The Kish effective sample size ``1 / sum_s w_s^2`` says how many; when it is small the
reweighted posterior rests on a few draws, the maximisation over actions overfits them and EVSI
is overestimated (it tends to the EVPI of the draws). Such candidates are flagged.

Outcomes share their random numbers across candidates (common random numbers), so differences
in EVSI between candidates are not Monte Carlo noise of separate simulations.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayesfp.bayes.likelihood import log_density, standard_noise
from bayesfp.decide.analysis import ROUNDING, Decision, build_actions
from bayesfp.decide.draws import PosteriorDraws
from bayesfp.decide.problem import DecisionProblem, Format, parse_format
from bayesfp.errors import BayesfpInputError

# A reweighted posterior on fewer effective draws than this is flagged as unreliable.
MIN_ESS = 30.0


# ---------------------------------------------------------------------------------------------
# Pure math
# ---------------------------------------------------------------------------------------------


def reweight(loglik) -> tuple[np.ndarray, np.ndarray]:
    """Normalised importance weights per row of a ``(J, S)`` log-likelihood, and their Kish
    effective sample sizes ``(J,)``."""
    ll = np.asarray(loglik, dtype=float)
    w = np.exp(ll - ll.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    return w, 1.0 / np.sum(w * w, axis=1)


def evsi_from_weights(U, W) -> float:
    """EVSI from a ``(S, A)`` utility matrix and ``(J, S)`` posterior weights per outcome."""
    U = np.asarray(U, dtype=float)
    EU = np.asarray(W, dtype=float) @ U
    value = float(EU.max(axis=1).mean() - EU.mean(axis=0).max())
    # Rounding noise of the sums (all draws agreeing) is not information.
    return value if value > ROUNDING * np.abs(U).max() else 0.0


def preposterior(U, mu, sigma, idx, z, robust: bool = False) -> dict:
    """Pre-posterior analysis of one candidate run by importance reweighting.

    Parameters
    ----------
    U : array, shape (S, A)
        Utility of each action under each draw.
    mu : array, shape (S,)
        Each draw's mean log-loss of the candidate run.
    sigma : array, shape (S,)
        Each draw's noise sd of log-loss.
    idx : array of int, shape (J,)
        The draws the outcomes are simulated from.
    z : array, shape (J,)
        Standardised noise of the outcomes.
    robust : bool
        Student-t likelihood.

    Returns
    -------
    dict
        ``evsi`` (utility units), ``ess`` (J,) effective sample sizes of the reweighted draws.
    """
    mu, sigma = np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float)
    y = mu[idx] + sigma[idx] * np.asarray(z, dtype=float)
    W, ess = reweight(log_density(y, mu, sigma, robust))
    return {"evsi": evsi_from_weights(U, W), "ess": ess}


# ---------------------------------------------------------------------------------------------
# Candidate runs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Experiment:
    """A candidate training run.

    Parameters
    ----------
    fmt : Format
    N, D : float
        Non-embedding parameters and tokens.
    cost : float
        Its cost in the problem's cost unit (FLOPs or GPU-hours).
    """

    fmt: Format
    N: float
    D: float
    cost: float

    @property
    def label(self) -> str:
        return f"{self.fmt.name} N={_si(self.N)} D={_si(self.D)}"


def _si(x: float) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def make_experiment(problem: DecisionProblem, fmt, N: float, D: float, cost: float | None = None,
                    block=None) -> Experiment:
    """A candidate run; its cost from the problem's cost model unless given."""
    if not isinstance(fmt, Format):
        known = {f.name: f for f in problem.formats}
        fmt = known.get(str(fmt).strip().lower()) or parse_format(
            fmt, block if block is not None else _default_block(problem))
    N, D = float(N), float(D)
    if not (np.isfinite(N) and N > 0 and np.isfinite(D) and D > 0):
        raise BayesfpInputError(f"next_runs: N and D must be positive, got N={N}, D={D}")
    if cost is None or (isinstance(cost, float) and np.isnan(cost)):
        cost = float(problem.cost.cost(fmt, N, D))
    cost = float(cost)
    if not (np.isfinite(cost) and cost > 0):
        raise BayesfpInputError(f"next_runs: cost must be positive, got {cost} for {fmt.name}")
    return Experiment(fmt, N, D, cost)


def _default_block(problem: DecisionProblem) -> str:
    quant = [f.B for f in problem.formats if f.quantized]
    return quant[0] if quant else "128"


def read_candidates(path, problem: DecisionProblem) -> list[Experiment]:
    """Candidate runs from a CSV with columns ``N, D, format`` and optionally ``cost``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    df = pd.read_csv(path)
    missing = [c for c in ("N", "D", "format") if c not in df]
    if missing:
        raise BayesfpInputError(f"next_runs: {path} lacks column(s) {', '.join(missing)} "
                                "(need N, D, format and optionally cost)")
    if df.empty:
        raise BayesfpInputError(f"next_runs: {path} lists no candidate runs")
    return [make_experiment(problem, r["format"], r["N"], r["D"],
                            float(r["cost"]) if "cost" in df else None)
            for _, r in df.iterrows()]


def default_candidates(draws: PosteriorDraws, problem: DecisionProblem) -> list[Experiment]:
    """A default set of candidate runs around the fitted data.

    Each candidate format at two model sizes (the median and the largest N of the fitted runs)
    and three token counts: the largest D fitted, four times it, and, for quantized formats of a
    Sun law, the posterior median of the critical data size D_crit at that N (clipped to
    [smallest D, 100 x largest D]): where the penalty coefficients matter most. Token counts
    within 5% of one already listed for the same format and N are left out.
    """
    if draws.runs is None or len(draws.runs) == 0:
        raise BayesfpInputError("next_runs: these draws carry no run table; give candidate runs "
                                "(CSV with N, D, format)")
    Ns = np.sort(draws.runs["N"].astype(float).unique())
    Ds = draws.runs["D"].astype(float)
    d_lo, d_hi = float(Ds.min()), float(Ds.max())
    n_pick = sorted({float(Ns[len(Ns) // 2]), float(Ns[-1])})
    out, seen = [], set()
    for fmt in problem.formats:
        for n in n_pick:
            ds = [d_hi, 4.0 * d_hi]
            if fmt.quantized and draws.law.name in ("sun", "sun_sep"):
                from bayesfp.laws.derived import critical_data_size

                x = draws.format_inputs(fmt)
                dc = critical_data_size(draws.params, n, x["E"], x["M"], x["log2B"],
                                        draws.law)
                ds.append(float(np.clip(np.median(dc), d_lo, 100.0 * d_hi)))
            for d in ds:
                # token counts within 5% of one already listed are the same run
                if not any(f == fmt.name and m == n and abs(np.log(d / e)) < np.log(1.05)
                           for f, m, e in seen):
                    seen.add((fmt.name, n, d))
                    out.append(make_experiment(problem, fmt, n, d))
    return out


# ---------------------------------------------------------------------------------------------
# Ranking
# ---------------------------------------------------------------------------------------------


def rank_experiments(draws: PosteriorDraws, decision: Decision, candidates: list[Experiment],
                     n_outer: int = 400, n_grid: int = 12, seed: int = 0,
                     min_ess: float = MIN_ESS) -> pd.DataFrame:
    """Rank candidate runs by EVSI per unit cost.

    Parameters
    ----------
    draws : PosteriorDraws
    decision : Decision
        The decision the runs would inform (:func:`bayesfp.decide.analysis.decide`).
    candidates : list of Experiment
    n_outer : int
        Simulated outcomes per candidate.
    n_grid : int
        At a budget, model sizes per format the decision may re-allocate to after the run.
    seed : int
        Seed of the simulated outcomes (shared by all candidates).
    min_ess : float
        Candidates whose median effective sample size after reweighting falls below this are
        flagged ``reliable = False`` (EVSI overestimated).

    Returns
    -------
    pandas.DataFrame
        One row per candidate, best first: ``run``, ``format``, ``N``, ``D``, ``cost``, ``evsi``
        (utility units: nats/token when price is 0), ``evsi_per_cost``, ``signal`` (sd over
        draws of the predicted log-loss, in noise sds: how much the draws disagree about the
        run), ``ess_median``, ``ess_min``, ``reliable``, ``rank``.
    """
    if not candidates:
        raise BayesfpInputError("next_runs: no candidate runs")
    if n_outer < 1:
        raise BayesfpInputError(f"n_outer: must be at least 1, got {n_outer}")
    problem = decision.problem
    span = None
    if decision.allocation is not None:
        span = {i: tuple(np.quantile(decision.allocation[f.name]["N"], [0.01, 0.99]))
                for i, f in enumerate(problem.formats)}
    actions = build_actions(draws, problem, n_grid=n_grid if problem.mode == "budget" else 0,
                            span=span)
    U = actions.utility
    rng = np.random.default_rng(seed)
    S = draws.size
    idx = rng.choice(S, size=n_outer, replace=n_outer > S)
    z = standard_noise(rng, n_outer, draws.robust)
    rows = []
    for e in candidates:
        with np.errstate(divide="ignore", invalid="ignore"):
            mu = np.log(draws.loss(e.fmt, e.N, e.D))
        if not np.isfinite(mu).all():
            raise BayesfpInputError(f"next_runs: the law gives no finite loss for {e.label}")
        res = preposterior(U, mu, draws.sigma, idx, z, draws.robust)
        ess_med = float(np.median(res["ess"]))
        rows.append({"run": e.label, "format": e.fmt.name, "N": e.N, "D": e.D, "cost": e.cost,
                     "evsi": res["evsi"], "evsi_per_cost": res["evsi"] / e.cost,
                     "signal": float(np.std(mu) / np.mean(draws.sigma)),
                     "ess_median": ess_med, "ess_min": float(np.min(res["ess"])),
                     "reliable": ess_med >= min_ess})
    df = pd.DataFrame(rows).sort_values(["evsi_per_cost", "cost"], ascending=[False, True],
                                        kind="stable").reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    return df
