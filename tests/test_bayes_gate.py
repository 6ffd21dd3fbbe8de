"""The diagnostics gate on hand-made chains whose faults are known."""

import numpy as np
import pytest
import xarray as xr

from bayesfp.bayes.diagnostics import check_fit, ebfmi


def _tree(post: dict, diverging=None, energy=None, seed=0):
    rng = np.random.default_rng(seed)
    chains, draws = next(iter(post.values())).shape
    if diverging is None:
        diverging = np.zeros((chains, draws), dtype=bool)
    if energy is None:
        energy = rng.standard_normal((chains, draws))
    ds = xr.Dataset({k: (("chain", "draw"), v) for k, v in post.items()},
                    coords={"chain": np.arange(chains), "draw": np.arange(draws)})
    st = xr.Dataset({"diverging": (("chain", "draw"), diverging),
                     "energy": (("chain", "draw"), energy)})
    return xr.DataTree.from_dict({"posterior": ds, "sample_stats": st})


def test_independent_draws_pass():
    rng = np.random.default_rng(0)
    res = check_fit(_tree({"a": rng.standard_normal((4, 1000)),
                           "b": rng.standard_normal((4, 1000))}))
    assert res.passed, res.failures
    assert res.rhat_max < 1.01 and res.ess_bulk_min > 2000


def test_chains_that_disagree_fail_rhat():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 1000)) + np.array([0.0, 0.0, 0.0, 1.0])[:, None]
    res = check_fit(_tree({"a": a}))
    assert not res.passed
    assert res.rhat_max > 1.05
    assert any(f.startswith("R-hat") and "(a)" in f for f in res.failures)


def test_sticky_chains_fail_ess():
    rng = np.random.default_rng(2)
    # AR(1) with phi = 0.99: ESS about 4000 * 0.01 / 1.99 = 20
    z = rng.standard_normal((4, 1000))
    a = np.zeros_like(z)
    for t in range(1, 1000):
        a[:, t] = 0.99 * a[:, t - 1] + z[:, t]
    res = check_fit(_tree({"a": a}))
    assert res.ess_bulk_min < 200
    assert any("bulk ESS" in f for f in res.failures)


def test_divergences_and_low_bfmi_fail():
    rng = np.random.default_rng(3)
    div = np.zeros((4, 1000), dtype=bool)
    div[2, 10] = True
    res = check_fit(_tree({"a": rng.standard_normal((4, 1000))}, diverging=div))
    assert res.divergences == 1 and not res.passed
    # a random walk in energy has E-BFMI near 0
    walk = np.cumsum(rng.standard_normal((4, 1000)), axis=1)
    res = check_fit(_tree({"a": rng.standard_normal((4, 1000))}, energy=walk))
    assert res.ebfmi_min < 0.05
    assert any("E-BFMI" in f for f in res.failures)


def test_ebfmi_of_white_noise_is_two():
    # E[(e_t - e_{t-1})^2] / Var(e) = 2 for independent energies
    e = np.random.default_rng(4).standard_normal((2, 200_000))
    np.testing.assert_allclose(ebfmi(e), 2.0, rtol=0.02)


@pytest.mark.parametrize("key,value", [("rhat_max", 0.9), ("ess_min", 1e9)])
def test_thresholds_are_applied(key, value):
    rng = np.random.default_rng(5)
    res = check_fit(_tree({"a": rng.standard_normal((4, 500))}), **{key: value})
    assert not res.passed
