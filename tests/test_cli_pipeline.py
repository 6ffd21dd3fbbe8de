"""The main job end to end on a small simulated run table: fit, decision and report are written,
and the decision picks the format that is truly best."""

import json

import pytest

from bayesfp.cli import main
from bayesfp.laws import SUN_2025
from bayesfp.runs import write_runs
from bayesfp.simulate import PAPER_FORMATS, run_grid, simulate_runs


@pytest.mark.slow
def test_pipeline_writes_fit_decision_and_report(tmp_path, capsys):
    truth = dict(SUN_2025, gamma=SUN_2025["gamma"] / 5.0)
    grid = run_grid((41e6, 85e6, 154e6, 679e6), (10e9, 20e9, 50e9, 100e9),
                    PAPER_FORMATS, (32, 128))
    runs = simulate_runs(grid, truth, "sun", sigma=0.005, seed=3)
    path = tmp_path / "small_runs.csv"
    write_runs(runs.drop(columns=["loss_true"]), path)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        # independent draws around the law: the plain likelihood (docs/bayes.md)
        main(["pipeline", str(path), "-o", str(out), "--draws", "500", "--tune", "600",
              "--chains", "4", "--no-holdout", "--budget", "1e21", "--formats", "e2m1,e4m3,bf16",
              "--structure", "none"])
    assert exc.value.code == 0
    text = "".join(capsys.readouterr().out.split())   # rich wraps long lines
    assert "Bayes-optimalchoice" in text and str(out / "report" / "index.html") in text
    assert (out / "fit.nc").stat().st_size > 0
    from bayesfp.bayes.io import fit_info, load_fit

    sampler = fit_info(load_fit(out / "fit.nc"))["sampler"]
    assert (sampler["draws"], sampler["tune"]) == (500, 600)
    html = (out / "report" / "index.html").read_text()
    assert "6. Decision" in html
    decision = json.loads((out / "report" / "decision.json").read_text())
    assert decision["choice"] == truly_best(truth, 1e21)


def truly_best(truth, C, k=6 / 16):
    """The candidate with the lowest true loss at budget C = k P N D, N chosen optimally."""
    import numpy as np
    from scipy.optimize import minimize_scalar

    from bayesfp.laws import get_law

    law = get_law("sun")
    best = {}
    for name, E, M, log2B in (("e2m1", 2, 1, 7.0), ("e4m3", 4, 3, 7.0), ("bf16", 8, 7, 0.0)):
        P = 1 + E + M

        def loss(logN, E=E, M=M, log2B=log2B, P=P):
            N = np.exp(logN)
            return float(law.loss(truth, dict(N=N, D=C / (k * P * N), E=E, M=M, log2B=log2B)))

        best[name] = minimize_scalar(loss, bounds=(np.log(1e6), np.log(1e13)),
                                     method="bounded").fun
    return min(best, key=best.get)


@pytest.mark.slow
def test_pipeline_calibrate_puts_the_models_held_out_coverage_in_the_verdict(tmp_path, capsys):
    from bayesfp.bayes.calibrate import model_settings, read_calibration, settings_text
    from bayesfp.bayes.io import fit_info, load_fit

    grid = run_grid((41e6, 85e6, 154e6, 300e6, 679e6), (10e9, 20e9, 50e9, 100e9),
                    ((2, 1), (4, 3)), (32,), seeds=(0, 1))
    path = tmp_path / "tiny_runs.csv"
    write_runs(simulate_runs(grid, SUN_2025, "sun", sigma=0.01, seed=4).drop(
        columns=["loss_true"]), path)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["pipeline", str(path), "-o", str(out), "--draws", "100", "--tune", "100",
              "--chains", "2", "--no-holdout", "--calibrate", "--formats", "e2m1,e4m3",
              "--structure", "none"])
    assert exc.value.code in (0, 3)
    table = read_calibration(out / "report" / "calibration.csv")
    assert list(table["cut"]) == ["top20_N", "top20_D", "top2_N"]
    fit = load_fit(out / "fit.nc")
    # the refits are of the fitted model, on the same runs
    assert table["model"][0] == settings_text(model_settings(fit_info(fit)))
    assert ((table["n_fit"] + table["n_held"]) == fit_info(fit)["n_runs"]).all()
    html = (out / "report" / "index.html").read_text()
    verdict = html[html.index('<div class="verdict'):html.index('<nav class="toc"')]
    first = table.iloc[0]
    assert (f"top20_N (to {first['factor']:.3g}x): {first['cov50']:.0%} / "
            f"{first['cov90']:.0%}") in verdict
    assert "4/4report" in "".join(capsys.readouterr().out.split())
