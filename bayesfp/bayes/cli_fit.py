"""The Bayesian path of ``bayesfp fit RUNS --method bayes``.

``cli.py`` calls::

    fit_bayes_command(runs_path, law="sun", pool_by=None, prior="default", out=None,
                      draws=1000, tune=1000, chains=4, seed=0, cores=2, sampler="nutpie",
                      robust=False, sigma_by=None, hdi_prob=0.9, progress=True,
                      pooling="partial", centred=False) -> int

It reads and validates the run table, fits the law, runs the diagnostics gate, writes the fit
(one NetCDF, default ``<runs stem>_<law>.nc`` in the working directory) and prints a summary:
coefficients (posterior mean, sd, HDI, R-hat, bulk/tail ESS, prior-to-posterior sd ratio) and,
for Sun laws, D_crit at a few N per format and the most probable E/M split per P. It returns the
exit status: 0 when the fit passed the gate, 1 when it did not (the fit is still written, marked
as failed, and a red warning says so). Bad input raises ``ValueError``/``OSError`` for ``main``.
"""

from pathlib import Path

import numpy as np
from rich.markup import escape
from rich.table import Table

from bayesfp.console import console, err_console

EXIT_OK = 0
EXIT_GATE_FAILED = 1

# N at which D_crit is printed.
REPORT_N = (1e8, 1e9, 1e10)


_VERDICT = {"data-dominated": "data", "informed": "inf.", "weak": "WEAK",
            "prior-dominated": "PRIOR"}


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _tokens(x: float) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def coefficient_table(fit, hdi_prob: float = 0.9) -> Table:
    """Rich table of the law coefficients and pooling parameters of a fit."""
    import arviz as az

    from bayesfp.bayes.diagnostics import identification
    from bayesfp.bayes.io import fit_info

    info = fit_info(fit)
    post = fit["posterior"].to_dataset()
    names = [k for k in post.data_vars if post[k].ndim == 2 and not str(k).startswith("z_")]
    summ = az.summary(fit, var_names=names, ci_kind="hdi", ci_prob=hdi_prob)
    ident = identification(fit)
    pct = int(round(hdi_prob * 100))
    t = Table(title=f"Posterior of {info['law']} ({info['n_runs']} runs)", title_justify="left")
    t.add_column("coefficient", overflow="fold", min_width=16, max_width=22)
    for col in ("mean", "sd", f"HDI {pct}%", "R-hat", "ESS b/t", "post/prior"):
        t.add_column(col, justify="right", no_wrap=True)
    lo, hi = f"hdi{pct}_lb", f"hdi{pct}_ub"
    for name in summ.index:
        r = summ.loc[name]
        ratio = (f"{ident.loc[name, 'ratio']:.2f} {_VERDICT[ident.loc[name, 'verdict']]}"
                 if name in ident.index else "")
        t.add_row(str(name), _fmt(r["mean"]), _fmt(r["sd"]), f"{_fmt(r[lo])}, {_fmt(r[hi])}",
                  f"{float(r['r_hat']):.3f}",
                  f"{float(r['ess_bulk']):.0f}/{float(r['ess_tail']):.0f}", ratio)
    for name in (k for k in post.data_vars if post[k].ndim == 3 and str(k).endswith("_group")):
        for g in post[name]["group"].values:
            da = post[name].sel(group=g)
            h = np.asarray(az.hdi(da, prob=hdi_prob).values)
            t.add_row(escape(f"{name}[{g}]"), _fmt(float(da.mean())), _fmt(float(da.std())),
                      f"{_fmt(h[0])}, {_fmt(h[1])}", "", "", "")
    return t


def derived_tables(fit, hdi_prob: float = 0.9) -> list[Table]:
    """Rich tables of D_crit per N and format and of the best split per P (Sun laws)."""
    from bayesfp.bayes import derived as dv
    from bayesfp.bayes.io import fit_info

    if fit_info(fit)["law"] not in ("sun", "sun_sep"):
        return []
    pct = int(round(hdi_prob * 100))
    info = fit_info(fit)
    # A pooled fit has one precision sensitivity per group: D_crit is given for each group
    # (the global gamma of a pooled fit is the mean over groups, no group's value).
    groups = list(info.get("groups") or []) or [None]
    tables = []
    for g in groups:
        dc = dv.d_crit(fit, REPORT_N, group=g)
        h = dv.hdi(dc, hdi_prob)
        med = dc.median(("chain", "draw"))
        where = f", {info.get('pool_by')} = {g}" if g is not None else ""
        t1 = Table(title=f"Critical data size D_crit (tokens, B = 128{where}): "
                         f"median [HDI {pct}%]", title_justify="left")
        t1.add_column("N")
        for f in dc["format"].values:
            t1.add_column(str(f), justify="right")
        for n in dc["N"].values:
            cells = [f"{_tokens(float(med.sel(N=n, format=f)))} "
                     f"[{_tokens(float(h.sel(N=n, format=f, ci_bound='lower')))}, "
                     f"{_tokens(float(h.sel(N=n, format=f, ci_bound='upper')))}]"
                     for f in dc["format"].values]
            t1.add_row(_tokens(float(n)), *cells)
        tables.append(t1)
    best = dv.best_splits(dv.split_probabilities(fit))
    cont = dv.split_continuous(fit)
    ch = dv.hdi(cont["E_opt"], hdi_prob)
    t2 = Table(title="Best exponent/mantissa split per total bits P", title_justify="left")
    for col in ("P", "best split", "P(best)", f"continuous E_opt HDI {pct}%"):
        t2.add_column(col, justify="right")
    for p, row in best.iterrows():
        t2.add_row(str(p), row["format"], f"{row['probability']:.2f}",
                   f"{float(ch.sel(P=p, ci_bound='lower')):.2f} to "
                   f"{float(ch.sel(P=p, ci_bound='upper')):.2f}")
    return [*tables, t2]


def fit_bayes_command(runs_path, law: str = "sun", pool_by: str | None = None,
                      prior: str = "default", out=None, draws: int = 1000, tune: int = 1000,
                      chains: int = 4, seed: int = 0, cores: int = 2, sampler: str = "nutpie",
                      robust: bool = False, sigma_by: str | None = None, hdi_prob: float = 0.9,
                      progress: bool = True, pooling: str = "partial",
                      centred: bool = False, runs=None, inputs_kw=None, where=None) -> int:
    """Fit a law to a run table with NUTS, gate, save and print the summary.

    Parameters
    ----------
    runs_path : path
        Run table (.csv, .parquet, .jsonl).
    law : str
        ``chinchilla``, ``kumar``, ``sun`` or ``sun_sep``.
    pool_by : str, optional
        Column whose groups get partially pooled precision sensitivities.
    prior : str
        ``default``, ``published`` or a saved fit (.nc) to centre the priors on.
    out : path, optional
        Output NetCDF (default ``<runs stem>_<law>.nc``).
    draws, tune, chains, seed, cores, sampler
        Sampler settings.
    robust : bool
        Student-t likelihood.
    sigma_by : str, optional
        Column with one noise sd per value.
    hdi_prob : float
        Level of the printed HDIs.
    progress : bool
        Show the sampler's progress bar.
    pooling : str
        ``partial`` (hierarchical) or ``none`` (independent group offsets) with ``pool_by``.
    centred : bool
        Centred group offsets (for groups whose runs pin their offsets down).
    runs : pandas.DataFrame, optional
        The table already read from ``runs_path`` (it is then not read again).
    inputs_kw : mapping, optional
        Law-input options (``tensor_log2b``, ``channel_log2b``; ``bayesfp.laws.law_inputs``).
    where : list of str, optional
        ``COLUMN=VALUE[,VALUE...]`` conditions choosing the runs (``bayesfp.runs.select``).

    Returns
    -------
    int
        0 if the fit passed the diagnostics gate, 1 if not.
    """
    from bayesfp.bayes.io import fit_info, save_fit
    from bayesfp.bayes.models import model_for
    from bayesfp.runs import read_runs

    if not 0.0 < hdi_prob < 1.0:
        raise ValueError(f"hdi_prob: must lie in (0, 1), got {hdi_prob}")
    runs = read_runs(runs_path) if runs is None else runs
    if where:
        from bayesfp.runs.select import where as select_where

        n_all = len(runs)
        runs = select_where(runs, where).reset_index(drop=True)
        console.print(f"--where {' '.join(where)}: {len(runs)} of {n_all} runs kept",
                      highlight=False)
    model = model_for(law, runs, pool_by=pool_by, pooling=pooling, centred=centred, prior=prior,
                      robust=robust, sigma_by=sigma_by, inputs_kw=inputs_kw,
                      sampler=dict(draws=draws, tune=tune, chains=chains, seed=seed,
                                   cores=cores, sampler=sampler, progressbar=progress))
    if out is None:
        suffix = f"_{pool_by}" if pool_by else ""
        out = Path(f"{Path(runs_path).stem}_{model.law.name}{suffix}.nc")
    fit = model.fit()
    path = save_fit(fit, out)
    info = fit_info(fit)
    console.print(coefficient_table(fit, hdi_prob))
    for t in derived_tables(fit, hdi_prob):
        console.print(t)
    if info["excluded"]:
        text = ", ".join(f"{v} {k}" for k, v in info["excluded"].items())
        console.print(f"excluded from the likelihood: {text}", style="yellow", highlight=False)
    gate = info["gate"]
    if gate["passed"]:
        console.print(f"diagnostics gate passed: R-hat max {gate['rhat_max']:.3f}, bulk ESS min "
                      f"{gate['ess_bulk_min']:.0f}, tail ESS min {gate['ess_tail_min']:.0f}, "
                      f"{gate['divergences']} divergences, E-BFMI min {gate['ebfmi_min']:.2f}",
                      style="green", highlight=False)
    else:
        err_console.print("warning: this fit FAILED the diagnostics gate and must not be trusted:",
                          style="bold red", highlight=False)
        for line in gate["failures"]:
            err_console.print(f"  - {line}", style="red", highlight=False)
    console.print(f"fit written to {path}", highlight=False)
    return EXIT_OK if gate["passed"] else EXIT_GATE_FAILED
