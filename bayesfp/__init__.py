"""bayesfp: Bayesian precision scaling laws for low-precision LLM pre-training.

The statistics side. It reads run tables, fits precision scaling laws (Chinchilla, Kumar et al.
2024, Sun et al. 2025) as point estimates or posteriors, and answers which floating-point format
to train in. It never imports torch.
"""

__version__ = "0.1.0"
