"""--where: choosing the runs a fit uses."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayesfp.cli import app, main
from bayesfp.datasets import data_path
from bayesfp.runs import read_runs
from bayesfp.runs.select import parse_condition, where

DF = pd.DataFrame({"group": ["core", "core", "wide", None], "B": [128, 32, 128, 512],
                   "operands": ["w", "x", "w", "w"]})


def test_conditions_and_values():
    assert parse_condition(" B = 128, 32 ") == ("B", ["128", "32"])
    assert list(where(DF, ["B=128"]).index) == [0, 2]
    assert list(where(DF, ["B=128,32", "group=core"]).index) == [0, 1]
    assert list(where(DF, []).index) == [0, 1, 2, 3]


@pytest.mark.parametrize("cond, msg", [
    ("group", "expected COLUMN=VALUE"),
    ("=core", "expected COLUMN=VALUE"),
    ("group=", "expected COLUMN=VALUE"),
    ("grp=core", "no column 'grp'"),
    ("group=nope", r"no run has group in \['nope'\] \(values: , core, wide\)"),
])
def test_bad_conditions(cond, msg):
    with pytest.raises(ValueError, match=msg):
        where(DF, [cond])


def test_conditions_that_exclude_each_other():
    with pytest.raises(ValueError, match="no run meets all"):
        where(DF, ["group=wide", "B=32"])


def test_fit_where_keeps_the_chosen_runs(tmp_path, capsys):
    df = read_runs(data_path("demo_runs.csv"))
    path = tmp_path / "runs.csv"
    df.drop(columns=["P", "block", "granularity", "quantized"]).to_csv(path, index=False)
    n_32 = int((df["B"].astype(str) == "32").sum())
    res = CliRunner().invoke(app, ["fit", str(path), "--n-boot", "0", "--where", "B=32,none"],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    n_none = int((df["B"].astype(str) == "none").sum())
    assert f"{n_32 + n_none} of {len(df)} runs kept" in res.output
    with pytest.raises(SystemExit) as stop:
        main(["fit", str(path), "--where", "B=7"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --where B=7: no run has B in ['7']") and err.count("\n") == 1
