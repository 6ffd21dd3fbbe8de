"""A decision and its next-run ranking as plain dicts (for JSON and the report).

:func:`solve` runs the whole analysis on posterior draws; :func:`decision_to_dict` turns the
result into built-in types only; :func:`decision_for_report` does both from a fit.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from bayesfp.decide.analysis import Decision, decide, hdi
from bayesfp.decide.draws import PosteriorDraws, draws_from_fit
from bayesfp.decide.evsi import default_candidates, rank_experiments, read_candidates
from bayesfp.decide.problem import (
    DEFAULT_BLOCK,
    DEFAULT_FORMATS,
    SUN_K,
    DecisionProblem,
    make_problem,
)
from bayesfp.errors import BayesfpInputError

# A candidate other than the Bayes choice is "plausible" while P(best) is at least this.
PLAUSIBLE = 0.05
# Allocations more than this many times the largest fitted N or D are noted as extrapolations
# (every candidate also carries its factors, ``extrapolation``).
EXTRAPOLATION = 1.0


def verdicts(p_best: np.ndarray, choice: int) -> list[str]:
    """``choose`` for the Bayes choice, ``plausible`` for others with P(best) >= 0.05,
    ``worse`` for the rest."""
    return ["choose" if i == choice else ("plausible" if p >= PLAUSIBLE else "worse")
            for i, p in enumerate(p_best)]


def solve(draws: PosteriorDraws, problem: DecisionProblem, next_runs="auto",
          hdi_prob: float = 0.9, seed: int = 0, n_outer: int = 400
          ) -> tuple[Decision, pd.DataFrame | None]:
    """Decide and rank candidate runs.

    Parameters
    ----------
    next_runs : "auto", None, path or list of Experiment
        Candidate runs: ``auto`` (the default set, see
        :func:`bayesfp.decide.evsi.default_candidates`), a CSV (``N, D, format[, cost]``), a
        list, or None for no ranking.

    Returns
    -------
    (Decision, pandas.DataFrame or None)
    """
    decision = decide(draws, problem, hdi_prob)
    if next_runs is None or (isinstance(next_runs, str) and next_runs.lower() == "none"):
        return decision, None
    if isinstance(next_runs, str) and next_runs.lower() == "auto":
        cands = default_candidates(draws, problem)
    elif isinstance(next_runs, list):
        cands = next_runs
    else:
        cands = read_candidates(next_runs, problem)
    return decision, rank_experiments(draws, decision, cands, n_outer=n_outer, seed=seed)


def _f(x) -> float | None:
    return None if x is None else float(x)


def decision_to_dict(decision: Decision, ranking: pd.DataFrame | None = None,
                     draws: PosteriorDraws | None = None) -> dict:
    """A decision (and next-run ranking) as a dict of built-in types.

    Returns
    -------
    dict
        ``situation`` (mode, budget, N, D, cost unit, price, cost model), ``choice``,
        ``candidates`` (per format: E, M, B, P, N, D, cost, ``expected_loss``, ``interval``,
        ``p_best``, ``regret``, ``verdict``, ``extrapolation`` (N, D and 6 N D over the largest
        fitted); at a budget also ``N_interval``, ``D_interval`` of the per-draw optimum),
        ``evpi``, ``runner_up`` (the candidate with the next lowest expected loss: ``format``,
        ``loss_diff`` its expected loss minus the choice's in nats/token, ``interval`` the HDI of
        that difference over draws, ``p_choice_lower``), ``evpi_allocation``, ``units``,
        ``hdi_prob``, ``next_runs`` (list of dicts, best first, or None) and ``notes``.
    """
    p = decision.problem
    s, a = decision.summary, decision.actions
    verdict = verdicts(s["p_best"], s["choice"])
    cands = []
    for i, fmt in enumerate(p.formats):
        row = {"format": fmt.name, "E": fmt.E, "M": fmt.M, "B": fmt.B, "P": fmt.P,
               "N": float(a.N[i]), "D": float(a.D[i]), "cost": float(a.cost[i]),
               "expected_loss": float(s["expected_loss"][i]),
               "interval": [float(v) for v in s["interval"][i]],
               "expected_utility": float(s["expected_utility"][i]),
               "p_best": float(s["p_best"][i]), "regret": float(s["regret"][i]),
               "verdict": verdict[i]}
        if decision.allocation is not None:
            al = decision.allocation[fmt.name]
            row["N_interval"] = [float(v) for v in al["N_hdi"]]
            row["D_interval"] = [float(v) for v in al["D_hdi"]]
        cands.append(row)
    cost = p.cost
    cost_model = ({"kind": "flops", "k": cost.k, "b": cost.b, "per_bit": cost.per_bit}
                  if cost.unit == "FLOPs" else
                  {"kind": "throughput", "tokens_per_s": dict(cost.tokens_per_s),
                   "N_ref": dict(cost.N_ref) if cost.N_ref else None})
    notes = []
    if draws is not None and draws.runs is not None and len(draws.runs):
        n_max, d_max = float(draws.runs["N"].max()), float(draws.runs["D"].max())
        c_max = float((6.0 * draws.runs["N"].astype(float) * draws.runs["D"].astype(float)).max())
        beyond = []
        for c in cands:
            c["extrapolation"] = {"N": c["N"] / n_max, "D": c["D"] / d_max,
                                  "C": 6.0 * c["N"] * c["D"] / c_max}
            far = [f"{key} = {c[key]:.3g} ({c[key] / top:.3g}x)"
                   for key, top in (("N", n_max), ("D", d_max)) if c[key] > EXTRAPOLATION * top]
            if far:
                beyond.append(f"{c['format']} {', '.join(far)}")
        if beyond:
            notes.append(f"extrapolated beyond the fitted runs (largest N {n_max:.3g}, D "
                         f"{d_max:.3g}; the factor is to the largest): " + "; ".join(beyond))
    if ranking is not None and p.budget is not None:
        dear = ranking.loc[ranking["cost"] > p.budget, "run"].tolist()
        if dear:
            notes.append(f"{len(dear)} candidate run(s) cost more than the budget they would "
                         f"inform ({', '.join(dear[:3])}{', ...' if len(dear) > 3 else ''})")
    if ranking is not None and not ranking["reliable"].all():
        bad = ranking.loc[~ranking["reliable"], "run"].tolist()
        notes.append("EVSI overestimated (few draws keep weight after reweighting) for: "
                     + ", ".join(bad))
    runner_up = None
    if len(p.formats) > 1:
        i_best = int(s["choice"])
        rest = [i for i in np.argsort(s["expected_loss"]) if i != i_best]
        j = int(rest[0])
        diff = np.asarray(a.loss)[:, j] - np.asarray(a.loss)[:, i_best]
        runner_up = {"format": p.formats[j].name, "loss_diff": float(np.mean(diff)),
                     "interval": [float(v) for v in hdi(diff, decision.hdi_prob)],
                     "p_choice_lower": float(np.mean(diff > 0))}
    units = "nats/token" if p.price == 0 else f"nats/token + price x {cost.unit}"
    return {
        "situation": {"mode": p.mode, "budget": _f(p.budget), "N": _f(p.N), "D": _f(p.D),
                      "cost_unit": cost.unit, "price": float(p.price), "cost_model": cost_model},
        "choice": decision.choice.name,
        "candidates": cands,
        "evpi": float(s["evpi"]),
        "runner_up": runner_up,
        "evpi_allocation": _f(decision.evpi_allocation),
        "units": units,
        "hdi_prob": decision.hdi_prob,
        "n_draws": int(a.loss.shape[0]),
        "next_runs": None if ranking is None else [
            {k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in ranking.to_dict("records")],
        "notes": notes,
    }


def decision_for_report(fit, budget=None, N=None, D=None, formats=DEFAULT_FORMATS,
                        block=DEFAULT_BLOCK, k: float = SUN_K, b: float = 0.0, throughput=None,
                        price=None, next_runs="auto", hdi_prob: float = 0.9, seed: int = 0,
                        group: str | None = None, cost: str = "bits") -> dict:
    """The decision section of a report, as a plain dict.

    Parameters
    ----------
    fit : xarray.DataTree, path or PosteriorDraws
        A Bayesian fit (or draws already extracted).
    budget, N, D, formats, block, k, b, throughput, price, cost
        The decision problem (see :func:`bayesfp.decide.problem.make_problem`).
    next_runs : "auto", None or path
        Candidate runs to rank (see :func:`solve`).
    hdi_prob : float
        Mass of the intervals.
    seed : int
        Seed of the EVSI simulation.
    group : str, optional
        Group of a pooled fit whose precision sensitivity to use.

    Returns
    -------
    dict
        See :func:`decision_to_dict`; for a fit (not draws) also ``fit``: its ``path`` (when
        given one), ``law`` and ``gate_passed``.

    Raises
    ------
    BayesfpInputError
        On a bad decision setting, before the fit is read.
    """
    from bayesfp.bayes.info import group_column
    from bayesfp.bayes.io import fit_info, load_fit

    if not 0.0 < hdi_prob < 1.0:
        raise BayesfpInputError(f"hdi_prob: must lie in (0, 1), got {hdi_prob}")
    problem = make_problem(formats, budget=budget, N=N, D=D, block=block, k=k, b=b,
                           throughput=throughput, price=price, cost=cost)
    about = None
    if isinstance(fit, PosteriorDraws):
        draws = fit
        check_decidable(draws.law.name, None, group)
    else:
        tree = fit if hasattr(fit, "children") else load_fit(fit)
        info = fit_info(tree)
        check_decidable(info["law"], info, group)
        draws = draws_from_fit(tree, group=group)
        about = {"path": None if hasattr(fit, "children") else str(fit),
                 "hash": info.get("hash"), "law": draws.law.name,
                 "pool_by": group_column(info), "group": group,
                 "gate_passed": bool(info.get("gate", {}).get("passed", False))}
    decision, ranking = solve(draws, problem, next_runs, hdi_prob, seed)
    result = decision_to_dict(decision, ranking, draws)
    result["inputs"] = {
        "formats": [f.name for f in problem.formats], "block": str(block), "budget": _f(budget),
        "N": _f(N), "D": _f(D), "k": float(k), "b": float(b),
        "cost": None if throughput is not None else cost,
        "throughput": None if throughput is None or not isinstance(throughput, (str, Path))
        else str(throughput), "price": float(problem.price), "group": group,
        "next_runs": next_runs if next_runs in (None, "auto", "none") else str(next_runs),
        "hdi_prob": float(hdi_prob), "seed": int(seed)}
    if about is not None:
        result["fit"] = about
        if about["path"] is not None:
            result["command"] = replay_command(about["path"], result["inputs"])
    return result


def replay_command(path, inputs: dict) -> str:
    """The ``bayesfp decide`` command line that reproduces a decision from its fit file."""
    parts = ["bayesfp", "decide", str(path)]
    for key, flag in (("budget", "--budget"), ("N", "--N"), ("D", "--D")):
        if inputs.get(key) is not None:
            v = inputs[key]
            parts += [flag, str(int(v)) if float(v).is_integer() else repr(float(v))]
    parts += ["--formats", ",".join(inputs["formats"])]
    if inputs.get("block") != str(DEFAULT_BLOCK):
        parts += ["--block", str(inputs["block"])]
    if inputs.get("throughput"):
        parts += ["--throughput", inputs["throughput"]]
    else:
        if inputs.get("cost") not in (None, "bits"):
            parts += ["--cost", str(inputs["cost"])]
        if inputs.get("k") != SUN_K:
            parts += ["--k", repr(inputs["k"])]
        if inputs.get("b"):
            parts += ["--b", repr(inputs["b"])]
    if inputs.get("price"):
        parts += ["--price", repr(inputs["price"])]
    if inputs.get("group") is not None:
        parts += ["--group", str(inputs["group"])]
    if inputs.get("next_runs") not in (None, "auto"):
        parts += ["--next-runs", str(inputs["next_runs"])]
    if inputs.get("hdi_prob") != 0.9:
        parts += ["--hdi-prob", repr(inputs["hdi_prob"])]
    if inputs.get("seed"):
        parts += ["--seed", str(inputs["seed"])]
    return " ".join(parts)


def check_decidable(law: str, info: dict | None, group: str | None) -> None:
    """Refuse a decision a fit cannot make: a law without a precision term, or a fit pooled
    over groups without the group to decide for.

    Raises
    ------
    BayesfpInputError
    """
    from bayesfp.bayes.info import group_column
    from bayesfp.laws import get_law

    if set(get_law(law).inputs) <= {"N", "D"}:
        raise BayesfpInputError(
            f"law: the {law} law has no precision term: it predicts the same loss for every "
            "format, so its decision would follow the cost model alone; fit sun or kumar")
    groups = [str(g) for g in (info or {}).get("groups") or []]
    if groups and group is None:
        raise BayesfpInputError(
            f"group: the fit pools the precision sensitivity over {group_column(info)} "
            f"({len(groups)} groups), and their mean is no group's value; give --group, one "
            f"of: {', '.join(groups)}")
    if groups and group not in groups:
        raise BayesfpInputError(f"group: {group!r} is not a group of the fit (groups: "
                                f"{', '.join(groups)})")
    if not groups and group is not None:
        raise BayesfpInputError("group: the fit is not pooled over groups; leave --group out")


def cost_text(sit: dict) -> str:
    """The cost model of a decision's situation in words ("" when it records none).

    ``"cost = 0.375 (P + 0) N D FLOPs"`` for compute proportional to bits,
    ``"... for every format"`` when the cost does not depend on the format.
    """
    cm = sit.get("cost_model") or {}
    if cm.get("kind") == "flops":
        if not cm.get("per_bit", True):
            return f"cost = {cm['k']:.3g} (16 + {cm['b']:.3g}) N D FLOPs for every format"
        return f"cost = {cm['k']:.3g} (P + {cm['b']:.3g}) N D FLOPs"
    if cm.get("kind") == "throughput":
        return "cost = GPU-hours from measured tokens/s per format"
    return ""
