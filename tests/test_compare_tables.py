"""scripts/compare_tables.py: the same runs in two tables, joined on run_id."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).parents[1]
SCRIPT = ROOT / "scripts" / "compare_tables.py"
spec = importlib.util.spec_from_file_location("compare_tables", SCRIPT)
compare_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_tables)

# real records (schema-valid): 3.4m at 40M tokens, BF16 in three seeds and four formats
RECORDS = [json.loads(line) for line in
           (ROOT / "sweeps" / "fp-h100.jsonl").read_text().splitlines()[:15]]


def _write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_join_matches_runs_by_id_and_measures_the_difference(tmp_path):
    from bayesfp.runs import read_runs

    again = [dict(r, loss=r["loss"] + d, gpu="NVIDIA H200")
             for r, d in zip(RECORDS[2:5], (0.004, -0.002, 0.0), strict=True)]
    other = dict(RECORDS[0], run_id="ffffffffffff")  # not in the first table
    a = read_runs(_write(tmp_path / "a.jsonl", RECORDS))
    b = read_runs(_write(tmp_path / "b.jsonl", again + [other]))
    j = compare_tables.join(a, b)
    assert list(j["run_id"]) == [r["run_id"] for r in RECORDS[2:5]]
    np.testing.assert_allclose(j["diff"], [0.004, -0.002, 0.0], atol=1e-12)
    assert set(j["gpu_a"]) == {"NVIDIA H100 80GB HBM3"} and set(j["gpu_b"]) == {"NVIDIA H200"}


def test_seed_spread_is_the_sd_over_seeds():
    from bayesfp.runs import validate_runs

    table, _ = validate_runs(__import__("pandas").DataFrame(RECORDS))
    base = [r["loss"] for r in RECORDS if r["format"] == "bf16"]
    assert len(base) == 3  # the only configuration with several seeds among these records
    assert np.isclose(compare_tables.seed_spread(table), np.std(base, ddof=1), rtol=1e-12)


def test_command_prints_a_table_and_refuses_disjoint_tables(tmp_path):
    a = _write(tmp_path / "a.jsonl", RECORDS[:4])
    b = _write(tmp_path / "b.jsonl", [dict(RECORDS[1], loss=RECORDS[1]["loss"] + 0.01)])
    out = subprocess.run([sys.executable, str(SCRIPT), str(a), str(b)], capture_output=True,
                         text=True, check=True).stdout
    assert "+0.0100" in out and "1 runs in both" in out
    c = _write(tmp_path / "c.jsonl", RECORDS[5:6])
    res = subprocess.run([sys.executable, str(SCRIPT), str(a), str(c)], capture_output=True,
                         text=True)
    assert res.returncode != 0 and "no finished run in common" in res.stderr
    res = subprocess.run([sys.executable, str(SCRIPT), str(a), str(tmp_path / "none.jsonl")],
                         capture_output=True, text=True)
    assert res.returncode != 0 and "no such file" in res.stderr
