"""``bayesfp report FIT.nc -o reports/NAME/``: a self-contained HTML report of a Bayesian fit."""

from pathlib import Path
from typing import Annotated

import typer

from bayesfp.cli import options as opt
from bayesfp.cli import output


def report_command(
    fit_file: opt.FitFile,
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Report folder: index.html and figures/.")],
    runs: Annotated[Path | None, typer.Option(
        "--runs", help="Run table to check the fit against; its runs not in the fit are "
                       "predicted.")] = None,
    compare: Annotated[list[Path] | None, typer.Option(
        "--compare", help="Another fit of the same runs for the LOO comparison (repeat the "
                          "option).")] = None,
    decision: Annotated[Path | None, typer.Option(
        "--decision", help="Decision analysis JSON (written by bayesfp decide).")] = None,
    holdout: Annotated[bool, typer.Option(
        "--holdout", help="Run the held-out extrapolation check (one more fit).")] = False,
    svg: Annotated[bool, typer.Option("--svg/--no-svg",
                                      help="Also write the figures as SVG.")] = True,
):
    """Write a self-contained HTML report of a Bayesian fit (docs/reports.md).

    Exits with status 3 when the fit failed its diagnostics gate (the report is still written
    and says so at the top).
    """
    import matplotlib

    matplotlib.use("Agg")
    from bayesfp.bayes.io import load_fit
    from bayesfp.jsonfile import read_json
    from bayesfp.report.html import write_report

    tree = load_fit(fit_file)
    dec = read_json(decision, "decision") if decision is not None else None
    path = write_report(tree, out, runs=runs, extra_fits=list(compare or ()) or None,
                        decision=dec, holdout=holdout, svg=svg, source=str(fit_file))
    output.say(f"report written to {path}")
    if not tree.attrs["gate_passed"]:
        output.warn("warning: this fit FAILED the diagnostics gate; the report says so")
        raise typer.Exit(output.EXIT_GATE_FAILED)
