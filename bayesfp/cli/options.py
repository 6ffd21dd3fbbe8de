"""Options shared by the ``bayesfp`` subcommands, as annotated types (one help text each)."""

from pathlib import Path
from typing import Annotated

import typer

from bayesfp import defaults
from bayesfp.errors import BayesfpInputError

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
    help="Candidate formats, comma-separated: eXmY, eXmY/B, fp8_e4m3, bf16. eXmY is the "
         "finite convention of Sun et al. (e4m3: max 480); the hardware FP8 E4M3 is e4m3fn "
         "(max 448); the laws see only E and M (docs/formats.md).")]
Budget = Annotated[float | None, typer.Option(
    "--budget", help="Compute budget: FLOPs, or GPU-hours with --throughput.")]


def given(ctx: typer.Context, names) -> list[str]:
    """The options among ``names`` (parameter names) that were given on the command line,
    as their ``--flag`` spelling."""
    from typer._click.core import ParameterSource

    flags = {p.name: p.opts[0] for p in ctx.command.params}
    return [flags.get(n, f"--{n.replace('_', '-')}") for n in names
            if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE]


def refuse_ignored(ctx: typer.Context, names, why: str) -> None:
    """A :class:`BayesfpInputError` if any option in ``names`` was given: it would be ignored."""
    flags = given(ctx, names)
    if flags:
        raise BayesfpInputError(f"{flags[0]}: {why}" + (
            f" (also {', '.join(flags[1:])})" if flags[1:] else ""))


def output_file(path: Path | None, suffixes, key: str = "--out") -> Path | None:
    """Check an output path before any work: not a folder, one of ``suffixes``."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        raise BayesfpInputError(f"{key}: {path} is a folder; give a file name")
    if suffixes and path.suffix.lower() not in suffixes:
        raise BayesfpInputError(f"{key}: expected a {' or '.join(suffixes)} file, "
                                f"got {path.name!r}")
    if path.parent.exists() and not path.parent.is_dir():
        raise BayesfpInputError(f"{key}: {path.parent} is not a folder")
    return path


def finite(value: float | None, key: str, positive: bool = False) -> float | None:
    """A finite number (positive with ``positive``), or a :class:`BayesfpInputError`."""
    import math

    if value is None:
        return None
    if not math.isfinite(value) or (positive and value <= 0):
        kind = "a positive finite number" if positive else "a finite number"
        raise BayesfpInputError(f"{key}: must be {kind}, got {value}")
    return float(value)
Structure = Annotated[str | None, typer.Option(
    "--structure", help="bayes: likelihood terms, comma-separated: cell, cell-d, seed, sigma-d, "
                        "discrepancy, log2b-power; none for the plain model "
                        f"[default: {defaults.STRUCTURE}] (docs/bayes.md).")]
Pool = Annotated[list[str] | None, typer.Option(
    "--pool", help="bayes: COEFS=COLUMN, pool these coefficients by this column, e.g. "
                   "eps,n,d=dataset or gamma=operands (repeatable).")]
FormatEffect = Annotated[str | None, typer.Option(
    "--format-effect", help="bayes: parametric (Sun's (E+0.5)^delta (M+0.5)^nu) or flex (plus "
                            "pooled per-E and per-M effects) [default: flex with a structure, "
                            "parametric with --structure none].")]
