"""The six sections of a fit report, each as an HTML fragment.

Each function takes the :class:`Context` of the report and a figure sink (``sink(make, name,
caption) -> str`` returns the HTML of an embedded figure; ``make()`` makes the figure, so that
:class:`bayesfp.report.html.FigureSink` can make and draw it in another process) and returns
the section's HTML body.
Numbers come from :mod:`bayesfp.bayes` and :mod:`bayesfp.report.quantities`.
"""

import html
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from bayesfp.bayes import derived as dv
from bayesfp.bayes.compare import PARETO_K_MAX, compare, coverage, loo
from bayesfp.bayes.diagnostics import identification
from bayesfp.bayes.info import group_column
from bayesfp.bayes.io import fit_info, fit_table
from bayesfp.decide.summary import cost_text
from bayesfp.laws.registry import get_law
from bayesfp.report import figures as F
from bayesfp.report import quantities as q
from bayesfp.runs.select import fit_selection

# Sections in order: (anchor, title).
SECTIONS = (("summary", "Summary"), ("diagnostics", "Diagnostics"),
            ("coefficients", "Coefficients"), ("fit-quality", "Fit quality"),
            ("answers", "The answers"), ("decision", "Decision"))
# Held-out sets smaller than this are too small for their coverage to raise a warning.
HOLDOUT_MIN = 5
# Chains whose ranks a chi-square test finds non-uniform at this level turn the verdict amber.
RANK_ALPHA = 0.01
# Interval-width ratio from which a coefficient counts as weakly identified.
WEAK_RATIO = 0.5
# A held-out calibration cut whose 90% intervals hold fewer of its runs than this turns the
# verdict amber.
CALIBRATION_MIN90 = 0.80
# What each calibration cut holds out (bayesfp.bayes.calibrate.CUTS).
CUT_TEXT = {"top20_N": "the largest 20% of the N values", "top20_D": "the largest 20% of the "
            "D values", "top2_N": "the two largest N values"}
# Share of fitted runs outside their 99% predictive intervals above which Normal noise is
# questioned (1% expected; 3% is well beyond the sampling spread of a few hundred runs).
TAIL_OUTSIDE_MAX = 0.03


@dataclass
class Context:
    """Everything the sections read: the fit, a thinned copy, its configuration and options."""

    tree: xr.DataTree
    name: str
    runs: pd.DataFrame
    new_runs: pd.DataFrame | None = None
    extra_fits: dict = field(default_factory=dict)
    decision: object = None
    holdout: dict | None = None
    calibration: pd.DataFrame | None = None
    thinned: xr.DataTree = None
    info: dict = None
    prior: xr.Dataset = None
    warnings: list = field(default_factory=list)
    n_factor: float = q.N_FACTOR
    c_factor: float = q.C_FACTOR
    group: str | None = None
    facts: dict = field(default_factory=dict)

    def __post_init__(self):
        self.info = fit_info(self.tree)
        if self.group is None and self.decision is not None:
            fit = (getattr(self.decision, "extra", {}) or {}).get("fit") or {}
            self.group = fit.get("group")
        if self.group is None and self.info.get("groups"):
            self.group = _main_group(self.tree, self.info)
        self.thinned = q.thin(self.tree)
        self.law = get_law(self.info["law"])

    def prior_draws(self) -> xr.Dataset:
        """Prior draws of the sampled variables and law coefficients
        (:func:`bayesfp.report.quantities.prior_draws`), made on first use."""
        if self.prior is None:
            self.prior = q.prior_draws(self.tree)
        return self.prior

    def predictive(self, noise: bool = True) -> xr.DataArray:
        """Predictive loss draws of the fitted runs on the thinned draws, computed once: a new
        run's measured loss (``noise``) or the law's mean loss (seed 0, as
        :func:`bayesfp.report.quantities.predictive_table` draws them)."""
        key = f"predictive_{bool(noise)}"
        if key not in self.facts:
            runs = fit_table(self.thinned, fitted_only=True)
            self.facts[key] = dv.predict_loss(self.thinned, runs, noise=noise, seed=0)
        return self.facts[key]


def esc(x) -> str:
    return html.escape(str(x))


def num(x, digits: int = 3) -> str:
    """A number with ``digits`` significant digits; empty for NaN."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return esc(x)
    if not np.isfinite(v):
        return "" if np.isnan(v) else ("inf" if v > 0 else "-inf")
    return f"{v:.{digits}g}"


def tokens(x: float) -> str:
    """A token or parameter count as 27.3T, 679M."""
    v = float(x)
    for scale, suffix in ((1e15, "P"), (1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


def table(df: pd.DataFrame, formats: dict | None = None, index: bool = True,
          classes: str = "data") -> str:
    """A DataFrame as an HTML table; ``formats`` maps columns to functions of a cell."""
    formats = formats or {}
    cols = list(df.columns)
    head = ([esc(df.index.name or "")] if index else []) + [esc(c) for c in cols]
    rows = []
    for idx, r in df.iterrows():
        cells = [f"<th>{esc(idx)}</th>"] if index else []
        for c in cols:
            v = r[c]
            f = formats.get(c)
            text = f(v) if f else (num(v) if isinstance(v, (float, np.floating)) else esc(v))
            cells.append(f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="table-wrap"><table class="{classes}"><thead><tr>'
            + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table></div>")


def para(text: str, cls: str = "") -> str:
    return f'<p class="{cls}">{text}</p>' if cls else f"<p>{text}</p>"


def interval(lo, hi, fmt=num) -> str:
    return f"{fmt(lo)} to {fmt(hi)}"


def factor(x: float, top: float) -> str:
    """`` (12x)`` for a value beyond the runs' largest (``top``), ``""`` inside."""
    f = float(x) / float(top)
    return f" ({f:.3g}x)" if f > 1.0 + 1e-9 else ""


def _main_group(tree, info) -> str:
    """The group of a pooled fit most fitted quantized runs belong to."""
    runs = fit_table(tree, fitted_only=True)
    col = group_column(info)
    quant = runs[runs["operands"].astype(str) != "none"]
    if col not in runs or quant.empty:
        return str(info["groups"][0])
    return str(quant[col].astype(str).mode().iloc[0])


def rank_flags(tree, alpha: float = RANK_ALPHA, bins: int = 20) -> list[str]:
    """Sampled variables whose ranks are not uniform in some chain (chi-square test on draws
    thinned to about their bulk ESS, each chain tested, level ``alpha``)."""
    import arviz as az
    from scipy import stats as st

    post = tree["posterior"].to_dataset()
    out = []
    for name in q.sampled_names(tree):
        da = post[name]
        if set(da.dims) != {"chain", "draw"} or da.sizes["chain"] < 2:
            continue
        x = np.asarray(da.transpose("chain", "draw").values, dtype=float)
        ess = float(np.asarray(az.ess(da, method="bulk")).ravel()[0])
        step = max(1, int(x.size // max(ess, 1.0)))
        ranks = st.rankdata(x.ravel()).reshape(x.shape)[:, ::step] / x.size
        n = ranks.shape[1]
        if n < 5 * bins:
            continue
        ps = [st.chisquare(np.histogram(r, bins=bins, range=(0, 1))[0]).pvalue for r in ranks]
        if min(ps) < alpha:
            out.append(f"{name} (p = {min(ps):.2g})")
    return out


# ---------------------------------------------------------------------------------- 1. summary


def _answer(ctx: Context) -> list[str]:
    """The answer lines of the verdict box (HTML), every number with its extrapolation factor."""
    d = q.data_summary(ctx.runs)
    n_top, d_top = d["N"][1], d["D"][1]
    lines, chosen_p, chosen = [], 8, None
    dec = q.as_decision(ctx.decision) if ctx.decision is not None else None
    if dec is not None and dec.choice and dec.choice in dec.candidates.index:
        chosen = dec.choice
        row = dec.candidates.loc[chosen]
        chosen_p = int(row["P"]) if "P" in row and pd.notna(row["P"]) else chosen_p
        pb = f" with P(best) {float(row['p_best']):.2f}" if "p_best" in row else ""
        text = f"<strong>Train in {esc(chosen.upper())}</strong>{pb}."
        ru = dec.extra.get("runner_up")
        if ru:
            lo, hi = ru["interval"]
            text += (f" Its expected loss is {ru['loss_diff']:.2g} nats/token below the runner-up "
                     f"{esc(str(ru['format']).upper())}'s (HDI 90% of the difference "
                     f"{lo:.2g} to {hi:.2g}; lower in {ru.get('p_choice_lower', np.nan):.0%} "
                     "of the draws).")
        lines.append(text)
        sit = dec.situation
        where = []
        if sit.get("budget") is not None:
            top_c = 6.0 * n_top * d_top
            where.append(f"a budget of {float(sit['budget']):.3g} {esc(sit.get('cost_unit', ''))}"
                         + (factor(sit["budget"], top_c) if sit.get("cost_unit") == "FLOPs"
                            else ""))
        for key, top in (("N", n_top), ("D", d_top)):
            if key in row and pd.notna(row[key]):
                where.append(f"{key} = {tokens(row[key])}{factor(row[key], top)}")
        cost = cost_text(sit)
        grp = (dec.extra.get("fit") or {}).get("group") or ctx.group
        lines.append("Decided at " + ", ".join(where) + (f"; {esc(cost)}" if cost else "")
                     + (f"; {esc(group_column(ctx.info))} = {esc(grp)}" if grp else "")
                     + ". Factors are to the runs' largest N, D and 6 N D; another cost model "
                     "can change the choice.")
    elif dec is None:
        lines.append("No decision analysis was run (<code>--decision</code>): the box gives the "
                     "law's answers only.")
    dct = ctx.facts.get("d_crit")
    if dct is not None:
        at = dct[dct["N"] == dct["N"][dct["N"] <= n_top * (1 + 1e-9)].max()]
        if chosen is not None and chosen.upper() in set(at["format"]):
            at = at[at["format"] == chosen.upper()]
        else:
            at = at[at["format"] != "E8M7"]
        cells = [f"{esc(r['format'])} {tokens(r['median'])}{factor(r['median'], d_top)} "
                 f"[{tokens(r['lo'])}, {tokens(r['hi'])}]" for _, r in at.iterrows()]
        if cells:
            lines.append(f"Critical data size at N = {tokens(at['N'].iloc[0])} (the largest "
                         "fitted N), median [HDI 90%] tokens: " + "; ".join(cells) + ".")
    st = ctx.facts.get("splits")
    if st is not None and chosen_p in st.index:
        r = st.loc[chosen_p]
        lines.append(f"Best split at {chosen_p} bits: {esc(r.iloc[0])} (P(best) "
                     f"{float(r.iloc[1]):.2f}).")
    return lines


def verdict(ctx: Context) -> str:
    """The verdict box: the answer with its extrapolation factors, then how far to trust it
    (the diagnostics gate, predictive coverage, held-out calibration, held-out check, flags of
    the other sections). Green: gate passed, nothing flagged; amber: gate passed, something
    flagged (a calibration cut below :data:`CALIBRATION_MIN90` at 90% among them); red: gate
    failed."""
    gate = ctx.info["gate"]
    th = gate.get("thresholds", {})
    stats = (f"R-hat max {gate['rhat_max']:.3f} (limit {th.get('rhat_max', '')}), bulk/tail ESS "
             f"min {gate['ess_bulk_min']:.0f}/{gate['ess_tail_min']:.0f} (limit "
             f"{th.get('ess_min', '')}), {gate['divergences']} divergences, E-BFMI min "
             f"{gate['ebfmi_min']:.2f} (limit {th.get('ebfmi_min', '')})")
    flagged = bool(ctx.warnings) or bool(_low_cuts(ctx))
    level = "fail" if not gate["passed"] else ("warn" if flagged else "pass")
    answer = "".join(f"<p>{line}</p>" for line in _answer(ctx))
    trust = []
    if gate["passed"]:
        trust.append(f"The fit passed the diagnostics gate: {esc(stats)}.")
    else:
        trust.append("<strong>This fit FAILED the diagnostics gate and must not be trusted."
                     "</strong> The numbers are shown for diagnosis only: "
                     + "; ".join(esc(f) for f in gate["failures"]) + f". {esc(stats)}.")
    cov = ctx.facts.get("coverage") or {}
    if 0.9 in cov:
        trust.append(f"Predictive coverage of the fitted runs: {cov[0.9]:.0%} in the 90% "
                     f"interval, {cov.get(0.5, np.nan):.0%} in the 50%.")
    trust.append(_calibration_line(ctx))
    h = ctx.facts.get("holdout")
    if h:
        hc = h.get("coverage", {})
        c90 = next((float(v) for k, v in hc.items() if abs(float(k) - 0.9) < 1e-6), None)
        if c90 is not None:
            trust.append(f"Held-out check: {int(h['n_held'])} runs at N = {tokens(h['N_held'])} "
                         f"refitted without them, {c90:.0%} inside their 90% interval"
                         + (" (too few runs to judge)" if int(h["n_held"]) < HOLDOUT_MIN
                            else "") + ".")
    head = {"pass": "Answer", "warn": "Answer, with flags below",
            "fail": "Answer from a fit that FAILED its diagnostics"}[level]
    out = (f'<div class="verdict {level}" id="verdict"><strong class="head">{head}</strong>'
           f'<div class="answer">{answer}</div><h3>How far to trust it</h3><ul>'
           + "".join(f"<li>{t}</li>" for t in trust) + "</ul>")
    if ctx.warnings:
        out += ('<p><strong>Flagged:</strong></p><ul class="warnings">'
                + "".join(f"<li>{w}</li>" for w in ctx.warnings) + "</ul>")
    return out + "</div>"


def summary(ctx: Context, sink) -> str:
    info = ctx.info
    d = q.data_summary(ctx.runs)
    status = ", ".join(f"{v} {esc(k)}" for k, v in d["status"].items())
    data = pd.DataFrame({"value": [
        f"{d['runs']} runs ({status}); {d['fitted']} in the fit",
        f"{tokens(d['N'][0])} to {tokens(d['N'][1])} parameters ({d['n_N']} values)",
        f"{tokens(d['D'][0])} to {tokens(d['D'][1])} tokens ({d['n_D']} values)",
        ", ".join(d["formats"]) + f"; {d['baselines']} unquantized runs",
        ", ".join(d["blocks"]),
        "; ".join(d["operands"]),
        f"{d['max_C']:.3g} FLOPs (C = (6/16) P N D)",
    ]}, index=pd.Index(["runs", "N", "D", "formats", "block sizes B", "quantized operands",
                        "largest compute"], name="data"))
    excluded = info.get("excluded") or {}
    if excluded:
        ids = info.get("excluded_ids") or []
        shown = ", ".join(ids[:12]) + (" ..." if len(ids) > 12 else "")
        data.loc["excluded"] = (", ".join(f"{v} {k}" for k, v in excluded.items())
                                + f" (kept in the table, not fitted): {shown}")
    like = ("Student-t (4 d.o.f.)" if info.get("robust") else "Normal") + " on log-loss"
    like += (f", one noise sd per {info['sigma_by']}" if info.get("sigma_by")
             else ", one noise sd")
    pool = ("none (complete pooling)" if not group_column(info) else
            f"{info.get('pooling')} pooling of {', '.join(info.get('pooled', []))} over "
            f"{group_column(info)} ({', '.join(info.get('groups', []))})")
    sampler = info.get("sampler", {})
    post = ctx.tree["posterior"]
    model = pd.DataFrame({"value": [
        f"{ctx.law.name}: {ctx.law.reference}", pool, like,
        f"{info.get('prior_source', '')}",
        f"{sampler.get('sampler', '')}, {post.sizes['chain']} chains x {post.sizes['draw']} "
        f"draws ({sampler.get('tune', '')} tuning), target accept "
        f"{sampler.get('target_accept', '')}, seed {sampler.get('seed', '')}",
        info.get("hash", "")[:16],
    ]}, index=pd.Index(["law", "pooling", "likelihood", "priors", "sampler", "data hash"],
                       name="model"))
    pri = q.priors_table(ctx.tree)
    return (table(data) + table(model)
            + "<h3>Priors of the sampled variables</h3>"
            + para("The model samples variables at the centre of the data (base loss level, "
                   "log ratios and log slopes of the two power-law terms, the penalty "
                   "intercept a_Q); the law coefficients are functions of them. Lognormal "
                   "priors give mu and sigma of the log.")
            + table(pri))


# ---------------------------------------------------------------------------------- 2. diagnostics


def diagnostics(ctx: Context, sink) -> str:
    import arviz as az

    # the figures first: a sink that draws them in other processes starts on them now
    figs = (sink(lambda: F.rank_plot(ctx.thinned), "rank",
                 "Rank plots (fractional-rank Delta-ECDF per chain) of the sampled "
                 f"variables, on {q.PLOT_DRAWS} draws at most (every k-th of each chain): "
                 "chains that sample the same distribution stay near zero. Each panel gives "
                 "the p-value of ArviZ's uniformity test on these draws, which treats them "
                 "as independent and so runs low for autocorrelated chains; the rank test "
                 "behind the verdict first thins each chain to its bulk ESS.")
            + sink(lambda: F.energy_plot(ctx.tree), "energy",
                   "Marginal energy against energy transitions, with E-BFMI per chain "
                   "(below 0.3: the sampler explores the tails poorly)."))
    names = q.sampled_names(ctx.tree) + [k for k in q.coefficient_names(ctx.tree)
                                          if k not in q.sampled_names(ctx.tree)]
    summ = pd.DataFrame(az.summary(ctx.tree, var_names=names, kind="diagnostics"))
    summ.index.name = "variable"
    stats = ctx.tree["sample_stats"]
    div = stats["diverging"].sum("draw").values.astype(int)
    depth = (stats["reached_max_treedepth"].sum("draw").values.astype(int)
             if "reached_max_treedepth" in stats else None)
    from bayesfp.bayes.diagnostics import ebfmi

    bf = ebfmi(stats["energy"].values)
    chains = pd.DataFrame({"divergences": div, "E-BFMI": bf}, index=pd.Index(
        [str(c) for c in stats["chain"].values], name="chain"))
    if depth is not None:
        chains["max tree depth hits"] = depth
    if "step_size" in stats:
        chains["step size"] = stats["step_size"].mean("draw").values
    fmt = {"ess_bulk": lambda v: f"{v:.0f}", "ess_tail": lambda v: f"{v:.0f}",
           "r_hat": lambda v: f"{v:.3f}"}
    flagged = rank_flags(ctx.tree)
    if flagged:
        ctx.warnings.append("Rank test: the chains do not sample the same distribution of "
                            + ", ".join(flagged) + f" (chi-square on ranks, level {RANK_ALPHA}).")
    return (para("Rank-normalised split R-hat and bulk/tail effective sample sizes of every "
                 "sampled variable and law coefficient; the gate asks for R-hat <= "
                 f"{ctx.info['gate'].get('thresholds', {}).get('rhat_max', 1.01)} and ESS >= "
                 f"{ctx.info['gate'].get('thresholds', {}).get('ess_min', 400)}.")
            + table(summ, fmt)
            + "<h3>Divergences and energy per chain</h3>" + table(chains) + figs)


# ---------------------------------------------------------------------------------- 3. coefficients


def coefficients(ctx: Context, sink) -> str:
    ct = q.coefficient_table(ctx.tree, ctx.prior_draws())
    pct = f"{int(round(q.PROB * 100))}%"
    show = pd.DataFrame({
        "mean": ct["mean"], "sd": ct["sd"], f"HDI {pct}": [interval(a, b) for a, b in
                                                          zip(ct["lo"], ct["hi"], strict=True)],
        "published": ct["published"],
        f"prior {pct}": [interval(a, b) for a, b in zip(ct["prior_lo"], ct["prior_hi"],
                                                        strict=True)],
        "width ratio": ct["width_ratio"]}, index=ct.index)
    weak = [str(k) for k, r in ct["width_ratio"].items() if np.isfinite(r) and r >= WEAK_RATIO]
    ident = identification(ctx.tree)
    ident.index.name = "sampled variable"
    weak_s = [str(k) for k, v in ident["verdict"].items() if v in ("weak", "prior-dominated")]
    if weak or weak_s:
        ctx.warnings.append("Weakly identified (the runs hardly narrowed the prior): "
                            + esc(", ".join(weak + weak_s)) + ".")
    pub = bool(np.isfinite(ct["published"]).any())
    note = (f"Published constants: {esc(ctx.law.reference)}." if pub else
            "This law has no published constants to compare with.")
    return (para("Law coefficients (positive ones as natural logs, as the law functions take "
                 "them). The width ratio is the posterior's central interval width over the "
                 "prior's (the prior the coefficient inherits from the sampled variables): "
                 f"near 1 the runs did not inform it; from {WEAK_RATIO} on it is flagged as "
                 "weakly identified. " + note)
            + table(show)
            + sink(lambda: F.prior_posterior(ctx.tree, ctx.prior_draws()), "prior_posterior",
                   "Posterior (histogram) against prior (line) of each coefficient. Priors of "
                   "the law coefficients are induced by the priors of the sampled variables.")
            + sink(lambda: F.published_forest(ct, ctx.law.name), "forest",
                   f"Posterior mean and HDI {pct} (blue), prior {pct} (grey) and the published "
                   "value (red diamond); each coefficient on its own axis.")
            + "<h3>Identification of the sampled variables</h3>"
            + para("Posterior sd over prior sd in the prior's own space "
                   "(bayesfp.bayes.diagnostics.identification).")
            + table(ident))


# ---------------------------------------------------------------------------------- 4. fit quality


def fit_quality(ctx: Context, sink) -> str:
    pred = q.predictive_table(ctx.thinned, pred=ctx.predictive(), mean=ctx.predictive(False))
    cov = coverage(ctx.predictive(), pred["observed"].to_numpy(dtype=float), (0.5, 0.9, 0.99))
    outside = 1.0 - cov.pop(0.99)
    ctx.facts["coverage"] = dict(cov)
    covt = pd.DataFrame({"nominal": list(cov), "observed": list(cov.values())}).set_index(
        "nominal")
    robust = bool(ctx.info.get("robust"))
    if outside > TAIL_OUTSIDE_MAX and not robust:
        ctx.warnings.append(f"{outside:.1%} of the fitted runs lie outside their 99% predictive "
                            "intervals (1% expected): the residuals have heavier tails than "
                            "Normal noise; refit with --robust (Student-t noise) and compare.")
    if cov.get(0.9, 1.0) < 0.8:
        ctx.warnings.append(f"The posterior predictive 90% interval holds only "
                            f"{cov[0.9]:.0%} of the fitted runs: the law or the noise model "
                            "misses something.")
    out = (para("Posterior predictive check: the interval a new run at each fitted design "
                "would fall in (noise included), against the observed loss.")
           + table(covt, {"observed": lambda v: f"{v:.1%}"})
           + sink(lambda: F.ppc_plot(pred), "ppc",
                  "Observed loss (dots, by format) against the posterior predictive median and "
                  "90% interval, one panel per N.")
           + sink(lambda: F.residual_plot(pred), "residuals",
                  "Residuals of log-loss from the law's median, over the noise sd, against N, "
                  "D, E, M and B."))
    lo = loo(ctx.tree)
    lt = pd.DataFrame({"value": [num(lo["elpd"], 6), num(lo["se"]), num(lo["p_loo"]),
                                 num(lo["pareto_k_max"]), str(lo["n_bad_k"])]},
                      index=pd.Index(["elpd_loo (log-loss)", "se", "p_loo", "max Pareto k",
                                      f"runs with k > {PARETO_K_MAX}"], name="PSIS-LOO"))
    if lo["n_bad_k"]:
        ctx.warnings.append(f"{lo['n_bad_k']} runs have Pareto k > {PARETO_K_MAX}: their "
                            "LOO estimates are unreliable (influential runs)"
                            + ("." if robust else "; refit with --robust (Student-t noise) "
                               "to check that they do not drive the fit."))
        lt.loc["influential runs"] = ", ".join(lo["bad_runs"][:10])
    out += ("<h3>Leave-one-out predictive accuracy</h3>" + table(lt)
            + sink(lambda: F.loo_pit_plot(ctx.thinned, ctx.predictive()), "loo_pit",
                   "LOO-PIT: the leave-one-out predictive CDF at each observed log-loss, as a "
                   "Delta-ECDF; the panel gives the p-value of ArviZ's uniformity test (points "
                   "outside its simultaneous band are drawn black). Near zero: calibrated."))
    out += "<h3>Comparison across fitted laws</h3>"
    if ctx.extra_fits:
        fits = {ctx.name: ctx.tree} | dict(ctx.extra_fits)
        ct = compare(fits)
        ct.index.name = "fit"
        cols = [c for c in ("rank", "elpd", "elpd_diff", "dse", "p", "weight", "n_bad_k",
                            "gate_passed") if c in ct.columns]
        out += (para("PSIS-LOO of every fit of the same runs; the best is ranked 0. A "
                     "difference smaller than about 2 dse is not a clear preference.")
                + table(ct[cols]) + sink(lambda: F.compare_plot(ct), "compare",
                                         "ELPD of each fit with its standard error."))
    else:
        out += para("Only one fit was given. Compare laws with "
                    "<code>bayesfp report FIT.nc --compare OTHER.nc ...</code> (fits of the same "
                    "runs).")
    out += "<h3>Within-range checks</h3>" + _within_range(ctx)
    out += "<h3>Held-out extrapolation check</h3>" + _holdout(ctx)
    out += "<h3>Held-out calibration</h3>" + calibration(ctx)
    if ctx.new_runs is not None and len(ctx.new_runs):
        out += _new_runs(ctx, sink)
    return out


def _within_range(ctx: Context) -> str:
    """The within-range checks of the fit (stored with it, else computed on the thinned draws):
    loss-vs-D steps the posterior contradicts and paired comparisons of same-width formats."""
    from bayesfp.bayes.checks import within_range

    wr = ctx.info.get("within_range") or within_range(ctx.thinned)
    out = para(f"The posterior's law against raw contrasts of the fitted runs: of "
               f"{wr['slope_steps']} steps between consecutive D values of a series (same N, "
               f"format, block, operands), {wr['slope_flagged']} fall in the runs but rise "
               "under the posterior (a critical data size inside the data). Formats of the "
               "same width compared on runs paired by N, D, B, operands and seed:")
    if wr["slope_flagged"]:
        ctx.warnings.append(f"{wr['slope_flagged']} loss-vs-D steps fall in the runs but rise "
                            "under the posterior: its D_crit lies inside the data.")
    inside = wr.get("minimum_inside") or []
    if "minimum_steps" in wr:
        out += para(f"Of {wr['minimum_steps']} falling steps of quantized series, "
                    f"{len(inside)} hold the posterior's D_crit (the law's minimum in D) with "
                    "probability above 0.5: the law falls to a minimum and rises before the "
                    "step's end while the runs only show the fall." if inside else
                    f"None of {wr['minimum_steps']} falling steps of quantized series holds the "
                    "posterior's D_crit with probability above 0.5.")
    if inside:
        df = pd.DataFrame(inside)
        df = df[["N", "E", "M", "B", "operands", "D_from", "D_to", "observed", "p_inside"]]
        out += table(df, {"observed": lambda v: f"{v:+.4f}", "p_inside": lambda v: f"{v:.2f}",
                          "D_from": lambda v: f"{v:.3g}", "D_to": lambda v: f"{v:.3g}"})
        ctx.warnings.append(
            "D_crit inside a falling step: " + "; ".join(
                f"E{r['E']}M{r['M']} at N = {float(r['N']):.3g}, {r['D_from']:.3g} to "
                f"{r['D_to']:.3g} tokens (P {r['p_inside']:.2f})" for r in inside)
            + ". Runs past the step's end would tell.")
    if wr["pairs"]:
        df = pd.DataFrame(wr["pairs"])
        df.index = pd.Index([f"{a} vs {b}" for a, b in zip(df["a"], df["b"], strict=True)],
                            name="formats a vs b")
        df = df[["pairs", "observed", "a_wins", "p_a_better", "disagrees"]]
        df.columns = ["pairs", "mean loss a - b (nats)", "a lower in", "P(a better)",
                      "contradicted"]
        out += table(df, {"mean loss a - b (nats)": lambda v: f"{v:+.4f}",
                          "a lower in": lambda v: f"{v:.0%}", "P(a better)": lambda v: f"{v:.2f}"})
        bad = [f"{p['a']} vs {p['b']}" for p in wr["pairs"] if p["disagrees"]]
        if bad:
            ctx.warnings.append("The posterior is confident of the opposite order of paired "
                                "runs for " + ", ".join(bad) + ".")
    else:
        out += para("No two formats of the same width share paired runs.")
    return out


def calibration(ctx: Context) -> str:
    """The held-out calibration of the fit's model (``bayesfp calibrate``) as a table, or how to
    make one. A cut whose 90% intervals hold fewer than :data:`CALIBRATION_MIN90` of its runs
    is flagged (the verdict turns amber)."""
    cal = ctx.calibration
    if cal is None:
        return para("No held-out calibration on record. <code>bayesfp calibrate RUNS -o "
                    "cal.csv</code>, with the options of the fit, refits the model without the "
                    "runs at the largest N or D values and counts how many of their losses fall "
                    "in the predictive intervals; show it here with <code>bayesfp report FIT "
                    "--calibration cal.csv</code>, or run <code>bayesfp pipeline "
                    "--calibrate</code>.")
    for _, r in cal.iterrows():
        if r["cov90"] < CALIBRATION_MIN90:
            col = str(r["cut"]).split("_")[1]
            ctx.warnings.append(
                f"Held-out calibration: the 90% predictive intervals hold only "
                f"{r['cov90']:.0%} of the {int(r['n_held'])} runs of cut {esc(r['cut'])} "
                f"({CUT_TEXT.get(r['cut'], '')}, up to {r['factor']:.3g}x the largest fitted "
                f"{col}): the model is overconfident when it extrapolates that far.")
    rows = pd.DataFrame({
        "held out": [CUT_TEXT.get(c, c) for c in cal["cut"]],
        "up to (x largest fitted)": [f"{f:.3g}x" for f in cal["factor"]],
        "held-out runs (cells)": [f"{int(n)}" + (f" ({int(c)})" if pd.notna(c) else "")
                                  for n, c in zip(cal["n_held"], cal.get(
                                      "cells_held", pd.Series(np.nan, cal.index)),
                                      strict=True)],
        "fitted runs": [str(int(n)) for n in cal["n_fit"]],
        "inside 50%": [f"{v:.0%}" for v in cal["cov50"]],
        "inside 90%": [f"{v:.0%}" for v in cal["cov90"]],
        "refit gate": ["passed" if g else "FAILED" for g in cal.get(
            "gate", pd.Series(True, cal.index))]},
        index=pd.Index([str(c) for c in cal["cut"]], name="cut"))
    return (para("The model refitted without the runs at the largest values of N or D "
                 "(<code>bayesfp calibrate</code>, same settings: "
                 f"<code>{esc(cal['model'].iloc[0])}</code>) predicts them: a calibrated "
                 "model holds about 50% and 90% of them in its 50% and 90% intervals. A cut "
                 f"below {CALIBRATION_MIN90:.0%} at 90% is flagged.") + table(rows))


def _low_cuts(ctx: Context) -> list[str]:
    """Calibration cuts whose 90% intervals hold fewer than :data:`CALIBRATION_MIN90`."""
    cal = ctx.calibration
    if cal is None:
        return []
    return [str(c) for c, v in zip(cal["cut"], cal["cov90"], strict=True)
            if v < CALIBRATION_MIN90]


def _calibration_line(ctx: Context) -> str:
    """The verdict box's line on held-out calibration."""
    cal = ctx.calibration
    if cal is None:
        return ("No held-out calibration on record (<code>bayesfp calibrate</code>, then "
                "<code>bayesfp report FIT --calibration TABLE</code>).")
    cells = [f"{esc(r['cut'])} (to {r['factor']:.3g}x): {r['cov50']:.0%} / {r['cov90']:.0%}"
             for _, r in cal.iterrows()]
    low = [esc(c) for c in _low_cuts(ctx)]
    return ("Held-out calibration of this model (refitted without the largest N or D values; "
            "held-out runs inside the 50% / 90% intervals): " + "; ".join(cells) + "."
            + (f" <strong>Below {CALIBRATION_MIN90:.0%} at 90% for {', '.join(low)}: the "
               "intervals are too narrow there.</strong>" if low else ""))


def _holdout(ctx: Context) -> str:
    h = ctx.holdout if ctx.holdout is not None else ctx.info.get("holdout")
    if not h:
        return para("Not run. The check refits the law without the runs at the largest N and "
                    "asks whether their losses fall in the predictive intervals: run "
                    "<code>bayesfp report FIT.nc --holdout</code> (one more fit).")
    cov = h.get("coverage", {})
    rows = pd.DataFrame({"value": [tokens(h["N_held"]), str(h["n_held"]),
                                   "passed" if h.get("gate_passed") else "FAILED"]
                         + [f"{float(v):.1%}" for v in cov.values()]},
                        index=pd.Index(["held-out N", "held-out runs", "gate of the refit"]
                                       + [f"coverage of the {float(k):.0%} interval"
                                          for k in cov], name="held out"))
    low = [float(v) < float(k) - 0.15 for k, v in cov.items()]
    ctx.facts["holdout"] = h
    if any(low) and int(h["n_held"]) >= HOLDOUT_MIN:
        ctx.warnings.append("The held-out runs at the largest N fall outside their predictive "
                            "intervals more often than nominal: extrapolation in N is doubtful.")
    return (para("The law refitted without the runs at the largest N predicts them; coverage "
                 "near nominal means the fit extrapolates in N.") + table(rows))


def _new_runs(ctx: Context, sink) -> str:
    runs = ctx.new_runs
    # runs the law cannot place (tensor-wise without an effective block size) are not predicted
    selection = fit_selection(runs, (ctx.info.get("inputs_kw") or {}).get("tensor_log2b"))
    unplaced = selection.unplaced
    ok = runs[selection.in_fit]
    out = "<h3>Runs not in the fit</h3>"
    if unplaced.any():
        out += para(f"{int(unplaced.sum())} tensor-wise runs of the given table are not predicted: "
                    "the fit has no effective block size for tensor-wise scaling "
                    "(<code>--tensor-log2b</code>).")
    if ok.empty:
        return out + para(f"{len(runs)} runs of the given table are not in the fit; none has a "
                          "usable loss the law can place.")
    pred = q.predictive_table(ctx.thinned, ok)
    cov = coverage(dv.predict_loss(ctx.thinned, ok.reset_index(drop=True)),
                     ok["loss"].to_numpy(dtype=float))
    covt = pd.DataFrame({"nominal": list(cov), "observed": list(cov.values())}).set_index(
        "nominal")
    return (out + para(f"{len(ok)} runs of the given table are not in the fit: their losses "
                       "against the fit's predictions.")
            + table(covt, {"observed": lambda v: f"{v:.1%}"})
            + sink(lambda: F.ppc_plot(pred), "new_runs",
                   "Runs not in the fit: observed loss against the predictive interval."))


# ---------------------------------------------------------------------------------- 5. answers


def answers(ctx: Context, sink) -> str:
    law = ctx.law.name
    if law not in q.PRECISION_LAWS:
        return para(f"The law {esc(law)} has no precision term, so it cannot say which format "
                    "to train in. Fit a Sun et al. law (<code>--law sun</code>) for the "
                    "critical data size, the best split and compute-optimal precision.")
    th = ctx.thinned
    out = ""
    d = q.data_summary(ctx.runs)
    g = ctx.group
    if g is not None:
        out += para(f"The fit pools the precision sensitivity over {esc(group_column(ctx.info))}"
                    f"; the answers below are for <strong>{esc(g)}</strong> (the mean over "
                    "groups is no group's value).")
    if law in q.SUN_LAWS:
        fitted = ctx.runs[ctx.runs["in_fit"].astype(bool)] if "in_fit" in ctx.runs else ctx.runs
        Ns = sorted(float(n) for n in fitted["N"].unique())
        tab_n = sorted(set(Ns[-4:]) | {d["N"][1] * ctx.n_factor})
        # The tables' numbers come from every draw (closed forms, cheap), so that they are the
        # numbers `bayesfp fit` and the decision print; the figures draw the thinned fit.
        dct = q.d_crit_table(ctx.tree, tab_n, group=g)
        ctx.facts["d_crit"] = dct
        d_top = d["D"][1]
        wide = dct.assign(cell=[f"{tokens(m)}{factor(m, d_top)} [{tokens(a)}, {tokens(b)}]"
                                for m, a, b in zip(dct["median"], dct["lo"], dct["hi"],
                                                   strict=True)])
        wide = wide.pivot(index="N", columns="format", values="cell")
        wide = wide[list(dict.fromkeys(dct["format"]))]
        wide.index = [tokens(n) + factor(n, d["N"][1]) for n in wide.index]
        wide.index.name = "N"
        grid = q.d_crit_table(ctx.tree, np.logspace(np.log10(d["N"][0]),
                                              np.log10(d["N"][1] * ctx.n_factor), 26), group=g)
        out += ("<h3>Critical data size</h3>"
                + para("Past the critical data size D_crit, more tokens raise the loss of a "
                       "quantized run (the precision penalty grows with D). Tokens, median "
                       "[HDI 90%], block size 128, at the runs' largest N and at "
                       f"{ctx.n_factor:g}x the largest (<code>--n-factor</code>). A factor "
                       "such as (12x) gives how far a value lies beyond the runs' largest N "
                       f"({tokens(d['N'][1])}) or D ({tokens(d_top)}).")
                + sink(lambda: F.loss_vs_data(th, group=g, d_crit=dct), "loss_vs_d",
                       "Loss against tokens per format at each N of the runs: posterior median "
                       "and 90% band of the law, D_crit marked (triangle, HDI bar), fitted runs "
                       "as dots, shaded past the runs' largest D.")
                + table(wide)
                + sink(lambda: F.d_crit_vs_n(grid, d["N"]), "d_crit_vs_n",
                       "D_crit against N per format (median, HDI 90%); shaded outside the N "
                       "of the runs."))
        probs, st = q.split_table(ctx.tree, group=g)
        ctx.facts["splits"] = st
        st = st.assign(agree=np.where(st["best"] == st["paper"], "yes", "no"))
        st.columns = ["most probable", "P(best)", "Sun et al.", "P(Sun et al.'s)", "agree"]
        out += ("<h3>Best exponent/mantissa split per bit width</h3>"
                + para("For P total bits, the probability over the posterior that each split "
                       "E + M = P - 1 has the lowest loss (at fixed N, D and B the splits differ "
                       "only in the penalty's format factor), next to the layout table of Sun "
                       "et al.")
                + '<div class="side">'
                + sink(lambda: F.split_heatmap(probs), "split_probabilities",
                       "P(best split) per P and E; frames: Sun et al.'s table.")
                + table(st, {"P(best)": lambda v: f"{v:.2f}",
                             "P(Sun et al.'s)": lambda v: f"{v:.2f}"}) + "</div>")
    co = q.compute_optimal_table(th, q.budgets_for(d["min_C"], d["max_C"], ctx.c_factor),
                                 group=g)
    clipped = co.get("P_clipped", pd.Series(0.0, index=co.index)) > (1.0 - q.PROB) / 2.0
    cols = {"C": lambda v: f"{v:.0e}"}

    def cell(m, a, b, fmt, top=None):
        return f"{fmt(m)}{factor(m, top) if top else ''} [{fmt(a)}, {fmt(b)}]"

    show = pd.DataFrame({
        "C (FLOPs)": co["C"],
        "beyond the runs": [factor(c, d["max_C"]).strip(" ()") or "inside" for c in co["C"]],
        "P (bits)": [("clipped at the search bounds " + f"({q.P_RANGE[0]:g} to "
                      f"{q.P_RANGE[1]:g} bits): no answer") if c else
                     cell(m, a, b, lambda v: f"{v:.2f}") for m, a, b, c in
                     zip(co["P"], co["P_lo"], co["P_hi"], clipped, strict=True)],
        "N": [cell(m, a, b, tokens, d["N"][1]) for m, a, b in
              zip(co["N"], co["N_lo"], co["N_hi"], strict=True)],
        "D": [cell(m, a, b, tokens, d["D"][1]) for m, a, b in
              zip(co["D"], co["D_lo"], co["D_hi"], strict=True)]})
    if "E" in co:
        show.insert(3, "E, M (continuous)", ["" if c else f"{e:.2f}, {m:.2f}" for e, m, c in
                                             zip(co["E"], co["M"], clipped, strict=True)])
    show = show.set_index("C (FLOPs)")
    show.index = [f"{c:.1e}" for c in show.index]
    show.index.name = "C (FLOPs)"
    out += ("<h3>Compute-optimal precision</h3>"
            + para("The (N, D, P) that minimise the law's loss at a FLOP budget C = (6/16) P N "
                   f"D, per posterior draw ({q.OPTIMAL_DRAWS} draws at most): median [central "
                   "90%], from the runs' smallest compute to "
                   f"{ctx.c_factor:g}x their largest ({d['max_C']:.2g} FLOPs; "
                   "<code>--c-factor</code>). Budgets, N and D past the runs carry their "
                   "factor; where more than 5% of the draws put P on a bound of the search, the "
                   "answer is clipped and not shown.")
            + sink(lambda: F.compute_optimal_plot(co, d["max_C"]), "compute_optimal",
                   "Compute-optimal precision against compute budget, median and 90% band; "
                   "shaded where it extrapolates past the runs.")
            + table(show, cols))
    return out


# ---------------------------------------------------------------------------------- 6. decision


def decision(ctx: Context, sink) -> str:
    if ctx.decision is None:
        return para("No decision analysis was run.", "notice") + para(
            "A decision analysis prices each candidate format by expected loss, probability of "
            "being best and expected regret, with the expected value of perfect information "
            "(EVPI) and a ranking of the next runs to make. Pass its result to the report: "
            "<code>bayesfp report FIT.nc --decision decision.json</code>, or "
            "<code>write_report(fit, out_dir, decision=result)</code> from Python (format in "
            "docs/reports.md).")
    d = q.as_decision(ctx.decision)
    out = para(f"<strong>{esc(d.title)}</strong>"
               + (f": choose <strong>{esc(d.choice)}</strong>." if d.choice else ""))
    sit = {k: v for k, v in d.situation.items() if v is not None and not isinstance(v, dict)}
    if sit:
        out += para("Situation: " + esc(", ".join(f"{k} {num(v) if isinstance(v, float) else v}"
                                                   for k, v in sit.items())) + ".")
    if d.scalars:
        sc = pd.DataFrame({"value": [num(v, 4) for v in d.scalars.values()]},
                          index=pd.Index(list(d.scalars), name="quantity"))
        out += table(sc)
    out += table(d.candidates, _interval_formats(d.candidates))
    out += sink(lambda: F.decision_plot(d), "decision",
                "Per candidate: expected loss, probability of being best and expected regret.")
    if d.next_runs is not None:
        out += "<h3>Next runs</h3>" + table(d.next_runs, _interval_formats(d.next_runs))
    if d.notes:
        out += "<ul>" + "".join(f"<li>{esc(n)}</li>" for n in d.notes) + "</ul>"
    return out


def _interval_formats(df: pd.DataFrame) -> dict:
    """Cells holding [lo, hi] pairs are written as 'lo to hi'."""
    out = {}
    for c in df.columns:
        first = df[c].dropna().iloc[0] if df[c].notna().any() else None
        if isinstance(first, (list, tuple, np.ndarray)) and len(first) == 2:
            out[c] = lambda v: "" if v is None else interval(v[0], v[1])
    return out


BUILDERS = {"summary": summary, "diagnostics": diagnostics, "coefficients": coefficients,
            "fit-quality": fit_quality, "answers": answers, "decision": decision}
