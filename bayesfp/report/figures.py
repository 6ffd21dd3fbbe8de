"""The report's figures as functions returning matplotlib figures (for notebooks too).

Each function takes a fit (an ``xarray.DataTree`` from :func:`bayesfp.bayes.io.load_fit`) or a
table from :mod:`bayesfp.report.quantities` and returns a :class:`matplotlib.figure.Figure`;
nothing is shown or written. ArviZ plots (rank, energy, LOO-PIT, comparison) come from
arviz-plots; the rest are drawn here. Intervals are 90% unless stated.
"""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from bayesfp.bayes import derived as dv
from bayesfp.bayes.io import fit_info, fit_table
from bayesfp.bayes.priors import priors_from_json
from bayesfp.errors import BayesfpInputError
from bayesfp.laws.published import SUN_OPTIMAL_LAYOUT
from bayesfp.report import quantities as q

# Width of a full-width figure (inches); at the report's 100 dpi it fills the 1000 px column.
WIDTH = 10.0
# Major ticks per axis at most (where matplotlib chooses them).
MAX_TICKS = 5
EXTRAPOLATION = dict(color="0.85", alpha=0.5, lw=0)
PUBLISHED_STYLE = dict(marker="D", color="tab:red", ms=7, ls="none", zorder=5)


def _pct(prob: float) -> str:
    return f"{int(round(prob * 100))}%"


# Markers cycled with the colours, so that up to 10 x 8 formats get distinct symbols.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _format_colors(labels) -> dict:
    cmap = plt.get_cmap("tab10")
    return {f: cmap(i % 10) for i, f in enumerate(labels)}


def _format_markers(labels) -> dict:
    """A marker per label that changes whenever the colours of :func:`_format_colors` repeat."""
    return {f: MARKERS[(i // 10) % len(MARKERS)] for i, f in enumerate(labels)}


def _n_panels(Ns, max_panels: int = 6) -> list[tuple[float, float]]:
    """Distinct N values grouped into at most ``max_panels`` ranges (lo, hi), in order."""
    Ns = sorted(float(n) for n in Ns)
    if len(Ns) <= max_panels:
        return [(n, n) for n in Ns]
    parts = np.array_split(np.array(Ns), max_panels)
    return [(float(p[0]), float(p[-1])) for p in parts if len(p)]


def _arviz_figure(pc) -> Figure:
    fig = pc.viz["figure"].item()
    return fig


def _legend_entries(axes) -> tuple[list, list]:
    """Handles and labels of every axis, each label once."""
    seen = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lab, h)
    return list(seen.values()), list(seen.keys())


def _finish_panels(fig: Figure, axes, n_used: int, **legend_kw) -> Figure:
    """Hide the panels past the first ``n_used``, add one legend of theirs, detach the figure."""
    for ax in axes.flat[n_used:]:
        ax.set_visible(False)
    fig.legend(*_legend_entries(axes.flat[:n_used]), frameon=False, **legend_kw)
    return _close_new(fig)


def _log_scale(ax, *which: str) -> None:
    """Log scale on ``x`` and/or ``y`` with major ticks only: the unlabelled minor ticks of an
    axis spanning several decades cost more to lay out and draw than the rest of the panel."""
    from matplotlib.ticker import NullLocator

    for w in which:
        axis = ax.xaxis if w == "x" else ax.yaxis
        (ax.set_xscale if w == "x" else ax.set_yscale)("log")
        axis.set_minor_locator(NullLocator())


def _fewer_ticks(fig: Figure) -> None:
    """At most :data:`MAX_TICKS` major ticks on every axis whose ticks matplotlib chooses
    (fewer on a short axis, as before): each tick costs more to lay out and draw than a panel's
    lines, and matplotlib's default allows up to 9 per axis."""
    from matplotlib.ticker import AutoLocator, LogLocator

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            loc = axis.get_major_locator()
            if type(loc) is AutoLocator:
                loc.set_params(nbins=int(np.clip(axis.get_tick_space(), 1, MAX_TICKS - 1)))
            elif type(loc) is LogLocator and loc.numticks == "auto":
                loc.set_params(numticks=int(np.clip(axis.get_tick_space(), 2, MAX_TICKS)))


def _close_new(fig: Figure) -> Figure:
    """Detach a figure from pyplot's registry so that it is not kept alive by it, with at most
    :data:`MAX_TICKS` ticks per axis."""
    plt.close(fig)
    _fewer_ticks(fig)
    return fig


# ---------------------------------------------------------------------------------- diagnostics


def rank_plot(tree: xr.DataTree, var_names=None) -> Figure:
    """Fractional-rank Delta-ECDF plot per chain (``arviz.plot_rank``) of the sampled variables."""
    import arviz as az

    names = list(var_names or q.sampled_names(tree))
    ncol = 3
    nrow = int(np.ceil(len(names) / ncol))
    pc = az.plot_rank(tree, var_names=names, col_wrap=ncol,
                      figure_kwargs={"figsize": (WIDTH, 2.2 * nrow + 0.4),
                                     "layout": "constrained"})
    return _close_new(_arviz_figure(pc))


def trace_plot(tree: xr.DataTree, var_names=None) -> Figure:
    """Marginal densities and traces per chain (``arviz.plot_trace_dist``)."""
    import arviz as az

    names = list(var_names or q.sampled_names(tree))
    pc = az.plot_trace_dist(tree, var_names=names,
                            figure_kwargs={"figsize": (WIDTH, 1.6 * len(names) + 0.5),
                                           "layout": "constrained"})
    return _close_new(_arviz_figure(pc))


def energy_plot(tree: xr.DataTree) -> Figure:
    """Marginal and transition energy with E-BFMI per chain (``arviz.plot_energy``)."""
    import arviz as az

    pc = az.plot_energy(tree, figure_kwargs={"figsize": (WIDTH * 0.7, 3.2),
                                             "layout": "constrained"})
    return _close_new(_arviz_figure(pc))


# ---------------------------------------------------------------------------------- coefficients


def _prior_pdf(prior, x: np.ndarray) -> np.ndarray:
    from scipy import stats

    if prior.dist == "normal":
        return stats.norm(prior.mu, prior.sigma).pdf(x)
    if prior.dist == "lognormal":
        return stats.lognorm(s=prior.sigma, scale=np.exp(prior.mu)).pdf(x)
    if prior.dist == "halfnormal":
        return stats.halfnorm(scale=prior.sigma).pdf(x)
    a = (0.0 - prior.mu) / prior.sigma
    return stats.truncnorm(a, np.inf, loc=prior.mu, scale=prior.sigma).pdf(x)


def prior_posterior(tree: xr.DataTree, prior: xr.Dataset | None = None) -> Figure:
    """Posterior against prior of every law coefficient and noise/pooling scale.

    The posterior histogram is drawn with the prior density from the priors stored in the fit:
    exact for sampled variables, and for the law coefficients the density of the prior they
    induce (histogram of prior draws pushed through the parametrisation). The x-range follows
    the posterior, so a prior much wider than the posterior shows as a flat line. (A fit's
    ``prior`` group, where it has one, is drawn on the prior's own range by
    ``arviz.plot_prior_posterior(fit)``; there the heavy-tailed priors of the exponents
    squeeze the posterior into a spike.)
    """
    names = q.coefficient_names(tree)
    names += [k for k in q.sampled_names(tree) if k == "sigma" or k.startswith("tau_")]
    prior = q.prior_draws(tree) if prior is None else prior
    stored = priors_from_json(fit_info(tree)["priors"])
    post = tree["posterior"]
    ncol = 4
    nrow = int(np.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(WIDTH, 2.1 * nrow + 0.5), squeeze=False,
                             layout="constrained")
    for ax, name in zip(axes.flat, names, strict=False):
        v = np.asarray(post[name].values, dtype=float).ravel()
        lo, hi = np.quantile(v, [0.005, 0.995])
        w = max(hi - lo, 1e-12)
        x0, x1 = lo - 1.5 * w, hi + 1.5 * w
        if name == "sigma" or name.startswith("tau_"):
            x0 = max(x0, 0.0)
        ax.hist(v, bins=40, density=True, histtype="stepfilled", color="tab:blue", alpha=0.6,
                label="posterior")
        xs = np.linspace(x0, x1, 300)
        key = "tau" if name.startswith("tau_") and name not in stored else name
        if key in stored:
            ax.plot(xs, _prior_pdf(stored[key], xs), color="0.3", lw=1.5, label="prior")
        elif name in prior:
            pv = np.asarray(prior[name].values, dtype=float).ravel()
            pv = pv[np.isfinite(pv)]
            counts, edges = np.histogram(pv, bins=60, range=(x0, x1))
            dens = counts / (len(pv) * np.diff(edges))
            ax.stairs(dens, edges, color="0.3", lw=1.5, label="prior (induced)")
        ax.set_xlim(x0, x1)
        ax.set_title(name, fontsize=10)
        ax.set_yticks([])
        ax.tick_params(labelsize=8)
    return _finish_panels(fig, axes, len(names), loc="outside upper right", ncol=3, fontsize=9)


def published_forest(table: pd.DataFrame, law: str = "", prob: float = q.PROB) -> Figure:
    """Forest plot of the law coefficients against the paper's published constants.

    One row per coefficient, each on its own axis: posterior median and HDI (blue), the
    prior's central interval (grey band) and the published value (red diamond). The text on
    the right is the posterior-to-prior interval-width ratio: near 1, the runs left the
    coefficient where the prior put it (weakly identified).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`bayesfp.report.quantities.coefficient_table`.
    """
    n = len(table)
    fig, axes = plt.subplots(n, 1, figsize=(WIDTH, 0.62 * n + 1.0), squeeze=False,
                             layout="constrained")
    for ax, (name, r) in zip(axes[:, 0], table.iterrows(), strict=True):
        pts = [r["lo"], r["hi"]] + ([r["published"]] if np.isfinite(r["published"]) else [])
        x0, x1 = min(pts), max(pts)
        pad = 0.25 * max(x1 - x0, 1e-9)
        x0, x1 = x0 - pad, x1 + pad
        if np.isfinite(r["prior_lo"]):
            ax.axvspan(max(r["prior_lo"], x0 - pad), min(r["prior_hi"], x1 + pad), color="0.88",
                       lw=0, label=f"prior {_pct(prob)}")
        ax.hlines(0, r["lo"], r["hi"], color="tab:blue", lw=4, label=f"posterior HDI {_pct(prob)}")
        ax.plot([r["mean"]], [0], "o", color="navy", ms=6, label="posterior mean")
        if np.isfinite(r["published"]):
            ax.plot([r["published"]], [0], **PUBLISHED_STYLE, label="published")
        ax.set_xlim(x0, x1)
        ax.set_yticks([0])
        ax.set_yticklabels([name])
        ax.set_ylim(-1, 1)
        ax.tick_params(labelsize=8)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ratio = r["width_ratio"]
        if np.isfinite(ratio):
            weak = ratio >= 0.5
            ax.text(1.01, 0.5, f"width ratio {ratio:.2f}" + (" WEAK" if weak else ""),
                    transform=ax.transAxes, va="center", fontsize=8,
                    color="tab:red" if weak else "0.2")
    pub = "published" + (f" ({law})" if law else "")
    handles, labels = _legend_entries(axes[:, 0])
    labels = [pub if lab == "published" else lab for lab in labels]
    fig.legend(handles, labels, loc="outside upper center", ncol=4, fontsize=9, frameon=False)
    return _close_new(fig)


# ---------------------------------------------------------------------------------- fit quality


def ppc_plot(pred: pd.DataFrame, prob: float = q.PROB) -> Figure:
    """Observed loss against the posterior predictive interval, one panel per N.

    Runs are sorted by predicted loss within a panel; the grey band is the predictive interval
    of a new run's loss (noise included), dots the observed losses coloured by format.

    Parameters
    ----------
    pred : pandas.DataFrame
        From :func:`bayesfp.report.quantities.predictive_table`.
    """
    Ns = _n_panels(pred["N"].unique())
    ncol = min(len(Ns), 2)
    nrow = int(np.ceil(len(Ns) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(WIDTH, 3.0 * nrow + 0.6), squeeze=False,
                             layout="constrained")
    fmts = sorted(pred["format"].unique(), key=lambda s: (s == "BF16", len(s), s))
    colors, markers = _format_colors(fmts), _format_markers(fmts)
    for ax, (n0, n1) in zip(axes.flat, Ns, strict=False):
        sub = pred[(pred["N"] >= n0) & (pred["N"] <= n1)].sort_values("pred_median")
        x = np.arange(len(sub))
        ax.fill_between(x, sub["pred_lo"], sub["pred_hi"], color="0.8", lw=0,
                        label=f"predictive {_pct(prob)}")
        ax.plot(x, sub["pred_median"], color="0.4", lw=1, label="predictive median")
        for f in fmts:
            m = (sub["format"] == f).to_numpy()
            if m.any():
                ax.plot(x[m], sub["observed"].to_numpy()[m], markers[f], ms=3, color=colors[f],
                        label=f)
        inside = float(sub["inside"].mean())
        where = f"N = {n0:.3g}" if n0 == n1 else f"N = {n0:.3g} to {n1:.3g}"
        ax.set_title(f"{where}: {inside:.0%} inside", fontsize=10)
        ax.set_xlabel("runs, sorted by predicted loss", fontsize=9)
        ax.set_ylabel("loss (nats/token)", fontsize=9)
        ax.tick_params(labelsize=8)
    return _finish_panels(fig, axes, len(Ns), loc="outside right upper", fontsize=8)


def residual_plot(pred: pd.DataFrame) -> Figure:
    """Standardised residuals (log observed minus log law median, over sigma) against N, D, E,
    M and B. Dashed lines at +-2; a trend means the law misses a dependence."""
    fig, axes = plt.subplots(1, 5, figsize=(WIDTH, 2.8), sharey=True, layout="constrained")
    rng = np.random.default_rng(0)
    z = pred["z"].to_numpy(dtype=float)
    quant = (pred["operands"].astype(str) != "none").to_numpy()
    for ax, col in zip(axes, ("N", "D", "E", "M", "B"), strict=True):
        if col == "B":
            cats = sorted(set(pred[col].astype(str)),
                          key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s))
            pos = {c: i for i, c in enumerate(cats)}
            x = np.array([pos[c] for c in pred[col].astype(str)], dtype=float)
            ax.set_xticks(range(len(cats)))
            ax.set_xticklabels(cats, fontsize=8, rotation=45, ha="right")
            x = x + rng.uniform(-0.2, 0.2, len(x))
        elif col in ("N", "D"):
            from matplotlib.ticker import LogLocator

            x = pred[col].to_numpy(dtype=float) * np.exp(rng.uniform(-0.08, 0.08, len(pred)))
            _log_scale(ax, "x")
            ax.xaxis.set_major_locator(LogLocator(base=10, numticks=4))
        else:
            x = pred[col].to_numpy(dtype=float) + rng.uniform(-0.2, 0.2, len(pred))
        ax.plot(x[quant], z[quant], ".", ms=3, color="tab:blue", alpha=0.6, label="quantized")
        ax.plot(x[~quant], z[~quant], ".", ms=4, color="tab:orange", label="unquantized")
        for yv in (-2, 2):
            ax.axhline(yv, color="0.5", ls="--", lw=0.8)
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set_xlabel(col, fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0].set_ylabel("residual / sigma", fontsize=9)
    axes[-1].legend(fontsize=8, frameon=False, loc="upper right")
    return _close_new(fig)


def loo_pit_plot(tree: xr.DataTree, pred: xr.DataArray | None = None) -> Figure:
    """LOO-PIT Delta-ECDF of the fitted runs' log-loss (``arviz.plot_loo_pit``), with the
    p-value of ArviZ's uniformity test. Near zero: the predictive distributions are
    calibrated. ``pred``: the predictive loss draws of the fitted runs when already computed
    (see :func:`bayesfp.report.quantities.loo_pit_tree`).

    The PIT values come from :func:`bayesfp.report.quantities.loo_pit_values` (ArviZ's
    Pareto-smoothed LOO-PIT for all runs at once) and are drawn as ``arviz.plot_loo_pit``
    draws them (``arviz_plots.plot_ecdf_pit`` with its settings)."""
    from arviz_base import convert_to_datatree
    from arviz_plots import plot_ecdf_pit

    lpv = q.loo_pit_values(tree, pred=pred)
    pc = plot_ecdf_pit(convert_to_datatree(lpv, group="loo_pit"), group="loo_pit",
                       sample_dims=lpv.dims, method="pot_c",
                       visuals={"ylabel": {}, "remove_axis": False,
                                "xlabel": {"text": "LOO-PIT"}},
                       figure_kwargs={"figsize": (WIDTH * 0.6, 3.0), "layout": "constrained"})
    return _close_new(_arviz_figure(pc))


def compare_plot(table: pd.DataFrame) -> Figure:
    """ELPD of several fits with standard errors (``arviz.plot_compare``)."""
    import arviz as az

    pc = az.plot_compare(table, figure_kwargs={"figsize": (WIDTH * 0.7, 0.6 * len(table) + 1.4),
                                               "layout": "constrained"})
    return _close_new(_arviz_figure(pc))


# ---------------------------------------------------------------------------------- answers


def loss_vs_data(tree: xr.DataTree, Ns=None, formats=dv.DEFAULT_FORMATS, D=None,
                 prob: float = q.PROB, group: str | None = None,
                 d_crit: pd.DataFrame | None = None) -> Figure:
    """Loss against tokens D per format, one panel per N, with the critical data size.

    Lines are the posterior median of the law's loss (block size 128), bands its central
    interval; the dashed line is the unquantized law. The marker with a horizontal bar is
    D_crit (median, HDI). Dots are the fitted runs at that N and block size; the shaded area
    lies past the largest D in the runs. ``group``: a pooled fit's group whose D_crit to mark
    (the curves are for operands ``w+w_bwd+x_bwd``, that group's own when pooled by operands).
    ``d_crit``: the table of :func:`bayesfp.report.quantities.d_crit_table` for these
    ``formats``, ``prob`` and ``group`` when already computed at (at least) these N.
    """
    runs = fit_table(tree, fitted_only=True)
    Ns = sorted(runs["N"].unique())[-4:] if Ns is None else list(Ns)
    d_max = float(runs["D"].max())
    D = np.logspace(np.log10(runs["D"].min()) - 1, np.log10(d_max) + 2.5, 60) if D is None \
        else np.asarray(D, dtype=float)
    labels = [dv.format_label(*f) for f in formats]
    colors = _format_colors(labels)
    if d_crit is None or not set(Ns) <= set(d_crit["N"]):
        d_crit = q.d_crit_table(tree, Ns, formats, prob, group=group)
    dct = d_crit
    ncol = min(len(Ns), 2)
    nrow = int(np.ceil(len(Ns) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(WIDTH, 3.3 * nrow + 0.5), squeeze=False,
                             layout="constrained")
    for ax, n in zip(axes.flat, Ns, strict=False):
        cur = q.loss_curves(tree, n, D, formats, prob)
        ymin, ymax = np.inf, -np.inf
        for lab in labels + ["unquantized"]:
            c = cur[cur["format"] == lab]
            if lab == "unquantized":
                ax.plot(c["D"], c["median"], "--", color="0.3", lw=1, label="unquantized")
                continue
            ax.fill_between(c["D"], c["lo"], c["hi"], color=colors[lab], alpha=0.2, lw=0)
            ax.plot(c["D"], c["median"], color=colors[lab], lw=1.5, label=f"{lab} B128")
            ymin, ymax = min(ymin, c["median"].min()), max(ymax, c["median"].max())
            r = dct[(dct["N"] == n) & (dct["format"] == lab)].iloc[0]
            if D[0] <= r["median"] <= D[-1]:
                y = np.interp(np.log(r["median"]), np.log(c["D"]), c["median"])
                ax.errorbar([r["median"]], [y], xerr=[[r["median"] - r["lo"]],
                                                      [r["hi"] - r["median"]]],
                            fmt="v", color=colors[lab], ms=7, capsize=3, lw=1.2)
            m = ((runs["N"] == n) & (runs["B"].astype(str) == str(q.CURVE_BLOCK))
                 & np.array([dv.format_label(e, mm) == lab
                             for e, mm in zip(runs["E"], runs["M"], strict=True)])
                 & (runs["operands"].astype(str) == q.CURVE_OPERANDS))
            if m.any():
                ax.plot(runs.loc[m, "D"], runs.loc[m, "loss"], "o", ms=4, color=colors[lab],
                        mec="k", mew=0.5)
        ax.axvspan(d_max, D[-1], **EXTRAPOLATION, label="past the runs' D")
        _log_scale(ax, "x")
        ax.set_xlim(D[0], D[-1])
        lo_y = min(ymin, cur["median"].min())
        ax.set_ylim(lo_y - 0.05 * (ymax - lo_y), lo_y + 1.3 * (ymax - lo_y) * 0.5 + 0.15)
        ax.set_title(f"N = {n:.3g}", fontsize=10)
        ax.set_xlabel("tokens D", fontsize=9)
        ax.set_ylabel("loss (nats/token)", fontsize=9)
        ax.tick_params(labelsize=8)
    return _finish_panels(fig, axes, len(Ns), loc="outside right upper", fontsize=8,
                          title="v = D_crit (HDI)", title_fontsize=8)


def d_crit_vs_n(table: pd.DataFrame, n_range=None, prob: float = q.PROB) -> Figure:
    """D_crit against N per format (median and HDI band, log-log); shaded outside the runs' N.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`bayesfp.report.quantities.d_crit_table` on a grid of N.
    n_range : (float, float), optional
        Smallest and largest N in the runs.
    """
    fig, ax = plt.subplots(figsize=(WIDTH * 0.75, 4.0), layout="constrained")
    labels = list(dict.fromkeys(table["format"]))
    colors = _format_colors(labels)
    for lab in labels:
        t = table[table["format"] == lab]
        ax.fill_between(t["N"], t["lo"], t["hi"], color=colors[lab], alpha=0.2, lw=0)
        ax.plot(t["N"], t["median"], color=colors[lab], lw=1.8, label=f"{lab} B128")
    _log_scale(ax, "x", "y")
    n0, n1 = float(table["N"].min()), float(table["N"].max())
    if n_range is not None:
        ax.axvspan(n0, n_range[0], **EXTRAPOLATION)
        ax.axvspan(n_range[1], n1, **EXTRAPOLATION, label="outside the runs' N")
    ax.set_xlim(n0, n1)
    ax.set_xlabel("parameters N", fontsize=9)
    ax.set_ylabel(f"D_crit (tokens), median and HDI {_pct(prob)}", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.grid(True, which="major", color="0.92")
    return _close_new(fig)


def split_heatmap(probs: xr.DataArray) -> Figure:
    """Posterior probability that each exponent/mantissa split is the best for P bits.

    Rows are total bits P, columns exponent bits E (M = P - 1 - E). Black frames mark the
    layout table of Sun et al.

    Parameters
    ----------
    probs : xarray.DataArray
        From :func:`bayesfp.bayes.derived.split_probabilities`, dims ``P, E``.
    """
    P = [int(p) for p in probs["P"].values]
    E = [int(e) for e in probs["E"].values]
    a = np.ma.masked_invalid(np.asarray(probs.transpose("P", "E").values, dtype=float))
    fig, ax = plt.subplots(figsize=(WIDTH * 0.6, 0.42 * len(P) + 1.3), layout="constrained")
    cmap = plt.get_cmap("Blues").with_extremes(bad="0.93")
    im = ax.imshow(a, cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for i, p in enumerate(P):
        for j, e in enumerate(E):
            if a.mask is not np.ma.nomask and a.mask[i, j]:
                continue
            v = float(a[i, j])
            ax.text(j, i, f"{v:.2f}" if v >= 0.005 else "0", ha="center", va="center",
                    fontsize=7, color="white" if v > 0.6 else "black")
        paper = SUN_OPTIMAL_LAYOUT.get(p)
        if paper and paper[0] in E:
            j = E.index(paper[0])
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="black", lw=2))
    ax.set_xticks(range(len(E)))
    ax.set_xticklabels([str(e) for e in E], fontsize=8)
    ax.set_yticks(range(len(P)))
    ax.set_yticklabels([f"P={p}" for p in P], fontsize=8)
    ax.set_xlabel("exponent bits E (M = P - 1 - E); frame: Sun et al.'s table", fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8, label="P(best split)")
    return _close_new(fig)


def compute_optimal_plot(table: pd.DataFrame, max_C: float | None = None,
                         prob: float = q.PROB) -> Figure:
    """Compute-optimal precision P (bits) against the FLOP budget, with its band.

    Shaded past ``max_C``, the largest C = k P N D among the runs: there the answer is an
    extrapolation of the law, not something the runs measured.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`bayesfp.report.quantities.compute_optimal_table`.
    """
    fig, ax = plt.subplots(figsize=(WIDTH * 0.75, 3.8), layout="constrained")
    ax.fill_between(table["C"], table["P_lo"], table["P_hi"], color="tab:purple", alpha=0.25,
                    lw=0, label=f"central {_pct(prob)}")
    ax.plot(table["C"], table["P"], "o-", color="tab:purple", lw=1.8, ms=4, label="median")
    c0, c1 = float(table["C"].min()), float(table["C"].max())
    if max_C is not None and max_C < c1:
        ax.axvspan(max(max_C, c0), c1, **EXTRAPOLATION, label="beyond the runs' compute")
    _log_scale(ax, "x")
    ax.set_xlim(c0, c1)
    ax.set_xlabel("training compute C (FLOPs), C = (6/16) P N D", fontsize=9)
    ax.set_ylabel("compute-optimal precision P (bits)", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.grid(True, color="0.92")
    return _close_new(fig)


# ---------------------------------------------------------------------------------- decision


DECISION_COLUMNS = (("expected_loss", "expected loss"), ("p_best", "P(best)"),
                    ("regret", "expected regret"))


def decision_plot(decision) -> Figure:
    """Bars per candidate of expected loss, probability of being best and expected regret
    (the columns present), from a decision analysis (see
    :func:`bayesfp.report.quantities.as_decision`)."""
    d = q.as_decision(decision)
    cols = [(c, lab) for c, lab in DECISION_COLUMNS if c in d.candidates.columns]
    if not cols:
        cols = [(c, c) for c in d.candidates.select_dtypes("number").columns[:3]]
    if not cols:
        raise BayesfpInputError("decision: candidates have no numeric column to plot")
    fig, axes = plt.subplots(1, len(cols), figsize=(WIDTH, 0.35 * len(d.candidates) + 1.5),
                             squeeze=False, sharey=True, layout="constrained")
    names = list(d.candidates.index)
    y = np.arange(len(names))
    for ax, (c, lab) in zip(axes[0], cols, strict=True):
        v = d.candidates[c].to_numpy(dtype=float)
        if c == "expected_loss":
            # a dot and its interval: a bar would measure the loss from an axis cut off at
            # some arbitrary value
            iv = d.candidates.get("interval")
            if iv is not None and iv.notna().all():
                lo = np.array([float(a[0]) for a in iv])
                hi = np.array([float(a[1]) for a in iv])
                ax.errorbar(v, y, xerr=[v - lo, hi - v], fmt="o", color="tab:gray",
                            ecolor="0.5", capsize=3)
                lab = f"{lab}, HDI {_pct(d.scalars.get('hdi_prob', q.PROB))}"
            else:
                ax.plot(v, y, "o", color="tab:gray")
        else:
            ax.barh(y, v, color="tab:green" if c == "p_best" else "tab:gray")
            ax.set_xlim(left=0)
        ax.set_xlabel(lab, fontsize=9)
        ax.tick_params(labelsize=8)
    axes[0, 0].set_yticks(y)
    axes[0, 0].set_yticklabels(names)
    axes[0, 0].invert_yaxis()
    return _close_new(fig)
