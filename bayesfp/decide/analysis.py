"""Bayesian decision analysis of the training format: expected loss, P(best), regret, EVPI,
and the compute-optimal allocation of N and D per format.

The first half is pure math on a matrix of utilities ``U`` of shape ``(S, A)`` (posterior draw
s, action a), optionally with importance weights ``w`` of shape ``(S,)``:

.. math::

    \\bar U_a = \\sum_s w_s U_{sa}, \\qquad a^* = \\arg\\max_a \\bar U_a

    P(\\text{best})_a = \\sum_s w_s [U_{sa} = \\max_b U_{sb}] / \\#\\{b: U_{sb} = \\max\\}

    \\text{regret}_a = \\sum_s w_s (\\max_b U_{sb} - U_{sa}), \\qquad
    \\text{EVPI} = \\sum_s w_s \\max_b U_{sb} - \\max_a \\bar U_a = \\text{regret}_{a^*}

The second half turns a :class:`~bayesfp.decide.problem.DecisionProblem` and
:class:`~bayesfp.decide.draws.PosteriorDraws` into those matrices: per format, the (N, D) the
situation allows, re-optimised at a budget, and the loss of every draw there.
"""

from dataclasses import dataclass

import numpy as np

from bayesfp.decide.draws import PosteriorDraws
from bayesfp.decide.problem import DecisionProblem, Format
from bayesfp.errors import BayesfpInputError
from bayesfp.laws.derived import golden_min

# Values below this fraction of the largest |utility| are rounding noise, reported as 0.
ROUNDING = 1e-12

# ---------------------------------------------------------------------------------------------
# Pure math on utility matrices
# ---------------------------------------------------------------------------------------------


def _weights(S: int, w) -> np.ndarray:
    if w is None:
        return np.full(S, 1.0 / S)
    w = np.asarray(w, dtype=float)
    if w.shape != (S,) or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise BayesfpInputError(
            f"weights: need {S} non-negative finite weights with a positive sum")
    return w / w.sum()


def expected_utility(U, w=None) -> np.ndarray:
    """Posterior expected utility of each action, shape ``(A,)``."""
    U = np.asarray(U, dtype=float)
    return _weights(U.shape[0], w) @ U


def p_best(U, w=None) -> np.ndarray:
    """Posterior probability that each action has the highest utility (ties shared), ``(A,)``.

    Sums to 1.
    """
    U = np.asarray(U, dtype=float)
    top = U == U.max(axis=1, keepdims=True)
    share = top / top.sum(axis=1, keepdims=True)
    return _weights(U.shape[0], w) @ share


def expected_regret(U, w=None) -> np.ndarray:
    """Expected regret ``E[max_b U_b - U_a]`` of each action (utility units), ``(A,)``."""
    U = np.asarray(U, dtype=float)
    return _weights(U.shape[0], w) @ (U.max(axis=1, keepdims=True) - U)


def evpi(U, w=None) -> float:
    """Expected value of perfect information ``E[max_a U_a] - max_a E[U_a]`` (>= 0)."""
    U = np.asarray(U, dtype=float)
    w = _weights(U.shape[0], w)
    value = float(w @ U.max(axis=1) - np.max(w @ U))
    # Rounding noise of the sums (all draws agreeing) is not information.
    return value if value > ROUNDING * np.abs(U).max() else 0.0


def hdi(x, prob: float = 0.9) -> np.ndarray:
    """Highest-density interval of equally weighted draws along axis 0.

    Parameters
    ----------
    x : array, shape (S, ...)
    prob : float
        Mass inside the interval.

    Returns
    -------
    numpy.ndarray, shape (..., 2)
        Lower and upper bounds (the shortest interval holding ``ceil(prob S)`` draws).
    """
    if not 0.0 < prob < 1.0:
        raise BayesfpInputError(f"hdi_prob: must lie in (0, 1), got {prob}")
    x = np.sort(np.asarray(x, dtype=float), axis=0)
    S = x.shape[0]
    m = min(max(int(np.ceil(prob * S)), 1), S)
    widths = x[m - 1:] - x[:S - m + 1]
    i = np.argmin(widths, axis=0)
    lo = np.take_along_axis(x, i[None], axis=0)[0]
    hi = np.take_along_axis(x, (i + m - 1)[None], axis=0)[0]
    return np.stack([lo, hi], axis=-1)


def summarize(U, loss, prob: float = 0.9, w=None) -> dict:
    """Per-action summary of a decision: expected loss with HDI, P(best), regret, EVPI.

    Parameters
    ----------
    U : array, shape (S, A)
        Utility of each action under each draw.
    loss : array, shape (S, A)
        Loss (nats/token) of each action under each draw.
    prob : float
        HDI mass (intervals ignore ``w``).
    w : array, shape (S,), optional
        Draw weights.

    Returns
    -------
    dict
        ``expected_utility``, ``expected_loss``, ``interval`` (A, 2), ``p_best``, ``regret``,
        ``choice`` (index of the Bayes action), ``evpi``.
    """
    U, loss = np.asarray(U, dtype=float), np.asarray(loss, dtype=float)
    eu = expected_utility(U, w)
    return {
        "expected_utility": eu,
        "expected_loss": _weights(loss.shape[0], w) @ loss,
        "interval": hdi(loss, prob),
        "p_best": p_best(U, w),
        "regret": expected_regret(U, w),
        "choice": int(np.argmax(eu)),
        "evpi": evpi(U, w),
    }


# ---------------------------------------------------------------------------------------------
# Allocation of N and D per format
# ---------------------------------------------------------------------------------------------


def _nd(problem: DecisionProblem, fmt: Format, N):
    """(N, D) of a format at the budget for a given N (budget and budget_N modes)."""
    N = np.asarray(N, dtype=float)
    return N, problem.budget / problem.cost.cost(fmt, N, 1.0)


def _log_n_range(problem: DecisionProblem, fmt: Format) -> tuple[float, float]:
    """log N search range at a budget: 1e3 parameters up to the N that leaves 1e3 tokens."""
    hi = np.log(problem.budget / float(problem.cost.cost(fmt, 1.0, 1e3)))
    return float(np.log(1e3)), max(hi, np.log(1e3) + 1.0)


def per_draw_allocation(draws: PosteriorDraws, problem: DecisionProblem, fmt: Format) -> dict:
    """N and D that minimise each draw's loss for ``fmt`` at the budget (the posterior of the
    compute-optimal allocation).

    The loss of every law here is convex in log N along ``N D = const``, so a golden-section
    search per draw finds the optimum. A draw's discrepancy path (rough, not convex) is left
    out here: this is the posterior of the law's own optimum.

    Returns
    -------
    dict of numpy.ndarray, shape (S,)
        ``N``, ``D`` and ``loss`` (nats/token; each draw's loss there, its discrepancy
        included).
    """
    if problem.mode != "budget":
        raise BayesfpInputError("budget: the allocation is re-optimised only when N and D are free")
    lo, hi = _log_n_range(problem, fmt)

    def f(u):
        N, D = _nd(problem, fmt, np.exp(u))
        return draws.loss(fmt, N, D, discrepancy=False)

    u, _ = golden_min(f, np.full(draws.size, lo), np.full(draws.size, hi))
    N, D = _nd(problem, fmt, np.exp(u))
    return {"N": N, "D": D, "loss": draws.loss(fmt, N, D)}


def bayes_allocation(draws: PosteriorDraws, problem: DecisionProblem, fmt: Format) -> tuple:
    """The (N, D) of ``fmt`` that minimises the posterior expected loss at the budget.

    Returns
    -------
    (N, D) : tuple of float
    """
    lo, hi = _log_n_range(problem, fmt)

    def f(u):
        N, D = _nd(problem, fmt, np.exp(u))
        return draws.loss(fmt, N[None, :], D[None, :]).mean(axis=0)

    u, _ = golden_min(f, np.array([lo]), np.array([hi]))
    N, D = _nd(problem, fmt, np.exp(float(u[0])))
    return float(N), float(D)


def fixed_allocation(problem: DecisionProblem, fmt: Format) -> tuple:
    """(N, D) of ``fmt`` when at most one of them is free (modes budget_N, budget_D, fixed)."""
    if problem.mode == "fixed":
        return problem.N, problem.D
    if problem.mode == "budget_N":
        return problem.N, float(problem.budget / problem.cost.cost(fmt, problem.N, 1.0))
    if problem.mode == "budget_D":
        if not problem.cost.scales_with_N:
            raise BayesfpInputError("throughput: column N is needed to derive N from a budget")
        return float(problem.budget / problem.cost.cost(fmt, 1.0, problem.D)), problem.D
    raise BayesfpInputError("budget: N and D are free; use bayes_allocation")


@dataclass
class Actions:
    """Every (format, N, D) a decision chooses among, with each draw's loss and utility.

    Attributes
    ----------
    format : numpy.ndarray of int, shape (A,)
        Index into ``problem.formats``.
    N, D, cost : numpy.ndarray, shape (A,)
        Parameters, tokens and cost (the cost model's unit) of each action.
    loss : numpy.ndarray, shape (S, A)
        Mean loss (nats/token) under each draw.
    price : float
        Price per unit of cost.
    """

    format: np.ndarray
    N: np.ndarray
    D: np.ndarray
    cost: np.ndarray
    loss: np.ndarray
    price: float

    @property
    def utility(self) -> np.ndarray:
        """``-(loss + price * cost)``, shape (S, A)."""
        return -(self.loss + self.price * self.cost[None, :])


def build_actions(draws: PosteriorDraws, problem: DecisionProblem, n_grid: int = 0,
                  span: tuple | None = None) -> Actions:
    """The actions of a problem: one per format at its Bayes allocation, and with ``n_grid`` > 0
    at a budget also ``n_grid`` alternative model sizes per format (so that a decision taken
    after more data can re-allocate too).

    Parameters
    ----------
    n_grid : int
        Extra log-spaced N per format (budget mode only), over ``span``.
    span : mapping of format index -> (N_lo, N_hi), optional
        Range of the grid per format (default: the 1% and 99% quantiles of the per-draw optimum).
    """
    fi, Ns, Ds = [], [], []
    for i, fmt in enumerate(problem.formats):
        if problem.mode == "budget":
            N0, D0 = bayes_allocation(draws, problem, fmt)
            pts = [N0]
            if n_grid > 0:
                if span is not None and i in span:
                    lo, hi = span[i]
                else:
                    alloc = per_draw_allocation(draws, problem, fmt)
                    lo, hi = np.quantile(alloc["N"], [0.01, 0.99])
                lo, hi = min(lo, N0) / 1.5, max(hi, N0) * 1.5
                pts += list(np.exp(np.linspace(np.log(lo), np.log(hi), n_grid)))
            for n in pts:
                _, d = _nd(problem, fmt, n)
                fi.append(i), Ns.append(float(n)), Ds.append(float(d))
        else:
            n, d = fixed_allocation(problem, fmt)
            fi.append(i), Ns.append(float(n)), Ds.append(float(d))
    fi, Ns, Ds = np.array(fi), np.array(Ns), np.array(Ds)
    loss = np.empty((draws.size, len(fi)))
    for i, fmt in enumerate(problem.formats):
        sel = fi == i
        loss[:, sel] = draws.loss(fmt, Ns[sel][None, :], Ds[sel][None, :])
    cost = np.array([float(problem.cost.cost(problem.formats[i], n, d))
                     for i, n, d in zip(fi, Ns, Ds)])
    if not np.isfinite(loss).all():
        bad = sorted({problem.formats[i].name for i in fi[~np.isfinite(loss).all(axis=0)]})
        raise BayesfpInputError(f"formats: the law gives no finite loss for {', '.join(bad)} "
                                "at this N and D")
    return Actions(fi, Ns, Ds, cost, loss, problem.price)


@dataclass
class Decision:
    """The result of :func:`decide`.

    Attributes
    ----------
    problem : DecisionProblem
    actions : Actions
        One action per format (its Bayes allocation), in the order of ``problem.formats``.
    summary : dict
        :func:`summarize` of ``actions`` (per-format arrays, ``choice``, ``evpi``).
    allocation : dict or None
        At a budget: per format name, the per-draw optimum ``N``, ``D`` (arrays (S,)) and their
        HDIs ``N_hdi``, ``D_hdi``.
    evpi_allocation : float or None
        At a budget: the value of perfect information about format *and* allocation,
        ``E[max_f min_N L] `` against the Bayes choice (>= evpi).
    hdi_prob : float
    """

    problem: DecisionProblem
    actions: Actions
    summary: dict
    allocation: dict | None
    evpi_allocation: float | None
    hdi_prob: float

    @property
    def choice(self) -> Format:
        """The Bayes-optimal format."""
        return self.problem.formats[self.summary["choice"]]


def decide(draws: PosteriorDraws, problem: DecisionProblem, hdi_prob: float = 0.9) -> Decision:
    """Solve a decision problem on posterior draws.

    Parameters
    ----------
    draws : PosteriorDraws
    problem : DecisionProblem
    hdi_prob : float
        Mass of the reported intervals.

    Returns
    -------
    Decision
    """
    actions = build_actions(draws, problem)
    U = actions.utility
    summ = summarize(U, actions.loss, hdi_prob)
    allocation, evpi_alloc = None, None
    if problem.mode == "budget":
        allocation = {}
        best = np.full(draws.size, -np.inf)
        for i, fmt in enumerate(problem.formats):
            a = per_draw_allocation(draws, problem, fmt)
            allocation[fmt.name] = {"N": a["N"], "D": a["D"], "N_hdi": hdi(a["N"], hdi_prob),
                                    "D_hdi": hdi(a["D"], hdi_prob)}
            best = np.maximum(best, -(a["loss"] + problem.price * actions.cost[i]))
        evpi_alloc = max(float(best.mean() - U.mean(axis=0).max()), summ["evpi"])
    return Decision(problem, actions, summ, allocation, evpi_alloc, hdi_prob)
