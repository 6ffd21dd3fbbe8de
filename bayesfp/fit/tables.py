"""Tables of derived quantities from point estimates (no printing, no I/O)."""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayesfp.laws.derived import best_split, compute_optimal, critical_data_size


def dcrit_table(params: Mapping, N: Sequence[float], formats: Sequence[tuple[int, int]],
                log2B: float, law: str = "sun") -> pd.DataFrame:
    """D_crit (tokens) for each N (rows) and (E, M) format (columns)."""
    out = {}
    for e, m in formats:
        out[f"e{e}m{m}"] = [float(critical_data_size(params, n, e, m, log2B, law)) for n in N]
    return pd.DataFrame(out, index=pd.Index(list(N), name="N"))


def split_table(params: Mapping, bits: Sequence[int], law: str = "sun") -> pd.DataFrame:
    """Best integer (E, M) split for each total bit width P, by direct evaluation."""
    rows = []
    for P in bits:
        e, m = best_split(params, P, law)
        rows.append({"P": P, "E": int(e), "M": int(m), "format": f"e{int(e)}m{int(m)}"})
    return pd.DataFrame(rows).set_index("P")


def compute_optimal_table(params: Mapping, budgets: Sequence[float], law: str = "sun",
                          log2B: float = 7.0) -> pd.DataFrame:
    """Compute-optimal N, D, P (and continuous E, M) at each FLOP budget C."""
    rows = []
    for C in budgets:
        r = compute_optimal(params, C, law, log2B=log2B)
        rows.append({"C": C, **{k: float(np.asarray(v)) for k, v in r.items()}})
    return pd.DataFrame(rows).set_index("C")
