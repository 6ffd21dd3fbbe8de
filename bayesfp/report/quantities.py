"""The numbers a report shows, computed from a fit with :mod:`bayesfp.bayes` (no plotting, no I/O).

Every posterior quantity comes from the bayes package (``coefficients``, ``d_crit``,
``split_probabilities``, ``compute_optimal_precision``, ``predict_loss``, ``loo``) or from the
law functions applied to posterior draws. What is added here: thinning a fit for plots, prior
draws of the law coefficients (the stored priors pushed through the model's parametrisation),
tidy tables of the predictive check, and the normalisation of a decision analysis.
"""

import dataclasses
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from bayesfp.bayes import derived as dv
from bayesfp.bayes import psis
from bayesfp.bayes.io import fit_info, fit_table
from bayesfp.bayes.priors import priors_from_json
from bayesfp.errors import BayesfpInputError
from bayesfp.laws import derived as law_derived
from bayesfp.laws.inputs import law_inputs
from bayesfp.laws.published import PUBLISHED
from bayesfp.laws.registry import get_law

SAMPLE_DIMS = ("chain", "draw")
# Groups of prior draws, whose draws are not the posterior's.
PRIOR_GROUPS = ("prior", "prior_predictive")
# Level of every interval in the report.
PROB = 0.9
# Posterior draws kept (over all chains) for plots and per-draw optimisations.
PLOT_DRAWS = 1000
# Draws per compute budget for the compute-optimal search (nested golden sections per draw),
# and the iterations of each golden section: 40 reach the float resolution of the loss (N and
# P within about 1e-6 of 56 iterations' answer) at half the cost.
OPTIMAL_DRAWS = 400
OPTIMAL_ITERS = 40
# Compute budgets of the compute-optimal precision figure (FLOPs): every second decade, since
# each budget costs a nested golden-section search per draw.
BUDGETS = tuple(10.0 ** np.arange(19, 32, 2))
# Total bits of the split figure (the rows of the paper's layout table).
SPLIT_BITS = (4, 5, 6, 7, 8, 9, 10, 11, 12, 16)
# Operands and block size of the hypothetical runs the curves are drawn for.
CURVE_OPERANDS = "w+w_bwd+x_bwd"
CURVE_BLOCK = 128
# Bounds of the compute-optimal search over P (bits): a draw whose optimum sits on one is
# clipped, not an answer.
P_RANGE = (2.0, 64.0)
# How far past the runs the report's tables and figures go by default: N up to this many times
# the largest fitted N, compute up to this many times the largest run's compute.
N_FACTOR = 10.0
C_FACTOR = 100.0
# Cost model of Sun et al.: C = k P N D.
COST_K = 6.0 / 16.0
SUN_LAWS = ("sun", "sun_sep")
PRECISION_LAWS = ("sun", "sun_sep", "kumar", "kumar_ptq")


def thin(tree: xr.DataTree, max_draws: int = PLOT_DRAWS) -> xr.DataTree:
    """The fit with every k-th draw of each chain, at most ``max_draws`` draws in all.

    Groups along the posterior's ``chain, draw`` (posterior, sample_stats, log_likelihood,
    posterior_predictive) are thinned alike; the others (``prior`` and ``prior_predictive``
    have draws of their own) and the attrs are kept.
    """
    post = tree["posterior"]
    n = post.sizes["chain"] * post.sizes["draw"]
    step = max(1, int(np.ceil(n / max_draws)))
    if step == 1:
        return tree
    groups = {}
    for name, node in tree.children.items():
        ds = node.to_dataset()
        if "draw" in ds.dims and name not in PRIOR_GROUPS:
            ds = ds.isel(draw=slice(None, None, step))
        groups[name] = ds
    out = xr.DataTree.from_dict(groups)
    out.attrs = dict(tree.attrs)
    return out


def data_summary(table: pd.DataFrame) -> dict:
    """Counts and ranges of a run table (``in_fit`` marks the fitted runs when present)."""
    status = table["status"].astype(str) if "status" in table else pd.Series("ok", table.index)
    in_fit = (table["in_fit"].astype(bool) if "in_fit" in table else status == "ok")
    fitted = table[in_fit.to_numpy()]
    fmts = fitted.assign(_f=[dv.format_label(e, m) for e, m in zip(fitted["E"], fitted["M"],
                                                                    strict=True)])
    quant = fmts["operands"].astype(str) != "none"
    return {
        "runs": len(table), "fitted": int(in_fit.sum()),
        "status": {str(k): int(v) for k, v in status.value_counts().items()},
        "N": (float(fitted["N"].min()), float(fitted["N"].max())),
        "D": (float(fitted["D"].min()), float(fitted["D"].max())),
        "n_N": int(fitted["N"].nunique()), "n_D": int(fitted["D"].nunique()),
        "formats": sorted(set(fmts.loc[quant, "_f"]), key=lambda s: (len(s), s)),
        "baselines": int((~quant).sum()),
        "blocks": sorted(set(fmts.loc[quant, "B"].astype(str)),
                         key=lambda s: (not s.isdigit(), int(s) if s.isdigit() else 0, s)),
        "operands": sorted(set(fmts.loc[quant, "operands"].astype(str))),
        "max_C": float(np.max(COST_K * (1.0 + fitted["E"] + fitted["M"]).where(quant, 16.0)
                              * fitted["N"] * fitted["D"])),
        "min_C": float(np.min(COST_K * (1.0 + fitted["E"] + fitted["M"]).where(quant, 16.0)
                              * fitted["N"] * fitted["D"])),
    }


def priors_table(tree: xr.DataTree) -> pd.DataFrame:
    """The stored priors of the sampled variables (distribution, mu, sigma)."""
    rows = [{"variable": k, "distribution": p.dist, "mu": p.mu, "sigma": p.sigma}
            for k, p in priors_from_json(fit_info(tree)["priors"]).items()]
    return pd.DataFrame(rows).set_index("variable")


def _model(tree: xr.DataTree):
    """The fit's law model rebuilt on its own runs (for its parametrisation; nothing compiled)."""
    from bayesfp.bayes.models import model_for

    info = fit_info(tree)
    kw = {"centred": bool(info["centred"])} if info.get("centred") is not None else {}
    m = model_for(info["law"], fit_table(tree), pool_by=info.get("pool_by"),
                  pooling=info.get("pooling") or "partial", robust=info.get("robust", False),
                  sigma_by=info.get("sigma_by"), inputs_kw=info.get("inputs_kw") or {}, **kw)
    m.centres = dict(info["centres"])
    m.fixed = dict(info["fixed"])
    return m


def prior_draws(tree: xr.DataTree, n: int = 4000, seed: int = 0) -> xr.Dataset:
    """Draws from the prior of every sampled variable and every law coefficient.

    Sampled variables are drawn from the priors stored in the fit; the law coefficients are
    those draws pushed through the model's parametrisation (the prior they induce).

    Returns
    -------
    xarray.Dataset
        Variables named as in the posterior, dims ``chain`` (1), ``draw`` (n).
    """
    info = fit_info(tree)
    rng = np.random.default_rng(seed)
    priors = priors_from_json(info["priors"])
    post = tree["posterior"]
    s = {}
    for name, p in priors.items():
        if name == "tau":
            for c in info.get("pooled", []):
                if f"tau_{c}" in post:
                    s[f"tau_{c}"] = p.sample(rng, n)
        elif name in post:
            s[name] = p.sample(rng, n)
    law_vars = {}
    sampled_names = [k for k in s if k in priors]
    if sampled_names:
        m = _model(tree)
        if all(k in s for k in m.sampled):
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                law_vars = m.law_params({k: s[k] for k in m.sampled})
    out = {k: (SAMPLE_DIMS, np.asarray(v, dtype=float)[None, :]) for k, v in s.items()}
    for k, v in law_vars.items():
        if k in post and k not in out and np.ndim(v) == 1:
            out[k] = (SAMPLE_DIMS, np.asarray(v, dtype=float)[None, :])
    return xr.Dataset(out)


def coefficient_names(tree: xr.DataTree) -> list[str]:
    """The law coefficients of a fit as the posterior stores them (``log_n``, ``alpha``, ...)."""
    return [k for k, v in dv.coefficients(tree).items() if isinstance(v, xr.DataArray)]


def published_values(law: str) -> dict:
    """The published constants of a law, keyed like the posterior (``log_`` for positive ones)."""
    law_obj = get_law(law)
    pub = PUBLISHED.get(law_obj.name, {})
    out = {}
    for p in law_obj.params:
        if p.name in pub:
            v = float(pub[p.name])
            out[("log_" + p.name) if p.positive else p.name] = np.log(v) if p.positive else v
    return out


def coefficient_table(tree: xr.DataTree, prior: xr.Dataset | None = None,
                      prob: float = PROB) -> pd.DataFrame:
    """Posterior of each law coefficient next to its prior and the published constant.

    Returns
    -------
    pandas.DataFrame
        Index: coefficient; columns ``mean``, ``sd``, ``lo``, ``hi`` (HDI at ``prob``),
        ``published``, ``prior_lo``, ``prior_hi`` (central interval of the induced prior) and
        ``width_ratio``: posterior over prior interval width (near 1: the runs did not inform it).
    """
    prior = prior_draws(tree) if prior is None else prior
    pub = published_values(fit_info(tree)["law"])
    rows = []
    for name, da in dv.coefficients(tree).items():
        if not isinstance(da, xr.DataArray):
            continue
        h = np.asarray(dv.hdi(da, prob).values, dtype=float)
        row = {"coefficient": name, "mean": float(da.mean()), "sd": float(da.std()),
               "lo": h[0], "hi": h[1], "published": pub.get(name, np.nan),
               "prior_lo": np.nan, "prior_hi": np.nan, "width_ratio": np.nan}
        if name in prior:
            q = (1.0 - prob) / 2.0
            pv = np.asarray(prior[name].values, dtype=float).ravel()
            pv = pv[np.isfinite(pv)]
            if pv.size:
                plo, phi = np.quantile(pv, [q, 1.0 - q])
                dlo, dhi = np.quantile(np.asarray(da.values).ravel(), [q, 1.0 - q])
                row.update(prior_lo=plo, prior_hi=phi,
                           width_ratio=(dhi - dlo) / (phi - plo) if phi > plo else np.nan)
        rows.append(row)
    return pd.DataFrame(rows).set_index("coefficient")


def sampled_names(tree: xr.DataTree) -> list[str]:
    """Sampled (free) scalar variables of the posterior: those with a stored prior."""
    priors = priors_from_json(fit_info(tree)["priors"])
    post = tree["posterior"]
    out = [k for k in priors if k in post and post[k].ndim == 2]
    out += [k for k in post.data_vars if str(k).startswith("tau_") and post[k].ndim == 2
            and k not in out]
    return out


def predictive_table(tree: xr.DataTree, runs: pd.DataFrame | None = None, prob: float = PROB,
                     seed: int = 0, pred: xr.DataArray | None = None,
                     mean: xr.DataArray | None = None) -> pd.DataFrame:
    """Observed against posterior predictive loss, one row per run.

    Parameters
    ----------
    tree : xarray.DataTree
        A (thinned) fit.
    runs : pandas.DataFrame, optional
        Runs with status ``ok`` to predict (default: the fitted runs).
    pred, mean : xarray.DataArray, optional
        The predictive draws of these runs' loss (noise included) and of the law's mean loss,
        dims ``chain, draw, run``, when already computed (as
        :func:`bayesfp.bayes.derived.predict_loss` with ``noise=True`` and ``noise=False``).

    Returns
    -------
    pandas.DataFrame
        The run columns plus ``observed``, ``pred_median``, ``pred_lo``, ``pred_hi`` (central
        interval at ``prob`` of a new run's loss, noise included), ``law_median`` (median of the
        law's mean loss), ``residual`` (log observed minus log law median) and ``z`` (residual
        over the posterior median noise sd), ``inside`` (observed within the interval).
    """
    runs = fit_table(tree, fitted_only=True) if runs is None else runs.reset_index(drop=True)
    if pred is None:
        pred = dv.predict_loss(tree, runs, noise=True, seed=seed)
    if mean is None:
        mean = dv.predict_loss(tree, runs, noise=False, seed=seed)
    lo, hi = dv.central_interval(pred, prob)
    out = runs.copy()
    out["format"] = [("BF16" if str(o) == "none" else dv.format_label(e, m))
                     for e, m, o in zip(runs["E"], runs["M"], runs["operands"], strict=True)]
    out["observed"] = runs["loss"].to_numpy(dtype=float)
    out["pred_median"] = np.median(_run_draws(pred), axis=1)
    out["pred_lo"], out["pred_hi"] = lo.values, hi.values
    out["law_median"] = np.median(_run_draws(mean), axis=1)
    out["residual"] = np.log(out["observed"]) - np.log(out["law_median"])
    sigma = float(np.median(tree["posterior"]["sigma"].values))
    out["z"] = out["residual"] / sigma
    out["inside"] = (out["observed"] >= out["pred_lo"]) & (out["observed"] <= out["pred_hi"])
    return out


def _run_draws(da: xr.DataArray) -> np.ndarray:
    """Draws of a ``chain, draw, run`` array as one row per run (chains one after another)."""
    return np.asarray(da.transpose("run", *SAMPLE_DIMS).values, dtype=float).reshape(
        da.sizes["run"], -1)


def loo_pit_tree(tree: xr.DataTree, seed: int = 0,
                 pred: xr.DataArray | None = None) -> xr.DataTree:
    """A tree for ``arviz.plot_loo_pit``: posterior predictive log-loss of the fitted runs.

    The predictive draws are drawn with :func:`bayesfp.bayes.derived.predict_loss` on the same
    draws as the log-likelihood (or given as ``pred``, loss in nats/token, dims ``chain, draw,
    run``).
    """
    if pred is None:
        pred = dv.predict_loss(tree, fit_table(tree, fitted_only=True), noise=True, seed=seed)
    run = tree["observed_data"]["run"].values
    pp = xr.Dataset({"log_loss": (("chain", "draw", "run"), np.log(pred.values))},
                    coords={"chain": pred["chain"].values, "draw": pred["draw"].values,
                            "run": run})
    return xr.DataTree.from_dict({
        "posterior": tree["posterior"].to_dataset(), "posterior_predictive": pp,
        "log_likelihood": tree["log_likelihood"].to_dataset(),
        "observed_data": tree["observed_data"].to_dataset()})


def loo_pit_values(tree: xr.DataTree, seed: int = 0,
                   pred: xr.DataArray | None = None) -> xr.Dataset:
    """LOO-PIT of the fitted runs' log-loss: Pareto-smoothed PIT with PSIS-LOO weights, as
    ``arviz_stats.loo_pit(loo_pit_tree(tree), pareto_pit=True)`` computes it (what
    ``arviz.plot_loo_pit`` draws), for all runs at once instead of one run at a time.

    The steps and the floating-point types are ArviZ's (PSIS log weights of the log-likelihood
    with the relative efficiency of the posterior, then the weighted PIT with its tails
    replaced by a fitted generalized Pareto distribution); the values agree with ArviZ's to
    rounding (``tests/test_report_html.py`` checks it). Runs whose predictive draws tie with
    the observed value (ArviZ breaks such ties at random) are left to ArviZ. ``seed`` and
    ``pred`` as for :func:`loo_pit_tree`.

    Returns
    -------
    xarray.Dataset
        ``log_loss`` with dim ``run``, PIT values in (0, 1).
    """
    dt = loo_pit_tree(tree, seed=seed, pred=pred)
    ll = dt["log_likelihood"]["log_loss"].transpose("run", *SAMPLE_DIMS)
    pp = dt["posterior_predictive"]["log_loss"].transpose("run", *SAMPLE_DIMS)
    obs = np.asarray(dt["observed_data"]["log_loss"].values, dtype=float)
    n_runs = obs.size
    n = ll.sizes["chain"] * ll.sizes["draw"]
    ll = np.asarray(ll.values).reshape(n_runs, n)
    draws = np.asarray(pp.values, dtype=float).reshape(n_runs, n)
    r_eff = psis.relative_efficiency(dt, n)
    pit = np.empty(n_runs)
    for rows in psis.row_blocks(n_runs, n):
        log_w = psis.psis_log_weights(ll[rows], r_eff)[0]
        pit[rows] = psis.pareto_pit(draws[rows], obs[rows], log_w)
    ties = (draws == obs[:, None]).any(axis=1)
    if ties.any():
        from arviz_stats.loo import loo_pit

        sub = dt.isel(run=np.flatnonzero(ties))
        pit[ties] = loo_pit(sub, pareto_pit=True)["log_loss"].values
    run = dt["observed_data"]["run"].values
    return xr.Dataset({"log_loss": (("run",), pit)}, coords={"run": run})


def _curve_runs(N, D, formats, block=CURVE_BLOCK) -> pd.DataFrame:
    rows = []
    for e, m in formats:
        for n in np.atleast_1d(N):
            for d in np.atleast_1d(D):
                rows.append({"N": float(n), "D": float(d), "E": int(e), "M": int(m),
                             "B": str(block), "operands": CURVE_OPERANDS})
    return pd.DataFrame(rows)


def law_loss_draws(tree: xr.DataTree, runs: pd.DataFrame) -> np.ndarray:
    """The law's mean loss for hypothetical runs, per draw: shape (draws, runs).

    Uses the global precision coefficients of a pooled fit; a structured fit's own
    prediction of the law (its format offsets, block-size power and the group of the runs'
    operands; no cell, seed or noise terms).
    """
    info = fit_info(tree)
    if info.get("structure"):
        from bayesfp.bayes.terms import predict_log_loss

        return np.exp(predict_log_loss(tree["posterior"].to_dataset(), info,
                                       runs.reset_index(drop=True), noise=False,
                                       structure=False))
    law = get_law(info["law"])
    x = law_inputs(runs, **(info.get("inputs_kw") or {}))
    loss = law.loss(dv.coefficients(tree), {k: x[k] for k in law.inputs})
    return np.asarray(loss.transpose(*SAMPLE_DIMS, "run").values, dtype=float).reshape(
        -1, len(runs))


def loss_curves(tree: xr.DataTree, N: float, D: Sequence[float],
                formats: Sequence = dv.DEFAULT_FORMATS, prob: float = PROB) -> pd.DataFrame:
    """Median and central interval of the law's loss against D at fixed N, per format.

    Formats are quantized with block size 128 on the paper's operands; the row ``format ==
    "unquantized"`` is the same law without the precision penalty.
    """
    D = np.asarray(D, dtype=float)
    runs = _curve_runs(N, D, formats)
    base = pd.DataFrame({"N": float(N), "D": D, "E": 8, "M": 7, "B": "none",
                         "operands": "none"})
    allruns = pd.concat([runs, base], ignore_index=True)
    draws = law_loss_draws(tree, allruns)
    q = (1.0 - prob) / 2.0
    labels = [dv.format_label(e, m) for e, m in formats for _ in D] + ["unquantized"] * len(D)
    return pd.DataFrame({"format": labels, "N": float(N), "D": allruns["D"].to_numpy(),
                         "median": np.median(draws, axis=0),
                         "lo": np.quantile(draws, q, axis=0),
                         "hi": np.quantile(draws, 1.0 - q, axis=0)})


def d_crit_table(tree: xr.DataTree, N: Sequence[float], formats: Sequence = dv.DEFAULT_FORMATS,
                 prob: float = PROB, group: str | None = None) -> pd.DataFrame:
    """D_crit (tokens, B = 128) per N and format: median and HDI, long format (``group``: a
    pooled fit's group whose precision sensitivity to use)."""
    dc = dv.d_crit(tree, N, formats, log2B=float(np.log2(CURVE_BLOCK)), group=group)
    # HDI of log D_crit: the posterior spans decades.
    h = np.exp(dv.hdi(np.log(dc), prob))
    med = dc.median(SAMPLE_DIMS)
    rows = []
    for n in dc["N"].values:
        for f in dc["format"].values:
            rows.append({"N": float(n), "format": str(f),
                         "median": float(med.sel(N=n, format=f)),
                         "lo": float(h.sel(N=n, format=f, ci_bound="lower")),
                         "hi": float(h.sel(N=n, format=f, ci_bound="upper"))})
    return pd.DataFrame(rows)


def split_table(tree: xr.DataTree, bits: Sequence[int] = SPLIT_BITS,
                group: str | None = None) -> tuple[xr.DataArray, pd.DataFrame]:
    """Probability of each (E, M) split being best per P, and the table against the paper's.

    Returns
    -------
    probs : xarray.DataArray
        Dims ``P, E`` (from :func:`bayesfp.bayes.derived.split_probabilities`).
    table : pandas.DataFrame
        Index P; ``best`` (most probable split), ``p_best``, ``paper`` (Sun et al.'s table),
        ``p_paper`` (posterior probability of the paper's split).
    """
    from bayesfp.laws.published import SUN_OPTIMAL_LAYOUT

    probs = dv.split_probabilities(tree, P=tuple(bits), group=group)
    best = dv.best_splits(probs)
    rows = []
    for p in probs["P"].values:
        p = int(p)
        paper = SUN_OPTIMAL_LAYOUT.get(p)
        pp = (float(probs.sel(P=p, E=paper[0])) if paper and paper[0] in probs["E"].values
              else np.nan)
        rows.append({"P": p, "best": best.loc[p, "format"],
                     "p_best": float(best.loc[p, "probability"]),
                     "paper": dv.format_label(*paper) if paper else "",
                     "p_paper": pp})
    return probs, pd.DataFrame(rows).set_index("P")


def compute_optimal_table(tree: xr.DataTree, budgets: Sequence[float] = BUDGETS,
                          max_draws: int = OPTIMAL_DRAWS, prob: float = PROB,
                          group: str | None = None) -> pd.DataFrame:
    """Compute-optimal precision per FLOP budget: median and central interval of P, N, D.

    Each draw (at most ``max_draws``) is minimised with :func:`bayesfp.laws.compute_optimal`
    at every budget. The search costs about the same for one draw as for thousands, so all
    budgets go through one search: the draws are repeated once per budget and the budget is
    carried by the cost factor, ``C = (k / C_b) P N D`` at C = 1, which gives the same D =
    C_b / (k P N) as budget C_b.
    """
    info = fit_info(tree)
    post = tree["posterior"]
    n = post.sizes["chain"] * post.sizes["draw"]
    step = max(1, int(np.ceil(n / max_draws)))
    coefs = {k: (np.asarray(v.isel(draw=slice(None, None, step)).values, dtype=float).ravel()
                 if isinstance(v, xr.DataArray) else v)
             for k, v in dv.coefficients(tree, group).items()}
    s = next(len(v) for v in coefs.values() if isinstance(v, np.ndarray))
    C = np.asarray(budgets, dtype=float)
    rep = {k: (np.tile(v, len(C)) if isinstance(v, np.ndarray) else v) for k, v in coefs.items()}
    k_eff = np.repeat(COST_K / C, s)
    res = law_derived.compute_optimal(rep, 1.0, info["law"], k=k_eff,
                                      log2B=float(np.log2(CURVE_BLOCK)), P_range=P_RANGE,
                                      iters=OPTIMAL_ITERS)
    q = (1.0 - prob) / 2.0
    rows = []
    for i, c in enumerate(C):
        row = {"C": float(c)}
        for name in ("P", "E", "M", "N", "D", "loss"):
            if name not in res:
                continue
            v = np.asarray(res[name], dtype=float).reshape(len(C), s)[i]
            v = v[np.isfinite(v)]
            row[name] = float(np.median(v))
            row[f"{name}_lo"], row[f"{name}_hi"] = np.quantile(v, [q, 1.0 - q])
        if "P" in res:
            p = np.asarray(res["P"], dtype=float).reshape(len(C), s)[i]
            row["P_clipped"] = float(np.mean((p <= P_RANGE[0] + 1e-3) | (p >= P_RANGE[1] - 1e-3)))
        rows.append(row)
    return pd.DataFrame(rows)


def budgets_for(min_C: float, max_C: float, factor: float = 100.0, n: int = 8) -> np.ndarray:
    """Compute budgets (FLOPs) from the runs' smallest to ``factor`` x their largest compute,
    ``n`` of them evenly spaced in log C."""
    return np.logspace(np.log10(min_C), np.log10(max_C * factor), n)


@dataclasses.dataclass
class Decision:
    """A decision analysis in the form the report renders.

    Attributes
    ----------
    candidates : pandas.DataFrame
        One row per candidate (index: its name), with any of the columns ``expected_loss``,
        ``p_best``, ``regret`` (expected regret) and more.
    scalars : dict
        Single numbers such as ``evpi`` (expected value of perfect information).
    next_runs : pandas.DataFrame or None
        Ranking of candidate next runs (e.g. by expected value of the information they give).
    title : str
    choice : str
        The recommended candidate, if the analysis names one.
    situation : dict
        What was decided under (budget, N, D, cost model), as given.
    notes : list of str
    extra : dict
        Everything else that is not a number (``runner_up``, ``fit``, ``inputs``, ``command``).
    """

    candidates: pd.DataFrame
    scalars: dict
    next_runs: pd.DataFrame | None = None
    title: str = "Decision analysis"
    choice: str = ""
    situation: dict = dataclasses.field(default_factory=dict)
    notes: list = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)


def as_decision(decision) -> Decision:
    """Normalise a decision analysis (a mapping, a dataclass or an object) to :class:`Decision`.

    It must have ``candidates`` (a DataFrame or a list of records with a ``candidate`` or
    ``format`` column, or a mapping name -> record); it may have ``evpi`` and other numbers,
    ``next_runs``, ``title``, ``choice``, ``situation`` (a mapping) and ``notes``: the dict of
    :func:`bayesfp.decide.decision_for_report` (and the JSON ``bayesfp decide`` writes) has
    this form.
    """
    if isinstance(decision, Decision):
        return decision
    if dataclasses.is_dataclass(decision) and not isinstance(decision, type):
        d = dataclasses.asdict(decision)
    elif isinstance(decision, Mapping):
        d = dict(decision)
    elif hasattr(decision, "to_dict") and callable(decision.to_dict):
        d = dict(decision.to_dict())
    else:
        d = {k: v for k, v in vars(decision).items() if not k.startswith("_")}
    if "candidates" not in d:
        raise BayesfpInputError("decision: needs 'candidates' (one row per candidate format)")
    cands = _frame(d.pop("candidates"), "candidates")
    nxt = d.pop("next_runs", None)
    nxt = None if nxt is None else _frame(nxt, "next_runs")
    title = str(d.pop("title", "Decision analysis"))
    choice = str(d.pop("choice", "") or "")
    situation = dict(d.pop("situation", None) or {})
    notes = [str(n) for n in (d.pop("notes", None) or [])]
    scalars = {k: float(v) for k, v in d.items() if isinstance(v, (int, float, np.number))
               and not isinstance(v, bool)}
    extra = {k: v for k, v in d.items() if k not in scalars}
    return Decision(cands, scalars, nxt, title, choice, situation, notes, extra)


def _frame(obj, what: str) -> pd.DataFrame:
    if isinstance(obj, pd.DataFrame):
        df = obj.copy()
    elif isinstance(obj, Mapping):
        df = pd.DataFrame.from_dict(dict(obj), orient="index")
    else:
        df = pd.DataFrame(list(obj))
    if df.empty:
        raise BayesfpInputError(f"decision: {what} is empty")
    for key in ("candidate", "run", "name", "format"):
        if key in df.columns:
            df = df.set_index(key)
            break
    df.index = df.index.astype(str)
    return df
