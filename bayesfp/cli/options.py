"""Options shared by the ``bayesfp`` subcommands, as annotated types (one help text each)."""

from pathlib import Path
from typing import Annotated

import typer

from bayesfp import defaults

RunsFile = Annotated[Path | None, typer.Argument(
    help="Run table (.csv/.parquet/.jsonl), one row per training run (docs/runs.md). "
         "Default: the shipped run data.")]
FitFile = Annotated[Path, typer.Argument(
    help="A Bayesian fit (.nc) from `bayesfp fit --method bayes -o FIT.nc`.")]
Law = Annotated[str, typer.Option(help="Law: chinchilla, kumar, sun or sun_sep.")]
Where = Annotated[list[str] | None, typer.Option(
    "--where", help="Fit only the runs with COLUMN=VALUE[,VALUE...] (repeatable; e.g. "
                    "group=core).")]
TensorLog2B = Annotated[float | None, typer.Option(
    "--tensor-log2b", help="Effective log2(B) of tensor-wise scaling. Without it, tensor-wise "
                           "runs are left out of the fit.")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
Level = Annotated[float, typer.Option(min=0.01, max=0.999, help="Mass of the intervals.")]
Draws = Annotated[int, typer.Option(min=10, help="Posterior draws per chain.")]
Tune = Annotated[int, typer.Option(
    min=10, help="Tuning steps per chain (the shipped runs, pooled over operands, need "
                 f"{defaults.TUNE} to pass the diagnostics gate).")]
Chains = Annotated[int, typer.Option(min=1, help="Chains.")]
Formats = Annotated[str, typer.Option(
    help="Candidate formats, comma-separated: eXmY, eXmY/B, fp8_e4m3, bf16.")]
Budget = Annotated[float | None, typer.Option(
    "--budget", help="Compute budget: FLOPs, or GPU-hours with --throughput.")]
