"""Quantities derived from law coefficients: critical data size, optimal E/M split,
compute-optimal allocations. Pure NumPy, vectorised over coefficient draws.

Every function accepts coefficients as a mapping of scalars or arrays (e.g. posterior draws of
shape ``(S,)``); results broadcast against them, so a posterior over coefficients gives a
posterior over each quantity.
"""

from collections.abc import Callable, Mapping

import numpy as np

from bayesfp.errors import BayesfpInputError
from bayesfp.laws.base import Law, natural
from bayesfp.laws.registry import get_law

_GOLD = (np.sqrt(5.0) - 1.0) / 2.0


def _nat(law: Law | str, params: Mapping) -> dict:
    law = get_law(law)
    return {k: np.asarray(v, dtype=float) for k, v in natural(law, params).items()}


def critical_data_size(params: Mapping, N, E, M, log2B, law: Law | str = "sun"):
    """Critical data size D_crit (tokens) of the Sun law: past it, more tokens raise the loss.

    .. math:: D_{crit} = \\left[\\frac{d \\gamma N^{\\alpha} (E+0.5)^{\\delta} (M+0.5)^{\\nu}}
              {\\log_2 B}\\right]^{1/(2\\beta)}

    For ``sun_sep`` (penalty exponents alpha_q, beta_q) the stationary point of
    ``d D^-beta + K D^beta_q`` is used: ``D = (beta d / (beta_q K))^(1/(beta + beta_q))``.

    Parameters
    ----------
    params : mapping
        Coefficients of the law (scalars or arrays of draws).
    N : float or array
        Non-embedding parameters.
    E, M : float or array
        Exponent and mantissa bits.
    log2B : float or array
        log2 of the block size (13.1567 for channel-wise).

    Returns
    -------
    numpy.ndarray
        D_crit in tokens (inf where log2B is 0: no penalty).
    """
    law = get_law(law)
    p = _nat(law, params)
    N, E, M, log2B = (np.asarray(a, dtype=float) for a in (N, E, M, log2B))
    with np.errstate(divide="ignore"):
        if law.name == "sun":
            logK = (np.log(log2B) - p["alpha"] * np.log(N) - np.log(p["gamma"])
                    - p["delta"] * np.log(E + 0.5) - p["nu"] * np.log(M + 0.5))
            return np.exp((np.log(p["d"]) - logK) / (2.0 * p["beta"]))
        if law.name == "sun_sep":
            logK = (np.log(log2B) - p["alpha_q"] * np.log(N) - np.log(p["gamma"])
                    - p["delta"] * np.log(E + 0.5) - p["nu"] * np.log(M + 0.5))
            num = np.log(p["beta"] * p["d"]) - np.log(p["beta_q"]) - logK
            return np.exp(num / (p["beta"] + p["beta_q"]))
    raise BayesfpInputError(f"critical_data_size: law {law.name!r} has no training-time D_crit "
                            "(use critical_data_size_ptq for Kumar's post-training quantization)")


def critical_data_size_ptq(params: Mapping, N, P_post):
    """Kumar et al.: D past which post-training quantization to P_post bits makes the model worse.

    Stationary point of ``d D^-beta + C_T D^gamma_D N^-gamma_N exp(-P_post/gamma_post)``.
    """
    p = _nat("kumar_ptq", params)
    N, P_post = np.asarray(N, dtype=float), np.asarray(P_post, dtype=float)
    log_c = np.log(p["C_T"]) - p["gamma_N"] * np.log(N) - P_post / p["gamma_post"]
    num = np.log(p["beta"] * p["d"]) - np.log(p["gamma_D"]) - log_c
    return np.exp(num / (p["beta"] + p["gamma_D"]))


def optimal_split_continuous(params: Mapping, P, law: Law | str = "sun"):
    """Continuous optimum of the exponent/mantissa split for P total bits (E + M = P - 1).

    .. math:: E_{opt} = \\frac{\\delta P}{\\delta + \\nu} - 0.5, \\quad
              M_{opt} = \\frac{\\nu P}{\\delta + \\nu} - 0.5

    Returns
    -------
    (E_opt, M_opt) : tuple of numpy.ndarray
    """
    p = _nat(law, params)
    P = np.asarray(P, dtype=float)
    s = p["delta"] + p["nu"]
    return p["delta"] * P / s - 0.5, p["nu"] * P / s - 0.5


def split_candidates(P: int, e_min: int = 1, e_max: int = 8) -> list[tuple[int, int]]:
    """Every integer (E, M) with E + M = P - 1, e_min <= E <= e_max and M >= 0."""
    if P < 2:
        raise BayesfpInputError(f"P: need at least 2 bits (sign + 1), got {P}")
    return [(e, P - 1 - e) for e in range(e_min, min(e_max, P - 1) + 1)]


def split_log_penalty(params: Mapping, P: int, law: Law | str = "sun", e_min: int = 1,
                      e_max: int = 8):
    """log of the format factor 1/(gamma (E+.5)^delta (M+.5)^nu) for each integer split.

    At fixed N, D and B the loss differs between splits only through this factor, so evaluating
    it is evaluating L on every split.

    Returns
    -------
    cands : list of (E, M)
    logpen : numpy.ndarray, shape (*param_shape, len(cands))
    """
    p = _nat(law, params)
    cands = split_candidates(P, e_min, e_max)
    E = np.array([c[0] for c in cands], dtype=float)
    M = np.array([c[1] for c in cands], dtype=float)
    dl, nu, lg = (np.asarray(p[k])[..., None] for k in ("delta", "nu", "gamma"))
    return cands, -np.log(lg) - dl * np.log(E + 0.5) - nu * np.log(M + 0.5)


def best_split(params: Mapping, P: int, law: Law | str = "sun", e_min: int = 1, e_max: int = 8):
    """The integer (E, M) with E + M = P - 1 that minimises the loss, by direct evaluation.

    Returns
    -------
    (E, M) : tuple of numpy.ndarray of int, shaped like the coefficients
    """
    cands, logpen = split_log_penalty(params, P, law, e_min, e_max)
    idx = np.argmin(logpen, axis=-1)
    arr = np.array(cands)
    return arr[idx, 0], arr[idx, 1]


def chinchilla_optimal(params: Mapping, C):
    """Chinchilla compute-optimal N and D at C = 6 N D FLOPs.

    .. math:: N_{opt} = G (C/6)^{\\beta/(\\alpha+\\beta)}, \\quad
              G = (\\alpha A / (\\beta B))^{1/(\\alpha+\\beta)}

    Returns
    -------
    (N_opt, D_opt) : tuple of numpy.ndarray
    """
    p = _nat("chinchilla", params)
    C = np.asarray(C, dtype=float)
    a, b = p["alpha"], p["beta"]
    G = (a * p["n"] / (b * p["d"])) ** (1.0 / (a + b))
    N = G * (C / 6.0) ** (b / (a + b))
    return N, C / (6.0 * N)


def golden_min(f: Callable, lo, hi, iters: int = 60):
    """Vectorised golden-section search of a unimodal ``f`` on ``[lo, hi]`` (arrays broadcast).

    Each iteration evaluates ``f`` once, at the one new interior point.

    Returns
    -------
    (x, f(x)) : tuple of numpy.ndarray
    """
    a, b = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    c, d = b - _GOLD * (b - a), a + _GOLD * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        left = fc < fd
        a, b = np.where(left, a, c), np.where(left, d, b)
        c_new, d_new = b - _GOLD * (b - a), a + _GOLD * (b - a)
        c, d = np.where(left, c_new, d), np.where(left, c, d_new)
        f_new = f(np.where(left, c, d))
        fc, fd = np.where(left, f_new, fd), np.where(left, fc, f_new)
    x = 0.5 * (a + b)
    return x, f(x)


def compute_optimal(params: Mapping, C, law: Law | str = "sun", k: float = 6.0 / 16.0,
                    b: float = 0.0, log2B: float = 7.0, P_range=(2.0, 64.0), iters: int = 56):
    """Compute-optimal (N, D, P) at a FLOP budget under C = k (P + b) N D.

    For the Sun law the split of P is the continuous optimum (:func:`optimal_split_continuous`);
    for Kumar's law P is the training precision of weights, activations and KV cache alike.
    The loss is convex in log N at fixed P, so both searches are nested golden sections,
    vectorised over coefficient draws.

    Parameters
    ----------
    params : mapping
        Coefficients (scalars or arrays of draws).
    C : float
        Training compute in FLOPs.
    k, b : float
        Cost model C = k (P + b) N D (Sun et al.: k = 6/16, b = 0).
    log2B : float
        log2 of the block size (Sun et al. use B = 128).
    iters : int
        Golden-section iterations of each search (the cost is about ``iters**2`` loss
        evaluations). Near the optimum the loss is flat to within its float resolution over
        about 1e-6 of N and P, so from about 40 iterations on more of them move N and P by no
        more than that.

    Returns
    -------
    dict of numpy.ndarray
        ``N``, ``D``, ``P``, ``loss`` and, for Sun laws, ``E`` and ``M`` (continuous).
    """
    law = get_law(law)
    p = _nat(law, params)
    C = float(C)
    shape = np.broadcast(*[np.asarray(v) for v in p.values()]).shape

    def loss_at(logN, logP):
        N, P = np.exp(logN), np.exp(logP)
        D = C / (k * (P + b) * N)
        x = {"N": N, "D": D}
        if law.name in ("sun", "sun_sep"):
            E, M = optimal_split_continuous(p, P, law)
            x.update(E=E, M=M, log2B=np.full_like(N, log2B))
        elif law.name in ("kumar", "kumar_ptq"):
            x.update(P_w=P, P_a=P, P_kv=P, P_post=P)
        else:
            raise BayesfpInputError(f"compute_optimal: law {law.name!r} has no precision")
        return law.loss(p, x)

    lo_n = np.full(shape, np.log(1.0))
    hi_n = np.full(shape, np.log(C / (k * (P_range[0] + b))))

    def inner(logP):
        return golden_min(lambda u: loss_at(u, logP), lo_n, hi_n, iters=iters)

    logP, _ = golden_min(lambda v: inner(v)[1], np.full(shape, np.log(P_range[0])),
                         np.full(shape, np.log(P_range[1])), iters=iters)
    logN, loss = inner(logP)
    P, N = np.exp(logP), np.exp(logN)
    out = {"N": N, "D": C / (k * (P + b) * N), "P": P, "loss": loss}
    if law.name in ("sun", "sun_sep"):
        out["E"], out["M"] = optimal_split_continuous(p, P, law)
    return out
