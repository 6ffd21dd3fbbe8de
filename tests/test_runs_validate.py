"""Run table validation: canonical form, derived columns and every kind of problem."""

import io

import numpy as np
import pandas as pd
import pytest

from bayesfp.errors import RunTableError
from bayesfp.runs import RunTableReport, ok_runs, validate_runs

GOOD = """\
run_id,N,D,E,M,B,operands,loss,status,seed,group
r1,85000000,1e9,4,3,128,W+x_bwd+w_bwd,3.51,ok,0,llama
r2,85000000,2e9,4,3,channel,w,3.42,ok,0,llama
r3,154000000,2e9,8,7,none,none,3.20,ok,1,llama
r4,154000000,2e9,2,1,32,dy2,,diverged,1,llama
r5,154000000,4e9,2,1,tensor,X_BWD+dy,7.9,failed,2,gpt
"""


def table(text=GOOD):
    return pd.read_csv(io.StringIO(text), dtype={"run_id": "str", "B": "str"})


def problems_of(df):
    with pytest.raises(RunTableError) as info:
        validate_runs(df)
    return info.value.problems


def test_good_table_columns_and_types():
    df, report = validate_runs(table())
    assert list(df["run_id"]) == ["r1", "r2", "r3", "r4", "r5"]
    assert df["N"].dtype == np.int64 and df["E"].dtype == np.int64
    assert df["D"].dtype == np.float64 and df["loss"].dtype == np.float64
    assert list(df["N"]) == [85_000_000, 85_000_000, 154_000_000, 154_000_000, 154_000_000]
    # P = 1 + E + M: E4M3 is 8 bits, E8M7 16, E2M1 4
    assert list(df["P"]) == [8, 8, 16, 4, 4]
    assert list(df["B"]) == ["128", "channel", "none", "32", "tensor"]
    assert df["block"].dtype == "Int64"
    assert df["block"].tolist()[0] == 128 and df["block"].tolist()[3] == 32
    assert df["block"].isna().tolist() == [False, True, True, False, True]
    assert list(df["granularity"]) == ["block", "channel", "none", "block", "tensor"]
    assert list(df["quantized"]) == [True, True, False, True, True]
    assert list(df["format"]) == ["e4m3", "e4m3", "bf16", "e2m1", "e2m1"]
    # canonical operand order is x, w, dy, w_bwd, dy2, x_bwd
    assert list(df["operands"]) == ["w+w_bwd+x_bwd", "w", "none", "dy2", "dy+x_bwd"]
    assert list(df.columns[:10]) == [
        "run_id", "N", "D", "E", "M", "B", "operands", "loss", "status", "seed"
    ]
    assert list(df["group"]) == ["llama"] * 4 + ["gpt"]
    assert isinstance(report, RunTableReport)


def test_diverged_and_failed_runs_are_kept_and_counted():
    df, report = validate_runs(table())
    assert len(df) == 5
    assert report.n_runs == 5
    assert report.counts == {"ok": 3, "diverged": 1, "failed": 1}
    assert report.diverged == ("r4",) and report.failed == ("r5",)
    assert report.n_ok == 3 and report.n_excluded == 2
    assert report.excluded_message() == "1 diverged run, 1 failed run kept, excluded from fits"
    ok = ok_runs(table())
    assert list(ok["run_id"]) == ["r1", "r2", "r3"]
    assert list(ok.index) == [0, 1, 2]


def test_validation_is_idempotent_and_does_not_touch_input():
    raw = table()
    before = raw.copy()
    once, _ = validate_runs(raw)
    twice, _ = validate_runs(once)
    pd.testing.assert_frame_equal(raw, before)
    pd.testing.assert_frame_equal(once, twice)


def test_unquantized_non_bf16_gets_em_name_and_given_format_kept():
    df = table()
    df.loc[2, "M"] = 23  # an FP32 baseline
    df["format"] = ["fp8_e4m3", "fp8_e4m3", None, None, "fp4"]
    out, _ = validate_runs(df)
    assert list(out["format"]) == ["fp8_e4m3", "fp8_e4m3", "e8m23", "e2m1", "fp4"]
    assert out["P"][2] == 32


def test_format_name_with_two_bit_layouts_is_rejected():
    df = table()
    df["format"] = ["fp8", "fp8", "bf16", "fp8", "fp4"]
    (line,) = problems_of(df)
    assert "column 'format'" in line and "'fp8'" in line and "E4M3" in line and "E2M1" in line


def test_derived_column_that_disagrees_is_rejected():
    df = table()
    df["P"] = [8, 8, 16, 4, 5]
    (line,) = problems_of(df)
    assert line.startswith("column 'P'") and "r5" in line and "r4" not in line


@pytest.mark.parametrize(
    "column, value, row, expect",
    [
        ("N", 0, 0, ["column 'N'", "> 0", "r1"]),
        ("N", -5, 1, ["column 'N'", "> 0", "r2"]),
        ("N", 1.5, 0, ["column 'N'", "not an integer", "r1"]),
        ("N", "many", 0, ["column 'N'", "not a number", "r1"]),
        ("D", 0.0, 2, ["column 'D'", "> 0", "r3"]),
        ("D", -1e9, 2, ["column 'D'", "> 0", "r3"]),
        ("E", -1, 3, ["column 'E'", ">= 0", "r4"]),
        ("M", -2, 3, ["column 'M'", ">= 0", "r4"]),
        ("E", 3.5, 0, ["column 'E'", "not an integer", "r1"]),
        ("M", 0.25, 0, ["column 'M'", "not an integer", "r1"]),
        ("seed", 0.5, 4, ["column 'seed'", "not an integer", "r5"]),
        ("loss", np.nan, 0, ["column 'loss'", "ok runs", "r1"]),
        ("loss", np.inf, 1, ["column 'loss'", "ok runs", "r2"]),
        ("status", "crashed", 0, ["column 'status'", "'crashed'", "r1"]),
        ("B", "row", 0, ["column 'B'", "unknown granularity word 'row'", "r1"]),
        ("B", "0", 0, ["column 'B'", "bad block size", "r1"]),
        ("B", "-32", 0, ["column 'B'", "bad block size", "r1"]),
        ("B", "12.5", 0, ["column 'B'", "bad block size", "r1"]),
        ("operands", "w+grad", 0, ["column 'operands'", "unknown operand name 'grad'", "r1"]),
        ("operands", "none", 0, ["B/operands", "mismatch", "r1"]),
        ("B", "none", 0, ["B/operands", "mismatch", "r1"]),
        ("run_id", "r1", 1, ["column 'run_id'", "duplicated run_id 'r1'", "rows 1, 2"]),
        ("run_id", np.nan, 1, ["column 'run_id'", "missing", "row 2"]),
    ],
)
def test_each_problem_is_named(column, value, row, expect):
    df = table().astype(object)
    df.loc[row, column] = value
    (line,) = problems_of(df)
    for text in expect:
        assert text in line, (text, line)


def test_loss_nan_allowed_on_diverged_and_failed_runs():
    df = table()
    df.loc[4, "loss"] = np.nan
    out, _ = validate_runs(df)
    assert out["loss"].isna().tolist() == [False, False, False, True, True]


def test_missing_required_column():
    lines = problems_of(table().drop(columns=["loss", "seed"]))
    assert "column 'loss': missing required column" in lines
    assert "column 'seed': missing required column" in lines


def test_all_problems_reported_at_once_and_ids_capped():
    rows = [f"x{k},{0 if k < 8 else 1000},1e9,4,3,128,w,3.0,ok,0" for k in range(10)]
    rows.append("x9,1000,1e9,-1,3,64,w,3.0,unsure,0")
    df = table("run_id,N,D,E,M,B,operands,loss,status,seed\n" + "\n".join(rows) + "\n")
    with pytest.raises(RunTableError) as info:
        validate_runs(df, source="runs.csv")
    err = info.value
    assert isinstance(err, ValueError)
    n_line = next(p for p in err.problems if p.startswith("column 'N'"))
    assert "x0, x1, x2, x3, x4 and 3 more" in n_line
    assert len(err.problems) == 4  # N, E, status, duplicated run_id
    assert str(err).splitlines()[0] == "run table runs.csv: 4 problems"


def test_optional_columns_are_checked():
    df = table()
    df["convention"] = ["finite", "IEEE", "fn", None, "weird"]
    df["rounding"] = ["nearest_even", "stochastic", "half_away", "nearest_even", None]
    df["config"] = ['{"lr": 3e-4}', "{not json", None, "{}", "[]"]
    df["diverged_step"] = [None, None, None, 120.5, None]
    df["ptq_loss_e2m1"] = [3.9, "high", None, None, None]
    lines = problems_of(df)
    assert len(lines) == 4
    assert any("'convention'" in p and "'weird'" in p and "r5" in p for p in lines)
    assert any("'config'" in p and "JSON" in p and "r2" in p for p in lines)
    assert any("'diverged_step'" in p and "not an integer" in p and "r4" in p for p in lines)
    assert any("'ptq_loss_e2m1'" in p and "not a number" in p and "r2" in p for p in lines)


def test_optional_columns_are_typed():
    df = table()
    df["convention"] = ["finite", "IEEE", "fn", None, "finite"]
    df["diverged_step"] = [None, None, None, 120.0, None]
    df["free_note"] = [1, 2, 3, 4, 5]
    out, _ = validate_runs(df)
    assert out["convention"].tolist()[:3] == ["finite", "ieee", "fn"]
    assert out["diverged_step"].dtype == "Int64" and out["diverged_step"][3] == 120
    assert out["free_note"].dtype == np.int64 and list(out.columns)[-1] == "free_note"


def test_empty_table():
    with pytest.raises(RunTableError, match="no runs"):
        validate_runs(table().iloc[:0])
