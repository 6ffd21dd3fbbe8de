"""``training sweep``: run the grid of a grid file into a JSONL run table.

    training sweep grids/cpu-test.toml --out runs/cpu-test.jsonl --per-gpu 2
    training sweep grids/fp-h100.toml --out runs/fp-h100.jsonl --dry-run --throughput bench.json
    training sweep grids/fp-h100.toml --out runs/fp-h100.jsonl --per-gpu 8 --mps --max-minutes 9

Bad input (grid file, options, run table) gives a one-line ``error: ...`` and exit status 2; an
interrupted sweep exits with status 130 after stopping its runs.
"""

import typer

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                  help="Run a grid of training runs into one JSONL run table, resumably.")


@app.command()
def sweep(
    grid: str = typer.Argument(..., help="Grid file (.toml or .json); see docs/sweeps.md."),
    out: str = typer.Option(..., "--out", help="The run table (JSONL), appended to."),
    per_gpu: int = typer.Option(1, "--per-gpu", help="Runs sharing one GPU (CPU processes "
                                "without a GPU)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and its time "
                                 "estimate; run nothing."),
    max_minutes: float = typer.Option(0.0, "--max-minutes", help="Time budget: start no run "
                                      "that would end after it; stop what still runs then."),
    executor: str = typer.Option("local", "--executor", help="local or ray."),
    address: str = typer.Option("", "--address", help="Ray cluster address (default: a local "
                                "instance)."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Run the runs recorded as "
                                      "failed again."),
    retries: int = typer.Option(0, "--retries", help="Extra attempts, in this sweep, of a run "
                                "that crashed (non-zero exit, signal, time limit)."),
    run_timeout: float = typer.Option(0.0, "--run-timeout", help="Seconds a run may take "
                                      "(0: no limit)."),
    throughput: str = typer.Option("", "--throughput", help="Measured tokens/s (JSON of "
                                   "benchmarks/bench_train.py) for the time estimates."),
    gpus: str = typer.Option("", "--gpus", help="Comma-separated GPU indices to use (default: "
                             "all visible). With --dry-run, plans for them even without a GPU."),
    ddp_efficiency: float = typer.Option(0.0, "--ddp-efficiency", help="Measured scaling "
                                         "efficiency of runs with nproc > 1 (default 0.85, "
                                         "assumed)."),
    mps: bool = typer.Option(False, "--mps", help="Run an MPS daemon for the sweep so that runs "
                             "packed on one GPU run side by side (local executor)."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
):
    """Run (or with --dry-run, plan) every run of GRID that OUT does not hold yet."""
    from training.sweep.runner import run_sweep

    try:
        result = run_sweep(grid, out, per_gpu=per_gpu, executor=executor, dry_run=dry_run,
                           max_minutes=max_minutes, retry_failed=retry_failed, retries=retries,
                           run_timeout=run_timeout, throughput=throughput or None,
                           address=address or None, progress=not quiet, echo=typer.echo,
                           ddp_efficiency=ddp_efficiency or None, mps=mps,
                           gpus=[g.strip() for g in gpus.split(",") if g.strip()] or None)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    except KeyboardInterrupt:
        raise typer.Exit(130)
    if not dry_run and result.left:
        typer.echo(f"{result.left} runs left: run the same command again to go on")
