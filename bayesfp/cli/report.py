"""``bayesfp report FIT.nc -o reports/NAME/``: a self-contained HTML report of a Bayesian fit."""

from pathlib import Path
from typing import Annotated

import typer

from bayesfp.cli import options as opt
from bayesfp.cli import output
from bayesfp.errors import BayesfpInputError


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
                                      help="Also write the figures as SVG (figures/NAME.svg; "
                                           "the page itself embeds PNGs).")] = False,
    n_factor: Annotated[float, typer.Option(
        "--n-factor", help="D_crit tables and figures reach this many times the largest "
                           "fitted N.")] = 10.0,
    c_factor: Annotated[float, typer.Option(
        "--c-factor", help="Compute-optimal precision reaches this many times the largest "
                           "run's compute.")] = 100.0,
    calibration: Annotated[Path | None, typer.Option(
        "--calibration", help="Held-out calibration table of the fit's model (.csv or .md, "
                              "written by bayesfp calibrate -o with the fit's options).")] = None,
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

    for key, v in (("--n-factor", n_factor), ("--c-factor", c_factor)):
        if not (1.0 <= v <= 1e12):
            raise BayesfpInputError(f"{key}: must be a number from 1 to 1e12, got {v}")
    if out.exists() and not out.is_dir():
        raise BayesfpInputError(f"--out: {out} is a file; give a folder for the report")
    dec = read_json(decision, "decision") if decision is not None else None
    tree = load_fit(fit_file, predictive=False)  # the report draws its own predictions
    path = write_report(tree, out, runs=runs, extra_fits=list(compare or ()) or None,
                        decision=dec, holdout=holdout, svg=svg, source=str(fit_file),
                        n_factor=n_factor, c_factor=c_factor, calibration=calibration)
    output.say(f"report written to {path}")
    if not tree.attrs["gate_passed"]:
        output.warn("warning: this fit FAILED the diagnostics gate; the report says so")
        raise typer.Exit(output.EXIT_GATE_FAILED)
