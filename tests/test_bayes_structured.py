"""Structured models on simulated runs with known truth: pooling any coefficient by any column
(a two-data-set Chinchilla table, operand groups of the Sun law) and the cell / D-dependent
noise terms."""

import numpy as np
import pandas as pd
import pytest

from bayesfp.bayes.io import fit_info
from bayesfp.bayes.structured import structured_model
from bayesfp.laws import CHINCHILLA_HOFFMANN, SUN_2025
from bayesfp.simulate import run_grid, simulate_runs
from bayesfp.simulate_misspec import simulate_misspecified

SAMPLER = dict(draws=600, tune=600, chains=2)


def _inside(post, name, truth, level=0.9):
    q = (1 - level) / 2
    lo = post[name].quantile(q, ("chain", "draw")).values
    hi = post[name].quantile(1 - q, ("chain", "draw")).values
    return np.all((lo <= truth) & (truth <= hi)), lo, hi


@pytest.mark.slow
def test_pool_eps_n_d_by_dataset_recovers_each_data_set():
    # two corpora: each its own eps, n and d, shared exponents (Chinchilla law)
    truth = {"a": dict(CHINCHILLA_HOFFMANN, eps=1.69, n=406.4, d=410.7),
             "b": dict(CHINCHILLA_HOFFMANN, eps=2.30, n=250.0, d=900.0)}
    grid = run_grid((40e6, 80e6, 160e6, 320e6, 640e6), (2e9, 5e9, 1e10, 2e10, 5e10), (),
                    (), baselines=True, seeds=(0, 1))
    parts = []
    for i, (name, p) in enumerate(truth.items()):
        g = grid.assign(dataset=name, run_id=grid["run_id"] + name)
        parts.append(simulate_runs(g, p, "chinchilla", sigma=0.005, seed=10 + i))
    runs = pd.concat(parts, ignore_index=True)
    model = structured_model("chinchilla", runs, pool={"eps": "dataset", "n": "dataset",
                                                       "d": "dataset"},
                             sampler=dict(SAMPLER, seed=3))
    fit = model.fit()
    assert fit_info(fit)["gate"]["divergences"] == 0
    post = fit["posterior"]
    for i, name in enumerate(model.pool_groups["eps"]):
        sel = {"group_eps": name}
        ok, lo, hi = _inside(post["eps_in_dataset"].sel(sel).to_dataset(name="v"), "v",
                             truth[name]["eps"])
        assert ok, (name, "eps", lo, hi)
        for c in ("n", "d"):
            ok, lo, hi = _inside(post[f"log_{c}_in_dataset"].sel({f"group_{c}": name})
                                 .to_dataset(name="v"), "v", np.log(truth[name][c]))
            assert ok, (name, c, lo, hi)
    for c in ("alpha", "beta"):
        ok, lo, hi = _inside(post, c, CHINCHILLA_HOFFMANN[c])
        assert ok, (c, lo, hi)
    # the two data sets' eps differ by 0.61 nats: the posterior of the difference excludes 0
    diff = post["eps_in_dataset"].sel(group_eps="b") - post["eps_in_dataset"].sel(group_eps="a")
    assert float(diff.quantile(0.05)) > 0.3


@pytest.mark.slow
def test_pool_gamma_by_operands_recovers_offsets():
    true = dict(SUN_2025, gamma=SUN_2025["gamma"] / 5)
    offsets = {"w+w_bwd": 0.0, "x": -1.0, "x+w+w_bwd": 0.8}
    grid = run_grid((41e6, 85e6, 154e6, 679e6), (10e9, 20e9, 50e9, 100e9),
                    ((2, 1), (3, 2), (4, 3)), (32, 512), operands=tuple(offsets))
    runs = simulate_runs(grid, true, "sun", sigma=0.01, seed=5, group_offsets=offsets)
    model = structured_model("sun", runs, pool={"gamma": "operands"},
                             sampler=dict(SAMPLER, seed=4))
    post = model.fit()["posterior"]
    off = post["gamma_offset"]
    centre = np.mean(list(offsets.values()))
    for g, v in offsets.items():
        ok, lo, hi = _inside(off.sel(group_gamma=g).to_dataset(name="v"), "v", v - centre)
        assert ok, (g, lo, hi)


@pytest.mark.slow
def test_cell_and_d_dependent_noise_are_recovered():
    # misspecified runs: cell sd 0.02, run noise 0.008 at 5M tokens falling as D^-0.5
    grid = run_grid((2e5, 4e5, 8e5, 1.6e6, 3.2e6), (5e6, 1e7, 2e7, 4e7),
                    ((2, 1), (3, 2), (4, 3)), (32, 128), seeds=(0,))
    truth = dict(SUN_2025, gamma=SUN_2025["gamma"] / 300)
    runs = simulate_misspecified(grid, truth, cell_sd=0.02, confound=0.0, seed_sd=0.0,
                                 sigma=0.008, sd_slope=-0.5, seed=7)
    model = structured_model("sun", runs, cell=True, sigma_d=True,
                             sampler=dict(SAMPLER, seed=5))
    post = model.fit()["posterior"]
    ok, lo, hi = _inside(post, "sigma_slope", -0.5)
    assert ok, ("sigma_slope", lo, hi)
    ok, lo, hi = _inside(post, "tau_cell", 0.02)
    assert ok, ("tau_cell", lo, hi)
    # sigma at the data centre: 0.008 (D_c / 5e6)^-0.5
    sd_c = 0.008 * (np.exp(model.centres["cD"]) / 5e6) ** -0.5
    ok, lo, hi = _inside(np.exp(post["log_sigma"]).to_dataset(name="v"), "v", sd_c)
    assert ok, ("sigma at centre", lo, hi, sd_c)
