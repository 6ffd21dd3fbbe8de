"""Pareto-smoothed importance sampling (PSIS) of a fit's pointwise log-likelihood, for all
observations at once: leave-one-out ELPD (:func:`loo`, what :func:`bayesfp.bayes.compare.loo`
returns) and the weights and Pareto-smoothed PIT behind the report's LOO-PIT.

The steps and floating-point types are ArviZ's (``psislw``, ``_gpdfit``, ``loo``,
``_pareto_pit_vec``), done on blocks of rows instead of one observation at a time; the numbers
agree with ArviZ's to rounding (``tests/test_report_html.py``).
"""

import numpy as np
import xarray as xr

SAMPLE_DIMS = ("chain", "draw")


def loo(tree: xr.DataTree, k_max: float) -> dict | None:
    """PSIS-LOO of a fit, as ``arviz.loo`` computes it (Pareto-smoothed weights, the relative
    efficiency of the whole posterior) for all observations at once: ``elpd``, ``se``,
    ``p_loo``, ``pareto_k_max``, ``n_bad_k`` and ``bad_runs`` (Pareto k above ``k_max``),
    ``warning`` (ArviZ's flag). The numbers agree with ArviZ's to rounding. ``None`` for a
    log-likelihood with more than one variable or observation dimension."""
    from scipy.special import logsumexp

    ll_group = tree["log_likelihood"]
    names = list(ll_group.data_vars)
    obs_dims = [d for d in ll_group[names[0]].dims if d not in SAMPLE_DIMS] if names else []
    if len(names) != 1 or len(obs_dims) != 1:
        return None
    da = ll_group[names[0]].transpose(obs_dims[0], *SAMPLE_DIMS)
    n_obs, n = da.shape[0], da.shape[1] * da.shape[2]
    ll = np.asarray(da.values).reshape(n_obs, n)
    r_eff = relative_efficiency(tree, n)
    elpd_i, k = np.empty(n_obs), np.empty(n_obs)
    for rows in row_blocks(n_obs, n):
        log_w, k[rows] = psis_log_weights(ll[rows], r_eff)
        elpd_i[rows] = logsumexp(log_w + ll[rows], axis=1)
    # row by row: ArviZ's float32 sums (of a float32 log-likelihood) in the same order
    p_loo_i = np.array([logsumexp(row, b=1 / n) for row in ll]) - elpd_i
    good_k = min(1 - 1 / np.log10(n), 0.7) if n > 1 else 0.7
    runs = da[obs_dims[0]].values
    bad = [str(r) for r, kk in zip(runs, k, strict=True) if kk > k_max]
    return {"elpd": float(np.sum(elpd_i)),
            "se": float(np.sqrt(n_obs * np.var(elpd_i, ddof=1)) if n_obs > 1 else 0.0),
            "p_loo": float(np.sum(p_loo_i)), "pareto_k_max": float(np.max(k)),
            "n_bad_k": len(bad), "bad_runs": bad, "warning": bool(np.any(k > good_k))}


def row_blocks(rows: int, n: int, size: int = 1 << 22):
    """Slices of at most ``size`` bytes of float64 rows of ``n`` draws: the arrays of each
    block are small enough to be reused from the heap (fresh large arrays cost a page fault
    per 4 kB)."""
    step = max(1, size // (8 * n))
    for i in range(0, rows, step):
        yield slice(i, min(i + step, rows))


def relative_efficiency(dt: xr.DataTree, n: int) -> float:
    """Mean ESS of the posterior's variables over the draws (ArviZ's LOO relative efficiency)."""
    post = dt["posterior"].to_dataset()
    if post.sizes["chain"] == 1:
        return 1.0
    import arviz_stats  # noqa: F401  (the azstats accessor)

    ess = post.azstats.ess(method="mean")
    return float(np.hstack([ess[v].values.flatten() for v in ess.data_vars]).mean() / n)


def _tail_size(n: int, r_eff: float) -> int:
    """Draws in the tail that PSIS fits (ArviZ's rule)."""
    return int(np.floor(3 * (n / r_eff) ** 0.5) if n * r_eff > 225 else np.floor(n / 5))


def _gpd_fit(x: np.ndarray, weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Shape and scale of a generalized Pareto distribution fitted to each row of ``x`` (sorted
    along the row): Zhang and Stephens' empirical Bayes estimate with the weakly informative
    prior on the shape of Vehtari et al. (2024), ArviZ's ``_gpdfit`` row by row."""
    from scipy.special import logsumexp

    prior_bs, prior_k = 3, 10
    n = x.shape[-1]
    m_est = 30 + int(n**0.5)
    if weights is not None:
        weights = weights / weights.sum(axis=-1, keepdims=True) * n
    xstar = x[:, int((n / 4 + 0.5) - 1)]
    b = 1 - np.sqrt(m_est / (np.arange(1, m_est + 1, dtype=float) - 0.5))
    with np.errstate(all="ignore"):
        b = b[None, :] / (prior_bs * xstar[:, None])
        b = b + 1 / x[:, -1:]
        log1p = np.log1p(-b[:, :, None] * x[:, None, :])
        k = ((log1p @ weights[:, :, None])[..., 0] / n if weights is not None
             else np.mean(log1p, axis=-1))
        len_scale = n * (np.log(-b / k) - k - 1)
        w = np.exp(len_scale - logsumexp(len_scale, axis=-1, keepdims=True))
        w = np.where(w >= 10 * np.finfo(float).eps, w, 0.0)
        w /= w.sum(axis=-1, keepdims=True)
        b_post = np.sum(b * w, axis=-1)
        t = np.log1p(-b_post[:, None] * x)
        kappa = np.sum(weights * t, axis=-1) / n if weights is not None else np.mean(t, axis=-1)
        sigma = -kappa / b_post
        kappa = (n * kappa + prior_k * 0.5) / (n + prior_k)
    bad = xstar <= x[:, 0]  # far from a generalized Pareto distribution
    kappa = np.where(bad, np.nan, np.where(np.isnan(kappa), np.inf, kappa))
    sigma = np.where(bad, np.nan, sigma)
    return kappa, sigma


def psis_log_weights(log_lik: np.ndarray, r_eff: float) -> tuple[np.ndarray, np.ndarray]:
    """Pareto-smoothed, normalised log importance weights of leaving out each row's
    observation (one row per observation, the draws along it) and the Pareto k of each row
    (ArviZ's ``psislw``)."""
    from scipy.special import logsumexp

    rows, n = log_lik.shape
    tail = _tail_size(n, r_eff)
    if tail < 5:
        raise ValueError("n_draws_tail must be at least 5")
    ary = -log_lik
    ary = ary - np.max(ary, axis=1, keepdims=True)
    # a full sort, as ArviZ's: draws of equal weight then take the same places, and the
    # float32 sums below add the same numbers in the same order
    order = np.argsort(ary, axis=1)
    tail_idx = order[:, n - tail:]
    draws_tail = np.take_along_axis(ary, tail_idx, axis=1)
    cutoff = np.take_along_axis(ary, order[:, n - tail - 1:n - tail], axis=1)
    max_tail = np.max(draws_tail, axis=1, keepdims=True)
    if np.any(np.abs(max_tail[:, 0] - np.min(draws_tail, axis=1)) < np.finfo(float).tiny):
        raise ValueError("All tail values are the same")
    draws_tail, cutoff = np.exp(draws_tail), np.exp(cutoff)
    khat, sigma = _gpd_fit(draws_tail - cutoff)
    p = np.arange(0.5, tail) / tail
    k, s = khat[:, None], sigma[:, None]
    with np.errstate(all="ignore"):
        q = np.where(k == 0, cutoff - s * np.log1p(-p),
                     cutoff + s * np.expm1(-k * np.log1p(-p)) / k)
        smoothed = np.log(np.where(s <= 0, np.nan, q))
    smoothed = np.where(smoothed > max_tail, max_tail, smoothed)
    rows_ok = np.isfinite(khat)
    out = ary.copy()
    np.put_along_axis(out, tail_idx[rows_ok], smoothed[rows_ok].astype(out.dtype), axis=1)
    out -= logsumexp(out, axis=1, keepdims=True)
    return out.astype(float), khat  # ArviZ returns the weights in float64


def _gpd_cdf(q, mu, sigma, k):
    """Generalized Pareto CDF (ArviZ's ``pgeneralized_pareto``), elementwise."""
    with np.errstate(all="ignore"):
        z = (q - mu) / sigma
        p = np.where(np.abs(k) < 1e-15, -np.expm1(-z),
                     -np.expm1(np.log1p(np.maximum(k * z, -1)) / -k))
    p = np.clip(p, 0, 1)
    return np.where(np.isnan(sigma) | (sigma <= 0), np.nan, p)


def pareto_pit(draws: np.ndarray, y: np.ndarray, lw: np.ndarray) -> np.ndarray:
    """Pareto-smoothed PIT of each observation ``y[i]`` among the weighted draws ``draws[i]``
    (normalised log weights ``lw[i]``; ArviZ's ``_pareto_pit_vec`` for draws without ties)."""
    from scipy.special import logsumexp

    rows, n = draws.shape
    with np.errstate(divide="ignore"):
        raw = np.exp(logsumexp(np.where(draws < y[:, None], lw, -np.inf), axis=1))
    tail = _tail_size(n, 1.0)
    gpd_ok = tail >= 5
    tail = min(tail, n // 2) if gpd_ok else tail
    gpd_ok = gpd_ok and tail < n
    min_tail_prob = 1.0 / n / 1e4
    if not gpd_ok:
        return np.clip(raw, min_tail_prob, 1.0 - min_tail_prob)
    eps = np.finfo(float).eps

    def side(sign, todo):
        """For rows ``todo``: whether the GPD fitted to the upper tail of ``sign * draws``
        replaces the PIT (the observation lies in that tail) and the tail probability past it."""
        order = np.argsort(sign * draws[todo], axis=1)
        srt = sign * np.take_along_axis(draws[todo], order, axis=1)
        lws = np.take_along_axis(lw[todo], order, axis=1)
        t, t_lw = srt[:, n - tail:], lws[:, n - tail:]
        cut = srt[:, n - tail - 1]
        cut = np.where(cut == t[:, 0], cut - eps, cut)
        inside = ~(t == t[:, :1]).all(axis=1) & (sign * y[todo] > cut)
        replaced, past = np.zeros(len(todo), dtype=bool), np.full(len(todo), np.nan)
        if inside.any():
            khat, sigma = _gpd_fit((t - cut[:, None])[inside], weights=np.exp(t_lw[inside]))
            prop = np.exp(logsumexp(t_lw[inside], axis=1))
            cdf = _gpd_cdf(sign * y[todo][inside], cut[inside], sigma, khat)
            replaced[inside] = np.isfinite(khat) & ~np.isnan(sigma)
            past[inside] = prop * (1.0 - cdf)
        return replaced, past

    rows_right = np.flatnonzero(np.isfinite(draws).all(axis=1))
    done, past = side(1.0, rows_right)
    raw[rows_right[done]] = 1.0 - past[done]
    rows_left = rows_right[~done]
    done, past = side(-1.0, rows_left)
    raw[rows_left[done]] = past[done]
    return np.clip(raw, min_tail_prob, 1.0 - min_tail_prob)
