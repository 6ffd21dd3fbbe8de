"""Bayesian fits of the scaling laws (PyMC + nutpie): models, diagnostics, derived quantities."""
