"""The structure terms of :mod:`bayesfp.bayes.structured` on NumPy draws: prediction from a fit.

Everything here reads only a fit's posterior (an ``xarray.Dataset`` with dims ``chain, draw``)
and its configuration (the JSON of ``attrs["bayesfp"]``), so predictions need no model object:
:func:`predict_log_loss` is the posterior predictive log-loss of any runs under a structured fit,
used by :meth:`bayesfp.bayes.structured.StructuredMixin.predict` and
:func:`bayesfp.bayes.derived.predict_loss`.

For runs in a cell (N, D), a seed of a cell, or an E / M level the fit has seen, the fitted
effect is used; for an unseen one a fresh effect is drawn from the fitted population (one draw
per unseen key, shared by its runs). The Brownian discrepancy is exact at fitted levels, a
Brownian bridge between them and the edge value plus Normal(0, tau^2 * distance) beyond them.
"""

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayesfp.bayes.likelihood import standard_noise
from bayesfp.bayes.priors import NO_POOLING_SD
from bayesfp.errors import BayesfpInputError
from bayesfp.laws.inputs import law_inputs
from bayesfp.laws.registry import get_law

# Law coefficients stored in a fit's posterior, by the names the law functions take.
COEFFICIENT_NAMES = ("eps", "alpha", "beta", "log_n", "log_d", "delta", "nu", "log_gamma",
                     "alpha_q", "beta_q", "log_gamma_w", "log_gamma_a", "log_gamma_kv")


def cell_keys(df: pd.DataFrame) -> np.ndarray:
    """One string per run naming its (N, D) cell."""
    return (df["N"].astype(float).map("{:.9g}".format) + "|"
            + df["D"].astype(float).map("{:.9g}".format)).to_numpy()


def seed_keys(df: pd.DataFrame) -> np.ndarray:
    """One string per run naming its (N, D, seed)."""
    seed = df["seed"].astype(str) if "seed" in df else pd.Series("0", index=df.index)
    return cell_keys(df) + "|" + seed.to_numpy()


def cell_log_d(cells) -> np.ndarray:
    """log D of each cell key (shape (cell,))."""
    return np.array([np.log(float(c.split("|")[1])) for c in cells])


def index_of(values, levels) -> np.ndarray:
    """Position of each value in ``levels``, -1 where absent (int, shape (run,))."""
    lookup = {v: i for i, v in enumerate(levels)}
    return np.array([lookup.get(v, -1) for v in values], dtype=int)


def draws_of(post, name: str) -> np.ndarray:
    """A posterior variable as an array of shape (chain * draw, *other dims)."""
    v = post[name]
    extra = [d for d in v.dims if d not in ("chain", "draw")]
    a = np.asarray(v.transpose("chain", "draw", *extra).values, dtype=float)
    return a.reshape((-1,) + a.shape[2:])


def bm_walk(levels, z: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Brownian motion at sorted levels from standard normal increments ``z`` (S, levels - 1)
    and rates ``tau`` (S,), centred to mean zero over the levels: shape (S, levels)."""
    gaps = np.sqrt(np.diff(np.asarray(levels, dtype=float)))
    inc = tau[:, None] * z * gaps
    walk = np.concatenate([np.zeros((inc.shape[0], 1)), np.cumsum(inc, -1)], -1)
    return walk - walk.mean(-1, keepdims=True)


def bm_design(levels) -> np.ndarray:
    """The linear map from ``tau * z`` (levels - 1) to the centred Brownian motion at the
    levels (:func:`bm_walk`), shape (levels, levels - 1)."""
    gaps = np.sqrt(np.diff(np.asarray(levels, dtype=float)))
    L = len(gaps) + 1
    cum = np.tril(np.ones((L, L - 1)), -1) * gaps[None, :]
    return cum - cum.mean(0, keepdims=True)


def bm_at(logx: np.ndarray, levels, walk: np.ndarray, tau: np.ndarray, rng) -> np.ndarray:
    """Brownian motion values at log inputs given its values ``walk`` (S, levels) at the fitted
    levels: exact at a level, a Brownian bridge between levels, the edge value plus
    Normal(0, tau^2 * distance) beyond the range. Shape (S, run); one draw per distinct input."""
    lv = np.asarray(levels, dtype=float)
    S = walk.shape[0]
    out = np.empty((S, len(logx)))
    cache = {}
    for i, v in enumerate(np.round(logx, 9)):
        if v in cache:
            out[:, i] = cache[v]
            continue
        j = int(np.searchsorted(lv, v))
        if j < len(lv) and abs(lv[j] - v) < 1e-9:
            val = walk[:, j]
        elif j == 0:
            val = walk[:, 0] + tau * np.sqrt(lv[0] - v) * rng.standard_normal(S)
        elif j == len(lv):
            val = walk[:, -1] + tau * np.sqrt(v - lv[-1]) * rng.standard_normal(S)
        else:
            a, b = v - lv[j - 1], lv[j] - v
            mean = (walk[:, j - 1] * b + walk[:, j] * a) / (a + b)
            val = mean + tau * np.sqrt(a * b / (a + b)) * rng.standard_normal(S)
        cache[v] = val
        out[:, i] = val
    return out


# How far (log units) beyond the fitted levels a joint discrepancy path is drawn (e^16, about
# 9e6 times the largest fitted N or D), and its grid step (log units).
PATH_REACH = 16.0
PATH_STEP = 0.1


def bm_path(levels, walk: np.ndarray, tau: np.ndarray, rng, reach: float = PATH_REACH,
            step: float = PATH_STEP) -> tuple[np.ndarray, np.ndarray]:
    """One joint Brownian path per draw through the values ``walk`` (S, levels) at the sorted
    fitted levels (log units): Brownian bridges between levels and free motion with rate ``tau``
    (S,) outward from each edge, on a grid of spacing at most ``step`` that reaches ``reach``
    beyond the edges.

    Unlike :func:`bm_at` (independent draws per input, for marginal predictions), the values at
    any set of inputs read from one path (:func:`path_at`) are jointly Brownian, so differences
    between inputs are right too.

    Returns
    -------
    grid : numpy.ndarray, shape (G,)
        Increasing log inputs, the levels among them.
    values : numpy.ndarray, shape (S, G)
    """
    lv = np.asarray(levels, dtype=float)
    S = walk.shape[0]
    tau = np.asarray(tau, dtype=float)[:, None]
    n = int(np.ceil(reach / step))
    h = reach / n
    out_x = np.arange(1, n + 1) * h  # distances outward from an edge
    xs, vs = [], []
    left = walk[:, :1] + tau * np.cumsum(rng.standard_normal((S, n)) * np.sqrt(h), 1)
    xs.append(lv[0] - out_x[::-1])
    vs.append(left[:, ::-1])
    for j in range(len(lv)):
        xs.append(lv[j:j + 1])
        vs.append(walk[:, j:j + 1])
        if j + 1 == len(lv):
            break
        a, b = lv[j], lv[j + 1]
        m = int(np.ceil((b - a) / step))
        if m < 2:
            continue
        free = tau * np.cumsum(rng.standard_normal((S, m)) * np.sqrt((b - a) / m), 1)
        frac = np.arange(1, m) / m
        gap = walk[:, j + 1:j + 2] - walk[:, j:j + 1]
        xs.append(a + (b - a) * frac)
        vs.append(walk[:, j:j + 1] + free[:, :-1] - frac[None, :] * (free[:, -1:] - gap))
    right = walk[:, -1:] + tau * np.cumsum(rng.standard_normal((S, n)) * np.sqrt(h), 1)
    xs.append(lv[-1] + out_x)
    vs.append(right)
    return np.concatenate(xs), np.concatenate(vs, axis=1)


def path_at(grid: np.ndarray, values: np.ndarray, logx) -> np.ndarray:
    """Paths (S, G) of :func:`bm_path` at log inputs ``logx``: shape (S,) or (1, k) for inputs
    shared by all draws, (S,) or (S, k) for one input (row) per draw. Linear between grid
    points (short of the Brownian variance by at most tau^2 * step / 4); beyond the grid, its
    end values. Returns the paths' values, shape ``(S,)`` or ``(S, k)``."""
    x = np.asarray(logx, dtype=float)
    S = values.shape[0]
    flat = x.ndim <= 1
    x2 = np.broadcast_to(x.reshape(-1, 1) if flat else x, (S, 1 if flat else x.shape[-1]))
    x2 = np.clip(x2, grid[0], grid[-1])
    i = np.clip(np.searchsorted(grid, x2), 1, len(grid) - 1)
    w = (x2 - grid[i - 1]) / (grid[i] - grid[i - 1])
    rows = np.arange(S)[:, None]
    out = values[rows, i - 1] * (1.0 - w) + values[rows, i] * w
    return out[:, 0] if flat else out


class Discrepancy:
    """Joint draws of a structured fit's Brownian discrepancy over log N and log D
    (:func:`bm_path` per axis), read at any (N, D): ``disc(N, D)`` is the log-loss offset per
    draw, shape (S,) or (S, k) as :func:`path_at` gives it."""

    def __init__(self, paths: Mapping):
        self.paths = dict(paths)  # axis ("N", "D") -> (grid, values (S, G))

    def __call__(self, N, D) -> np.ndarray:
        out = 0.0
        for ax, x in (("N", N), ("D", D)):
            if ax in self.paths:
                grid, values = self.paths[ax]
                out = out + path_at(grid, values, np.log(np.asarray(x, dtype=float)))
        return np.asarray(out, dtype=float)

    def take(self, idx) -> "Discrepancy":
        """The draws at ``idx`` (an index array or a slice)."""
        return Discrepancy({ax: (g, v[idx]) for ax, (g, v) in self.paths.items()})


def discrepancy_paths(post, info: Mapping, seed: int = 0) -> Discrepancy | None:
    """The Brownian discrepancy of a structured fit as joint paths per draw (:class:`Discrepancy`),
    through the fitted walks at the levels; None when the fit has no discrepancy (or fewer than
    two levels on both axes). ``seed`` seeds the bridges and the motion beyond the levels."""
    st = info.get("structure") or {}
    if not st.get("discrepancy"):
        return None
    rng = np.random.default_rng(seed)
    paths = {}
    for ax in ("N", "D"):
        levels = info["levels"][ax]
        if len(levels) < 2 or f"tau_d{ax}" not in post:
            continue
        tau = draws_of(post, f"tau_d{ax}")
        walk = bm_walk(levels, draws_of(post, f"z_d{ax}"), tau)
        paths[ax] = bm_path(levels, walk, tau, rng)
    return Discrepancy(paths) if paths else None


def keyed_effect(fitted: np.ndarray, scale_new: np.ndarray, keys, levels, rng) -> np.ndarray:
    """Per-run effects: ``fitted[:, j]`` (S, levels) where the key is level j, else
    ``scale_new[:, i]`` (S, run) times one standard normal draw per unseen key. Shape (S, run)."""
    idx = index_of(keys, levels)
    S = scale_new.shape[0]
    out = np.empty((S, len(idx)))
    fresh = {}
    for i, (k, j) in enumerate(zip(keys, idx, strict=True)):
        if j >= 0:
            out[:, i] = fitted[:, j]
        else:
            if k not in fresh:
                fresh[k] = rng.standard_normal(S)
            out[:, i] = scale_new[:, i] * fresh[k]
    return out


def cell_sd(post, info: Mapping, logd) -> np.ndarray | None:
    """Sd of the cell effect at log D values ``logd`` per draw, shape (S, len(logd)) (None
    without a cell effect): one sd, or log-linear in log D with ``cell_d``."""
    st, cD = info["structure"], info["centres"]["cD"]
    logd = np.asarray(logd, dtype=float)[None, :]
    if st.get("cell_d"):
        return np.exp(draws_of(post, "log_tau_cell")[:, None]
                      + draws_of(post, "tau_cell_slope")[:, None] * (logd - cD))
    if st.get("cell"):
        return draws_of(post, "tau_cell")[:, None] * np.ones_like(logd)
    return None


def seed_sd(post, info: Mapping, logd) -> np.ndarray | None:
    """Sd of the seed effect at log D values ``logd`` per draw, shape (S, len(logd)) (None
    without a seed effect): with ``sigma_d`` it scales in D like the noise sd."""
    st, cD = info["structure"], info["centres"]["cD"]
    if not st.get("seed_effect"):
        return None
    logd = np.asarray(logd, dtype=float)[None, :]
    tau = draws_of(post, "tau_seed")[:, None]
    if st.get("sigma_d"):
        return tau * np.exp(draws_of(post, "sigma_slope")[:, None] * (logd - cD))
    return tau * np.ones_like(logd)


def structure_effects(post, info: Mapping, runs: pd.DataFrame, rng) -> np.ndarray:
    """Cell, seed and discrepancy terms of runs' log-loss, shape (S, run)."""
    st, lv = info["structure"], info["levels"]
    S = post.sizes["chain"] * post.sizes["draw"]
    n = len(runs)
    out = np.zeros((S, n))
    logd = np.log(runs["D"].to_numpy(dtype=float))
    if st.get("cell") or st.get("cell_d"):
        out += keyed_effect(cell_sd(post, info, cell_log_d(lv["cells"])) * draws_of(post, "z_cell"),
                            cell_sd(post, info, logd), cell_keys(runs), lv["cells"], rng)
    if st.get("seed_effect"):
        out += keyed_effect(seed_sd(post, info, cell_log_d(lv["seed_cells"]))
                            * draws_of(post, "z_seed"), seed_sd(post, info, logd),
                            seed_keys(runs), lv["seed_cells"], rng)
    if st.get("discrepancy"):
        for ax in ("N", "D"):
            levels = lv[ax]
            if len(levels) < 2:
                continue
            tau = draws_of(post, f"tau_d{ax}")
            walk = bm_walk(levels, draws_of(post, f"z_d{ax}"), tau)
            out += bm_at(np.log(runs[ax].to_numpy(dtype=float)), levels, walk, tau, rng)
    return out


def noise_sd(post, info: Mapping, D: np.ndarray) -> np.ndarray:
    """Noise sd of log-loss for runs of D tokens, shape (S, run)."""
    if info.get("structure", {}).get("sigma_d"):
        return np.exp(draws_of(post, "log_sigma")[:, None] + draws_of(post, "sigma_slope")[:, None]
                      * (np.log(np.asarray(D, dtype=float))[None, :] - info["centres"]["cD"]))
    return draws_of(post, "sigma")[:, None] * np.ones((1, len(D)))


def pool_offsets(post, info: Mapping, runs: pd.DataFrame, quantized: np.ndarray,
                 rng) -> dict:
    """Each pooled coefficient's offset per run, shape (S, run): the fitted group offset, a fresh
    one from the fitted population for an unseen group, 0 for an unquantized run of a precision
    coefficient."""
    law = get_law(info["law"])
    S = post.sizes["chain"] * post.sizes["draw"]
    out = {}
    for c, col in (info.get("pool") or {}).items():
        if col not in runs:
            raise BayesfpInputError(f"runs: column {col!r} (pooled {c} of the fit) is missing")
        precision = c in law.penalty_params or c.startswith("gamma")
        scale = (draws_of(post, f"tau_{c}") if info.get("pooling") in (None, "partial")
                 else np.full(S, NO_POOLING_SD))
        scale = np.repeat(scale[:, None], len(runs), 1)
        off = keyed_effect(draws_of(post, f"{c}_offset"), scale,
                           runs[col].astype(str).to_numpy(), info["pool_groups"][c], rng)
        if precision:
            off[:, ~quantized] = 0.0
        out[c] = off
    return out


def apply_pool(p: dict, offsets: Mapping) -> dict:
    """Add pooled offsets to law coefficients (``eps`` on the log scale, positive coefficients
    through their ``log_`` form, exponents additively). Works on PyTensor and NumPy values."""
    p = dict(p)
    for c, off in offsets.items():
        if c == "eps":
            p["eps"] = p["eps"] * _exp(off)
        else:
            key = ("log_" + c) if ("log_" + c) in p else c
            p[key] = p[key] + off
    return p


def _exp(v):
    if isinstance(v, np.ndarray):
        return np.exp(v)
    import pytensor.tensor as pt

    return pt.exp(v)


def format_terms(p: dict, x: Mapping, terms: Mapping) -> dict:
    """Fold per-E / per-M offsets of the log penalty (``terms["E"]``, ``terms["M"]``) and a free
    power k of log2 B (``terms["k"]``) into ``log_gamma`` (the penalty is log2(B) / gamma times
    the format factor). Works on PyTensor and NumPy values."""
    if not terms or "log_gamma" not in p:
        return p
    p = dict(p)
    lg = p["log_gamma"]
    for ax in ("E", "M"):
        if ax in terms:
            lg = lg - terms[ax]
    if "k" in terms:
        lb = np.log(np.where(np.asarray(x["log2B"]) > 0, x["log2B"], 1.0))
        lg = lg - (terms["k"] - 1.0) * lb
    p["log_gamma"] = lg
    return p


def format_draws(post, info: Mapping, E: np.ndarray, M: np.ndarray, rng) -> dict:
    """The flexible format terms for formats (E, M) from posterior draws, each (S, run); unseen
    E or M levels get fresh Normal(0, tau_fmt) offsets."""
    out = {}
    if info.get("format_effect") == "flex":
        tau = draws_of(post, "tau_fmt")
        for ax, vals in (("E", E), ("M", M)):
            levels = info["levels"][ax]
            if f"fmt_{ax}_offset" not in post:
                continue
            keys = np.asarray(vals).astype(int)
            out[ax] = keyed_effect(draws_of(post, f"fmt_{ax}_offset"),
                                   np.repeat(tau[:, None], len(keys), 1), list(keys),
                                   levels, rng)
    if info.get("log2b_power"):
        out["k"] = draws_of(post, "log2b_power")[:, None]
    return out


def has_format_terms(info: Mapping) -> bool:
    """Whether a fit has the flexible format effect or a free power of log2 B (terms beyond
    the law's own in its precision penalty)."""
    return info.get("format_effect") == "flex" or bool(info.get("log2b_power"))


def log_gamma_shift(post, info: Mapping, E, M, log2B, seed: int = 0) -> np.ndarray:
    """What a structured fit's flexible format effect and block-size power add to log gamma
    for formats (E, M) at blocks of log2(B) = ``log2B`` (scalar or one per format):
    -(offset_E + offset_M) - (k - 1) log(log2B), as :func:`format_terms` applies it. Unseen E or
    M levels get fresh offsets (seeded). Zeros for a fit without these terms.

    Returns
    -------
    numpy.ndarray, shape (chain * draw, format)
    """
    E = np.atleast_1d(np.asarray(E, dtype=float))
    M = np.atleast_1d(np.asarray(M, dtype=float))
    S = post.sizes["chain"] * post.sizes["draw"]
    out = np.zeros((S, len(E)))
    t = format_draws(post, info, E, M, np.random.default_rng(seed))
    for ax in ("E", "M"):
        if ax in t:
            out = out - t[ax]
    if "k" in t:
        lb = np.broadcast_to(np.asarray(log2B, dtype=float), E.shape)
        out = out - (t["k"] - 1.0) * np.log(np.where(lb > 0, lb, 1.0))[None, :]
    return out


def format_log_penalty(post, info: Mapping, E, M, seed: int = 0) -> np.ndarray:
    """Posterior draws of the log format factor, -log gamma - delta log(E+0.5) -
    nu log(M+0.5) plus the flexible offsets, for formats (E, M): shape (S, format)."""
    rng = np.random.default_rng(seed)
    E, M = np.asarray(E, dtype=float), np.asarray(M, dtype=float)
    lp = (-draws_of(post, "log_gamma")[:, None] - draws_of(post, "delta")[:, None]
          * np.log(E + 0.5) - draws_of(post, "nu")[:, None] * np.log(M + 0.5))
    t = format_draws(post, info, E, M, rng)
    for ax in ("E", "M"):
        if ax in t:
            lp = lp + t[ax]
    return lp


def predict_log_loss(post, info: Mapping, runs: pd.DataFrame, noise: bool = True,
                     seed: int = 0, structure: bool = True) -> np.ndarray:
    """Posterior predictive log-loss of runs under a structured fit.

    Parameters
    ----------
    post : xarray.Dataset
        The fit's posterior (dims ``chain, draw``).
    info : mapping
        The fit's configuration (``attrs["bayesfp"]`` parsed).
    runs : pandas.DataFrame
        Rows with N, D, E, M, B, operands (and ``seed`` and the pooled columns).
    noise : bool
        Add the observation noise (a new run's measured loss) or not (the mean).
    seed : int
        Seed of the noise and of the effects drawn for unseen cells, seeds, groups and levels.
    structure : bool
        Include the cell, seed and discrepancy terms (False: the law alone, with pooling and
        format terms).

    Returns
    -------
    numpy.ndarray, shape (chain * draw, run)
        Log-loss (log nats/token).
    """
    rng = np.random.default_rng(seed)
    law = get_law(info["law"])
    runs = runs.reset_index(drop=True)
    n = len(runs)
    S = post.sizes["chain"] * post.sizes["draw"]
    x = law_inputs(runs, **(info.get("inputs_kw") or {}))
    x = {k: x[k] for k in law.inputs}
    p = {k: draws_of(post, k)[:, None] for k in COEFFICIENT_NAMES if k in post}
    p.update({k: float(v) for k, v in (info.get("fixed") or {}).items()})
    quantized = x["log2B"] > 0 if "log2B" in x else np.zeros(n, dtype=bool)
    p = apply_pool(p, pool_offsets(post, info, runs, quantized, rng))
    if "E" in x:
        p = format_terms(p, x, format_draws(post, info, x["E"], x["M"], rng))
    with np.errstate(invalid="ignore", over="ignore"):
        mu = np.log(np.asarray(law.loss(p, x, xp=np), dtype=float))
    mu = np.broadcast_to(mu, (S, n)).copy()
    if structure:
        mu += structure_effects(post, info, runs, rng)
    if noise:
        mu += noise_sd(post, info, x["D"]) * standard_noise(rng, (S, n), info.get("robust"))
    return mu
