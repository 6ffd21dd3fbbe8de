"""The data-set docs script: GPU time and runs per GPU-hour read from the runner's log."""

import importlib.util
from pathlib import Path

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
