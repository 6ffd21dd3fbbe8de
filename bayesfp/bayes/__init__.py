"""Bayesian fits of the scaling laws (PyMC + nutpie): models, diagnostics gate, derived
quantities as posteriors, model comparison, persistence. See ``docs/bayes.md``.

A fit of a run table ``runs`` (:func:`bayesfp.runs.read_runs`) and the interval of a derived
quantity::

    from bayesfp.bayes import d_crit, hdi, model_for

    fit = model_for("sun", runs, pool_by="operands").fit()
    hdi(d_crit(fit, N=[1e9], formats=[(4, 3)]), 0.9)
"""

from bayesfp.bayes.calibration import SBCResult, sbc
from bayesfp.bayes.compare import compare, holdout_check, loo, ppc_coverage
from bayesfp.bayes.derived import (
    best_splits,
    central_interval,
    coefficients,
    compute_optimal_precision,
    d_crit,
    hdi,
    predict_loss,
    split_continuous,
    split_probabilities,
)
from bayesfp.bayes.diagnostics import (
    GateResult,
    check_fit,
    identification,
    prior_predictive_check,
)
from bayesfp.bayes.io import fit_info, fit_table, load_fit, save_fit
from bayesfp.bayes.models import (
    MODELS,
    ChinchillaModel,
    KumarModel,
    LawModel,
    SunModel,
    SunSepModel,
    model_for,
)
from bayesfp.bayes.priors import Prior
from bayesfp.bayes.sample import SamplerConfig

__all__ = [
    "LawModel", "ChinchillaModel", "KumarModel", "SunModel", "SunSepModel", "MODELS",
    "model_for", "Prior", "SamplerConfig", "check_fit", "GateResult", "identification",
    "prior_predictive_check", "coefficients", "d_crit", "split_probabilities", "best_splits",
    "split_continuous", "compute_optimal_precision", "predict_loss", "hdi", "central_interval",
    "loo", "compare", "ppc_coverage", "holdout_check", "sbc", "SBCResult", "save_fit",
    "load_fit", "fit_info", "fit_table",
]
