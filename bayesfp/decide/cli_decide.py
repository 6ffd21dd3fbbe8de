"""The body of ``bayesfp decide FIT.nc --budget 1e21 --formats e2m1,e3m2,e4m3,bf16 ...``.

``cli.py`` calls::

    decide_command(fit_path, budget=None, N=None, D=None, formats="e2m1,e3m2,e4m3,bf16",
                   block=128, k=6/16, b=0.0, throughput=None, price=None, next_runs=None,
                   out_json=None, hdi_prob=0.9, seed=0, group=None) -> int

It loads the fit, solves the decision on its posterior draws, ranks candidate runs by EVSI per
unit cost, prints both as rich tables and writes them as JSON. It returns 0, or 1 when the fit
failed its diagnostics gate (the analysis is still printed, under a red warning). Bad input
raises ``ValueError`` (one line naming the key) for ``main``.
"""

import json
import os
from pathlib import Path

from rich.table import Table

from bayesfp.console import console, err_console
from bayesfp.decide.draws import draws_from_fit
from bayesfp.decide.problem import DEFAULT_BLOCK, DEFAULT_FORMATS, SUN_K, make_problem
from bayesfp.decide.summary import decision_to_dict, solve

EXIT_OK = 0
EXIT_GATE_FAILED = 1


def _si(x: float) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def _with_interval(x: float, iv) -> str:
    return _si(x) if iv is None else f"{_si(x)} [{_si(iv[0])}, {_si(iv[1])}]"


def _situation(sit: dict) -> str:
    unit = sit["cost_unit"]
    if sit["mode"] == "budget":
        return f"budget {sit['budget']:.3g} {unit}, N and D re-optimised"
    if sit["mode"] == "budget_N":
        return f"budget {sit['budget']:.3g} {unit} at N = {_si(sit['N'])}"
    if sit["mode"] == "budget_D":
        return f"budget {sit['budget']:.3g} {unit} at D = {_si(sit['D'])}"
    return f"N = {_si(sit['N'])}, D = {_si(sit['D'])}"


def decision_table(result: dict) -> Table:
    """Rich table of the candidates of :func:`bayesfp.decide.summary.decision_to_dict`."""
    sit = result["situation"]
    pct = int(round(result["hdi_prob"] * 100))
    where = _situation(sit)
    price = f"; price {sit['price']:.3g} per {sit['cost_unit']}" if sit["price"] else ""
    t = Table(title=f"Training format under posterior uncertainty ({where}{price}; "
                    f"{result['n_draws']} draws)", title_justify="left")
    t.add_column("format", no_wrap=True)
    t.add_column("P", justify="right")
    budget = sit["mode"] == "budget"
    t.add_column(f"N [HDI {pct}%]" if budget else "N", justify="right", no_wrap=True)
    t.add_column(f"D [HDI {pct}%]" if budget else "D", justify="right", no_wrap=True)
    if sit["price"] or sit["mode"] == "fixed":
        t.add_column(sit["cost_unit"], justify="right")
    t.add_column(f"loss [HDI {pct}%]", justify="right", no_wrap=True)
    t.add_column("P(best)", justify="right")
    t.add_column("regret", justify="right")
    t.add_column("verdict")
    for c in result["candidates"]:
        style = {"choose": "bold green", "plausible": "yellow", "worse": "dim"}[c["verdict"]]
        cells = [c["format"], str(c["P"]), _with_interval(c["N"], c.get("N_interval")),
                 _with_interval(c["D"], c.get("D_interval"))]
        if sit["price"] or sit["mode"] == "fixed":
            cells.append(f"{c['cost']:.3g}")
        cells += [f"{c['expected_loss']:.4f} [{c['interval'][0]:.4f}, {c['interval'][1]:.4f}]",
                  f"{c['p_best']:.2f}", f"{c['regret']:.2g}", c["verdict"]]
        t.add_row(*cells, style=style)
    return t


def next_runs_table(result: dict, limit: int = 12) -> Table:
    """Rich table of the next-run ranking (best first)."""
    unit = result["situation"]["cost_unit"]
    t = Table(title=f"What to run next: expected value of sample information per {unit} "
                    f"(EVSI in {result['units']})", title_justify="left")
    for col in ("rank", "run", unit, "EVSI", f"EVSI per {unit}", "signal", "ESS"):
        t.add_column(col, justify="left" if col == "run" else "right", no_wrap=col == "run")
    for r in result["next_runs"][:limit]:
        ess = f"{r['ess_median']:.0f}" + ("" if r["reliable"] else " low")
        t.add_row(str(r["rank"]), r["run"], f"{r['cost']:.3g}", f"{r['evsi']:.2g}",
                  f"{r['evsi_per_cost']:.3g}", f"{r['signal']:.2f}", ess,
                  style=None if r["reliable"] else "yellow")
    return t


def write_json(result: dict, path) -> Path:
    """Write the decision as JSON (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, path)
    return path


def decide_command(fit_path, budget=None, N=None, D=None, formats=DEFAULT_FORMATS,
                   block=DEFAULT_BLOCK, k: float = SUN_K, b: float = 0.0, throughput=None,
                   price=None, next_runs=None, out_json=None, hdi_prob: float = 0.9,
                   seed: int = 0, group: str | None = None) -> int:
    """Which format to train in, how sure to be, and which run to make next.

    Parameters
    ----------
    fit_path : path
        A Bayesian fit (``bayesfp fit --method bayes -o FIT.nc``).
    budget : float, optional
        Compute budget: FLOPs, or GPU-hours with ``throughput``.
    N, D : float, optional
        Fixed non-embedding parameters and/or training tokens.
    formats : str
        Comma-separated candidates (``e2m1,e3m2,e4m3,bf16``; ``e4m3/32`` for another block).
    block : int or str
        Block size of quantized candidates (``channel`` for channel-wise).
    k, b : float
        FLOP cost model ``C = k (P + b) N D``.
    throughput : path, optional
        CSV ``format, tokens_per_s[, N]``: costs in GPU-hours.
    price : float, optional
        Loss (nats/token) worth one unit of cost; utility is ``-(loss + price * cost)``.
    next_runs : path or str, optional
        CSV of candidate runs (``N, D, format[, cost]``), ``none`` to skip, default automatic.
    out_json : path, optional
        Where to write the result as JSON.
    hdi_prob : float
        Mass of the intervals.
    seed : int
        Seed of the EVSI simulation.
    group : str, optional
        Group of a pooled fit whose precision sensitivity to decide with (default: the global
        one, the mean over groups).

    Returns
    -------
    int
        0, or 1 when the fit failed its diagnostics gate.
    """
    from bayesfp.bayes.io import fit_info, load_fit

    if not 0.0 < hdi_prob < 1.0:
        raise ValueError(f"hdi_prob: must lie in (0, 1), got {hdi_prob}")
    problem = make_problem(formats, budget=budget, N=N, D=D, block=block, k=k, b=b,
                           throughput=throughput, price=price)
    tree = load_fit(fit_path)
    gate = fit_info(tree).get("gate", {})
    draws = draws_from_fit(tree, group=group)
    decision, ranking = solve(draws, problem, "auto" if next_runs is None else next_runs,
                              hdi_prob, seed)
    result = decision_to_dict(decision, ranking, draws)
    result["fit"] = {"path": str(fit_path), "law": draws.law.name,
                     "gate_passed": bool(gate.get("passed", False))}
    if not gate.get("passed", False):
        err_console.print("warning: this fit FAILED its diagnostics gate; the decision below "
                          "rests on draws that must not be trusted", style="bold red",
                          highlight=False)
    console.print(decision_table(result))
    best = next(c for c in result["candidates"] if c["format"] == result["choice"])
    console.print(f"Bayes choice: [bold]{result['choice']}[/] (expected loss "
                  f"{best['expected_loss']:.4f} nats/token, P(best) {best['p_best']:.2f}). "
                  f"EVPI {result['evpi']:.3g} {result['units']}: the most that any information "
                  "about the format could still gain.", highlight=False)
    if result["evpi_allocation"] is not None:
        console.print(f"EVPI of format and allocation together: "
                      f"{result['evpi_allocation']:.3g} {result['units']}.", highlight=False)
    if result["next_runs"] is not None:
        console.print(next_runs_table(result))
        if all(r["evsi"] == 0 for r in result["next_runs"]):
            console.print("No candidate run can change the decision (EVSI 0 for all).",
                          highlight=False)
    for note in result["notes"]:
        console.print(f"note: {note}", style="yellow", highlight=False)
    if out_json is not None:
        console.print(f"wrote {write_json(result, out_json)}", highlight=False)
    return EXIT_OK if gate.get("passed", False) else EXIT_GATE_FAILED
