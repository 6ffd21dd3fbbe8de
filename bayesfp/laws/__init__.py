"""Scaling laws as pure vectorised functions (NumPy or PyTensor), and derived quantities.

Examples
--------
>>> from bayesfp.laws import SUN, SUN_2025, critical_data_size
>>> float(critical_data_size(SUN_2025, N=1e9, E=4, M=3, log2B=7)) / 1e12  # doctest: +ELLIPSIS
27.3...
"""

from bayesfp.laws.base import Law, Param, as_params, natural
from bayesfp.laws.chinchilla import CHINCHILLA
from bayesfp.laws.derived import (
    best_split,
    chinchilla_optimal,
    compute_optimal,
    critical_data_size,
    critical_data_size_ptq,
    optimal_split_continuous,
    split_candidates,
    split_log_penalty,
)
from bayesfp.laws.inputs import block_log2, law_inputs
from bayesfp.laws.kumar import KUMAR, KUMAR_PTQ
from bayesfp.laws.published import (
    CHINCHILLA_HOFFMANN,
    KUMAR_2024,
    PUBLISHED,
    SUN_2025,
    SUN_OPTIMAL_LAYOUT,
)
from bayesfp.laws.registry import LAWS, get_law
from bayesfp.laws.sun import SUN, SUN_SEP

__all__ = [
    "Law", "Param", "as_params", "natural", "CHINCHILLA", "KUMAR", "KUMAR_PTQ", "SUN", "SUN_SEP",
    "LAWS", "get_law", "PUBLISHED", "CHINCHILLA_HOFFMANN", "KUMAR_2024", "SUN_2025",
    "SUN_OPTIMAL_LAYOUT", "critical_data_size", "critical_data_size_ptq",
    "optimal_split_continuous", "split_candidates", "split_log_penalty", "best_split",
    "chinchilla_optimal", "compute_optimal", "block_log2", "law_inputs",
]
