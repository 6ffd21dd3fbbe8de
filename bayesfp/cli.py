"""The ``bayesfp`` command line.

Each subcommand parses its arguments, calls library functions and prints through
``bayesfp.console``; everything it does can also be done from Python. Bad user input is raised as
``ValueError`` (``RunTableError`` is one) or ``OSError``; ``main`` prints it as one red
``error: ...`` line on stderr (a run table error lists its problems below) and exits with status
2, never with a traceback. A ``ValueError`` raised inside a library underneath (numpy, pandas,
PyMC, ...) rather than by bayesfp's own checks is a bug, not bad input: it is printed as
``internal error: ...`` with a request to report it, exit status 1. Set ``BAYESFP_DEBUG=1`` to
see the traceback instead.

Adding a subcommand: write a function under "Subcommands" decorated with ``@app.command("name")``
whose docstring is its ``--help`` text.
"""

import os
import sys
from pathlib import Path

import typer
from rich.table import Table

from bayesfp.console import console, err_console

# Exit status for bad user input (the same as a usage error).
EXIT_USER_ERROR = 2

# Posterior sampling defaults of `fit --method bayes` and `pipeline`, per chain.
DRAWS = 2000
TUNE = 2000
TUNE_HELP = ("tuning steps per chain (2000: the shipped runs, pooled over operands, fail the "
             "diagnostics gate with 1000).")

# Exit status for an error that is a bug rather than bad input.
EXIT_INTERNAL_ERROR = 1

# Exceptions that mean bad user input rather than a bug (a ValueError only when bayesfp raised it
# itself: see _raised_by_bayesfp).
USER_ERRORS = (ValueError, OSError)

app = typer.Typer(
    name="bayesfp",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root():
    """Bayesian precision scaling laws: which floating-point format (E, M, B) to train in."""


# ---------------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------------


@app.command("runs")
def runs_command(
    runs_file: Path = typer.Argument(
        ..., help="Run table: .csv, .parquet or .jsonl, one row per training run (docs/runs.md)."
    ),
    coverage: bool = typer.Option(False, "--coverage",
                                  help="Also check what the runs cover against the requirements "
                                       "of the shipped data set (docs/dataset.md)."),
):
    """Validate a run table and print a summary of its runs.

    Every problem in the table is listed at once; diverged and failed runs are kept and counted.
    """
    from bayesfp.runs import read_runs, validate_runs

    table = read_runs(runs_file)
    clean, report = validate_runs(table)
    _print_runs_summary(table, report, runs_file)
    if coverage:
        _print_coverage(clean)


@app.command("fit")
def fit_command(
    runs_file: Path = typer.Argument(
        None, help="Run table (.csv/.parquet/.jsonl). Default: the shipped run data."
    ),
    law: str = typer.Option("sun", help="Law: chinchilla, kumar, sun or sun_sep."),
    method: str = typer.Option("point", help="point (Huber + L-BFGS + bootstrap) or bayes."),
    n_boot: int = typer.Option(200, "--n-boot", min=0, help="Bootstrap replicates (point)."),
    level: float = typer.Option(0.9, min=0.01, max=0.999, help="Interval level."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path = typer.Option(None, "--out", "-o",
                             help="Write the result: JSON (point) or NetCDF (bayes)."),
    pool_by: str = typer.Option(None, "--pool-by",
                                help="bayes: run-table column to pool the precision "
                                     "sensitivity over (e.g. operands, granularity, group)."),
    prior: str = typer.Option("default", help="bayes: default, published, or a fit .nc file."),
    draws: int = typer.Option(DRAWS, min=10, help="bayes: draws per chain."),
    tune: int = typer.Option(TUNE, min=10, help="bayes: " + TUNE_HELP),
    chains: int = typer.Option(4, min=1, help="bayes: chains."),
    pooling: str = typer.Option("partial", help="bayes, with --pool-by: partial (hierarchical) "
                                                "or none (independent group offsets)."),
    robust: bool = typer.Option(False, "--robust", help="bayes: Student-t likelihood."),
    sigma_by: str = typer.Option(None, "--sigma-by",
                                 help="bayes: run-table column with one noise sd per value."),
    sampler: str = typer.Option("nutpie", help="bayes: nutpie or pymc."),
    where: list[str] = typer.Option(None, "--where",
                                    help="Fit only the runs with COLUMN=VALUE[,VALUE...] "
                                         "(repeatable; e.g. group=core)."),
    tensor_log2b: float = typer.Option(None, "--tensor-log2b",
                                       help="Effective log2(B) of tensor-wise scaling. Without "
                                            "it, tensor-wise runs are left out of the fit."),
):
    """Fit a scaling law to a run table and print its coefficients with intervals.

    --method point minimises a summed Huber loss (delta 1e-3) on log-loss with L-BFGS from a grid
    of starts and bootstraps the runs for intervals. --method bayes samples the posterior.
    """
    from bayesfp.datasets import default_runs_path
    from bayesfp.laws import get_law

    law_obj = get_law(law)
    runs_file = runs_file or default_runs_path()
    method = method.lower()
    if method == "bayes":
        try:
            from bayesfp.bayes.cli_fit import fit_bayes_command
        except ImportError as exc:  # pragma: no cover - the bayes package ships with bayesfp
            raise ValueError(f"--method bayes is unavailable: {exc}") from None
        code = fit_bayes_command(runs_file, law=law_obj.name, pool_by=pool_by, prior=prior,
                                 out=out, draws=draws, tune=tune, chains=chains, seed=seed,
                                 hdi_prob=level, pooling=pooling, robust=robust,
                                 sigma_by=sigma_by, sampler=sampler,
                                 inputs_kw=_inputs_kw(tensor_log2b), where=where)
        raise typer.Exit(code)
    if method != "point":
        raise ValueError(f"--method: unknown method {method!r}; choose point or bayes")
    _fit_point_command(runs_file, law_obj.name, n_boot, level, seed, out,
                       _inputs_kw(tensor_log2b), where)


def _print_left_out(excluded):
    """Say which finished runs a fit left out and why (failed/diverged runs are said already)."""
    from bayesfp.laws.inputs import TENSOR_UNPLACED

    if excluded.get(TENSOR_UNPLACED):
        console.print(f"left out of the fit: {excluded[TENSOR_UNPLACED]} runs {TENSOR_UNPLACED}",
                      style="yellow", highlight=False)


def _where(table, conditions):
    """The rows of ``table`` that ``--where`` keeps, saying how many when it drops any."""
    from bayesfp.runs.select import where

    if not conditions:
        return table
    kept = where(table, conditions)
    console.print(f"--where {' '.join(conditions)}: {len(kept)} of {len(table)} runs kept",
                  highlight=False)
    return kept.reset_index(drop=True)


def _inputs_kw(tensor_log2b):
    """Law-input options of the CLI (``bayesfp.laws.law_inputs`` keywords)."""
    return {} if tensor_log2b is None else {"tensor_log2b": float(tensor_log2b)}


def _fit_point_command(runs_file, law, n_boot, level, seed, out, inputs_kw=None, where=None):
    import json

    from rich.progress import Progress

    from bayesfp.fit import fit_point
    from bayesfp.runs import read_runs, validate_runs

    table = _where(read_runs(runs_file), where)
    _, report = validate_runs(table)
    console.print(f"[bold]{len(table)}[/] runs from {runs_file}; {report.excluded_message()}",
                  highlight=False)
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"fitting {law} + {n_boot} bootstraps", total=n_boot or 1)
        fit = fit_point(table, law, n_boot=n_boot, seed=seed, inputs_kw=inputs_kw,
                        progress=lambda i: bar.update(task, completed=i))
    _print_left_out(fit.excluded)
    summary = fit.summary(level)
    t = Table(title=f"{law} point fit on {fit.n_runs} runs "
                    f"(Huber delta 1e-3 on log-loss; {n_boot} bootstraps, {level:.0%} intervals)",
              title_justify="left")
    for col in ("coefficient", "estimate", "lo", "hi", "note"):
        t.add_column(col, justify="left" if col in ("coefficient", "note") else "right")
    for name, row in summary.iterrows():
        note = "fixed" if row["fixed"] else ""
        t.add_row(name, f"{row['estimate']:.5g}", f"{row['lo']:.5g}", f"{row['hi']:.5g}", note)
    console.print(t)
    resid = fit.residuals
    console.print(f"residual sd of log-loss: {float(resid.std()):.4g}; "
                  f"objective {fit.objective:.4g}", highlight=False)
    derived = _point_derived(fit, table)
    if out is not None:
        payload = {
            "law": fit.law, "method": "point", "runs_file": str(runs_file), "n_runs": fit.n_runs,
            "excluded": fit.excluded, "level": level, "n_boot": n_boot, "seed": seed,
            "estimates": fit.estimates, "fixed": fit.fixed,
            "intervals": {k: [float(r["lo"]), float(r["hi"])] for k, r in summary.iterrows()},
            "bootstrap": fit.boot.to_dict(orient="list"),
            "residual_sd": float(resid.std()), "derived": derived,
        }
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(payload, indent=1, default=float))
        tmp.replace(out)
        console.print(f"wrote {out}")


def _point_derived(fit, table):
    """Print and return derived quantities of a Sun-law point fit."""
    if fit.law not in ("sun", "sun_sep"):
        return {}
    import numpy as np

    from bayesfp.fit.tables import dcrit_table, split_table

    quant = table[(table["operands"] != "none") & (table["status"] == "ok")]
    formats = sorted({(int(e), int(m)) for e, m in zip(quant["E"], quant["M"])})
    blocks = quant["B"][quant["B"].str.fullmatch(r"\d+")]
    log2B = float(np.log2(int(blocks.mode().iloc[0]))) if len(blocks) else 7.0
    Ns = sorted(table["N"].unique())
    dc = dcrit_table(fit.estimates, Ns, formats, log2B, fit.law)
    t = Table(title=f"critical data size D_crit (tokens) at B = {2 ** log2B:.0f}",
              title_justify="left")
    t.add_column("N")
    for c in dc.columns:
        t.add_column(c, justify="right")
    for n, row in dc.iterrows():
        t.add_row(_si(n), *[_si(v) for v in row])
    console.print(t)
    sp = split_table(fit.estimates, list(range(4, 13)) + [16], fit.law)
    console.print("best (E, M) per bit width P: " + ", ".join(
        f"P{P}: {r['format']}" for P, r in sp.iterrows()), highlight=False)
    return {"log2B": log2B, "dcrit": {c: dict(zip(map(float, dc.index), map(float, dc[c])))
                                      for c in dc.columns},
            "best_split": {int(P): r["format"] for P, r in sp.iterrows()}}


@app.command("decide")
def decide_cmd(
    fit_file: Path = typer.Argument(
        ..., help="A Bayesian fit (.nc) from `bayesfp fit --method bayes -o FIT.nc`."),
    budget: float = typer.Option(None, "--budget",
                                 help="Compute budget: FLOPs, or GPU-hours with --throughput."),
    N: float = typer.Option(None, "--N", help="Fixed non-embedding parameters."),
    D: float = typer.Option(None, "--D", help="Fixed training tokens."),
    formats: str = typer.Option("e2m1,e3m2,e4m3,bf16",
                                help="Candidate formats, comma-separated: eXmY, eXmY/B, "
                                     "fp8_e4m3, bf16."),
    block: str = typer.Option("128", help="Block size of quantized candidates: an integer or "
                                          "channel."),
    k: float = typer.Option(6.0 / 16.0, help="FLOP cost C = k (P + b) N D: FLOPs per "
                                             "parameter, token and bit."),
    b: float = typer.Option(0.0, help="Bits added to P in the FLOP cost."),
    throughput: Path = typer.Option(None, help="CSV format,tokens_per_s[,N]: costs and budget "
                                               "in GPU-hours."),
    price: float = typer.Option(None, help="Loss (nats/token) worth one unit of cost "
                                           "(FLOP or GPU-hour)."),
    next_runs: str = typer.Option(None, "--next-runs",
                                  help="Candidate runs: CSV with N,D,format[,cost], or none. "
                                       "Default: a set around the fitted runs."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the decision as JSON."),
    hdi_prob: float = typer.Option(0.9, "--hdi-prob", min=0.01, max=0.999,
                                   help="Mass of the intervals."),
    seed: int = typer.Option(0, help="Seed of the EVSI simulation."),
    group: str = typer.Option(None, help="Pooled fits: decide with this group's precision "
                                         "sensitivity."),
):
    """Which format to train in under posterior uncertainty, and which run to make next.

    Prints expected loss, P(best), regret and EVPI per candidate format, and ranks candidate
    runs by expected value of sample information per unit cost (docs/decisions.md).
    """
    from bayesfp.decide.cli_decide import decide_command as run_decide

    code = run_decide(fit_file, budget=budget, N=N, D=D, formats=formats, block=block, k=k,
                      b=b, throughput=throughput, price=price, next_runs=next_runs,
                      out_json=out, hdi_prob=hdi_prob, seed=seed, group=group)
    raise typer.Exit(code)


@app.command("report")
def report_cmd(
    fit_file: Path = typer.Argument(
        ..., help="A Bayesian fit (.nc) from bayesfp fit --method bayes."),
    out: Path = typer.Option(..., "--out", "-o", help="Report folder: index.html and figures/."),
    runs: Path = typer.Option(None, "--runs",
                              help="Run table to check the fit against; its runs not in the fit "
                                   "are predicted."),
    compare: list[Path] = typer.Option(None, "--compare",
                                       help="Another fit of the same runs for the LOO comparison "
                                            "(repeat the option)."),
    decision: Path = typer.Option(None, "--decision",
                                  help="Decision analysis JSON (written by bayesfp decide)."),
    holdout: bool = typer.Option(False, "--holdout",
                                 help="Run the held-out extrapolation check (one more fit)."),
    svg: bool = typer.Option(True, "--svg/--no-svg", help="Also write the figures as SVG."),
):
    """Write a self-contained HTML report of a Bayesian fit (docs/reports.md)."""
    from bayesfp.report.cli_report import report_command

    raise typer.Exit(report_command(fit_file, out, runs=runs, compare=compare or (),
                                    decision=decision, holdout=holdout, svg=svg))


@app.command("pipeline")
def pipeline_command(
    runs_file: Path = typer.Argument(
        None, help="Run table. Default: the shipped run data (bayesfp/data)."
    ),
    law: str = typer.Option("sun", help="Law to fit."),
    out_dir: Path = typer.Option(None, "--out-dir", "-o",
                                 help="Put the fit, decision and report here. Default: the fit "
                                      "in models/NAME_LAW.nc, the report and decision in "
                                      "reports/NAME/ (NAME from the run table's file name)."),
    pool_by: str = typer.Option("auto", "--pool-by",
                                help="Pool the precision sensitivity over this run-table column; "
                                     "auto: over operands when the runs quantized several "
                                     "operand sets, none: complete pooling."),
    budget: float = typer.Option(None, "--budget",
                                 help="FLOP budget of the decision. Default: 10x the largest "
                                      "run's 6 N D."),
    formats: str = typer.Option("e2m1,e3m2,e4m3,bf16", help="Candidate formats of the decision."),
    draws: int = typer.Option(DRAWS, min=100, help="Draws per chain."),
    tune: int = typer.Option(TUNE, min=100, help=TUNE_HELP[0].upper() + TUNE_HELP[1:]),
    chains: int = typer.Option(4, min=1, help="Chains."),
    holdout: bool = typer.Option(True, "--holdout/--no-holdout",
                                 help="Held-out extrapolation check in the report (one more fit)."),
    seed: int = typer.Option(0, help="Random seed."),
    where: list[str] = typer.Option(None, "--where",
                                    help="Fit only the runs with COLUMN=VALUE[,VALUE...] "
                                         "(repeatable; e.g. group=core)."),
    tensor_log2b: float = typer.Option(None, "--tensor-log2b",
                                       help="Effective log2(B) of tensor-wise scaling. Without "
                                            "it, tensor-wise runs are left out of the fit."),
):
    """The main job: Bayesian fit, decision and HTML report of a run table.

    1. fits the law to the runs (nutpie, diagnostics gate) -> models/NAME_LAW.nc;
    2. decides which candidate format to train in at the budget -> reports/NAME/decision.json;
    3. writes the report with every figure and the decision -> reports/NAME/index.html.
    """
    import json
    import time

    from bayesfp.bayes.cli_fit import fit_bayes_command
    from bayesfp.datasets import default_runs_path
    from bayesfp.decide import decision_for_report
    from bayesfp.decide.cli_decide import decision_table
    from bayesfp.report.html import write_report
    from bayesfp.runs import ok_runs, read_runs

    t0 = time.perf_counter()
    runs_file = runs_file or default_runs_path()
    table = _where(read_runs(runs_file), where)
    ok = ok_runs(table)
    if budget is None:
        budget = float(10 * (6.0 * ok["N"].astype(float) * ok["D"].astype(float)).max())
    quant = ok[ok["operands"] != "none"]
    if pool_by == "auto":
        pool_by = "operands" if quant["operands"].nunique() > 1 else None
    elif pool_by == "none":
        pool_by = None
    if pool_by is not None and pool_by not in ok:
        raise ValueError(f"--pool-by: the run table has no column {pool_by!r}")
    # A pooled fit decides for the group most quantized runs were trained with.
    group = None if pool_by is None else str(quant[pool_by].astype(str).mode().iloc[0])
    if out_dir is None:
        name = Path(runs_file).stem.removesuffix("_runs") or "runs"
        fit_path = Path("models") / f"{name}_{law}.nc"
        report_dir = Path("reports") / name
    else:
        fit_path, report_dir = out_dir / "fit.nc", out_dir / "report"
    fit_path.parent.mkdir(parents=True, exist_ok=True)
    report_dir.mkdir(parents=True, exist_ok=True)
    console.rule(f"1/3 fit: {law} law on {runs_file}")
    gate_code = fit_bayes_command(runs_file, law=law, pool_by=pool_by, out=fit_path, draws=draws,
                                  tune=tune, chains=chains, seed=seed, runs=table,
                                  inputs_kw=_inputs_kw(tensor_log2b))
    for_group = f" for {pool_by} = {group}" if group else ""
    console.rule(f"2/3 decision: formats {formats} at C = {budget:.3g} FLOPs{for_group}")
    decision = decision_for_report(fit_path, budget=budget, formats=formats, seed=seed,
                                   group=group)
    dec_path = report_dir / "decision.json"
    tmp = dec_path.with_name(dec_path.name + ".tmp")
    tmp.write_text(json.dumps(decision, indent=1, default=str))
    tmp.replace(dec_path)
    console.print(decision_table(decision))
    console.print(f"Bayes-optimal choice: [bold]{decision['choice']}[/]; EVPI "
                  f"{decision['evpi']:.3g} {decision['units']}")
    console.rule("3/3 report")
    report = write_report(fit_path, report_dir, decision=decision, holdout=holdout)
    console.rule(f"done in {time.perf_counter() - t0:.0f} s")
    console.print(f"fit       {fit_path}\ndecision  {dec_path}\nreport    {report}",
                  highlight=False)
    if gate_code:
        err_console.print("warning: the fit failed its diagnostics gate; see the report",
                          style="bold red")
    raise typer.Exit(gate_code)


# ---------------------------------------------------------------------------------------------
# Printing helpers
# ---------------------------------------------------------------------------------------------


def _si(x):
    """Write a count with an SI-like suffix: 85000000 -> "85M", 1.5e10 -> "15B"."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def _counted(series, order=None):
    """Write each distinct value with its number of runs: "e4m3 (12), bf16 (3)"."""
    counts = series.value_counts(sort=False)
    keys = list(counts.index) if order is None else sorted(counts.index, key=order)
    return ", ".join(f"{k} ({counts[k]})" for k in keys)


def _ids(ids, limit=12):
    text = ", ".join(ids[:limit])
    if len(ids) > limit:
        text += f" and {len(ids) - limit} more"
    return text


def _print_runs_summary(table, report, source):
    from bayesfp import dims
    from bayesfp.runs.schema import b_sort_key, operands_sort_key

    ok = table[table["status"] == "ok"]
    summary = Table(title=f"Run table {source}", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    status_text = ", ".join(f"{s} {k}" for s, k in report.counts.items())
    summary.add_row("runs", f"{report.n_runs} ({status_text})")
    for col, unit in ((dims.N, "non-embedding parameters"), (dims.D, "tokens")):
        values = table[col]
        summary.add_row(
            col,
            f"{_si(values.min())} to {_si(values.max())} {unit}, {values.nunique()} values",
        )
    if len(ok):
        summary.add_row(
            "loss (ok runs)", f"{ok[dims.LOSS].min():.4g} to {ok[dims.LOSS].max():.4g} nats/token"
        )
    bits = dict(zip(table["format"], zip(table[dims.P], table[dims.E])))
    summary.add_row("formats", _counted(table["format"], order=lambda f: (*bits[f], f)))
    summary.add_row("block sizes B", _counted(table[dims.B], order=b_sort_key))
    summary.add_row("operand sets", _counted(table["operands"], order=operands_sort_key))
    summary.add_row("seeds", _counted(table["seed"], order=int))
    if dims.GROUP in table.columns:
        summary.add_row("groups", _counted(table[dims.GROUP].fillna("(none)")))
    if report.diverged:
        summary.add_row("diverged", _ids(list(report.diverged)), style="yellow")
    if report.failed:
        summary.add_row("failed", _ids(list(report.failed)), style="yellow")
    console.print(summary)
    style = "yellow" if report.n_excluded else "green"
    console.print(report.excluded_message(), style=style, highlight=False)


def _print_coverage(clean):
    from bayesfp.runs.coverage import coverage, unmet

    checks = coverage(clean)
    table = Table(title="Coverage (requirements of docs/dataset.md)", title_justify="left")
    for col in ("requirement", "required", "found", "met", "missing"):
        table.add_column(col)
    for c in checks:
        missing = ", ".join(map(str, c.missing[:6])) + (" ..." if len(c.missing) > 6 else "")
        table.add_row(c.name, c.required, c.found, "yes" if c.met else "no", missing,
                      style=None if c.met else "yellow")
    console.print(table)
    n_unmet = len(unmet(checks))
    console.print(f"{len(checks) - n_unmet} of {len(checks)} requirements met",
                  style="green" if not n_unmet else "yellow", highlight=False)


def _error_lines(exc):
    """Return the lines of a user error's message, the first one fit for ``error: ...``."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return [f"{exc.filename}: {exc.strerror}"]
    text = str(exc).strip()
    return text.splitlines() if text else [type(exc).__name__]


def _print_error(exc, prefix="error"):
    lines = _error_lines(exc)
    options = {"markup": False, "highlight": False, "soft_wrap": True}
    err_console.print(f"{prefix}: {lines[0]}", style="bold red", **options)
    for line in lines[1:]:
        err_console.print(line, style="red", **options)


def _raised_by_bayesfp(exc) -> bool:
    """Whether the innermost Python frame of ``exc``'s traceback is bayesfp's own code (a check
    of the user's input) rather than a library underneath; True without a traceback."""
    tb = exc.__traceback__
    if tb is None:
        return True
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).split(".")[0] == "bayesfp"


def _is_user_error(exc) -> bool:
    """OSError (files) always; ValueError when bayesfp raised it."""
    return isinstance(exc, OSError) or _raised_by_bayesfp(exc)


def main(argv=None):
    """Run the ``bayesfp`` command line and exit.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after the program name; ``sys.argv[1:]`` when None.

    Notes
    -----
    Exits with status 0 on success, 2 on bad input (one ``error:`` line on stderr, no
    traceback) or a usage error, 1 on a ValueError from a library underneath (an internal
    error: a bug).
    """
    try:
        app(args=argv, prog_name="bayesfp")
    except USER_ERRORS as exc:
        if os.environ.get("BAYESFP_DEBUG") == "1":
            raise
        if _is_user_error(exc):
            _print_error(exc)
            sys.exit(EXIT_USER_ERROR)
        _print_error(exc, prefix=f"internal error ({type(exc).__name__})")
        err_console.print("this is a bug in bayesfp, not a problem with your input: please "
                          "report it with the output of the same command run with "
                          "BAYESFP_DEBUG=1", style="red", markup=False, highlight=False,
                          soft_wrap=True)
        sys.exit(EXIT_INTERNAL_ERROR)


if __name__ == "__main__":
    main()
