"""``bayesfp pipeline [RUNS]``: the main job, a Bayesian fit, decision and HTML report."""

from pathlib import Path
from typing import Annotated

import typer

from bayesfp import defaults
from bayesfp.cli import options as opt
from bayesfp.cli import output


def pipeline_command(
    runs_file: opt.RunsFile = None,
    law: opt.Law = defaults.LAW,
    out_dir: Annotated[Path | None, typer.Option(
        "--out-dir", "-o", help="Put the fit, decision and report here. Default: the fit in "
                                "models/NAME_LAW.nc, the report and decision in reports/NAME/ "
                                "(NAME from the run table's file name).")] = None,
    pool_by: Annotated[str, typer.Option(
        "--pool-by", help="Pool the precision sensitivity over this run-table column; auto: over "
                          "operands when the runs quantized several operand sets, none: "
                          "complete pooling.")] = "auto",
    budget: Annotated[float | None, typer.Option(
        "--budget", help="FLOP budget of the decision. Default: 10x the largest run's "
                         "6 N D.")] = None,
    formats: opt.Formats = defaults.FORMATS,
    cost: Annotated[str, typer.Option(
        help="FLOP cost model of the decision: bits (C = (6/16) P N D) or flat (6 N D for "
             "every format); it can decide the answer.")] = "bits",
    draws: opt.Draws = defaults.DRAWS,
    tune: opt.Tune = defaults.TUNE,
    chains: opt.Chains = defaults.CHAINS,
    holdout: Annotated[bool, typer.Option(
        "--holdout/--no-holdout",
        help="Held-out extrapolation check in the report (one more fit).")] = True,
    calibrate: Annotated[bool, typer.Option(
        "--calibrate/--no-calibrate",
        help="Also refit the same model on the held-out cuts of bayesfp calibrate (three more "
             "fits) and state their coverage in the report's verdict.")] = False,
    seed: opt.Seed = defaults.SEED,
    where: opt.Where = None,
    tensor_log2b: opt.TensorLog2B = None,
    structure: opt.Structure = None,
    format_effect: opt.FormatEffect = None,
):
    """The main job: Bayesian fit, decision and HTML report of a run table.

    1. fits the law to the runs (nutpie, diagnostics gate) -> models/NAME_LAW.nc;
    2. with --calibrate, refits the same model on the held-out cuts of bayesfp calibrate ->
       reports/NAME/calibration.csv;
    3. decides which candidate format to train in at the budget -> reports/NAME/decision.json;
    4. writes the report with every figure and the decision -> reports/NAME/index.html.

    Exits with status 3 when the fit failed its diagnostics gate (everything is still written).
    """
    import matplotlib

    matplotlib.use("Agg")
    from bayesfp.cli.calibrate import structure_kw
    from bayesfp.pipeline import run_pipeline

    res = run_pipeline(runs_file, law=law, out_dir=out_dir, pool_by=pool_by, budget=budget,
                       formats=formats, draws=draws, tune=tune, chains=chains, holdout=holdout,
                       seed=seed, where=where, tensor_log2b=tensor_log2b, cost=cost,
                       progress=True, calibrate=calibrate,
                       on_step=lambda k, title: output.console.rule(
                           f"{k}/{4 if calibrate else 3} {title}"),
                       structure=structure_kw(structure, None, format_effect, law))
    output.console.rule("summary")
    output.print_where(where, len(res.table), res.n_read)
    output.print_bayes_fit(res.fit, defaults.HDI_PROB)
    output.print_decision(res.decision)
    output.console.rule(f"done in {res.seconds:.0f} s")
    w = 12 if res.calibration_path else 10
    output.say(f"{'fit':<{w}}{res.fit_path}\n{'decision':<{w}}{res.decision_path}\n"
               + (f"{'calibration':<{w}}{res.calibration_path}\n" if res.calibration_path
                  else "")
               + f"{'report':<{w}}{res.report_path}")
    if res.decision.get("command"):
        output.say(f"the decision again: {res.decision['command']}")
    if not res.gate_passed:
        output.warn("warning: the fit failed its diagnostics gate; see the report")
        raise typer.Exit(output.EXIT_GATE_FAILED)
