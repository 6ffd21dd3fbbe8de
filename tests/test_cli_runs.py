"""`bayesfp runs`: one clear error line and exit 2 for each bad table, a summary for a good one."""

import os
import subprocess
import sys

import pytest

from bayesfp.cli import main

HEADER = "run_id,N,D,E,M,B,operands,loss,status,seed"
GOOD_ROWS = [
    "r1,85000000,1e9,4,3,128,w+w_bwd+x_bwd,3.51,ok,0",
    "r2,85000000,2e9,4,3,channel,w,3.42,ok,0",
    "r3,154000000,2e9,8,7,none,none,3.20,ok,1",
    "r4,154000000,2e9,2,1,32,dy2,,diverged,1",
    "r5,154000000,4e9,2,1,tensor,dy2,,failed,2",
    "r6,154000000,4e9,2,1,tensor,dy2,9.1,diverged,3",
]


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def write(tmp_path, rows, header=HEADER, name="runs.csv"):
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def with_cell(row, column, value):
    """Return GOOD_ROWS[row] with one cell replaced."""
    rows = list(GOOD_ROWS)
    cells = rows[row].split(",")
    cells[HEADER.split(",").index(column)] = value
    rows[row] = ",".join(cells)
    return rows


BAD_TABLES = {
    "missing column": (
        HEADER.replace(",loss", ""),
        [",".join(c for i, c in enumerate(r.split(",")) if i != 7) for r in GOOD_ROWS],
        ["column 'loss'", "missing required column"],
    ),
    "N not positive": (HEADER, with_cell(0, "N", "0"), ["column 'N'", "> 0", "r1"]),
    "N negative": (HEADER, with_cell(1, "N", "-85000000"), ["column 'N'", "> 0", "r2"]),
    "D not positive": (HEADER, with_cell(2, "D", "0"), ["column 'D'", "> 0", "r3"]),
    "D negative": (HEADER, with_cell(2, "D", "-2e9"), ["column 'D'", "> 0", "r3"]),
    "E negative": (HEADER, with_cell(0, "E", "-1"), ["column 'E'", ">= 0", "r1"]),
    "M negative": (HEADER, with_cell(0, "M", "-3"), ["column 'M'", ">= 0", "r1"]),
    "E not integer": (HEADER, with_cell(0, "E", "4.5"), ["column 'E'", "not an integer", "r1"]),
    "M not integer": (HEADER, with_cell(1, "M", "2.5"), ["column 'M'", "not an integer", "r2"]),
    "N not integer": (
        HEADER, with_cell(0, "N", "85000000.5"), ["column 'N'", "not an integer", "r1"]
    ),
    "N not a number": (HEADER, with_cell(0, "N", "85M"), ["column 'N'", "not a number", "r1"]),
    "seed not integer": (
        HEADER, with_cell(3, "seed", "1.5"), ["column 'seed'", "not an integer", "r4"]
    ),
    "loss NaN on ok run": (HEADER, with_cell(1, "loss", ""), ["column 'loss'", "ok runs", "r2"]),
    "duplicated run_id": (
        HEADER, with_cell(2, "run_id", "r1"), ["column 'run_id'", "duplicated run_id 'r1'"]
    ),
    "unknown granularity word": (
        HEADER, with_cell(1, "B", "row"), ["column 'B'", "unknown granularity word 'row'", "r2"]
    ),
    "block size zero": (HEADER, with_cell(0, "B", "0"), ["column 'B'", "bad block size", "r1"]),
    "block size fraction": (
        HEADER, with_cell(0, "B", "12.5"), ["column 'B'", "bad block size", "r1"]
    ),
    "unknown operand": (
        HEADER, with_cell(0, "operands", "w+grad"),
        ["column 'operands'", "unknown operand name 'grad'", "r1"],
    ),
    "B none but operands quantized": (
        HEADER, with_cell(0, "B", "none"), ["B/operands", "mismatch", "r1"]
    ),
    "operands none but B a block size": (
        HEADER, with_cell(0, "operands", "none"), ["B/operands", "mismatch", "r1"]
    ),
    "unknown status": (
        HEADER, with_cell(4, "status", "crashed"), ["column 'status'", "'crashed'", "r5"]
    ),
}


@pytest.mark.parametrize("problem", sorted(BAD_TABLES))
def test_bad_table_exits_2_with_clear_message(tmp_path, capsys, problem):
    header, rows, expect = BAD_TABLES[problem]
    path = write(tmp_path, rows, header)
    code, out, err = run_cli(["runs", str(path)], capsys)
    assert code == 2
    assert "Traceback" not in out + err
    first = err.splitlines()[0]
    assert first.startswith("error: run table ") and str(path) in first
    for text in expect:
        assert text in first, (text, first)
    assert len(err.strip().splitlines()) == 1


def test_several_problems_listed_under_one_header(tmp_path, capsys):
    rows = with_cell(0, "N", "0")
    rows[1] = rows[1].replace(",channel,", ",rows,")
    rows[4] = rows[4].replace(",failed,", ",crashed,")
    code, _, err = run_cli(["runs", str(write(tmp_path, rows))], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and "Traceback" not in err
    assert lines[0].startswith("error: run table") and lines[0].endswith("3 problems")
    assert len(lines) == 4
    assert any("column 'N'" in ln for ln in lines[1:])
    assert any("'rows'" in ln for ln in lines[1:])
    assert any("'crashed'" in ln for ln in lines[1:])


@pytest.mark.parametrize(
    "name, expect", [("missing.csv", "no such file"), ("runs.xlsx", "unknown file extension")]
)
def test_missing_file_and_unknown_extension(tmp_path, capsys, name, expect):
    path = tmp_path / name
    if name.endswith(".xlsx"):
        path.write_bytes(b"PK")
    code, out, err = run_cli(["runs", str(path)], capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0]


def test_good_table_summary_counts_diverged(tmp_path, capsys):
    code, out, err = run_cli(["runs", str(write(tmp_path, GOOD_ROWS))], capsys)
    assert code == 0 and err == ""
    assert "6 (ok 3, diverged 2, failed 1)" in out
    assert "r4, r6" in out
    assert "2 diverged runs, 1 failed run kept, excluded from fits" in out
    assert "e2m1 (3)" in out and "bf16 (1)" in out
    assert "w+w_bwd+x_bwd (1)" in out


def test_help(capsys):
    code, out, _ = run_cli(["--help"], capsys)
    assert code == 0 and "runs" in out
    code, out, _ = run_cli(["runs", "--help"], capsys)
    assert code == 0 and "RUNS_FILE" in out.upper()


@pytest.mark.slow
def test_python_dash_m_entry_point(tmp_path):
    bad = write(tmp_path, with_cell(0, "B", "row"))
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("BAYESFP_DEBUG", None)
    result = subprocess.run(
        [sys.executable, "-m", "bayesfp.cli", "runs", str(bad)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.startswith("error: run table") and "'row'" in result.stderr
    good = write(tmp_path, GOOD_ROWS, name="good.csv")
    result = subprocess.run(
        [sys.executable, "-m", "bayesfp.cli", "runs", str(good)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "excluded from fits" in result.stdout


@pytest.mark.slow
def test_cli_and_run_table_do_not_import_torch():
    code = "import sys, bayesfp.cli, bayesfp.runs; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def _numpy_fails(*args, **kwargs):
    import numpy as np

    return np.zeros(3).reshape(2, 2)  # ValueError raised inside numpy


def _pandas_fails(*args, **kwargs):
    import pandas as pd

    return pd.DataFrame({"a": [1]})["b"]  # KeyError raised inside pandas


@pytest.mark.parametrize("fails, kind, text", [(_numpy_fails, "ValueError", "reshape"),
                                               (_pandas_fails, "KeyError", "'b'")])
def test_an_error_from_a_library_is_an_internal_error(tmp_path, capsys, monkeypatch, fails,
                                                      kind, text):
    monkeypatch.setattr("bayesfp.runs.read_runs", fails)
    monkeypatch.delenv("BAYESFP_DEBUG", raising=False)
    code, _, err = run_cli(["runs", str(write(tmp_path, GOOD_ROWS))], capsys)
    assert code == 1
    first = err.strip().splitlines()[0]
    assert first.startswith(f"internal error ({kind}): ") and text in first
    assert "bug in bayesfp" in err and "BAYESFP_DEBUG=1" in err
    assert "Traceback" not in err


def test_an_input_error_is_a_user_error_even_from_a_library_frame(tmp_path, capsys, monkeypatch):
    from bayesfp.errors import BayesfpInputError

    def check(*args, **kwargs):  # raised in a frame outside the bayesfp package
        import functools

        def fail(a, b):
            raise BayesfpInputError("N: must be positive")

        functools.reduce(fail, [1, 2])

    monkeypatch.setattr("bayesfp.runs.read_runs", check)
    monkeypatch.delenv("BAYESFP_DEBUG", raising=False)
    code, _, err = run_cli(["runs", str(write(tmp_path, GOOD_ROWS))], capsys)
    assert code == 2
    assert err.strip().splitlines() == ["error: N: must be positive"]


def test_a_plain_value_error_in_bayesfp_is_an_internal_error(tmp_path, capsys, monkeypatch):
    def check(*args, **kwargs):
        raise ValueError("not an input check")

    monkeypatch.setattr("bayesfp.runs.read_runs", check)
    monkeypatch.delenv("BAYESFP_DEBUG", raising=False)
    code, _, err = run_cli(["runs", str(write(tmp_path, GOOD_ROWS))], capsys)
    assert code == 1
    assert err.startswith("internal error (ValueError): not an input check")


def test_debug_shows_the_traceback_of_an_internal_error(tmp_path, monkeypatch):
    monkeypatch.setattr("bayesfp.runs.read_runs", _numpy_fails)
    monkeypatch.setenv("BAYESFP_DEBUG", "1")
    with pytest.raises(ValueError, match="reshape"):
        main(["runs", str(write(tmp_path, GOOD_ROWS))])
