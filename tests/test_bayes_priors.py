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
