"""The same fit and seed give bit-identical posterior draws whatever the state of PyTensor's
compile cache: a fresh cache directory (everything compiled in the process) against a warm one
(compiled code loaded from disk).

Both the plain model and the default structured one of ``bayesfp fit --method bayes``
(:data:`bayesfp.defaults.STRUCTURE` with the flexible format effect: cell and seed effects and
the Brownian discrepancy integrated out and drawn back afterwards, noise sd in D, a free power
of log2 B, nutpie's low-rank mass matrix) are checked, each array on its own: the posterior
draws, the drawn-back effects ``z_cell``, ``z_seed``, ``z_dN`` and ``z_dD`` and the pointwise
log-likelihood."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import hashlib, json, sys
    from bayesfp.bayes.calibrate import make_model
    from bayesfp.bayes.info import fit_info
    from bayesfp.bayes.models import model_for
    from bayesfp.bayes.structured import structure_options
    from bayesfp.laws import SUN_2025
    from bayesfp.pipeline import model_kw
    from bayesfp.simulate import run_grid, simulate_runs

    def hashes(fit):
        out = {}
        for group in ("posterior", "log_likelihood"):
            ds = fit[group]
            for name in sorted(ds.data_vars):
                out[f"{group}/{name}"] = hashlib.sha256(ds[name].values.tobytes()).hexdigest()
        return out

    truth = dict(SUN_2025, gamma=SUN_2025["gamma"] / 300)
    # Several cells (N, D), two seeds per cell, three formats (so that the flexible format
    # effect has a free offset on E and on M) and two block sizes: no term is dropped.
    grid = run_grid((2e5, 8e5, 3.2e6), (5e6, 2e7), ((2, 1), (3, 2), (4, 3)), (32, 128),
                    seeds=(0, 1))
    runs = simulate_runs(grid, truth, sigma=0.01, seed=1)
    sampler = dict(draws=100, tune=100, chains=2)
    # The default model first, so that on a fresh cache all of its code is compiled here.
    model = make_model(runs, "sun", model_kw(None, structure_options(None)),
                       dict(sampler, seed=3))
    fit = model.fit()
    info = fit_info(fit)
    out = {"info": {k: info[k] for k in ("structure", "format_effect", "log2b_power",
                                          "marginal", "dropped", "sampler")},
           "structured": hashes(fit),
           "structured_seed4": hashes(model.fit(seed=4)),
           "structured_again": hashes(model.fit(seed=3))}
    plain_grid = run_grid((2e5, 8e5, 3.2e6), (5e6, 2e7), ((2, 1), (4, 3)), (32, 128))
    plain_runs = simulate_runs(plain_grid, truth, sigma=0.01, seed=1)
    plain = model_for("sun", plain_runs, sampler=dict(draws=200, tune=200, chains=2, seed=5))
    out["plain"] = hashes(plain.fit())
    print(json.dumps(out))
""")


def _fit_hashes(base_compiledir) -> dict:
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={base_compiledir}")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _differing(a: dict, b: dict) -> list:
    assert a.keys() == b.keys()
    return sorted(k for k in a if a[k] != b[k])


@pytest.mark.slow
def test_seeded_fits_are_bit_identical_with_cold_and_warm_compile_cache(tmp_path):
    cold = _fit_hashes(tmp_path / "cache")   # empty: everything compiled in the process
    warm = _fit_hashes(tmp_path / "cache")   # the same directory, now filled

    # the default structured model, with every term kept
    info = cold["info"]
    assert info["dropped"] == []
    assert info["structure"] | {"cell": True, "seed_effect": True, "sigma_d": True,
                                "discrepancy": True} == info["structure"]
    assert (info["format_effect"], info["log2b_power"], info["marginal"]) == ("flex", True, True)
    assert info["sampler"]["adaptation"] == "low_rank"
    st = cold["structured"]
    for name in ("posterior/z_cell", "posterior/z_seed", "posterior/z_dN", "posterior/z_dD",
                 "posterior/tau_dN", "posterior/fmt_E_offset",
                 "posterior/fmt_M_offset", "posterior/log2b_power", "posterior/sigma_slope",
                 "log_likelihood/log_loss"):
        assert name in st

    # fresh against warm cache, and a second fit with the same seed in the same process
    for key in ("structured", "structured_seed4", "plain"):
        assert _differing(cold[key], warm[key]) == [], key
    for run in (cold, warm):
        assert _differing(run["structured"], run["structured_again"]) == []
    # another seed gives other draws, effects and log-likelihood
    assert _differing(st, cold["structured_seed4"]) == sorted(st)
