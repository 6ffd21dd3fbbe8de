"""``bayesfp runs RUNS [--coverage]``: validate a run table and summarise it."""

from pathlib import Path
from typing import Annotated

import typer

from bayesfp.cli import output


def runs_command(
    runs_file: Annotated[Path, typer.Argument(
        help="Run table: .csv, .parquet or .jsonl, one row per training run (docs/runs.md).")],
    coverage: Annotated[bool, typer.Option(
        "--coverage", help="Also check what the runs cover against the requirements of the "
                           "shipped data set (docs/dataset.md).")] = False,
):
    """Validate a run table and print a summary of its runs.

    Every problem in the table is listed at once; diverged and failed runs are kept and counted.
    """
    from bayesfp.runs import RunTableReport, read_runs

    table = read_runs(runs_file)
    output.print_runs_summary(table, RunTableReport.of(table), runs_file)
    if coverage:
        from bayesfp.runs.coverage import coverage as check_coverage

        output.print_coverage(check_coverage(table))
