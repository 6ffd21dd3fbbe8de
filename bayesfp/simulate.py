"""Simulated run tables with known truth (for demos, tests and recovery checks). No I/O.

Losses are drawn as ``log L_obs = log L_law + sigma * z``, z ~ N(0, 1): multiplicative noise,
the scale of seed-to-seed variation (0.5-1% of the loss in small pre-training runs).
"""

import hashlib
import itertools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from bayesfp.dims import PAPER_OPERANDS
from bayesfp.laws.base import Law
from bayesfp.laws.inputs import law_inputs
from bayesfp.laws.registry import get_law

# The grid Sun et al. trained on: N in {41, 85, 154, 679}M, D in {10, 20, 50, 100}B tokens.
PAPER_N = (41e6, 85e6, 154e6, 679e6)
PAPER_D = (10e9, 20e9, 50e9, 100e9)
PAPER_FORMATS = ((1, 2), (2, 1), (2, 2), (2, 3), (3, 2), (3, 3), (4, 3), (5, 2), (4, 4))
PAPER_BLOCKS = (32, 128, 512)


def run_grid(N: Sequence[float], D: Sequence[float], formats: Iterable[tuple[int, int]],
             blocks: Sequence, operands: Sequence[str] = ("+".join(PAPER_OPERANDS),),
             seeds: Sequence[int] = (0,), baselines: bool = True) -> pd.DataFrame:
    """Every combination of N x D x (E, M) x B x operands x seed as a run table without losses.

    With ``baselines``, one unquantized BF16 run (E8M7, B ``none``, operands ``none``) per
    (N, D, seed) is added.
    """
    rows = []
    for n, d, (e, m), b, ops, s in itertools.product(N, D, formats, blocks, operands, seeds):
        rows.append(dict(N=int(n), D=float(d), E=int(e), M=int(m), B=str(b), operands=ops,
                         seed=int(s)))
    if baselines:
        for n, d, s in itertools.product(N, D, seeds):
            rows.append(dict(N=int(n), D=float(d), E=8, M=7, B="none", operands="none",
                             seed=int(s)))
    df = pd.DataFrame(rows)
    df.insert(0, "run_id", [_run_id(r) for r in df.to_dict("records")])
    return df


def _run_id(row: Mapping) -> str:
    key = "|".join(f"{k}={row[k]}" for k in sorted(row))
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def simulate_runs(grid: pd.DataFrame, params: Mapping, law: Law | str = "sun",
                  sigma: float | Mapping[str, float] = 0.01, seed: int = 0,
                  group_offsets: Mapping[str, float] | None = None, group_col: str = "operands",
                  offset_param: str = "gamma", diverge: Mapping | None = None,
                  inputs_kw: Mapping | None = None) -> pd.DataFrame:
    """Add simulated losses (and statuses) to a run grid.

    Parameters
    ----------
    grid : pandas.DataFrame
        Run table without ``loss`` (see :func:`run_grid`).
    params : mapping
        True coefficients (natural units).
    law : str or Law
        Law the losses come from.
    sigma : float or mapping
        Noise sd of log-loss; a mapping gives it per value of ``group_col``.
    seed : int
        Random seed.
    group_offsets : mapping, optional
        Per value of ``group_col``, an additive offset to ``log(offset_param)``: groups whose
        precision sensitivity truly differs.
    diverge : mapping, optional
        ``{"max_P": p, "rate": r}``: quantized runs with at most p bits diverge with probability
        r; their loss is NaN and status ``diverged``.

    Returns
    -------
    pandas.DataFrame
        The grid with ``loss``, ``loss_true`` and ``status`` columns.
    """
    law = get_law(law)
    rng = np.random.default_rng(seed)
    df = grid.copy()
    x = law_inputs(df, **(inputs_kw or {}))
    p = {k: np.full(len(df), float(v)) for k, v in params.items()}
    if group_offsets:
        off = df[group_col].map(dict(group_offsets)).fillna(0.0).to_numpy(dtype=float)
        quant = (df["operands"] != "none").to_numpy()
        p[offset_param] = p[offset_param] * np.exp(np.where(quant, off, 0.0))
    truth = law.loss(p, {k: x[k] for k in law.inputs})
    if isinstance(sigma, Mapping):
        sd = df[group_col].map(dict(sigma)).to_numpy(dtype=float)
    else:
        sd = np.full(len(df), float(sigma))
    df["loss_true"] = truth
    df["loss"] = truth * np.exp(sd * rng.standard_normal(len(df)))
    df["status"] = "ok"
    if diverge:
        cand = (df["operands"] != "none") & (x["P"] <= diverge["max_P"])
        hit = cand & (rng.random(len(df)) < diverge["rate"])
        df.loc[hit, "status"] = "diverged"
        df.loc[hit, "loss"] = np.nan
    return df
