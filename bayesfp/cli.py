"""The ``bayesfp`` command line.

Each subcommand parses its arguments, calls library functions and prints through
``bayesfp.console``; everything it does can also be done from Python. Bad user input is raised as
``ValueError`` (``RunTableError`` is one) or ``OSError``; ``main`` prints it as one red
``error: ...`` line on stderr (a run table error lists its problems below) and exits with status
2, never with a traceback. Set ``BAYESFP_DEBUG=1`` to see the traceback instead.

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

# Exceptions that mean bad user input rather than a bug.
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
):
    """Validate a run table and print a summary of its runs.

    Every problem in the table is listed at once; diverged and failed runs are kept and counted.
    """
    from bayesfp.runs import read_runs, validate_runs

    table = read_runs(runs_file)
    _, report = validate_runs(table)
    _print_runs_summary(table, report, runs_file)


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


def _error_lines(exc):
    """Return the lines of a user error's message, the first one fit for ``error: ...``."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return [f"{exc.filename}: {exc.strerror}"]
    text = str(exc).strip()
    return text.splitlines() if text else [type(exc).__name__]


def _print_error(exc):
    lines = _error_lines(exc)
    options = {"markup": False, "highlight": False, "soft_wrap": True}
    err_console.print(f"error: {lines[0]}", style="bold red", **options)
    for line in lines[1:]:
        err_console.print(line, style="red", **options)


def main(argv=None):
    """Run the ``bayesfp`` command line and exit.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after the program name; ``sys.argv[1:]`` when None.

    Notes
    -----
    Exits with status 0 on success, 2 on bad input (one ``error:`` line on stderr, no
    traceback) or a usage error.
    """
    try:
        app(args=argv, prog_name="bayesfp")
    except USER_ERRORS as exc:
        if os.environ.get("BAYESFP_DEBUG") == "1":
            raise
        _print_error(exc)
        sys.exit(EXIT_USER_ERROR)


if __name__ == "__main__":
    main()
