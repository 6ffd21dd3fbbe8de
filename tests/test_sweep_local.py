"""The local executor on the CPU with tiny runs: SIGKILL of the sweep or of one run, resume,
retry of failed runs, time limits, the time budget and the dry-run plan."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")

from sweep_tiny import TINY_FIXED  # noqa: E402

from training.sweep import estimate  # noqa: E402
from training.sweep.grid import expand, load_grid  # noqa: E402
from training.sweep.ledger import scan, sweep_dir  # noqa: E402
from training.sweep.runner import run_sweep  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = TINY_FIXED + """granularity = "32"

[axes]
format = {formats}
"""


def tiny_grid(tmp_path, formats):
    path = tmp_path / "grid.toml"
    path.write_text(TINY.format(formats=json.dumps(formats)))
    return path


def children(marker):
    """PIDs of live ``training train`` processes whose command line mentions ``marker``."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = (d / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if marker in cmd and " train " in cmd and state != "Z":
            pids.append(int(d.name))
    return pids


def wait_for(cond, timeout, what):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def start_runner(grid, out, *flags):
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "training", "sweep", str(grid), "--out",
                             str(out), "--quiet", *flags], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def lines_of(out):
    return [json.loads(x) for x in Path(out).read_text().splitlines()] if Path(out).exists() \
        else []


@pytest.mark.slow
def test_sigkill_of_the_sweep_then_resume(tmp_path):
    grid = tiny_grid(tmp_path, ["bf16", "e4m3", "e2m1"])
    out = tmp_path / "runs.jsonl"
    plan_ids = {r.run_id for r in expand(load_grid(grid)).runs}
    assert len(plan_ids) == 3
    runner = start_runner(grid, out, "--per-gpu", "2")
    try:
        wait_for(lambda: out.exists() and out.read_bytes().count(b"\n") >= 1
                 and children(str(tmp_path)), 180, "a first record and a run in flight")
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait()
    finally:
        if runner.poll() is None:
            runner.kill()
    # the runs in flight die with the sweep (PR_SET_PDEATHSIG)
    wait_for(lambda: not children(str(tmp_path)), 20, "orphaned runs to die")
    first = lines_of(out)
    assert 1 <= len(first) < 3
    # and a write cut short by the crash leaves a torn line
    with open(out, "ab") as f:
        f.write(b'{"run_id": "' + first[0]["run_id"].encode() + b'", "N": 26')
    said = []
    result = run_sweep(grid, out, per_gpu=2, progress=False, echo=said.append)
    assert result.repaired_bytes > 0 and result.left == 0
    # a run that ended between the kill of the sweep and its own is recovered, not rerun
    assert result.harvested + sum(result.written.values()) == 3 - len(first)
    records = lines_of(out)
    ids = [r["run_id"] for r in records]
    assert sorted(ids) == sorted(plan_ids)  # each run exactly once
    assert records[:len(first)] == first  # the old lines untouched
    assert all(r["status"] == "ok" and r["loss"] > 0 for r in records)
    runs = pytest.importorskip("bayesfp.runs")
    assert len(runs.read_runs(out)) == 3
    # a third start finds nothing to do
    result = run_sweep(grid, out, per_gpu=2, progress=False, echo=said.append)
    assert sum(result.written.values()) == 0 and len(lines_of(out)) == 3


@pytest.mark.slow
def test_sigkill_of_one_run_is_recorded_failed_then_retried(tmp_path):
    grid = tiny_grid(tmp_path, ["e4m3"])
    out = tmp_path / "runs.jsonl"
    runner = start_runner(grid, out, "--per-gpu", "1")
    try:
        victim = wait_for(lambda: children(str(tmp_path)), 60, "a run to start")[0]
        cmd = Path(f"/proc/{victim}/cmdline").read_bytes().split(b"\0")
        victim_id = Path(cmd[cmd.index(b"--config") + 1].decode()).stem
        os.kill(victim, signal.SIGKILL)
        runner.communicate(timeout=120)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0
    records = {r["run_id"]: r for r in lines_of(out)}
    assert list(records) == [victim_id] and len(lines_of(out)) == 1
    failed = records[victim_id]
    assert failed["status"] == "failed" and "killed by SIGKILL" in failed["reason"]
    assert failed["loss"] is None and failed["N"] == 26784 and failed["D"] == 2048
    runs = pytest.importorskip("bayesfp.runs")
    assert list(runs.read_runs(out)["status"]) == ["failed"]
    # without --retry-failed a failed run is finished; with it, it runs again, once
    said = []
    assert run_sweep(grid, out, progress=False, echo=said.append).left == 0
    assert len(lines_of(out)) == 1
    run_sweep(grid, out, retry_failed=True, progress=False, echo=said.append)
    (after,) = lines_of(out)
    assert after["run_id"] == victim_id and after["status"] == "ok"
    retried = (sweep_dir(out) / "retried.jsonl").read_text().splitlines()
    assert [json.loads(x)["run_id"] for x in retried] == [victim_id]


@pytest.mark.slow
def test_run_time_limit_and_retries(tmp_path, capsys):
    grid = tiny_grid(tmp_path, ["e4m3"])
    out = tmp_path / "runs.jsonl"
    result = run_sweep(grid, out, run_timeout=0.5, retries=1, progress=False,
                       echo=lambda s: None)
    (record,) = lines_of(out)
    assert record["status"] == "failed" and record["reason"].startswith("time limit of 0.5 s")
    assert result.written == {"failed": 1}
    err = capsys.readouterr().err
    assert err.count("retry 1/1") == 1 and "failed   " in err
    assert not children(str(tmp_path))


def test_budget_nothing_fits(tmp_path):
    grid = tiny_grid(tmp_path, ["bf16", "e4m3"])
    out = tmp_path / "runs.jsonl"
    t0 = time.monotonic()
    result = run_sweep(grid, out, max_minutes=0.01, progress=False, echo=lambda s: None)
    assert result.left == 2 and not lines_of(out) and time.monotonic() - t0 < 15


@pytest.mark.slow
def test_budget_deadline_stops_runs_unrecorded(tmp_path, monkeypatch):
    # predictions of ~0 s: both runs start, and the 3 s deadline stops them mid-run
    monkeypatch.setattr(estimate, "STARTUP_S", {"gpu": 0.01, "cpu": 0.01})
    monkeypatch.setattr(estimate, "CPU_FLOPS", 1e18)
    grid = tiny_grid(tmp_path, ["bf16", "e4m3"])
    out = tmp_path / "runs.jsonl"
    t0 = time.monotonic()
    result = run_sweep(grid, out, per_gpu=2, max_minutes=0.05, progress=False,
                       echo=lambda s: None)
    assert time.monotonic() - t0 < 15
    assert result.left == 2 and not lines_of(out)
    wait_for(lambda: not children(str(tmp_path)), 10, "stopped runs to die")


def test_dry_run_plan(tmp_path):
    grid = ROOT / "grids" / "cpu-test.toml"
    out = tmp_path / "runs.jsonl"
    plan = expand(load_grid(grid))
    done = plan.runs[0]
    out.write_text(json.dumps({"run_id": done.run_id, "N": done.N, "D": done.D, "E": 8,
                               "M": 7, "B": "none", "operands": "none", "loss": 5.0,
                               "status": "ok", "seed": 0}) + "\n")
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"rows": [
        {"size": "test", "mode": "bf16 graph", "tokens_per_s": 1e6},
        {"size": "test", "mode": "bf16 eager", "tokens_per_s": 1e5}]}))
    said = []
    result = run_sweep(grid, out, per_gpu=4, dry_run=True, throughput=bench, gpus=["0"],
                       echo=said.append)
    text = "\n".join(said)
    assert result.left == 16 and not sweep_dir(out).exists()
    assert "17 runs (19 grid points, 2 duplicates collapsed)" in text
    assert "done: 1 (ok 1); to run: 16" in text
    assert "format      bf16 4  e2m1 2  e3m2 4  e4m3 7" in text
    assert "measured for 3 runs" in text and "assumed for 13 runs" in text  # bf16 measured
    assert "on 1 GPU x 4 runs each" in text and "4 runs per GPU give 2.00x" in text
    assert scan(out)[0][0]["run_id"] == done.run_id  # a dry run writes nothing
    for bad, msg in [({"tokens_per_s": {"test": {"fp8": 1}}}, "class 'fp8'"), ([], "neither")]:
        bench.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=msg):
            run_sweep(grid, out, dry_run=True, throughput=bench, echo=said.append)


def test_fits_keeps_a_margin_before_the_deadline():
    # a run predicted to take 100 s starts 116 s before the deadline, not 110 s before it
    from training.sweep.runner import FIT_MARGIN, Context

    class Fixed:
        def seconds(self, run):
            return 100.0

    assert FIT_MARGIN == 1.15
    now = time.monotonic()
    assert Context(None, Fixed(), None, deadline=now + 116.0).fits(None)
    assert not Context(None, Fixed(), None, deadline=now + 110.0).fits(None)
    assert Context(None, Fixed(), None, deadline=None).fits(None)
