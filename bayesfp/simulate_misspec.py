"""Simulated run tables that break the plain model's assumptions the way real runs do. No I/O.

:func:`bayesfp.simulate.simulate_runs` draws every run independently around the law. Real runs
share more than the law, so this simulator adds, on log-loss (log nats/token),

.. math::

    \\log L_i = \\log L_{law}(x_i; \\theta) + c_{N_i, D_i} + b(N_i, D_i)
                + s_{N_i, D_i, seed_i} + \\sigma(D_i) \\epsilon_i

- ``cell_sd``: a deviation per (N, D) cell, Normal(0, cell_sd), shared by every format and seed
  trained at that model size and token count;
- ``confound``: a batch-size-like step, ``confound * (D_min / D)^0.5`` added to the runs with
  N >= ``confound_N`` (larger models trained with a larger batch, which costs most at few
  tokens), a smooth effect the law has no term for;
- ``seed_sd``: a deviation per (N, D, seed), shared by the formats trained with that seed
  (same data order and initialisation), scaled by ``(D / D_min)^sd_slope``;
- ``sigma``: run noise scaled the same way, ``sigma(D) = sigma (D / D_min)^sd_slope``
  (``sd_slope`` < 0: longer runs are less noisy).

The true law coefficients are the ``params`` given; the structure terms have mean zero apart
from the confound, so coverage of the coefficients by a model's intervals measures how it copes
with the misspecification.
"""

from collections.abc import Mapping

import numpy as np
import pandas as pd

from bayesfp.laws.inputs import law_inputs
from bayesfp.laws.registry import get_law


def simulate_misspecified(grid: pd.DataFrame, params: Mapping, law: str = "sun", *,
                          cell_sd: float = 0.02, confound: float = 0.01,
                          confound_N: float | None = None, seed_sd: float = 0.01,
                          sigma: float = 0.006, sd_slope: float = -0.5, seed: int = 0,
                          inputs_kw: Mapping | None = None) -> pd.DataFrame:
    """Add misspecified simulated losses to a run grid.

    Parameters
    ----------
    grid : pandas.DataFrame
        Runs without losses: N, D, E, M, B, operands, seed (e.g. :func:`bayesfp.simulate.run_grid`
        or the design columns of a real run table).
    params : mapping
        True law coefficients (natural units).
    law : str
        Law the mean loss comes from.
    cell_sd, seed_sd, sigma : float
        Sds of the cell effect, the seed effect (at the smallest D) and the run noise (at the
        smallest D), in log-loss.
    confound : float
        Size of the batch-size-like step in log-loss at the smallest D.
    confound_N : float, optional
        Smallest N carrying the step (default: the median of the distinct N values).
    sd_slope : float
        Exponent of D in the seed and noise sds.
    seed : int
        Random seed.

    Returns
    -------
    pandas.DataFrame
        The grid with ``loss``, ``loss_true`` (the law alone), ``loss_mean`` (law, cell and
        confound, no seed effect or noise) and ``status``.
    """
    law_ = get_law(law)
    rng = np.random.default_rng(seed)
    df = grid.reset_index(drop=True).copy()
    x = law_inputs(df, **(inputs_kw or {}))
    truth = np.asarray(law_.loss(dict(params), {k: x[k] for k in law_.inputs}), dtype=float)
    N, D = df["N"].astype(float).to_numpy(), df["D"].astype(float).to_numpy()
    d_min = D.min()
    cells = pd.Series(list(zip(N, D, strict=True))).astype(str).to_numpy()
    seeds = df["seed"].astype(str).to_numpy() if "seed" in df else np.full(len(df), "0")
    cell_eff = _keyed_normal(cells, cell_sd, rng)
    if confound_N is None:
        confound_N = float(np.median(np.unique(N)))
    conf = np.where(N >= confound_N, confound * np.sqrt(d_min / D), 0.0)
    scale = (D / d_min) ** sd_slope
    seed_eff = _keyed_normal(np.char.add(cells.astype(str), "|" + seeds), seed_sd, rng) * scale
    noise = sigma * scale * rng.standard_normal(len(df))
    df["loss_true"] = truth
    df["loss_mean"] = truth * np.exp(cell_eff + conf)
    df["loss"] = truth * np.exp(cell_eff + conf + seed_eff + noise)
    df["status"] = "ok"
    return df


def _keyed_normal(keys: np.ndarray, sd: float, rng) -> np.ndarray:
    """One Normal(0, sd) draw per distinct key (in order of first appearance), per row."""
    uniq, inv = np.unique(keys, return_inverse=True)
    return (sd * rng.standard_normal(len(uniq)))[inv]
