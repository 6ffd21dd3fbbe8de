"""The Ray executor on a local Ray instance (2 CPUs) with tiny CPU runs: the records land in the
same run table, once each, and a second sweep skips them."""

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
ray = pytest.importorskip("ray")

from sweep_tiny import TINY_FIXED  # noqa: E402

from training.sweep.grid import expand, load_grid  # noqa: E402
from training.sweep.runner import run_sweep  # noqa: E402

GRID = TINY_FIXED + """granularity = "32"

[axes]
format = ["bf16", "e4m3"]
"""


@pytest.fixture
def local_ray():
    root = str(Path(__file__).resolve().parents[1])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": root}})
    yield
    ray.shutdown()


@pytest.mark.slow
def test_ray_executor_tiny_cpu_runs(tmp_path, local_ray):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    out = tmp_path / "runs.jsonl"
    plan = expand(load_grid(grid))
    said = []
    result = run_sweep(grid, out, executor="ray", per_gpu=2, progress=False, echo=said.append)
    assert result.left == 0 and result.written == {"ok": 2}
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(r["run_id"] for r in records) == sorted(r.run_id for r in plan.runs)
    assert all(r["status"] == "ok" and r["loss"] > 0 for r in records)
    assert {(r["format"], r["B"]) for r in records} == {("bf16", "none"), ("e4m3", 32)}
    runs = pytest.importorskip("bayesfp.runs")
    assert len(runs.read_runs(out)) == 2
    # the driver was connected before: the executor leaves Ray running, and a second sweep on
    # the same table has nothing to do
    assert ray.is_initialized()
    result = run_sweep(grid, out, executor="ray", progress=False, echo=said.append)
    assert result.written == {} and len(out.read_text().splitlines()) == 2
