"""Data-parallel training on the CPU (gloo): a run split over two processes is the single-process
run, and the splits that would change what a quantized run computes are refused.

Tolerance: both runs see the same global batches, weights and LR schedule in fp32; only the order
of the gradient sum (two half-batch means averaged instead of one mean) and of the validation sum
differ, rounding errors of ~1e-7 relative per step that stay far below 1e-5 over a short run
(measured: 2e-8). A fake-quantized run amplifies them: once two weights differ by one ulp, a
rounding decision can go to the neighbouring code, so quantized runs get 1e-4 (measured: 2e-5);
runs with another seed differ by ~1e-2.
"""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from training import ddp  # noqa: E402
from training.config import TrainConfig, resolve  # noqa: E402
from training.train import train  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "training" / "data" / "sample"
RTOL = 1e-5
RTOL_QUANT = 1e-4


def tiny(**kw):
    base = dict(model="test", data=str(SAMPLE), seq_len=64, batch_size=8, tokens=64 * 8 * 24,
                lr=3e-3, eval_tokens=64 * 40, eval_points=2, check_every=6, ptq_formats="",
                device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def single(cfg):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train(cfg, progress=False)
    finally:
        torch.set_num_threads(n)


def _close(a, b):
    return abs(a - b) <= RTOL * abs(a)


def _same_run(one, two):
    assert one["status"] == two["status"] == "ok"
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert one["run_id"] == two["run_id"]
    c1, c2 = json.loads(one["config"]), json.loads(two["config"])
    assert c1 | {"out": "", "nproc": 2} == c2 | {"out": ""}  # nproc: as it ran
    for key in ("N", "D", "steps", "steps_done", "eval_tokens"):
        assert one[key] == two[key], key
    assert _close(one["loss"], two["loss"]), (one["loss"], two["loss"])
    for a, b in zip(one["val_curve"] + one["train_curve"], two["val_curve"] + two["train_curve"],
                    strict=True):
        assert a[:2] == b[:2] and _close(a[2], b[2]), (a, b)
    assert one["train_curve"][-1][2] < one["train_curve"][0][2] - 0.5  # it learned something


def test_torchrun_two_processes_match_one(tmp_path):
    cfg = tiny(ptq_formats="e4m3")
    one = single(cfg)
    flags = [f"--{k}={v}" for k, v in dict(model=cfg.model, data=cfg.data, seq_len=cfg.seq_len,
                                            batch_size=cfg.batch_size, tokens=cfg.tokens,
                                            lr=cfg.lr, eval_tokens=cfg.eval_tokens,
                                            eval_points=cfg.eval_points,
                                            check_every=cfg.check_every, ptq_formats="e4m3",
                                            device="cpu").items()]
    out, table = tmp_path / "rec" / "two.json", tmp_path / "runs.jsonl"
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for key in ddp.NO_MULTICAST:
        env.pop(key, None)
    proc = subprocess.run([sys.executable, "-m", "training", "train", "--nproc=2", "--quiet",
                           "--out", str(out), "--append", str(table), *flags],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("record written to") == 1  # rank 0 alone prints
    assert os.listdir(out.parent) == ["two.json"]
    two = json.loads(out.read_text())
    _same_run(one, two)
    assert _close(one["ptq_loss_e4m3"], two["ptq_loss_e4m3"])
    lines = table.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["run_id"] == two["run_id"]
    pd = pytest.importorskip("pandas")
    runs = pytest.importorskip("bayesfp.runs")
    frame, report = runs.validate_runs(pd.DataFrame.from_records([two]))
    assert report.n_ok == 1 and frame["world_size"][0] == 2


def _worker(rank, port, cfg, path):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    record = train(replace(cfg, out=str(path) if rank == 0 else ""), progress=False)
    assert record["world_size"] == 2


def test_spawned_quantized_block_run_matches_one(tmp_path):
    # block scales of 32 inside each process's 4 x 64 tokens: the same fake-quant as one process
    cfg = tiny(format="e4m3", granularity="32", operands="all", backend="reference",
               tokens=64 * 8 * 12, eval_points=1)
    one = single(cfg)
    path = tmp_path / "two.json"
    torch.multiprocessing.start_processes(_worker, args=(ddp.free_port(), cfg, path), nprocs=2,
                                          start_method="spawn")
    two = json.loads(path.read_text())
    assert two["B"] == 32 and two["operands"] == one["operands"] == "x+w+dy+w_bwd+dy2+x_bwd"
    assert one["run_id"] == two["run_id"] and two["world_size"] == 2
    # the first steps agree to the last bits; later a one-ulp weight difference flips a rounding
    # decision to the neighbouring code now and then, so the runs drift by ~1e-5 (seeds: ~1e-2)
    curves = [(a[2], b[2]) for a, b in zip(one["train_curve"], two["train_curve"], strict=True)]
    assert len(curves) == 12 and all(abs(a - b) <= 1e-6 * a for a, b in curves[:3]), curves
    assert all(abs(a - b) <= RTOL_QUANT * a for a, b in curves), curves
    assert abs(one["loss"] - two["loss"]) <= RTOL_QUANT * one["loss"]


@pytest.mark.parametrize("kw, message", [
    (dict(batch_size=6), "batch_size: 6 sequences do not split over 4"),
    (dict(format="e4m3", granularity="tensor", operands="x"), "tensor-wise scales of x"),
    (dict(format="e4m3", granularity="channel", operands="w+w_bwd+x_bwd"),
     "channel-wise scales of x_bwd"),
    (dict(format="e4m3", granularity="32", operands="dy2", seq_len=8),
     "block size 32 does not divide the 16 tokens"),
    (dict(format="e4m3", granularity="32", operands="dy", rounding="stochastic"),
     "stochastic rounding of dy"),
])
def test_splits_that_change_the_run_are_refused(kw, message):
    cfg = resolve(tiny(**kw), False)
    with pytest.raises(ValueError, match=message):
        ddp.check_split(cfg, 4)
    ddp.check_split(cfg, 1)  # one process is always fine


@pytest.mark.parametrize("kw", [
    dict(),  # baseline
    dict(format="e4m3", granularity="channel", operands="x+w+dy+w_bwd"),  # per-token rows
    dict(format="e4m3", granularity="tensor", operands="w+w_bwd"),  # weights are replicated
    dict(format="e2m1", granularity="32", operands="all"),  # 32 | 2 x 64 tokens per process
    dict(format="e2m1", granularity="32", operands="w", rounding="stochastic"),
])
def test_splits_that_keep_the_run_are_allowed(kw):
    assert ddp.split_problems(resolve(tiny(**kw), False), 4) == []


def test_local_rows_tile_the_batch():
    rows = [ddp.local_rows(32, ddp.Dist(r, 4, r)) for r in range(4)]
    assert [(s.start, s.stop) for s in rows] == [(0, 8), (8, 16), (16, 24), (24, 32)]


def test_env_and_command():
    assert ddp.from_env({}) == ddp.Dist()
    d = ddp.from_env({"WORLD_SIZE": "8", "RANK": "9", "LOCAL_RANK": "1"})
    assert (d.rank, d.world_size, d.local_rank, d.main) == (9, 8, 1, False)
    env = ddp.no_multicast_env({"NCCL_NVLS_ENABLE": "1", "PATH": "/bin"})
    assert env["NCCL_NVLS_ENABLE"] == "1" and env["PATH"] == "/bin"
    assert env["TORCH_SYMM_MEM_DISABLE_MULTICAST"] == "1" and env["NVSHMEM_DISABLE_NVLS"] == "1"
    cmd = ddp.torchrun_command(4, ["train", "--model=85m"], port=29511)
    assert cmd[1:] == ["-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=4",
                       "--master_addr=127.0.0.1", "--master_port=29511", "-m", "training",
                       "train", "--model=85m"]
    with pytest.raises(ValueError, match="nproc: must be >= 1"):
        ddp.torchrun_command(0, [])


@pytest.mark.parametrize("world, args, message", [
    ("2", ["--nproc=4"], "nproc: 4 does not match the 2 processes of this torchrun"),
    ("1", ["--nproc=3"], "batch_size: 8 sequences do not split over 3 processes"),
    ("1", ["--nproc=2", "--format=e4m3", "--granularity=channel"],
     "granularity: channel-wise scales of x_bwd"),
    ("1", ["--nproc=-1"], "nproc: must be >= 0"),
])
def test_cli_nproc_errors_once(monkeypatch, capsys, world, args, message):
    from training.cli import main

    monkeypatch.setenv("WORLD_SIZE", world)
    with pytest.raises(SystemExit) as exc:
        main(["train", "--model=test", "--device=cpu", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and message in err, err


def test_train_refuses_nproc_without_torchrun():
    with pytest.raises(ValueError, match="nproc: 2 processes are started by"):
        train(tiny(nproc=2), progress=False)
