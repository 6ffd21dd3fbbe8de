"""The real run data set that ships as the default data (``bayesfp/data/runs.csv``): its counts
meet the requirements of docs/dataset.md, and every run says where it comes from."""

import json
from pathlib import Path

from bayesfp.datasets import REAL_RUNS, data_path, default_runs_path
from bayesfp.runs import read_runs, validate_runs
from bayesfp.runs.coverage import coverage, unmet

REAL = data_path(REAL_RUNS)
MANIFEST = Path(__file__).resolve().parents[1] / "docs" / "corpus-manifest.json"


def test_shipped_runs_meet_every_requirement():
    assert REAL.exists(), "bayesfp/data/runs.csv is missing"
    clean, report = validate_runs(read_runs(REAL), source=str(REAL))
    missing = [f"{c.name}: {c.found}" for c in unmet(coverage(clean))]
    assert missing == []
    assert clean["source"].astype(str).str.startswith("real:").all()
    assert report.n_runs >= 400


def test_shipped_runs_are_unique_finished_and_on_the_documented_corpus():
    table = read_runs(REAL)
    assert table["run_id"].is_unique
    assert (table["status"].astype(str) == "ok").all()  # docs/dataset.md: none diverged or failed
    corpus_hash = json.loads(MANIFEST.read_text())["corpus_hash"]
    assert set(table["corpus_hash"].astype(str)) == {corpus_hash}
    assert table["epochs"].astype(float).max() <= 2.05
    assert set(table["gpu"].astype(str)) <= {"NVIDIA H100 80GB HBM3", "NVIDIA H200"}


def test_shipped_runs_are_the_default():
    assert default_runs_path() == REAL
