"""The real runs made on the GPU machines (sweeps/*.jsonl): they validate against the run schema,
cite the shipped corpus, carry their provenance, and their ids are the trainer's ids of their
configs."""

import dataclasses
import json
from pathlib import Path

import pytest

from bayesfp.runs import read_runs, validate_runs

ROOT = Path(__file__).resolve().parents[1]
TABLES = sorted((ROOT / "sweeps").glob("*.jsonl"))
CORPUS_HASH = json.loads((ROOT / "docs" / "corpus-manifest.json").read_text())["corpus_hash"]


@pytest.mark.parametrize("path", TABLES, ids=[p.name for p in TABLES])
def test_real_run_table_validates_and_cites_the_corpus(path):
    table = read_runs(path)
    _, report = validate_runs(table)
    assert report.n_runs == len(path.read_text().splitlines()) > 0
    assert set(table["corpus_hash"]) == {CORPUS_HASH}
    # every run names the GPU it ran on: the H100 and H200 machines of docs/dataset.md
    assert table["gpu"].str.fullmatch(r"NVIDIA H(100 80GB HBM3|200)").all(), set(table["gpu"])
    assert (table["tokens_per_s"] > 0).all() and (table["wall_s"] > 0).all()
    # baselines record what was trained, not a format they were not trained in
    base = table[table["operands"] == "none"]
    assert (base["format"] == "bf16").all() and (base["B"] == "none").all()


@pytest.mark.parametrize("path", TABLES, ids=[p.name for p in TABLES])
def test_real_run_ids_are_the_trainer_ids_of_their_configs(path):
    pytest.importorskip("torch")
    from training.config import TrainConfig
    from training.record import run_id

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        cfg = json.loads(rec["config"])
        assert set(cfg) <= names, set(cfg) - names
        assert run_id(TrainConfig(**cfg), rec["corpus_hash"]) == rec["run_id"]
