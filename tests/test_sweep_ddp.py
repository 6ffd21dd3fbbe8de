"""Data-parallel runs (``nproc`` > 1) in a sweep: the slot allocator of the local executor with
fake GPU counts, the time estimate, the Ray resources, and one real CPU sweep with a 2-process
run."""

import dataclasses
import json

import pytest

pytest.importorskip("torch")

from sweep_tiny import TINY_FIXED  # noqa: E402

from training.sweep import estimate  # noqa: E402
from training.sweep.estimate import Estimator, nproc_of  # noqa: E402
from training.sweep.grid import expand, load_grid  # noqa: E402
from training.sweep.ledger import sweep_dir  # noqa: E402
from training.sweep.local import Slots, slot_env  # noqa: E402
from training.sweep.ray_executor import task_options  # noqa: E402
from training.sweep.runner import run_sweep  # noqa: E402

GRID = TINY_FIXED + """format = "bf16"

[axes]
seed = [0]

[[include]]
seed = [1]
nproc = {nproc}
"""


def grid_file(tmp_path, nproc=2):
    path = tmp_path / "grid.toml"
    path.write_text(GRID.format(nproc=nproc))
    return path


def test_wide_runs_take_whole_free_gpus():
    slots = Slots(["0", "1", "2", "3"], per_gpu=2)
    assert slots.n_slots == 8
    small = slots.take(1)
    assert small == ["0"]
    # 3 GPUs are free: a 4-GPU run waits, a 2-GPU run takes two of them, whole
    assert slots.take(4) is None
    wide = slots.take(2)
    assert wide == ["1", "2"]
    # small runs pack around it: on GPU 0 and 3, never on 1 or 2
    packed = [slots.take(1) for _ in range(3)]
    assert sorted(g for p in packed for g in p) == ["0", "3", "3"]
    assert slots.take(1) is None  # GPU 0 and 3 full, 1 and 2 held whole
    assert slots.take(2) is None
    slots.release(wide, 2)
    assert slots.take(1) == ["1"]  # the freed GPUs take packed runs again
    assert slots.take(2) is None  # GPU 2 alone is free
    # releasing everything makes all four whole GPUs available to one 4-process run
    slots.release(["1"], 1)
    for p in packed:
        slots.release(p, 1)
    slots.release(small, 1)
    assert slots.take(4) == ["0", "1", "2", "3"]
    assert slots.take(1) is None


def test_waiting_wide_run_drains_its_gpus():
    slots = Slots(["0", "1", "2"], per_gpu=2)
    on0, on1 = slots.take(1), slots.take(1)
    assert (on0, on1) == (["0"], ["1"])
    # a 2-GPU run waits; the reservation is GPU 2 (empty) and one of the busy ones
    assert slots.take(2) is None
    reserved = slots.reserve(2)
    assert len(reserved) == 2 and 2 in reserved
    # small runs may only go to the GPU left out, so the reserved ones drain
    other = ({0, 1} - reserved).pop()
    assert slots.take(1, reserved) == [str(other)]
    assert slots.take(1, reserved) is None  # that GPU is now full (2 per GPU)
    slots.release(on0 if 0 in reserved else on1, 1)
    assert sorted(slots.take(2, set()), key=int) == sorted(str(i) for i in reserved)


def test_too_wide_runs_and_cpu_slots():
    gpu = Slots(["0", "1"], per_gpu=4)
    assert gpu.too_wide(1) is None and gpu.too_wide(2) is None
    why = gpu.too_wide(4)
    assert "4 processes need 4 GPUs" in why and "has 2 (GPU 0, 1)" in why
    cpu = Slots([], per_gpu=3)
    assert cpu.n_slots == 3
    assert "need 4 CPU slots" in cpu.too_wide(4) and cpu.too_wide(3) is None
    assert cpu.take(2) == [] and cpu.take(2) is None  # 2 of 3 slots held
    assert cpu.take(1) == [] and cpu.take(1) is None
    cpu.release([], 2)
    assert cpu.take(2) == []


def test_slot_env():
    env = slot_env(["2", "3"], 8, per_process=2, cores=16)
    assert env == {"CUDA_VISIBLE_DEVICES": "2,3", "OMP_NUM_THREADS": "4"}
    assert slot_env(["1"], 8, cores=16) == {"CUDA_VISIBLE_DEVICES": "1", "OMP_NUM_THREADS": "2"}
    assert slot_env([], 32, cores=16)["CUDA_VISIBLE_DEVICES"] == ""
    assert slot_env([], 32, cores=16)["OMP_NUM_THREADS"] == "1"


def test_ray_resources():
    assert task_options(4, 8, 2) == ({"num_gpus": 4, "num_cpus": 1}, 8)
    assert task_options(1, 8, 4) == ({"num_gpus": 0.25, "num_cpus": 1}, 1)
    assert task_options(2, 0, 4) == ({"num_cpus": 2}, 2)
    assert task_options(0, 0, 4) == ({"num_cpus": 1}, 1)


def test_estimate_divides_by_processes_times_efficiency(tmp_path):
    one, wide = expand(load_grid(grid_file(tmp_path, nproc=4))).runs
    assert (nproc_of(one), nproc_of(wide)) == (1, 4)
    wide_as_one = dataclasses.replace(wide, config=dataclasses.replace(wide.config, nproc=0))
    for device, per in (("gpu", 4), ("cpu", 2)):
        est = Estimator(device, per)
        start = estimate.STARTUP_S[device]
        train_one = est.predicted(wide_as_one) - start
        if device == "gpu":  # the single run shares its GPU, the wide one has its own
            train_one *= estimate.pack_gain(per, "gpu") / per
        assert est.predicted(wide) - start == pytest.approx(train_one / (4 * 0.85))
    measured = Estimator("gpu", 1, ddp_efficiency=0.5)
    assert measured.predicted(wide) - 20.0 == pytest.approx(
        (measured.predicted(wide_as_one) - 20.0) / 2.0)
    with pytest.raises(ValueError, match="ddp_efficiency"):
        Estimator("gpu", 1, ddp_efficiency=1.5)


def test_dry_run_states_the_efficiency(tmp_path):
    grid = grid_file(tmp_path, nproc=4)
    said = []
    run_sweep(grid, tmp_path / "runs.jsonl", per_gpu=2, dry_run=True, gpus=["0", "1"],
              echo=said.append)
    text = "\n".join(said)
    assert "data-parallel runs: 1 on 4 GPUs (3.40x one process); efficiency 0.85 (assumed)" \
        in text
    assert "warning: 1 runs need more than the 2 GPUs planned for" in text
    said.clear()
    run_sweep(grid, tmp_path / "runs.jsonl", per_gpu=2, dry_run=True,
              gpus=["0", "1", "2", "3"], ddp_efficiency=0.9, echo=said.append)
    text = "\n".join(said)
    assert "efficiency 0.90 (measured)" in text and "warning" not in text


def test_too_wide_run_is_recorded_failed_not_hung(tmp_path):
    grid = grid_file(tmp_path, nproc=4)
    out = tmp_path / "runs.jsonl"
    small, wide = expand(load_grid(grid)).runs
    # the small run is finished already, so the sweep has only the 4-process run on 2 CPU slots
    out.write_text(json.dumps({"run_id": small.run_id, "N": small.N, "D": small.D, "E": 8,
                               "M": 7, "B": "none", "operands": "none", "loss": 5.0,
                               "status": "ok", "seed": 0}) + "\n")
    result = run_sweep(grid, out, per_gpu=2, progress=False, echo=lambda s: None)
    assert result.written == {"failed": 1} and result.left == 0
    record = json.loads(out.read_text().splitlines()[1])
    assert record["run_id"] == wide.run_id and record["status"] == "failed"
    assert "4 processes need 4 CPU slots" in record["reason"]


@pytest.mark.slow
def test_cpu_sweep_with_a_two_process_run(tmp_path):
    grid = grid_file(tmp_path, nproc=2)
    out = tmp_path / "runs.jsonl"
    plan = expand(load_grid(grid))
    assert [nproc_of(r) for r in plan.runs] == [1, 2]
    result = run_sweep(grid, out, per_gpu=2, progress=False, echo=lambda s: None)
    assert result.written == {"ok": 2} and result.left == 0
    records = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted(r["run_id"] for r in records) == sorted(r.run_id for r in plan.runs)
    by_id = {r["run_id"]: r for r in records}
    assert by_id[plan.runs[0].run_id]["world_size"] == 1
    assert by_id[plan.runs[1].run_id]["world_size"] == 2
    assert all(r["status"] == "ok" and r["loss"] > 0 for r in records)
    configs = sweep_dir(out) / "configs"
    assert json.loads((configs / f"{plan.runs[1].run_id}.json").read_text())["nproc"] == 2
    runs = pytest.importorskip("bayesfp.runs")
    assert len(runs.read_runs(out)) == 2
    # a second sweep has nothing to do
    assert sum(run_sweep(grid, out, per_gpu=2, progress=False,
                         echo=lambda s: None).written.values()) == 0
    assert len(out.read_text().splitlines()) == 2
