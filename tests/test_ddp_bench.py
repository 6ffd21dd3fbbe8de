"""The scaling table of benchmarks/bench_ddp.py: tokens/s per world size and the efficiency
against K times the one-process eager row."""

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_ddp.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_ddp", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def result(k, rows):
    return {"device": "H100", "world_size": k,
            "rows": [{"size": s, "mode": m, "world_size": k, "tokens_per_s": t}
                     for s, m, t in rows]}


def test_efficiency_table(bench, tmp_path):
    one = [("85m", "eager", 1000.0), ("85m", "graph", 1200.0), ("26m", "eager", 4e3)]
    for k, rows in ((1, one), (2, [("85m", "eager", 1900.0), ("26m", "eager", 6e3)]),
                    (4, [("85m", "eager", 3600.0)])):
        res = result(k, rows)
        if k == 4:  # a failed row is left out
            res["rows"].append({"size": "26m", "mode": "eager", "world_size": 4,
                                "error": "OutOfMemoryError"})
        (tmp_path / f"ddp_w{k}.json").write_text(json.dumps(res))
    lines = bench.table(bench.load([str(tmp_path / "ddp_w*.json")])).splitlines()
    assert lines[0] == ("| device | size | mode | K=1 tok/s | K=2 tok/s | K=4 tok/s | eff K=2 | "
                        "eff K=4 |")
    assert lines[2] == "| H100 | 26m | eager | 4,000 | 6,000 | - | 0.75 | - |"
    assert lines[3] == "| H100 | 85m | eager | 1,000 | 1,900 | 3,600 | 0.95 | 0.90 |"
    assert lines[4] == "| H100 | 85m | graph | 1,200 | - | - | - | - |"
