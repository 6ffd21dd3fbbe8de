"""The trainer on CPU: a tiny model learns, records are complete, seeds reproduce, divergence and
PTQ are recorded, records are written atomically and appended line by line."""

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training.config import TrainConfig, resolve  # noqa: E402
from training.record import REQUIRED, append_record, read_record, run_id  # noqa: E402
from training.train import lr_schedule, synthetic_tokens, train, window_starts  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "training" / "data" / "sample"


@pytest.fixture(autouse=True)
def _one_thread():
    # two cores shared with other jobs: one thread is many times faster than two here
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def data():
    return synthetic_tokens(vocab_size=256, n_train=100_000, n_val=10_000, seed=0)


def tiny(**kw):
    base = dict(model="test", seq_len=64, batch_size=8, tokens=64 * 8 * 48, lr=1e-2,
                eval_tokens=64 * 32, eval_points=3, check_every=8, ptq_formats="", device="cpu")
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def run(data):
    torch.set_num_threads(1)
    return train(tiny(ptq_formats="e5m10,e2m1", tokens=64 * 8 * 120, check_every=20), data,
                 progress=False)


def _validate(records):
    pd = pytest.importorskip("pandas")
    runs = pytest.importorskip("bayesfp.runs")
    rows = [json.loads(json.dumps(r, allow_nan=True)) for r in records]
    table, report = runs.validate_runs(pd.DataFrame.from_records(rows))
    return table, report


def test_loss_decreases_and_record_complete(run):
    assert run["status"] == "ok"
    for key in REQUIRED:
        assert key in run, key
    for key in ("format", "epochs", "tokens_per_s", "wall_s", "gpu", "torch_version",
                "cuda_version", "code_rev", "corpus_hash", "config", "ptq_loss_e5m10",
                "ptq_loss_e2m1", "train_curve", "val_curve", "C"):
        assert key in run, key
    assert (run["E"], run["M"], run["B"], run["operands"], run["format"]) == (
        8, 7, "none", "none", "bf16")
    assert run["D"] == 64 * 8 * 120 and run["steps"] == 120 and run["steps_done"] == 120
    assert run["N"] == 26784 + 0  # the "test" size, see test_model_gpt.test_n_by_hand
    curve = [p[2] for p in run["train_curve"]]
    assert len(curve) == 16 and curve[-1] < curve[0] - 2.0
    vals = [p[2] for p in run["val_curve"]]
    assert len(vals) == 3 and vals[-1] < vals[0] and vals[-1] == run["loss"]
    # ln 256 = 5.55 at the start; the data's entropy is ln 4 = 1.39
    assert run["loss"] < 2.5
    cfg = json.loads(run["config"])
    assert cfg["model"] == "test" and cfg["lr"] == 1e-2 and cfg["device"] == "cpu"
    table, report = _validate([run])
    assert report.n_ok == 1 and table["format"][0] == "bf16"


def test_same_seed_same_bits(run, data):
    again = train(tiny(ptq_formats="e5m10,e2m1", tokens=64 * 8 * 120, check_every=20), data,
                  progress=False)
    assert again["loss"] == run["loss"]
    assert again["train_curve"] == run["train_curve"]
    assert again["ptq_loss_e2m1"] == run["ptq_loss_e2m1"]
    assert again["run_id"] == run["run_id"]
    other = train(tiny(seed=1, tokens=64 * 8 * 8, eval_points=1, ptq_formats=""), data,
                  progress=False)
    assert other["run_id"] != run["run_id"]
    assert other["train_curve"][0][2] != run["train_curve"][0][2]


def test_ptq(run):
    # E5M10 keeps about 3 decimal digits per weight: the loss barely moves; E2M1 hurts
    assert abs(run["ptq_loss_e5m10"] - run["loss"]) < 1e-4
    assert run["ptq_loss_e2m1"] > run["loss"] + 0.003


def test_ptq_restores_weights(data):
    from training.ptq import ptq_losses
    from training.train import Trainer

    tr = Trainer(resolve(tiny(tokens=64 * 8 * 2), False), data)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    base = tr.evaluate()
    out = ptq_losses(tr.model, tr.evaluate, ["e2m1", "e3m2"], "channel")
    assert set(out) == {"e2m1", "e3m2"} and out["e2m1"] != base
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert tr.evaluate() == base


def test_divergence_recorded(data, tmp_path):
    out = tmp_path / "div.json"
    rec = train(tiny(lr=1e3, warmup_frac=0.0, out=str(out), ptq_formats="e2m1"), data,
                progress=False)
    assert rec["status"] == "diverged"
    assert isinstance(rec["diverged_step"], int) and 0 <= rec["diverged_step"] < 48
    assert rec["steps_done"] < 48 and rec["reason"]
    assert "ptq_loss_e2m1" not in rec
    written = read_record(out)
    assert written["status"] == "diverged" and written["diverged_step"] == rec["diverged_step"]
    _, report = _validate([written])
    assert report.diverged == (written["run_id"],)


def test_check_divergence():
    from training.train import check_divergence

    ok = np.array([5.0, 4.9, 4.8])
    assert check_divergence(ok, 10, 5.5, 5, 1.0) == (None, None)
    step, why = check_divergence(np.array([4.0, np.nan, np.inf]), 10, 5.5, 5, 1.0)
    assert step == 11 and "non-finite" in why
    step, why = check_divergence(np.array([6.4, 6.7, 6.9]), 10, 5.5, 5, 1.0)
    assert step == 12 and "above the first step's 5.500 + 1.0" in why
    # inside the warm-up only non-finite losses count
    assert check_divergence(np.array([6.4, 6.7, 6.9]), 3, 5.5, 5, 1.0) == (None, None)
    assert check_divergence(np.array([6.4, 6.5]), 10, 5.5, 5, 1.0) == (None, None)


def test_out_of_memory_gives_failed_record(data, tmp_path, monkeypatch):
    import training.train as tt

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 1 PiB")

    monkeypatch.setattr(tt, "Trainer", oom)
    rec = train(tiny(out=str(tmp_path / "{run_id}.json")), data, progress=False)
    assert rec["status"] == "failed" and rec["reason"].startswith("CUDA out of memory")
    assert math.isnan(rec["loss"]) and rec["N"] == 26784 and rec["steps_done"] == 0
    written = read_record(tmp_path / f"{rec['run_id']}.json")
    assert written["loss"] is None
    _, report = _validate([written])
    assert report.failed == (rec["run_id"],)


def test_quantized_run_record(data):
    pytest.importorskip("training.quant.linear")
    rec = train(tiny(format="e4m3", granularity="32", operands="x_bwd+w+w_bwd",
                     tokens=64 * 8 * 16, check_every=16, eval_points=1), data, progress=False)
    assert rec["status"] == "ok"
    assert (rec["E"], rec["M"], rec["B"], rec["operands"], rec["format"]) == (
        4, 3, 32, "w+w_bwd+x_bwd", "e4m3")
    assert rec["convention"] == "finite" and rec["rounding"] == "nearest_even"
    table, _ = _validate([rec])
    assert table["granularity"][0] == "block" and int(table["block"][0]) == 32


def test_write_and_append(run, tmp_path):
    from training.record import write_record

    path = tmp_path / "sub" / "rec.json"
    write_record(path, run)
    assert read_record(path)["loss"] == run["loss"]
    assert [p.name for p in path.parent.iterdir()] == ["rec.json"]  # no temporary left
    jl = tmp_path / "runs.jsonl"
    append_record(jl, run)
    append_record(jl, {**run, "run_id": "other", "loss": float("nan"), "status": "failed"})
    lines = jl.read_text().splitlines()
    assert len(lines) == 2
    second = json.loads(lines[1])
    assert second["loss"] is None and second["status"] == "failed"
    with pytest.raises(ValueError, match="missing required field"):
        append_record(jl, {"run_id": "x"})
    pytest.importorskip("bayesfp.runs")
    from bayesfp.runs import read_runs

    table = read_runs(jl)
    assert list(table["run_id"]) == [run["run_id"], "other"]


def test_run_id_ignores_paths_and_device():
    a = resolve(tiny(), False)
    assert run_id(a, "h") == run_id(replace(a, out="x.json", device="cuda", data="elsewhere",
                                            cuda_graph=False, group="g"), "h")
    assert run_id(a, "h") != run_id(replace(a, lr=1e-4), "h")
    assert run_id(a, "h") != run_id(a, "other-corpus")
    assert len(run_id(a, "h")) == 12


def test_run_id_unchanged_by_unset_pool():
    # the id of a config is the sha256 of its fields (less NOT_IN_ID) plus the corpus hash; an
    # unset train_pool is left out, so ids of runs made before the field existed still match
    import dataclasses
    import hashlib

    from training.config import NOT_IN_ID
    from training.record import canonical_json

    a = resolve(tiny(), False)
    d = {k: v for k, v in dataclasses.asdict(a).items()
         if k not in NOT_IN_ID and k != "train_pool"}
    d["corpus_hash"] = "h"
    assert run_id(a, "h") == hashlib.sha256(canonical_json(d).encode()).hexdigest()[:12]
    assert run_id(replace(a, train_pool=5000), "h") != run_id(a, "h")


def test_train_pool_limits_the_windows(data):
    # windows of a pooled run start inside the pool (every window's last token < pool) and the
    # record counts epochs over the pool
    from training.train import Trainer

    cfg = resolve(tiny(train_pool=2000), False)
    tr = Trainer(cfg, data)
    ends = tr.starts.numpy() + cfg.seq_len + 1
    assert tr.n_train == 2000 and ends.max() <= 2000
    rec = train(replace(cfg, tokens=64 * 8 * 4, eval_points=1), data, progress=False)
    assert rec["train_pool"] == 2000
    assert rec["epochs"] == pytest.approx(64 * 8 * 4 / 2000)
    with pytest.raises(ValueError, match="train_pool: 10000000 tokens, more than"):
        Trainer(resolve(tiny(train_pool=10_000_000), False), data)
    with pytest.raises(ValueError, match="train_pool: must be 0 or at least"):
        resolve(tiny(train_pool=10), False)


def test_lr_schedule():
    cfg = TrainConfig(lr=1.0, warmup_frac=0.1, min_lr_frac=0.1)
    lr = lr_schedule(cfg, 100)
    assert lr.shape == (100,)
    np.testing.assert_allclose(lr[:10], np.arange(1, 11) / 10)
    assert lr[10] == 1.0 and abs(lr[-1] - 0.1) < 1e-12
    assert np.all(np.diff(lr[10:]) <= 0)
    np.testing.assert_allclose(lr[55], 0.1 + 0.45 * (1 + math.cos(math.pi * 45 / 89)))


def test_window_starts():
    a = window_starts(1000, 64, 5, 4, seed=7)
    assert a.shape == (5, 4) and a.min() >= 0 and a.max() <= 1000 - 65
    assert np.array_equal(a, window_starts(1000, 64, 5, 4, seed=7))
    assert not np.array_equal(a, window_starts(1000, 64, 5, 4, seed=8))
    with pytest.raises(ValueError, match="data: train split"):
        window_starts(60, 64, 1, 1, 0)


@pytest.fixture
def shard_dir(tmp_path, data):
    """The corpus sample when it is there, else the synthetic tokens written as shards."""
    if SAMPLE.exists():
        return SAMPLE
    from training.corpus.shards import write_shard

    d = tmp_path / "shards"
    d.mkdir()
    write_shard(d / "train.bin", data.train)
    write_shard(d / "val.bin", data.val)
    (d / "manifest.json").write_text(json.dumps({"tokenizer": {"vocab_size": data.vocab_size}}))
    return d


def test_cli_train(shard_dir, tmp_path, capsys):
    pytest.importorskip("training.corpus.shards")
    from training.cli import main
    from training.corpus.shards import TokenShards

    out = tmp_path / "rec.json"
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"model": "test", "seq_len": 64, "batch_size": 8, "lr": 1e-2,
                               "tokens": 64 * 8 * 24, "eval_tokens": 4096}))
    with pytest.raises(SystemExit) as exc:
        main(["train", "--config", str(cfg), f"--data={shard_dir}", "--eval_points=1",
              "--ptq_formats", "e3m2", "--device=cpu", "--quiet", "--out", str(out),
              "--append", str(tmp_path / "runs.jsonl")])
    assert exc.value.code in (0, None)
    rec = read_record(out)
    assert rec["status"] == "ok" and math.isfinite(rec["loss"]) and rec["D"] == 64 * 8 * 24
    assert rec["train_curve"][-1][2] < rec["train_curve"][0][2]
    assert rec["corpus_hash"] == TokenShards.open(shard_dir).corpus_hash
    assert json.loads(rec["config"])["data"] == str(shard_dir)
    printed = capsys.readouterr().out
    assert rec["run_id"] in printed and "PTQ  e3m2" in printed and str(out) in printed
    _validate([rec])
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["run_id"] == rec["run_id"]
