"""``bayesfp calibrate RUNS``: refit on held-out cuts and print the predictive coverage."""

from pathlib import Path
from typing import Annotated

import typer

from bayesfp import defaults
from bayesfp.cli import options as opt
from bayesfp.cli import output
from bayesfp.errors import BayesfpInputError


def structure_kw(structure: str | None, pool: list[str] | None = None,
                 format_effect: str | None = None, law: str = defaults.LAW) -> dict:
    """Model keywords of the structure options
    (:func:`bayesfp.bayes.structured.structure_options`; imported when called, so that the
    command line starts without NumPy and pandas)."""
    from bayesfp.bayes.structured import structure_options

    return structure_options(structure, pool, format_effect, law)


def calibrate_command(
    runs_file: opt.RunsFile = None,
    law: opt.Law = defaults.LAW,
    pool_by: Annotated[str | None, typer.Option(
        "--pool-by", help="Run-table column to pool the precision sensitivity over.")] = None,
    pool: opt.Pool = None,
    structure: opt.Structure = None,
    format_effect: opt.FormatEffect = None,
    robust: Annotated[bool, typer.Option("--robust", help="Student-t likelihood.")] = False,
    cuts: Annotated[str, typer.Option(
        help="Held-out cuts, comma-separated: top20_N, top20_D, top2_N.")] =
        "top20_N,top20_D,top2_N",
    draws: opt.Draws = defaults.DRAWS,
    tune: opt.Tune = defaults.TUNE,
    chains: opt.Chains = defaults.CHAINS,
    seed: opt.Seed = defaults.SEED,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the table: .csv or .md.")] = None,
    where: opt.Where = None,
    tensor_log2b: opt.TensorLog2B = None,
):
    """Refit the model on held-out cuts of the runs and print the coverage of the held-out
    losses by the 50% and 90% predictive intervals, with each cut's extrapolation factor.

    Cuts hold out whole values, never single runs: the largest 20% of the N values, of the D
    values, and the two largest N values. A calibrated model covers about 50% and 90%. The
    table written with -o records the model's settings (column model), so that bayesfp report
    FIT --calibration TABLE shows it only for a fit of the same model and runs.
    """
    from bayesfp.bayes.calibrate import CUTS, calibrate, markdown_table
    from bayesfp.laws import get_law
    from bayesfp.pipeline import inputs_kw, keep_where, load_runs

    law = get_law(law).name
    chosen = [c.strip() for c in cuts.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(CUTS))
    if unknown:
        raise BayesfpInputError(f"cuts: unknown {unknown} (choose from {', '.join(CUTS)})")
    all_runs, path = load_runs(runs_file)
    table = keep_where(all_runs, where)
    output.print_where(where, len(table), len(all_runs))
    kw = structure_kw(structure, pool, format_effect, law)
    if pool_by:
        if kw:
            kw.setdefault("pool", []).append(f"gamma={pool_by}")
        else:
            kw["pool_by"] = pool_by
    if robust:
        kw["robust"] = True
    if tensor_log2b is not None:
        kw["inputs_kw"] = inputs_kw(tensor_log2b)
    output.say(f"{len(table)} runs from {path}; refitting {law} on {len(chosen)} cuts")
    res = calibrate(table, law, kw, cuts=chosen, seed=seed,
                    sampler={"draws": draws, "tune": tune, "chains": chains, "seed": seed})
    cols = ["cut", "n_fit", "n_held", "cells_held", "factor", "cov50", "cov90", "gate", "seconds"]
    output.console.print(markdown_table(res, cols), markup=False, highlight=False)
    output.say(f"model: {res['model'].iloc[0]}")
    if out is not None:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".md":
            out.write_text(markdown_table(res) + "\n")
        else:
            res.to_csv(out, index=False)
        output.say(f"wrote {out}")
