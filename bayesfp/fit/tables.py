"""Tables of derived quantities from point estimates (no printing, no I/O)."""

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from bayesfp.laws.derived import best_split, critical_data_size


def dcrit_table(params: Mapping, N: Sequence[float], formats: Sequence[tuple[int, int]],
                log2B: float, law: str = "sun") -> pd.DataFrame:
    """D_crit (tokens) for each N (rows) and (E, M) format (columns)."""
    E, M = (np.array([f[i] for f in formats], dtype=float) for i in (0, 1))
    dc = critical_data_size(params, np.asarray(N, dtype=float)[:, None], E, M, log2B, law)
    return pd.DataFrame(dc, index=pd.Index(list(N), name="N"),
                        columns=[f"e{e}m{m}" for e, m in formats])


def split_table(params: Mapping, bits: Sequence[int], law: str = "sun") -> pd.DataFrame:
    """Best integer (E, M) split for each total bit width P, by direct evaluation."""
    rows = []
    for P in bits:
        e, m = best_split(params, P, law)
        rows.append({"P": P, "E": int(e), "M": int(m), "format": f"e{int(e)}m{int(m)}"})
    return pd.DataFrame(rows).set_index("P")
