"""Coverage of a run table against the data-set requirements, on hand-built tables."""

import itertools

import pandas as pd
import pytest
from typer.testing import CliRunner

from bayesfp.cli import app
from bayesfp.runs import validate_runs
from bayesfp.runs.coverage import Requirements, coverage, unmet

NS = [1e5, 3e5, 1e6, 2e6]  # 20x
DS = [1e7, 4e7]  # 4x
REQ = Requirements(min_finished=20, min_n_sizes=4, min_n_span=10, min_d_values=2, min_d_span=4,
                   exponents=(2, 4), mantissas=(1, 3), formats=("e2m1", "e4m3"),
                   blocks=(32, 128), granularity_words=("channel",),
                   operand_sets=(("w", "w_bwd", "x_bwd"), ("x",)), min_repeated_fraction=0.1)


def _row(i, N, D, E, M, B, operands, seed, status="ok", **extra):
    fmt = "bf16" if operands == "none" else f"e{E}m{M}"
    return dict(run_id=f"r{i:04d}", N=N, D=D, E=E, M=M, B=B, operands=operands, format=fmt,
                loss=3.0, status=status, seed=seed, epochs=1.0, **extra)


def _table():
    """Every requirement of REQ met, with numbers known by construction."""
    rows = []
    for N, D in itertools.product(NS, DS):
        rows.append(_row(len(rows), N, D, 8, 7, "none", "none", 0, ptq_loss_e4m3=3.1))
        for E, M in ((2, 1), (4, 3)):
            rows.append(_row(len(rows), N, D, E, M, "128", "w+w_bwd+x_bwd", 0))
    # sub-grid: block 32, channel, operand x alone, on the smallest N
    rows.append(_row(len(rows), NS[0], DS[0], 2, 1, "32", "w+w_bwd+x_bwd", 0))
    rows.append(_row(len(rows), NS[0], DS[0], 2, 1, "channel", "w+w_bwd+x_bwd", 0))
    rows.append(_row(len(rows), NS[0], DS[0], 2, 1, "128", "x", 0))
    # repeated seeds of 3 configurations (3 of 27 configurations = 11%)
    for k in range(3):
        rows.append(dict(rows[1 + 3 * k], run_id=f"s{k}", seed=1))
    return pd.DataFrame(rows)


def _checks(df, req=REQ):
    clean, _ = validate_runs(df)
    return {c.name: c for c in coverage(clean, req)}


def test_all_met_with_exact_counts():
    checks = _checks(_table())
    assert not unmet(list(checks.values()))
    assert checks["finished runs"].found == "30 (of 30)"
    assert checks["model sizes N"].found == "4 values, 100k..2M (20.0x)"
    assert checks["token counts D"].found == "2 values, 10M..40M (4.0x)"
    assert checks["high-precision baselines"].found == "8 of 8 (N, D)"
    assert checks["repeated seeds"].found == "3 of 27 configurations (11.1%)"
    assert checks["PTQ losses"].found == "8 of 8 runs"


@pytest.mark.parametrize("breaker, name, missing", [
    (lambda df: df.drop(index=[0]), "high-precision baselines", ["N=100k D=10M"]),
    (lambda df: df[df["B"] != "32"], "scaling granularity", ["block 32"]),
    (lambda df: df[df["B"] != "channel"], "scaling granularity", ["channel"]),
    (lambda df: df[df["operands"] != "x"], "quantized operand sets", ["x"]),
    (lambda df: df[df["format"] != "e4m3"], "formats", ["e4m3"]),
    (lambda df: df[df["run_id"] != "s0"], "repeated seeds", []),
    (lambda df: df.assign(ptq_loss_e4m3=df["ptq_loss_e4m3"].where(df["run_id"] != "r0003")),
     "PTQ losses", ["r0003"]),
    (lambda df: df.assign(epochs=df["epochs"].where(df["run_id"] != "r0001", 2.5)),
     "epochs recorded", []),
    (lambda df: df[df["N"] != 2e6], "model sizes N", []),
])
def test_each_requirement_can_fail(breaker, name, missing):
    checks = _checks(breaker(_table()).reset_index(drop=True))
    failed = [c.name for c in checks.values() if not c.met]
    assert name in failed
    assert checks[name].missing == missing


def test_failed_runs_do_not_count():
    df = _table()
    df.loc[df["operands"] == "x", "status"] = "failed"
    checks = _checks(df)
    assert checks["quantized operand sets"].missing == ["x"]
    assert checks["finished runs"].found == "29 (of 30)"


def test_runs_command_prints_coverage(tmp_path):
    path = tmp_path / "runs.csv"
    _table().to_csv(path, index=False)
    res = CliRunner().invoke(app, ["runs", str(path), "--coverage"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "requirements met" in res.output
    # the shipped data-set thresholds: 30 runs are far short of 400
    assert "finished runs" in res.output and ">= 400" in res.output
