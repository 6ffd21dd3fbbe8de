"""What the ``bayesfp`` subcommands print: rich tables and lines on the console (no fitting)."""

import numpy as np
from rich.markup import escape
from rich.table import Table

from bayesfp.console import console, err_console

# Exit status of a command whose fit failed its diagnostics gate (everything is still written).
EXIT_GATE_FAILED = 3

# D_crit of a Bayesian fit is printed at the smallest and largest fitted N and this many times
# the largest (marked with the factor).
REPORT_N_FACTOR = 10.0

_VERDICT = {"data-dominated": "data", "informed": "inf.", "weak": "WEAK",
            "prior-dominated": "PRIOR"}


def say(text: str, style: str | None = None) -> None:
    """One plain line on stdout (no markup highlighting)."""
    console.print(text, style=style, highlight=False)


def show(table: Table) -> None:
    """Print a table; plain ASCII borders when stdout is not a terminal."""
    from rich import box

    if not console.is_terminal:
        table.box = box.ASCII
    console.print(table)


def warn(text: str, lines=()) -> None:
    """A bold red warning on stderr, with indented detail lines."""
    err_console.print(text, style="bold red", highlight=False)
    for line in lines:
        err_console.print(f"  - {line}", style="red", highlight=False)


def si(x: float) -> str:
    """A count with an SI-like suffix: 85000000 -> "85M", 1.5e10 -> "15B"."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def _factor(x: float, top: float) -> str:
    """`` (12x)`` for a value beyond the runs' largest, ``""`` inside."""
    return f" ({x / top:.3g}x)" if x > top * (1 + 1e-9) else ""


def _g(x: float) -> str:
    return f"{x:.3g}"


def _counted(series, order=None) -> str:
    """Each distinct value with its number of runs: "e4m3 (12), bf16 (3)"."""
    counts = series.value_counts(sort=False)
    keys = list(counts.index) if order is None else sorted(counts.index, key=order)
    return ", ".join(f"{k} ({counts[k]})" for k in keys)


def _ids(ids, limit: int = 12) -> str:
    text = ", ".join(ids[:limit])
    if len(ids) > limit:
        text += f" and {len(ids) - limit} more"
    return text


# ------------------------------------------------------------------------------- run tables


def print_where(conditions, n_kept: int, n_all: int) -> None:
    """Say how many runs ``--where`` kept."""
    if conditions:
        say(f"--where {' '.join(conditions)}: {n_kept} of {n_all} runs kept")


def print_runs_summary(table, report, source) -> None:
    """The summary table of ``bayesfp runs``."""
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
        summary.add_row(col, f"{si(values.min())} to {si(values.max())} {unit}, "
                             f"{values.nunique()} values")
    if len(ok):
        summary.add_row("loss (ok runs)",
                        f"{ok[dims.LOSS].min():.4g} to {ok[dims.LOSS].max():.4g} nats/token")
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
    show(summary)
    say(report.excluded_message(), style="yellow" if report.n_excluded else "green")


def print_coverage(checks) -> None:
    """The coverage table of ``bayesfp runs --coverage`` (:func:`bayesfp.runs.coverage`)."""
    table = Table(title="Coverage (requirements of docs/dataset.md)", title_justify="left")
    for col in ("requirement", "required", "found", "met", "missing"):
        table.add_column(col)
    for c in checks:
        missing = ", ".join(map(str, c.missing[:6])) + (" ..." if len(c.missing) > 6 else "")
        table.add_row(c.name, c.required, c.found, "yes" if c.met else "no", missing,
                      style=None if c.met else "yellow")
    show(table)
    n_unmet = sum(not c.met for c in checks)
    say(f"{len(checks) - n_unmet} of {len(checks)} requirements met",
        style="green" if not n_unmet else "yellow")


# ------------------------------------------------------------------------------- point fits


def print_point_fit(fit, level: float, n_boot: int, derived: dict | None) -> None:
    """Coefficients with bootstrap intervals, residual sd and derived tables of a point fit."""
    from bayesfp.laws.inputs import TENSOR_UNPLACED

    if fit.excluded.get(TENSOR_UNPLACED):
        say(f"left out of the fit: {fit.excluded[TENSOR_UNPLACED]} runs {TENSOR_UNPLACED}",
            style="yellow")
    t = Table(title=f"{fit.law} point fit on {fit.n_runs} runs "
                    f"(Huber delta 1e-3 on log-loss; {n_boot} bootstraps, {level:.0%} intervals)",
              title_justify="left")
    for col in ("coefficient", "estimate", "lo", "hi", "note"):
        t.add_column(col, justify="left" if col in ("coefficient", "note") else "right")
    for name, row in fit.summary(level).iterrows():
        lo, hi = (("-", "-") if not np.isfinite([row["lo"], row["hi"]]).all() else
                  (f"{row['lo']:.5g}", f"{row['hi']:.5g}"))
        t.add_row(name, f"{row['estimate']:.5g}", lo, hi,
                  "fixed" if row["fixed"] else ("no bootstrap" if lo == "-" else ""))
    show(t)
    say(f"residual sd of log-loss: {float(np.std(fit.residuals)):.4g}; "
        f"objective {fit.objective:.4g}")
    if derived is None:
        return
    dc = derived["dcrit"]
    title = f"critical data size D_crit (tokens) at B = {2 ** derived['log2B']:.0f}"

    def by_n():  # one row per N, one column per format
        t = Table(title=title, title_justify="left")
        t.add_column("N", no_wrap=True)
        for c in dc.columns:
            t.add_column(c, justify="right", no_wrap=True)
        for n, row in dc.iterrows():
            t.add_row(si(n), *[si(v) for v in row])
        return t

    def by_format():  # transposed, when there are more formats than fit across
        t = Table(title=title, title_justify="left")
        t.add_column("format", no_wrap=True)
        for n in dc.index:
            t.add_column(f"N = {si(n)}", justify="right", no_wrap=True)
        for c in dc.columns:
            t.add_row(str(c), *[si(v) for v in dc[c]])
        return t

    show(_fitting([by_n, by_format]))
    say("best (E, M) per bit width P: " + ", ".join(
        f"P{P}: {r['format']}" for P, r in derived["best_split"].iterrows()))


# ------------------------------------------------------------------------------- Bayesian fits


def coefficient_table(fit, hdi_prob: float) -> Table:
    """Law coefficients and pooling parameters of a Bayesian fit: mean, sd, HDI, R-hat, ESS and
    the posterior-to-prior sd ratio."""
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
        t.add_row(str(name), _g(r["mean"]), _g(r["sd"]), f"{_g(r[lo])}, {_g(r[hi])}",
                  f"{float(r['r_hat']):.3f}",
                  f"{float(r['ess_bulk']):.0f}/{float(r['ess_tail']):.0f}", ratio)
    for name in (k for k in post.data_vars if post[k].ndim == 3 and str(k).endswith("_group")):
        for g in post[name]["group"].values:
            da = post[name].sel(group=g)
            h = np.asarray(az.hdi(da, prob=hdi_prob).values)
            t.add_row(escape(f"{name}[{g}]"), _g(float(da.mean())), _g(float(da.std())),
                      f"{_g(h[0])}, {_g(h[1])}", "", "", "")
    return t


def derived_tables(fit, hdi_prob: float) -> list[Table]:
    """D_crit per N and format (per group of a pooled fit) and the best split per P; Sun laws."""
    from bayesfp.bayes import derived as dv
    from bayesfp.bayes.info import group_column
    from bayesfp.bayes.io import fit_info

    info = fit_info(fit)
    if info["law"] not in ("sun", "sun_sep"):
        return []
    pct = int(round(hdi_prob * 100))
    # A pooled fit has one precision sensitivity per group: D_crit is given for each group
    # (the global gamma of a pooled fit is the mean over groups, no group's value).
    from bayesfp.bayes.io import fit_table

    fitted = fit_table(fit, fitted_only=True)
    n_lo, n_hi = float(fitted["N"].min()), float(fitted["N"].max())
    d_hi = float(fitted["D"].max())
    report_n = sorted({n_lo, n_hi, n_hi * REPORT_N_FACTOR})
    tables = []
    for g in list(info.get("groups") or []) or [None]:
        dc = dv.d_crit(fit, report_n, group=g)
        h = dv.hdi(dc, hdi_prob)
        med = dc.median(("chain", "draw"))
        where = f", {group_column(info)} = {g}" if g is not None else ""
        t = Table(title=f"Critical data size D_crit (tokens, B = 128{where}): "
                        f"median [HDI {pct}%]; (12x): beyond the largest fitted N or D",
                  title_justify="left")
        t.add_column("N")
        for f in dc["format"].values:
            t.add_column(str(f), justify="right")
        for n in dc["N"].values:
            t.add_row(si(float(n)) + _factor(float(n), n_hi), *[
                f"{si(float(med.sel(N=n, format=f)))}"
                f"{_factor(float(med.sel(N=n, format=f)), d_hi)} "
                f"[{si(float(h.sel(N=n, format=f, ci_bound='lower')))}, "
                f"{si(float(h.sel(N=n, format=f, ci_bound='upper')))}]"
                for f in dc["format"].values])
        tables.append(t)
    best = dv.best_splits(dv.split_probabilities(fit))
    ch = dv.hdi(dv.split_continuous(fit)["E_opt"], hdi_prob)
    t = Table(title="Best exponent/mantissa split per total bits P", title_justify="left")
    for col in ("P", "best split", "P(best)", f"continuous E_opt HDI {pct}%"):
        t.add_column(col, justify="right")
    for p, row in best.iterrows():
        t.add_row(str(p), row["format"], f"{row['probability']:.2f}",
                  f"{float(ch.sel(P=p, ci_bound='lower')):.2f} to "
                  f"{float(ch.sel(P=p, ci_bound='upper')):.2f}")
    return [*tables, t]


def print_bayes_fit(fit, hdi_prob: float) -> None:
    """Coefficients, derived tables, excluded runs and the diagnostics gate of a fit."""
    from bayesfp.bayes.io import fit_info

    info = fit_info(fit)
    show(coefficient_table(fit, hdi_prob))
    for t in derived_tables(fit, hdi_prob):
        show(t)
    if info["excluded"]:
        text = ", ".join(f"{v} {k}" for k, v in info["excluded"].items())
        say(f"excluded from the likelihood: {text}", style="yellow")
    gate = info["gate"]
    if gate["passed"]:
        say(f"diagnostics gate passed: R-hat max {gate['rhat_max']:.3f}, bulk ESS min "
            f"{gate['ess_bulk_min']:.0f}, tail ESS min {gate['ess_tail_min']:.0f}, "
            f"{gate['divergences']} divergences, E-BFMI min {gate['ebfmi_min']:.2f}",
            style="green")
    else:
        warn("warning: this fit FAILED the diagnostics gate and must not be trusted:",
             gate["failures"])


# ------------------------------------------------------------------------------- decisions


def _with_interval(x: float, iv, factor: float | None = None) -> str:
    text = si(x) if iv is None else f"{si(x)} [{si(iv[0])}, {si(iv[1])}]"
    return text + (f" ({factor:.3g}x)" if factor is not None and factor > 1.0 else "")


def cost_model_text(sit: dict) -> str:
    """The cost model of a decision in words: ``"cost = 0.375 (P + 0) N D FLOPs"``."""
    from bayesfp.decide.summary import cost_text  # the decision modules load pandas

    return cost_text(sit) or f"cost in {sit.get('cost_unit', '?')}"


def _situation(sit: dict) -> str:
    unit = sit["cost_unit"]
    if sit["mode"] == "budget":
        return f"budget {sit['budget']:.3g} {unit}, N and D re-optimised"
    if sit["mode"] == "budget_N":
        return f"budget {sit['budget']:.3g} {unit} at N = {si(sit['N'])}"
    if sit["mode"] == "budget_D":
        return f"budget {sit['budget']:.3g} {unit} at D = {si(sit['D'])}"
    return f"N = {si(sit['N'])}, D = {si(sit['D'])}"


def _fitting(builders, width: int | None = None) -> Table:
    """The first table (fullest first) whose natural width fits the console; the last one
    otherwise. Tables are plain ASCII when the output is not a terminal."""
    from rich import box

    width = width or console.width
    table = None
    for build in builders:
        table = build()
        if not console.is_terminal:
            table.box = box.ASCII
        if console.measure(table, options=console.options.update(
                max_width=10_000)).maximum <= width:
            break
    return table


def decision_table(result: dict, compact: int = 0) -> Table:
    """The candidates of a decision (:func:`bayesfp.decide.decision_for_report`).

    ``compact`` 1 drops the N and D intervals, 2 also the bits column and shortens the loss, 3
    also N and D (the notes list those beyond the runs). The answer columns (format, loss,
    P(best), regret, verdict) are always kept. N and D beyond the fitted runs carry their
    factor to the largest fitted value, ``(12x)``.
    """
    sit = result["situation"]
    pct = int(round(result["hdi_prob"] * 100))
    price = f"; price {sit['price']:.3g} per {sit['cost_unit']}" if sit["price"] else ""
    group = (result.get("fit") or {}).get("group")
    group = f"; {result['fit'].get('pool_by')} = {group}" if group else ""
    t = Table(title=f"Training format under posterior uncertainty ({_situation(sit)}; "
                    f"{cost_model_text(sit)}{price}{group}; {result['n_draws']} draws)",
              title_justify="left")
    t.add_column("format", no_wrap=True)
    if compact < 2:
        t.add_column("P", justify="right")
    budget = sit["mode"] == "budget" and compact == 0
    if compact < 3:
        t.add_column(f"N [HDI {pct}%]" if budget else "N", justify="right", no_wrap=True)
        t.add_column(f"D [HDI {pct}%]" if budget else "D", justify="right", no_wrap=True)
    show_cost = bool(sit["price"]) or sit["mode"] == "fixed"
    if show_cost:
        t.add_column(sit["cost_unit"], justify="right")
    t.add_column(f"loss [HDI {pct}%]", justify="right", no_wrap=True)
    t.add_column("P(best)", justify="right", no_wrap=True)
    t.add_column("regret", justify="right", no_wrap=True)
    t.add_column("verdict", no_wrap=True)
    dig = 4 if compact < 2 else 3
    for c in result["candidates"]:
        style = {"choose": "bold green", "plausible": "yellow", "worse": "dim"}[c["verdict"]]
        fac = c.get("extrapolation") or {}
        cells = [c["format"]] + ([str(c["P"])] if compact < 2 else [])
        if compact < 3:
            cells += [
                _with_interval(c["N"], c.get("N_interval") if budget else None, fac.get("N")),
                _with_interval(c["D"], c.get("D_interval") if budget else None, fac.get("D"))]
        if show_cost:
            cells.append(f"{c['cost']:.3g}")
        lo, hi = c["interval"]
        cells += [f"{c['expected_loss']:.{dig}f} [{lo:.{dig}f}, {hi:.{dig}f}]",
                  f"{c['p_best']:.2f}", f"{c['regret']:.2g}", c["verdict"]]
        t.add_row(*cells, style=style)
    return t


def next_runs_table(result: dict, limit: int = 12, compact: int = 0) -> Table:
    """The next-run ranking of a decision, best first (``compact`` drops signal and ESS)."""
    unit = result["situation"]["cost_unit"]
    t = Table(title=f"What to run next: expected value of sample information per {unit} "
                    f"(EVSI in {result['units']})", title_justify="left")
    cols = ("rank", "run", unit, "EVSI", f"EVSI/{unit}") + (("signal", "ESS") if not compact
                                                            else ())
    for col in cols:
        t.add_column(col, justify="left" if col == "run" else "right", no_wrap=True)
    for r in result["next_runs"][:limit]:
        ess = f"{r['ess_median']:.0f}" + ("" if r["reliable"] else " low")
        cells = [str(r["rank"]), r["run"], f"{r['cost']:.3g}", f"{r['evsi']:.2g}",
                 f"{r['evsi_per_cost']:.3g}"]
        if not compact:
            cells += [f"{r['signal']:.2f}", ess]
        t.add_row(*cells, style=None if r["reliable"] else "yellow")
    return t


def print_decision(result: dict, *, ranking: bool = True) -> None:
    """The decision table, the Bayes choice with its EVPI, the next-run ranking and notes."""
    console.print(_fitting([lambda c=c: decision_table(result, compact=c) for c in (0, 1, 2, 3)]))
    best = next(c for c in result["candidates"] if c["format"] == result["choice"])
    console.print(f"Bayes-optimal choice: [bold]{result['choice']}[/] (expected loss "
                  f"{best['expected_loss']:.4f} nats/token, P(best) {best['p_best']:.2f}). "
                  f"EVPI {result['evpi']:.3g} {result['units']}: the most that any information "
                  "about the format could still gain.", highlight=False)
    say(f"Cost model: {cost_model_text(result['situation'])} (--k, --b, --throughput); "
        "another cost model can change the choice.")
    say("Formats: eXmY counts exponent and mantissa bits as Sun et al. (e4m3 finite, max 480); "
        "the hardware FP8 E4M3 is e4m3fn (max 448), the same bits to the law (docs/formats.md).")
    if result["evpi_allocation"] is not None:
        say(f"EVPI of format and allocation together: {result['evpi_allocation']:.3g} "
            f"{result['units']}.")
    if ranking and result["next_runs"] is not None:
        console.print(_fitting([lambda c=c: next_runs_table(result, compact=c)
                                for c in (0, 1)]))
        if all(r["evsi"] == 0 for r in result["next_runs"]):
            say("No candidate run can change the decision (EVSI 0 for all).")
    for note in result["notes"]:
        say(f"note: {note}", style="yellow")
