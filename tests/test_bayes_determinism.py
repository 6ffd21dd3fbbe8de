"""The same fit and seed give bit-identical posterior draws whatever the state of PyTensor's
compile cache: a fresh cache directory (everything compiled in the process) against a warm one
(compiled code loaded from disk)."""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import hashlib
    from bayesfp.bayes.models import model_for
    from bayesfp.laws import SUN_2025
    from bayesfp.simulate import run_grid, simulate_runs
    grid = run_grid((2e5, 8e5, 3.2e6), (5e6, 2e7), ((2, 1), (4, 3)), (32, 128))
    runs = simulate_runs(grid, dict(SUN_2025, gamma=SUN_2025["gamma"] / 300), sigma=0.01,
                         seed=1)
    fit = model_for("sun", runs, sampler=dict(draws=200, tune=200, chains=2, seed=5)).fit()
    post = fit["posterior"]
    h = hashlib.sha256()
    for name in sorted(post.data_vars):
        h.update(post[name].values.tobytes())
    print(h.hexdigest())
""")


def _posterior_hash(base_compiledir) -> str:
    env = dict(os.environ, PYTENSOR_FLAGS=f"base_compiledir={base_compiledir}")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, check=True, timeout=600)
    return out.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_seeded_fit_is_bit_identical_with_cold_and_warm_compile_cache(tmp_path):
    cold = _posterior_hash(tmp_path / "cache")   # empty: everything compiled in the process
    warm = _posterior_hash(tmp_path / "cache")   # the same directory, now filled
    assert len(cold) == 64
    assert cold == warm
