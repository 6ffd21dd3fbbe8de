"""The data-set docs script: GPU time and runs per GPU-hour read from the runner's log."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "dataset_docs.py"
spec = importlib.util.spec_from_file_location("dataset_docs", SCRIPT)
dataset_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(dataset_docs)

LOG = """510 runs in the grid, 0 finished, 510 to run (local, 6 per GPU on 1 GPUs)
fake-quant kernel ready (4 s)
ok       05e0bf5c06b4 3.4m D=4e+07 e2m6 B=128 w+w_bwd+x_bwd s0 loss 3.4273 162 s
time budget: 491 runs do not fit; stopping
wrote 19 records (ok 19); 491 runs left; 493 s
510 runs in the grid, 19 finished, 491 to run (local, 8 per GPU on 2 GPUs)
wrote 40 records (ok 39, diverged 1); 451 runs left; 600.5 s
510 runs in the grid, 59 finished, 451 to run (local, 8 per GPU on 1 GPUs)
"""


def test_sweep_calls_from_log():
    calls = dataset_docs.sweep_calls(LOG)
    # the last call never finished (no "wrote" line): not counted
    assert [(c["per_gpu"], c["gpus"], c["written"], c["wall_s"]) for c in calls] == [
        (6, 1, 19, 493.0), (8, 2, 40, 600.5)]
    assert calls[1]["statuses"] == "ok 39, diverged 1"


def test_gpu_sweep_script_usage():
    import subprocess

    script = Path(__file__).parents[1] / "scripts" / "gpu_sweep.sh"
    res = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert res.returncode == 2
    assert "GRID TABLE OUTDIR" in res.stdout
    # and the whole script parses
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def _ship_module():
    spec = importlib.util.spec_from_file_location(
        "ship_dataset", Path(__file__).parents[1] / "scripts" / "ship_dataset.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _record(i, model, fmt, loss, **extra):
    import json

    E, M = (8, 7) if fmt == "bf16" else (int(fmt[1]), int(fmt[3]))
    return dict(run_id=f"r{i}", N=1e6, D=1e7, E=E, M=M, B="none" if fmt == "bf16" else "128",
                operands="none" if fmt == "bf16" else "w+w_bwd+x_bwd", format=fmt, loss=loss,
                status="ok", seed=0, gpu="H100", config=json.dumps({"model": model}),
                train_curve=[[1, 100, 7.5], [2, 200, 6.0]], **extra)


def test_ship_refuses_unmet_and_writes_with_override(tmp_path):
    import json

    import pandas as pd

    ship = _ship_module()
    table = tmp_path / "t.jsonl"
    recs = [_record(0, "1.7m", "bf16", 3.6, ptq_loss_e4m3=3.61),
            _record(1, "1.7m", "e4m3", 3.62), _record(2, "3.4m-w512", "e2m1", 3.7)]
    table.write_text("".join(json.dumps(r) + "\n" for r in recs))
    out = tmp_path / "runs.csv"
    assert ship.main([str(table), "--grid", "g.toml", "--out", str(out)]) == 1
    assert not out.exists()
    assert ship.main([str(table), "--grid", "g.toml", "--out", str(out), "--allow-unmet"]) == 0
    df = pd.read_csv(out)
    assert list(df["run_id"]) == ["r0", "r1", "r2"]
    assert list(df["loss"]) == [3.6, 3.62, 3.7]
    assert list(df["group"]) == ["core", "core", "3.4m-w512"]
    assert list(df["model"]) == ["1.7m", "1.7m", "3.4m-w512"]
    assert df["source"].iloc[0] == "real: H100, sweep of g.toml"
    assert json.loads(df["train_curve"].iloc[0]) == [[1, 100, 7.5], [2, 200, 6.0]]
    assert not list(tmp_path.glob(".tmp-*"))


def test_call_and_size_throughput():
    import json

    import pandas as pd

    # two runs of 1e7 and 3e7 tokens, 2e6 total parameters, in a call of 100 s on 2 GPUs
    call = dict(wall_s=100.0, gpus=2, per_gpu=4)
    df = pd.DataFrame(dict(D=[1e7, 3e7], params_total=[2e6, 2e6], N=[1e6, 1e6],
                           status=["ok", "ok"], tokens_per_s=[1e5, 3e5],
                           format=["bf16", "e4m3"],
                           config=[json.dumps({"model": "s"})] * 2))
    tp = dataset_docs.call_throughput(call, df)
    assert tp["tokens_per_gpu_s"] == 4e7 / 200.0
    assert abs(tp["mfu"] - 6 * 2e6 * 4e7 / (200.0 * 989e12)) < 1e-15
    rows = dataset_docs.size_throughput(df, pd.Series([4, 4]))
    assert [(r["kind"], r["runs"], r["gpu_tps"]) for r in rows] == [
        ("bf16", 1, 4e5), ("quantized", 1, 1.2e6)]
    assert abs(rows[1]["mfu"] - 1.2e6 * 6 * 2e6 / 989e12) < 1e-15


def test_plan_times_runs_at_measured_and_interpolated_rates():
    from types import SimpleNamespace as Run

    rates = {"bf16": {1e6: 4e6, 4e6: 1e6}, "quantized": {1e6: 2e6, 4e6: 1e6}}
    # halfway in log N between two sizes: the geometric mean of their rates
    assert dataset_docs.rate_at(rates["bf16"], 2e6) == pytest.approx(2e6, rel=1e-12)
    assert dataset_docs.rate_at(rates["bf16"], 1e7) == pytest.approx(1e6)  # beyond: nearest
    a = Run(run_id="a", N=1e6, D=8e6, quantized=False)   # 2 s
    b = Run(run_id="b", N=1e6, D=8e6, quantized=True)    # 4 s
    c = Run(run_id="c", N=4e6, D=3e6, quantized=True)    # 3 s
    rows = dataset_docs.plan_rows({"one": [a, b], "two": [b, c]}, {"a"}, rates)
    assert [r["block"] for r in rows] == ["one", "two", "all"]
    assert (rows[0]["runs"], rows[0]["left"]) == (2, 1)
    assert rows[0]["gpu_s"] == pytest.approx(6.0) and rows[0]["gpu_s_left"] == pytest.approx(4.0)
    assert (rows[1]["runs"], rows[1]["tokens"], rows[1]["gpu_s"]) == (1, 3e6, pytest.approx(3.0))
    assert (rows[2]["runs"], rows[2]["left"]) == (3, 2)
    assert rows[2]["gpu_s_left"] == pytest.approx(7.0)
