"""`bayesfp calibrate`: option parsing, one error line and exit 2 for bad options, and a short
end-to-end run on simulated runs whose table has the three cuts."""

import pandas as pd
import pytest

from bayesfp.cli import main
from bayesfp.cli.calibrate import structure_kw
from bayesfp.errors import BayesfpInputError
from bayesfp.laws import SUN_2025
from bayesfp.simulate import run_grid, simulate_runs


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_structure_options_map_to_model_keywords():
    flex = {"format_effect": "flex"}
    assert structure_kw("cell,seed,sigma-d", None, "parametric") == {
        "cell": True, "seed_effect": True, "sigma_d": True}
    assert structure_kw("cell,seed,sigma-d") == {"cell": True, "seed_effect": True,
                                                 "sigma_d": True} | flex
    assert structure_kw("cell-d,discrepancy", ["gamma=operands"], "parametric") == {
        "cell_d": True, "discrepancy": True, "pool": ["gamma=operands"]}
    assert structure_kw("cell", None, "flex") == {"cell": True} | flex
    assert structure_kw("log2b-power") == {"log2b_power": True} | flex
    # the default: cell, seed, sigma-d, log2b-power, discrepancy and the flexible format effect
    assert structure_kw(None) == {"cell": True, "seed_effect": True, "sigma_d": True,
                                  "log2b_power": True, "discrepancy": True} | flex
    # the plain model
    assert structure_kw("none") == {}
    # a law without a precision term: the default drops the precision options ...
    assert structure_kw(None, law="chinchilla") == {"cell": True, "seed_effect": True,
                                                    "sigma_d": True, "discrepancy": True}
    # ... and refuses them when asked
    for args in (("log2b-power", None, None), ("cell", None, "flex")):
        with pytest.raises(BayesfpInputError, match="needs a law with a precision term"):
            structure_kw(*args, law="chinchilla")


@pytest.mark.parametrize("args, message", [
    (["--structure", "cells"], "structure: unknown term 'cells'"),
    (["--cuts", "top20_N,top5_N"], "cuts: unknown ['top5_N']"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, args, message):
    path = tmp_path / "runs.csv"
    grid = run_grid((2e5, 4e5, 8e5, 1.6e6, 3.2e6), (5e6, 1e7, 2e7, 4e7), ((2, 1),), (128,))
    simulate_runs(grid, SUN_2025, sigma=0.01).to_csv(path, index=False)
    code, _out, err = run_cli(["calibrate", str(path), *args], capsys)
    assert code == 2
    assert err.startswith(f"error: {message}")


@pytest.mark.slow
def test_calibrate_writes_a_table_per_cut(tmp_path, capsys):
    path = tmp_path / "runs.csv"
    grid = run_grid((2e5, 4e5, 8e5, 1.6e6, 3.2e6), (5e6, 1e7, 2e7, 4e7), ((2, 1), (4, 3)),
                    (128,))
    simulate_runs(grid, dict(SUN_2025, gamma=SUN_2025["gamma"] / 300), sigma=0.01,
                  seed=2).to_csv(path, index=False)
    out_csv = tmp_path / "cal.csv"
    code, out, _err = run_cli(["calibrate", str(path), "--cuts", "top20_N,top20_D",
                               "--draws", "100", "--tune", "100", "--chains", "2",
                               "-o", str(out_csv)], capsys)
    assert code in (0, None)
    table = pd.read_csv(out_csv)
    assert list(table["cut"]) == ["top20_N", "top20_D"]
    # 2 quantized runs and 1 baseline per (N, D)
    assert list(table["n_held"]) == [4 * 3, 5 * 3]
    assert list(table["cells_held"]) == [4, 5]
    assert table["factor"].tolist() == pytest.approx([2.0, 2.0])
    assert ((table["cov50"] >= 0) & (table["cov90"] >= table["cov50"])).all()
    assert "top20_D" in out
    # every row records the model (the default likelihood; the seed effect was asked for even
    # where one seed per cell leaves it out), which a report checks against its fit
    model = ("law=sun; structure=cell,seed,sigma-d,discrepancy,log2b-power; format_effect=flex; "
             "pool=none; pooling=none; robust=no; sigma_by=none; tensor_log2b=none; "
             "prior=default")
    assert table["model"].tolist() == [model, model]
    assert f"model: {model}" in " ".join(out.split())
