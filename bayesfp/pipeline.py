"""The main job as library functions: Bayesian fit, decision and HTML report of a run table.

:func:`run_pipeline` is what ``bayesfp pipeline`` runs (``scripts/main.sh``): it reads and
validates the run table once, fits the law with :func:`fit_bayes` (diagnostics gate included),
decides which candidate format to train in at the budget and writes the report.
"""

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from bayesfp import defaults
from bayesfp.errors import BayesfpInputError


@dataclass(frozen=True)
class PipelineResult:
    """What :func:`run_pipeline` wrote.

    Attributes
    ----------
    runs_file : pathlib.Path
        The run table.
    n_read : int
        Runs in the run table.
    table : pandas.DataFrame
        The validated runs the fit was given (after ``where``).
    fit : xarray.DataTree
        The fit, as saved at ``fit_path``.
    fit_path, decision_path, report_path : pathlib.Path
        The fit (NetCDF), the decision (JSON) and the report (``index.html``).
    calibration_path : pathlib.Path or None
        The held-out calibration table (CSV), when it was run.
    decision : dict
        The decision (:func:`bayesfp.decide.decision_for_report`).
    pool_by, group : str or None
        The column the precision sensitivity was pooled over, and the group decided for.
    budget : float
        FLOP budget of the decision.
    seconds : float
        Wall time of the whole job.
    """

    runs_file: Path
    n_read: int
    table: pd.DataFrame
    fit: object
    fit_path: Path
    decision: dict
    decision_path: Path
    report_path: Path
    pool_by: str | None
    group: str | None
    budget: float
    seconds: float
    calibration_path: Path | None = None

    @property
    def gate_passed(self) -> bool:
        """bool : Whether the fit passed its diagnostics gate."""
        return bool(self.fit.attrs["gate_passed"])


def inputs_kw(tensor_log2b: float | None = None) -> dict:
    """Law-input options (:func:`bayesfp.laws.law_inputs` keywords) from their settings."""
    return {} if tensor_log2b is None else {"tensor_log2b": float(tensor_log2b)}


def load_runs(runs_file=None) -> tuple[pd.DataFrame, Path]:
    """Read and validate a run table (default: the shipped runs); return it and its path."""
    from bayesfp.datasets import default_runs_path
    from bayesfp.runs import read_runs

    path = Path(runs_file) if runs_file is not None else default_runs_path()
    return read_runs(path), path


def keep_where(table: pd.DataFrame, where: Sequence[str] | None) -> pd.DataFrame:
    """The runs meeting every ``COLUMN=VALUE[,VALUE...]`` condition, index from 0."""
    from bayesfp.runs.select import where as select_where

    return select_where(table, where).reset_index(drop=True) if where else table


def fit_bayes(table: pd.DataFrame, law: str = defaults.LAW, *, out=None,
              pool_by: str | None = None, prior="default", pooling: str = "partial",
              centred: bool = False, robust: bool = False, sigma_by: str | None = None,
              inputs_kw: Mapping | None = None, draws: int = defaults.DRAWS,
              tune: int = defaults.TUNE, chains: int = defaults.CHAINS, seed: int = defaults.SEED,
              cores: int = defaults.CORES, sampler: str = defaults.SAMPLER,
              progress: bool = False, structure: Mapping | None = None):
    """Fit a law to a validated run table with NUTS and save the fit.

    Parameters
    ----------
    table : pandas.DataFrame
        Validated run table.
    law : str
        ``chinchilla``, ``kumar``, ``sun`` or ``sun_sep``.
    out : path, optional
        Where to save the fit (NetCDF, ``.nc``); not saved when None.
    pool_by, prior, pooling, centred, robust, sigma_by, inputs_kw
        Model options (:class:`bayesfp.bayes.models.LawModel`).
    draws, tune, chains, seed, cores, sampler, progress
        Sampler settings (:class:`bayesfp.bayes.sample.SamplerConfig`).
    structure : mapping, optional
        Structured-likelihood options (:class:`bayesfp.bayes.structured.StructuredMixin`:
        ``cell``, ``cell_d``, ``seed_effect``, ``sigma_d``, ``discrepancy``, ``pool``,
        ``format_effect``, ``log2b_power``); with any of them, ``pool_by`` becomes
        ``pool={"gamma": pool_by}``.

    Returns
    -------
    xarray.DataTree
        The fit (:meth:`bayesfp.bayes.models.LawModel.fit`) with its ``prior`` and
        ``prior_predictive`` groups (:func:`bayesfp.bayes.prior_groups.add_prior_groups`, 500
        draws seeded with ``seed``); its gate result is in ``fit.attrs["gate_passed"]``, the
        within-range checks (:func:`bayesfp.bayes.checks.within_range`) in its record under
        ``within_range``.
    """
    from bayesfp.bayes.calibrate import make_model
    from bayesfp.bayes.checks import within_range
    from bayesfp.bayes.info import fit_info, set_info
    from bayesfp.bayes.io import save_fit
    from bayesfp.bayes.prior_groups import add_prior_groups

    config = dict(draws=draws, tune=tune, chains=chains, seed=seed, cores=cores,
                  sampler=sampler, progressbar=progress)
    kw = model_kw(pool_by, structure, inputs_kw) | dict(pooling=pooling, prior=prior,
                                                        robust=robust, sigma_by=sigma_by)
    if not structure:
        kw["centred"] = centred
    model = make_model(table, law, kw, config)
    fit = model.fit()
    add_prior_groups(fit, model)
    info = fit_info(fit)
    info["within_range"] = within_range(fit)
    set_info(fit, info)
    if out is not None:
        save_fit(fit, out)
    return fit


def model_kw(pool_by: str | None = None, structure: Mapping | None = None,
             inputs_kw: Mapping | None = None) -> dict:
    """Model keywords (:func:`bayesfp.bayes.calibrate.make_model`) of the model that
    :func:`fit_bayes` fits with these options, for refits of the same model (calibration)."""
    from bayesfp.bayes.structured import parse_pool

    kw = {"inputs_kw": dict(inputs_kw)} if inputs_kw else {}
    if structure:
        st = dict(structure)
        pool = parse_pool(st.pop("pool", None))
        if pool_by:
            pool.setdefault("gamma", pool_by)
        kw.update(st, pool=pool)
    elif pool_by:
        kw["pool_by"] = pool_by
    return kw


def run_calibration(table: pd.DataFrame, law: str, path, *, pool_by: str | None = None,
                    structure: Mapping | None = None, inputs_kw: Mapping | None = None,
                    draws: int = defaults.DRAWS, tune: int = defaults.TUNE,
                    chains: int = defaults.CHAINS, seed: int = defaults.SEED) -> pd.DataFrame:
    """The held-out calibration (:func:`bayesfp.bayes.calibrate.calibrate`, every cut) of the
    model :func:`fit_bayes` fits with these options, written to ``path`` as CSV (as ``bayesfp
    calibrate -o``); returns the table."""
    import os

    from bayesfp.bayes.calibrate import CUTS, calibrate

    res = calibrate(table, law, model_kw(pool_by, structure, inputs_kw), cuts=CUTS, seed=seed,
                    sampler={"draws": draws, "tune": tune, "chains": chains, "seed": seed})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        res.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return res


def resolve_pool_by(table: pd.DataFrame, pool_by: str | None):
    """The pooling column of the main job and the group its decision is made for.

    ``"auto"`` pools over ``operands`` when the usable quantized runs span several operand sets,
    ``"none"`` (or None) pools nothing. A pooled fit decides with the precision sensitivity of
    the group most quantized runs were trained with.

    Returns
    -------
    pool_by, group : str or None
    """
    from bayesfp.runs.select import fit_selection

    ok = table[fit_selection(table).usable]
    quant = ok[ok["operands"] != "none"]
    if pool_by == "auto":
        pool_by = "operands" if quant["operands"].nunique() > 1 else None
    elif pool_by == "none":
        pool_by = None
    if pool_by is None:
        return None, None
    if pool_by not in ok:
        raise BayesfpInputError(f"pool_by: the run table has no column {pool_by!r}")
    if quant.empty:
        raise BayesfpInputError("pool_by: no quantized run to pool over")
    return pool_by, str(quant[pool_by].astype(str).mode().iloc[0])


def require_quantized(table: pd.DataFrame, law: str, tensor_log2b: float | None = None) -> None:
    """Refuse to fit a law with a precision term to runs of which none is quantized: its
    precision coefficients (and so D_crit, the best split, any decision between formats) would
    be the prior alone.

    Raises
    ------
    BayesfpInputError
    """
    from bayesfp.laws import get_law
    from bayesfp.runs.select import fit_selection

    law = get_law(law)
    if set(law.inputs) <= {"N", "D"}:
        return
    ok = table[fit_selection(table, tensor_log2b).in_fit]
    if not (ok["operands"].astype(str) != "none").any():
        raise BayesfpInputError(
            f"runs: none of the {len(ok)} runs in the fit is quantized, so the {law.name} law's "
            "precision coefficients would be their prior alone; add quantized runs or fit "
            "chinchilla")


def default_budget(table: pd.DataFrame) -> float:
    """Ten times the largest ``6 N D`` (FLOPs) of the usable runs of a validated table."""
    from bayesfp.runs.select import fit_selection

    ok = table[fit_selection(table).usable]
    if ok.empty:
        raise BayesfpInputError("runs: no run with status 'ok' and a finite loss")
    return float(10 * (6.0 * ok["N"].astype(float) * ok["D"].astype(float)).max())


def run_pipeline(runs_file=None, *, law: str = defaults.LAW, out_dir=None,
                 pool_by: str | None = "auto", budget: float | None = None,
                 formats: str = defaults.FORMATS, draws: int = defaults.DRAWS,
                 tune: int = defaults.TUNE, chains: int = defaults.CHAINS,
                 holdout: bool = True, seed: int = defaults.SEED,
                 where: Sequence[str] | None = None, tensor_log2b: float | None = None,
                 cost: str = "bits", progress: bool = False,
                 on_step: Callable[[int, str], None] | None = None,
                 structure: Mapping | str | None = "default",
                 calibrate: bool = False) -> PipelineResult:
    """The main job: Bayesian fit, decision and HTML report of a run table.

    1. fits the law (nutpie, diagnostics gate) -> ``models/NAME_LAW.nc``;
    2. with ``calibrate``, refits the same model on the held-out cuts of ``bayesfp calibrate``
       -> ``reports/NAME/calibration.csv``;
    3. decides which candidate format to train in at the budget -> ``reports/NAME/decision.json``;
    4. writes the report with every figure, the decision and the calibration ->
       ``reports/NAME/index.html``.

    NAME is the run table's file name without ``_runs``. With ``out_dir`` the files are
    ``out_dir/fit.nc`` and ``out_dir/report/``.

    Parameters
    ----------
    runs_file : path, optional
        Run table (.csv, .parquet, .jsonl); default the shipped runs.
    law : str
        Law to fit.
    out_dir : path, optional
        Folder for the fit and the report (see above).
    pool_by : str or None
        Column to pool the precision sensitivity over; ``"auto"`` or ``"none"`` (see
        :func:`resolve_pool_by`).
    budget : float, optional
        FLOP budget of the decision; default :func:`default_budget`.
    formats : str
        Candidate formats, comma-separated.
    draws, tune, chains, seed
        Sampler settings, per chain.
    holdout : bool
        Run the held-out extrapolation check in the report (one more fit).
    where : sequence of str, optional
        ``COLUMN=VALUE[,VALUE...]`` conditions choosing the runs.
    tensor_log2b : float, optional
        Effective log2(B) of tensor-wise scaling; without it tensor-wise runs are left out.
    cost : str
        FLOP cost model of the decision: ``bits`` or ``flat`` (see
        :func:`bayesfp.decide.problem.make_problem`).
    progress : bool
        Show the sampler's progress bar.
    on_step : callable, optional
        Called as ``on_step(k, title)`` before step k (1 to 3; 1 to 4 with ``calibrate``).
    structure : mapping, ``"default"`` or None
        Structured-likelihood options of the fit (see :func:`fit_bayes`); ``"default"`` the
        default likelihood of the command line
        (:func:`bayesfp.bayes.structured.structure_options`), None the plain model.
    calibrate : bool
        Run the held-out calibration of the fit's model (:func:`run_calibration`: three more
        fits, about three times the fit's time) and show it in the report's verdict.

    Returns
    -------
    PipelineResult
        A fit that fails its diagnostics gate is still saved, decided on and reported
        (``result.gate_passed`` is False; the report says so).
    """
    from bayesfp.bayes.io import record_provenance, save_fit
    from bayesfp.decide import decision_for_report
    from bayesfp.decide.problem import make_problem
    from bayesfp.decide.summary import check_decidable
    from bayesfp.jsonfile import write_json
    from bayesfp.laws import get_law
    from bayesfp.report.html import write_report

    step = on_step or (lambda k, title: None)
    t0 = time.perf_counter()
    law = get_law(law).name
    check_decidable(law, None, None)
    if tensor_log2b is not None and not np.isfinite(tensor_log2b):
        raise BayesfpInputError(f"tensor_log2b: must be a finite number, got {tensor_log2b}")
    all_runs, path = load_runs(runs_file)
    table = keep_where(all_runs, where)
    if budget is None:
        budget = default_budget(table)
    make_problem(formats, budget=budget, cost=cost)  # checked before the fit
    require_quantized(table, law, tensor_log2b)
    pool_by, group = resolve_pool_by(table, pool_by)
    if isinstance(structure, str):
        if structure != "default":
            raise BayesfpInputError(f"structure: expected options, 'default' or None, "
                                    f"got {structure!r}")
        from bayesfp.bayes.structured import structure_options

        structure = structure_options(None, law=law)
    if out_dir is None:
        name = path.stem.removesuffix("_runs") or "runs"
        fit_path, report_dir = Path("models") / f"{name}_{law}.nc", Path("reports") / name
    else:
        fit_path, report_dir = Path(out_dir) / "fit.nc", Path(out_dir) / "report"
    for p in (fit_path.parent, report_dir):
        if p.exists() and not p.is_dir():
            raise BayesfpInputError(f"out_dir: {p} is a file, not a folder")
    step(1, f"fit: {law} law on {path}")
    fit = fit_bayes(table, law, pool_by=pool_by, draws=draws, tune=tune, chains=chains,
                    seed=seed, inputs_kw=inputs_kw(tensor_log2b), progress=progress,
                    structure=structure)
    record_provenance(fit, path, where, {
        "command": "pipeline", "law": law, "pool_by": pool_by, "group": group,
        "budget": budget, "formats": formats, "draws": draws, "tune": tune, "chains": chains,
        "holdout": holdout, "seed": seed, "tensor_log2b": tensor_log2b, "cost": cost,
        "structure": dict(structure or {}), "calibrate": calibrate})
    save_fit(fit, fit_path)
    k = 2
    cal_path = None
    if calibrate:
        step(k, "calibration: the same model refitted on the held-out cuts top20_N, top20_D, "
                "top2_N")
        cal_path = report_dir / "calibration.csv"
        run_calibration(table, law, cal_path, pool_by=pool_by, structure=structure,
                        inputs_kw=inputs_kw(tensor_log2b), draws=draws, tune=tune,
                        chains=chains, seed=seed)
        k += 1
    for_group = f" for {pool_by} = {group}" if group else ""
    step(k, f"decision: formats {formats} at C = {budget:.3g} FLOPs{for_group}")
    decision = decision_for_report(fit_path, budget=budget, formats=formats, seed=seed,
                                   group=group, cost=cost)
    decision_path = write_json(decision, report_dir / "decision.json", default=str)
    step(k + 1, "report")
    report = write_report(fit_path, report_dir, decision=decision, holdout=holdout,
                          calibration=cal_path)
    return PipelineResult(runs_file=path, n_read=len(all_runs), table=table, fit=fit,
                          fit_path=fit_path, decision=decision, decision_path=decision_path,
                          report_path=report,
                          pool_by=pool_by, group=group, budget=budget,
                          seconds=time.perf_counter() - t0, calibration_path=cal_path)
