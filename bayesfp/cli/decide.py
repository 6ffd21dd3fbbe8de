"""``bayesfp decide FIT.nc --budget 1e21 --formats e2m1,e3m2,e4m3,bf16``: which format to train
in under posterior uncertainty, and which run to make next."""

from pathlib import Path
from typing import Annotated

import typer

from bayesfp import defaults
from bayesfp.cli import options as opt
from bayesfp.cli import output


def decide_command(
    ctx: typer.Context,
    fit_file: opt.FitFile,
    budget: opt.Budget = None,
    N: Annotated[float | None, typer.Option("--N", help="Fixed non-embedding parameters.")] = None,
    D: Annotated[float | None, typer.Option("--D", help="Fixed training tokens.")] = None,
    formats: opt.Formats = defaults.FORMATS,
    block: Annotated[str, typer.Option(
        help="Block size of quantized candidates: an integer or channel.")] = str(defaults.BLOCK),
    cost: Annotated[str, typer.Option(
        help="FLOP cost model: bits (C = k (P + b) N D: fewer bits, more compute for the budget) "
             "or flat (C = k (16 + b) N D for every format). It can decide the answer.")] =
        "bits",
    k: Annotated[float, typer.Option(
        help="FLOP cost C = k (P + b) N D: FLOPs per parameter, token and bit.")] = 6.0 / 16.0,
    b: Annotated[float, typer.Option(help="Bits added to P in the FLOP cost.")] = 0.0,
    throughput: Annotated[Path | None, typer.Option(
        help="CSV format,tokens_per_s[,N]: costs and budget in GPU-hours.")] = None,
    price: Annotated[float | None, typer.Option(
        help="Loss (nats/token) worth one unit of cost (FLOP or GPU-hour).")] = None,
    next_runs: Annotated[str | None, typer.Option(
        "--next-runs", help="Candidate runs: CSV with N,D,format[,cost], or none. Default: a set "
                            "around the fitted runs.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the decision as JSON.")] = None,
    hdi_prob: Annotated[float, typer.Option(
        "--hdi-prob", min=0.01, max=0.999, help="Mass of the intervals.")] = defaults.HDI_PROB,
    seed: Annotated[int, typer.Option(help="Seed of the EVSI simulation.")] = defaults.SEED,
    group: Annotated[str | None, typer.Option(
        help="Pooled fits (required): decide with this group's precision sensitivity.")] = None,
):
    """Which format to train in under posterior uncertainty, and which run to make next.

    Prints expected loss, P(best), regret and EVPI per candidate format, and ranks candidate
    runs by expected value of sample information per unit cost (docs/decisions.md). Exits with
    status 3 when the fit failed its diagnostics gate (the analysis is still printed).
    """
    from bayesfp.decide import decision_for_report
    from bayesfp.jsonfile import write_json

    out = opt.output_file(out, (".json",))
    if throughput is not None:
        opt.refuse_ignored(ctx, ("k", "b", "cost"), "a --throughput cost model replaces it")
    result = decision_for_report(fit_file, budget=budget, N=N, D=D, formats=formats,
                                 block=block, k=k, b=b, throughput=throughput, price=price,
                                 next_runs="auto" if next_runs is None else next_runs,
                                 hdi_prob=hdi_prob, seed=seed, group=group, cost=cost)
    passed = result["fit"]["gate_passed"]
    if not passed:
        output.warn("warning: this fit FAILED its diagnostics gate; the decision below rests on "
                    "draws that must not be trusted")
    output.print_decision(result)
    if out is not None:
        output.say(f"wrote {write_json(result, out)}")
    raise typer.Exit(0 if passed else output.EXIT_GATE_FAILED)
