"""Priors and the prior predictive check of every law model."""

import numpy as np
import pytest

from bayesfp.bayes.diagnostics import prior_predictive_check
from bayesfp.bayes.models import model_for
from bayesfp.bayes.priors import Prior
from bayesfp.laws import PUBLISHED
from bayesfp.runs import read_runs


@pytest.fixture(scope="module")
def demo():
    from importlib.resources import files

    return read_runs(files("bayesfp") / "data" / "demo_runs.csv")


@pytest.mark.parametrize("law", ["chinchilla", "kumar", "sun", "sun_sep"])
def test_default_priors_give_plausible_losses(demo, law):
    res = prior_predictive_check(model_for(law, demo), draws=400, seed=1)
    assert res.passed, res
    assert 1.0 < res.quantiles["q50"] < 6.0


def test_absurd_priors_fail_the_check(demo):
    # a base loss around 100 nats/token at the data centre is implausible
    m = model_for("sun", demo, priors={"log_level": Prior("normal", np.log(100.0), 0.5)})
    res = prior_predictive_check(m, draws=300, seed=1)
    assert not res.passed
    assert res.frac_in_range < 0.5


@pytest.mark.parametrize("law", ["chinchilla", "kumar", "sun", "sun_sep"])
def test_sampled_variables_map_back_to_published_constants(demo, law):
    m = model_for(law, demo)
    pub = dict(PUBLISHED[law])
    nat = {p.name: pub.get(p.name, p.optional) for p in m.law.params}
    for k, v in m.fixed.items():
        nat[k] = v
    s = m.sampled_from_law(nat)
    p = m.law_params(s)
    for name in ("alpha", "beta", "eps", "delta", "nu", "alpha_q", "beta_q"):
        if name in p and name in pub:
            np.testing.assert_allclose(p[name], pub[name], rtol=1e-10)
    for name in ("n", "d", "gamma", "gamma_w", "gamma_a"):
        if "log_" + name in p and name in pub and name not in m.fixed:
            np.testing.assert_allclose(np.exp(p["log_" + name]), pub[name], rtol=1e-8)


def test_published_priors_are_centred_on_published_constants(demo):
    m = model_for("sun", demo, prior="published")
    centre = {k: (np.exp(m.priors[k].mu) if m.priors[k].dist == "lognormal" else m.priors[k].mu)
              for k in m.sampled}
    p = m.law_params(centre)
    pub = PUBLISHED["sun"]
    for name in ("alpha", "beta", "eps", "delta", "nu"):
        np.testing.assert_allclose(p[name], pub[name], rtol=1e-8)
    for name in ("n", "d", "gamma"):
        np.testing.assert_allclose(np.exp(p["log_" + name]), pub[name], rtol=1e-8)
    assert m.priors["pen_sum"].sigma == 0.2 and m.priors["a_Q"].sigma == 0.5


def test_bad_settings_raise_value_errors(demo):
    with pytest.raises(ValueError, match="pool_by"):
        model_for("sun", demo, pool_by="no_such_column")
    with pytest.raises(ValueError, match="pool_by"):
        model_for("chinchilla", demo, pool_by="operands")
    with pytest.raises(ValueError, match="prior"):
        model_for("sun", demo, prior="flat")
    with pytest.raises(ValueError, match="priors"):
        model_for("sun", demo, priors={"gamma": Prior("normal", 0, 1)})
    with pytest.raises(ValueError, match="sampler"):
        model_for("sun", demo, sampler={"sampler": "metropolis"})
    with pytest.raises(ValueError, match="prior"):
        Prior("cauchy", 0, 1)
    with pytest.raises(ValueError, match="law"):
        model_for("kumar_ptq", demo)


def test_model_variants_build_the_stated_structure(demo):
    import pymc as pm

    none = model_for("sun", demo, pool_by="operands", pooling="none").build_model()
    names = {v.name for v in none.free_RVs}
    assert "log_gamma_offset" in names and not any(n.startswith("tau") for n in names)
    partial = model_for("sun", demo, pool_by="operands").build_model()
    assert {"tau_gamma", "z_gamma"} <= {v.name for v in partial.free_RVs}
    assert list(partial.coords["group"]) == ["w+w_bwd+x_bwd", "x+w+dy+w_bwd+dy2+x_bwd"]
    robust = model_for("sun", demo, robust=True).build_model()
    obs = robust["log_loss"]
    assert obs.owner.op.name == "t"  # StudentT
    by = model_for("sun", demo, sigma_by="operands").build_model()
    assert by["sigma"].eval().shape == (3,)
    kumar = model_for("kumar", demo, pool_by="operands")
    # the KV cache is never quantized: its sensitivity is fixed, the other two are pooled
    assert kumar.fixed["gamma_kv"] == 1.0 and kumar.pooled == ("gamma_w", "gamma_a")
    assert isinstance(kumar.build_model(), pm.Model)


@pytest.mark.slow
def test_pymc_sampler_fallback_gives_the_same_fit_structure(demo):
    from bayesfp.bayes.io import fit_info

    fit = model_for("chinchilla", demo,
                    sampler=dict(sampler="pymc", draws=200, tune=200, chains=2, seed=1)).fit()
    assert {"posterior", "sample_stats", "log_likelihood", "fit_data"} <= set(fit.children)
    assert fit["posterior"].sizes["draw"] == 200 and fit["posterior"].sizes["chain"] == 2
    assert fit_info(fit)["sampler"]["sampler"] == "pymc"
    assert np.isfinite(fit_info(fit)["gate"]["rhat_max"])
    # eps + n N^-alpha + d D^-beta reproduces the runs to within a few percent
    assert 0.005 < float(fit["posterior"]["sigma"].mean()) < 0.05
