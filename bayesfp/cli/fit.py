"""``bayesfp fit RUNS --method point|bayes``: fit a scaling law and print its coefficients."""

from pathlib import Path
from typing import Annotated

import typer

from bayesfp import defaults
from bayesfp.cli import options as opt
from bayesfp.cli import output
from bayesfp.errors import BayesfpInputError

METHODS = ("point", "bayes")
# Options only one method uses (parameter names): giving one to the other method is an error.
BAYES_ONLY = ("pool_by", "prior", "draws", "tune", "chains", "pooling", "robust", "sigma_by",
              "sampler", "structure", "pool", "format_effect")
POINT_ONLY = ("n_boot",)


def fit_command(
    ctx: typer.Context,
    runs_file: opt.RunsFile = None,
    law: opt.Law = defaults.LAW,
    method: Annotated[str, typer.Option(
        help="point (Huber + L-BFGS + bootstrap) or bayes.")] = "point",
    n_boot: Annotated[int, typer.Option(
        "--n-boot", min=0, help="point: bootstrap replicates.")] = defaults.N_BOOT,
    level: opt.Level = defaults.HDI_PROB,
    seed: opt.Seed = defaults.SEED,
    out: Annotated[Path | None, typer.Option(
        "--out", "-o", help="Write the result: JSON (point) or NetCDF (bayes).")] = None,
    pool_by: Annotated[str | None, typer.Option(
        "--pool-by", help="bayes: run-table column to pool the precision sensitivity over "
                          "(e.g. operands, granularity, group).")] = None,
    prior: Annotated[str, typer.Option(
        help="bayes: default, published, or a fit .nc file.")] = "default",
    draws: opt.Draws = defaults.DRAWS,
    tune: opt.Tune = defaults.TUNE,
    chains: opt.Chains = defaults.CHAINS,
    pooling: Annotated[str, typer.Option(
        help="bayes, with --pool-by: partial (hierarchical) or none (independent group "
             "offsets).")] = "partial",
    robust: Annotated[bool, typer.Option(
        "--robust", help="bayes: Student-t likelihood.")] = False,
    sigma_by: Annotated[str | None, typer.Option(
        "--sigma-by", help="bayes: run-table column with one noise sd per value.")] = None,
    sampler: Annotated[str, typer.Option(help="bayes: nutpie or pymc.")] = defaults.SAMPLER,
    structure: opt.Structure = None,
    pool: opt.Pool = None,
    format_effect: opt.FormatEffect = None,
    where: opt.Where = None,
    tensor_log2b: opt.TensorLog2B = None,
):
    """Fit a scaling law to a run table and print its coefficients with intervals.

    --method point minimises a summed Huber loss (delta 1e-3) on log-loss with L-BFGS from a grid
    of starts and bootstraps the runs for intervals. --method bayes samples the posterior and
    exits with status 3 when the fit fails its diagnostics gate (the fit is still written).
    """
    from bayesfp.cli.calibrate import structure_kw
    from bayesfp.laws import get_law
    from bayesfp.pipeline import inputs_kw, keep_where, load_runs, require_quantized

    law = get_law(law).name
    method = method.lower()
    if method not in METHODS:
        raise BayesfpInputError(f"method: unknown method {method!r}; choose point or bayes")
    if method == "point":
        opt.refuse_ignored(ctx, BAYES_ONLY, "only --method bayes uses it")
    else:
        opt.refuse_ignored(ctx, POINT_ONLY, "only --method point uses it")
    out = opt.output_file(out, (".json",) if method == "point" else (".nc",))
    opt.finite(tensor_log2b, "--tensor-log2b")
    all_runs, path = load_runs(runs_file)
    table = keep_where(all_runs, where)
    output.print_where(where, len(table), len(all_runs))
    require_quantized(table, law, tensor_log2b)
    kw = inputs_kw(tensor_log2b)
    if method == "point":
        _point(table, path, law, n_boot, level, seed, out, kw, where)
    else:
        raise typer.Exit(_bayes(table, path, law, out, level, kw, where, pool_by=pool_by,
                                prior=prior,
                                pooling=pooling, robust=robust, sigma_by=sigma_by,
                                draws=draws, tune=tune, chains=chains, seed=seed,
                                sampler=sampler,
                                structure=structure_kw(structure, pool, format_effect, law)))


def _point(table, path, law, n_boot, level, seed, out, inputs_kw, where):
    from rich.progress import Progress

    from bayesfp.fit import fit_point
    from bayesfp.fit.tables import point_derived, point_fit_dict
    from bayesfp.jsonfile import write_json
    from bayesfp.runs import RunTableReport

    output.say(f"{len(table)} runs from {path}; {RunTableReport.of(table).excluded_message()}")
    with Progress(console=output.console, transient=True) as bar:
        task = bar.add_task(f"fitting {law} + {n_boot} bootstraps", total=n_boot or 1)
        fit = fit_point(table, law, n_boot=n_boot, seed=seed, inputs_kw=inputs_kw,
                        progress=lambda i: bar.update(task, completed=i))
    derived = point_derived(fit, table)
    output.print_point_fit(fit, level, n_boot, derived)
    if out is not None:
        from bayesfp.bayes.io import file_sha256

        payload = point_fit_dict(fit, level, derived, runs_file=str(Path(path).resolve()),
                                 runs_sha256=file_sha256(path), where=list(where or []),
                                 n_boot=n_boot, seed=seed, inputs_kw=dict(inputs_kw))
        output.say(f"wrote {write_json(payload, out, default=float)}")


def _bayes(table, path, law, out, level, inputs_kw, where, **settings) -> int:
    from bayesfp.bayes.io import record_provenance, save_fit
    from bayesfp.pipeline import fit_bayes

    if out is None:
        suffix = f"_{settings['pool_by']}" if settings["pool_by"] else ""
        out = Path(f"{Path(path).stem}_{law}{suffix}.nc")
    output.say(f"{len(table)} runs from {path}; sampling the {law} law: {settings['chains']} "
               f"chains x ({settings['tune']} tuning + {settings['draws']} draws)")
    fit = fit_bayes(table, law, inputs_kw=inputs_kw, progress=True, **settings)
    record_provenance(fit, path, where, {"command": "fit", "method": "bayes", "law": law,
                                         "inputs_kw": dict(inputs_kw), **settings})
    save_fit(fit, out)
    output.print_bayes_fit(fit, level)
    _warn_within_range(fit)
    output.say(f"fit written to {out}")
    return 0 if fit.attrs["gate_passed"] else output.EXIT_GATE_FAILED


def _warn_within_range(fit) -> None:
    """Say where the posterior contradicts the runs inside their own range."""
    from bayesfp.bayes.info import fit_info

    wr = fit_info(fit).get("within_range")
    if not wr or wr["passed"]:
        return
    lines = []
    if wr["slope_flagged"]:
        lines.append(f"{wr['slope_flagged']} of {wr['slope_steps']} loss-vs-D steps of a series "
                     "fall in the runs but rise under the posterior (D_crit inside the data)")
    for r in wr.get("minimum_inside", []):
        lines.append(f"E{r['E']}M{r['M']} at N = {float(r['N']):.3g}: the runs' loss falls from "
                     f"D = {r['D_from']:.3g} to {r['D_to']:.3g} ({r['observed']:+.4f} nats), "
                     f"but the posterior puts its D_crit between them (P {r['p_inside']:.2f})")
    for p in wr["pairs"]:
        if p["disagrees"]:
            lines.append(f"{p['a']} vs {p['b']}: {p['a']} lower in {p['a_wins']:.0%} of "
                         f"{p['pairs']} paired runs (mean {p['observed']:+.4f} nats), posterior "
                         f"P({p['a']} better) {p['p_a_better']:.2f}")
    output.warn("the posterior contradicts the runs inside their range:", lines)
