"""Run table files: CSV, Parquet and JSONL read back to the same validated frame."""

import json

import numpy as np
import pandas as pd
import pytest

from bayesfp.errors import RunTableError
from bayesfp.runs import read_runs, write_runs

GOOD = "\n".join([
    "run_id,N,D,E,M,B,operands,loss,status,seed,convention,rounding,diverged_step,"
    "ptq_loss_e2m1,torch_version,config,group,lab_note,batch",
    "007,85000000,1e9,4,3,128,w+w_bwd+x_bwd,3.5123456789012345,ok,0,finite,nearest_even,,"
    '3.9,2.10,"{""lr"": 0.0003}",llama,first,8',
    "r2,85000000,2.5e9,4,3,channel,w,3.42,ok,0,finite,nearest_even,,,2.10,,llama,,16",
    "r3,154000000,2e9,8,7,none,none,3.2,ok,1,,,,,2.10,,llama,third,8",
    "r4,154000000,2e9,2,1,32,dy2,,diverged,1,finite,stochastic,812,,2.13,,gpt,fourth,8",
    "r5,154000000,4e9,2,1,tensor,dy2,inf,failed,2,ieee,nearest_even,,,2.13,,gpt,fifth,8",
]) + "\n"


@pytest.fixture
def good_csv(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text(GOOD)
    return path


def test_read_csv_keeps_text_columns_as_written(good_csv):
    df = read_runs(good_csv)
    assert df["run_id"][0] == "007"
    assert list(df["torch_version"]) == ["2.10", "2.10", "2.10", "2.13", "2.13"]
    assert df["loss"][0] == 3.5123456789012345
    assert np.isinf(df["loss"][4]) and np.isnan(df["loss"][3])
    assert df["diverged_step"].isna().tolist() == [True, True, True, False, True]
    assert df["diverged_step"][3] == 812
    assert json.loads(df["config"][0]) == {"lr": 0.0003}
    assert list(df["lab_note"].isna()) == [False, True, False, False, False]


@pytest.mark.parametrize(
    "chain",
    [
        (".csv", ".parquet", ".jsonl"),
        (".jsonl", ".csv", ".parquet"),
        (".parquet", ".jsonl", ".csv"),
    ],
)
def test_round_trip_between_formats(good_csv, tmp_path, chain):
    reference = read_runs(good_csv)
    df = reference
    for k, suffix in enumerate(chain):
        path = tmp_path / f"step{k}{suffix}"
        write_runs(df, path)
        df = read_runs(path)
        pd.testing.assert_frame_equal(df, reference, check_exact=True)
    assert len(df) == 5 and list(df["status"]) == ["ok", "ok", "ok", "diverged", "failed"]


def test_jsonl_as_the_training_side_writes_it(tmp_path):
    records = [
        {"run_id": "a", "N": 1000000, "D": 2e7, "E": 4, "M": 3, "B": 128, "operands": "w",
         "loss": 4.25, "status": "ok", "seed": 0, "tokens_per_s": 1.5e5},
        {"run_id": "b", "N": 1000000, "D": 2e7, "E": 2, "M": 1, "B": "tensor",
         "operands": "dy2", "loss": None, "status": "diverged", "seed": 0, "diverged_step": 40,
         "reason": "loss NaN at step 40"},
    ]
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    df = read_runs(path)
    assert list(df["B"]) == ["128", "tensor"]
    assert df["block"].tolist()[0] == 128 and df["block"].isna().tolist() == [False, True]
    assert df["tokens_per_s"].isna().tolist() == [False, True]
    assert df["reason"].tolist()[1] == "loss NaN at step 40"


def test_write_is_atomic_and_leaves_no_temp_files(good_csv, tmp_path):
    df = read_runs(good_csv)
    out = tmp_path / "out.parquet"
    out.write_bytes(b"old")
    write_runs(df, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "runs.csv"]
    bad = df.copy()
    bad.loc[0, "N"] = -1
    with pytest.raises(RunTableError, match="column 'N'"):
        write_runs(bad, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "runs.csv"]
    assert len(read_runs(out)) == 5


@pytest.mark.parametrize(
    "name, content, expect",
    [
        ("missing.csv", None, "no such file"),
        ("runs.txt", "run_id\n", "unknown file extension '.txt'"),
        ("runs", "run_id\n", "unknown file extension 'no extension'"),
        ("empty.csv", "", "no runs"),
        ("header.csv", "run_id,N,D,E,M,B,operands,loss,status,seed\n", "no runs"),
        ("empty.jsonl", "\n", "no runs"),
        ("bad.jsonl", '{"run_id": "a"}\n{"run_id": \n', "line 2 is not valid JSON"),
        ("list.jsonl", "[1, 2]\n", "line 1 is not a JSON object"),
        ("bad.parquet", "this is not parquet", "cannot read parquet file"),
    ],
)
def test_unreadable_files_give_one_line(tmp_path, name, content, expect):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(RunTableError) as info:
        read_runs(path)
    message = str(info.value)
    assert expect in message
    assert len(message.splitlines()) == 1
    assert name in message


def test_list_valued_provenance_survives_parquet_and_jsonl(tmp_path):
    curve = [[100, 1.6e6, 5.25], [200, 3.2e6, 4.5]]
    record = {"run_id": "a", "N": 1000000, "D": 3.2e6, "E": 4, "M": 3, "B": 128,
              "operands": "w", "loss": 4.5, "status": "ok", "seed": 0, "val_curve": curve}
    src = tmp_path / "runs.jsonl"
    src.write_text(json.dumps(record) + "\n")
    write_runs(read_runs(src), tmp_path / "runs.parquet")
    write_runs(read_runs(tmp_path / "runs.parquet"), tmp_path / "back.jsonl")
    back = json.loads((tmp_path / "back.jsonl").read_text())
    assert back["val_curve"] == curve
    assert back["B"] == "128" and back["format"] == "e4m3"
