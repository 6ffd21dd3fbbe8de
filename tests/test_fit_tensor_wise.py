"""Tensor-wise runs have no block size on the laws' log2(B) axis: fits leave them out and say
so, unless an effective log2(B) is given."""

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from bayesfp.bayes.models import model_for
from bayesfp.cli import app
from bayesfp.datasets import data_path
from bayesfp.fit import fit_point
from bayesfp.laws.inputs import TENSOR_UNPLACED, law_inputs, unplaced_runs
from bayesfp.runs import read_runs, validate_runs


def _table(n_tensor=7):
    df, _ = validate_runs(read_runs(data_path("demo_runs.csv")))
    quant_ok = df.index[(df["operands"] != "none") & (df["status"] == "ok")]
    tensor_rows = quant_ok[:n_tensor]
    df = df.copy()
    df["B"] = df["B"].astype(object)
    df.loc[tensor_rows, "B"] = "tensor"
    df.loc[df.index[(df["status"] != "ok") & (df["operands"] != "none")][:1], "B"] = "tensor"
    return df, set(df.loc[tensor_rows, "run_id"])


def test_unplaced_runs_mask():
    df = pd.DataFrame({"operands": ["none", "w", "w", "w"], "B": ["none", "tensor", "128",
                                                                   "Tensor"]})
    assert unplaced_runs(df).tolist() == [False, True, False, True]
    assert not unplaced_runs(df, tensor_log2b=20.0).any()
    x = law_inputs(df.assign(N=1e6, D=1e7, E=4, M=3), tensor_log2b=20.0)
    np.testing.assert_array_equal(x["log2B"], [0.0, 20.0, 7.0, 20.0])


def test_point_fit_leaves_them_out_and_counts_them():
    df, tensor_ids = _table()
    n_ok = int((df["status"] == "ok").sum())
    fit = fit_point(df, "sun", n_boot=0)
    assert fit.excluded[TENSOR_UNPLACED] == 7  # the failed tensor-wise run counts as failed
    assert fit.n_runs == n_ok - 7
    with_b = fit_point(df, "sun", n_boot=0, inputs_kw={"tensor_log2b": 20.0})
    assert TENSOR_UNPLACED not in with_b.excluded and with_b.n_runs == n_ok


def test_bayes_model_leaves_them_out():
    df, tensor_ids = _table()
    model = model_for("sun", df)
    assert model.excluded[TENSOR_UNPLACED] == 7
    assert tensor_ids.isdisjoint(model.run_ids)
    assert set(df.loc[~model.in_fit, "run_id"]) >= tensor_ids
    placed = model_for("sun", df, inputs_kw={"tensor_log2b": 20.0})
    assert TENSOR_UNPLACED not in placed.excluded
    assert tensor_ids <= set(placed.run_ids)


def test_cli_says_so(tmp_path):
    df, _ = _table()
    path = tmp_path / "runs.csv"
    df.drop(columns=["P", "block", "granularity", "quantized"]).to_csv(path, index=False)
    res = CliRunner().invoke(app, ["fit", str(path), "--n-boot", "0"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "left out of the fit: 7 runs tensor-wise" in res.output
    res = CliRunner().invoke(app, ["fit", str(path), "--n-boot", "0", "--tensor-log2b", "20"],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "left out of the fit" not in res.output
