"""Held-out calibration in the report: a table of ``bayesfp calibrate`` (here synthetic, no
fits made) is checked against the fit's model settings and run count, shown per cut, and turns
the verdict box amber, naming the cut, when its 90% intervals hold fewer than 80% of its runs;
without one the box says none is on record. A table of another model or run set is refused
with one ``error:`` line and exit status 2."""

from pathlib import Path

import pytest
from report_fit import calibration_table, rendered, small_fit

from bayesfp.bayes.calibrate import (
    check_calibration,
    markdown_table,
    model_settings,
    parse_settings,
    read_calibration,
    settings_text,
)
from bayesfp.bayes.io import fit_info, fit_table, load_fit
from bayesfp.cli import main
from bayesfp.errors import BayesfpInputError
from bayesfp.report import sections as S

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "runs_sun.nc"


@pytest.fixture(scope="module")
def shipped():
    """The shipped fit: it passed its gate, so the verdict's colour is the flags' alone."""
    return load_fit(SHIPPED, predictive=False)


def _verdict(tree, table):
    ctx = S.Context(tree=tree, name="fit", runs=fit_table(tree),
                    calibration=None if table is None else read_calibration(table))
    body = S.calibration(ctx)
    return ctx, body, S.verdict(ctx)


def test_green_verdict_states_each_cuts_coverage(shipped):
    assert fit_info(shipped)["gate"]["passed"]
    ctx, body, box = _verdict(shipped, calibration_table(shipped))
    assert ctx.warnings == []
    assert box.startswith('<div class="verdict pass"')
    assert ("top20_N (to 2x): 48% / 88%; top20_D (to 2.5x): 52% / 91%; top2_N (to 3.75x): "
            "41% / 83%.") in box
    assert "Below 80%" not in box
    # the section's table: one row per cut with both coverages and the refit's gate
    assert body.count("<tr>") == 4
    assert "<td>83%</td>" in body and "<td>FAILED</td>" in body


def test_a_cut_below_80_percent_at_90_turns_the_verdict_amber(shipped):
    ctx, _body, box = _verdict(shipped, calibration_table(shipped, cov90=(0.88, 0.91, 0.62)))
    assert box.startswith('<div class="verdict warn"')
    assert "top2_N (to 3.75x): 41% / 62%" in box
    assert "Below 80% at 90% for top2_N" in box
    n_held = int(calibration_table(shipped)["n_held"][2])
    assert len(ctx.warnings) == 1
    assert f"only 62% of the {n_held} runs of cut top2_N" in ctx.warnings[0]
    assert "top2_N" in box[box.index("Flagged"):]


def test_without_a_table_the_box_says_none_is_on_record(shipped):
    _ctx, body, box = _verdict(shipped, None)
    assert "No held-out calibration on record" in box
    assert box.startswith('<div class="verdict pass"')
    assert "--calibration" in body


def test_markdown_and_csv_tables_read_alike(shipped, tmp_path):
    table = calibration_table(shipped, cov90=(0.875, 0.913, 0.625))
    table.to_csv(tmp_path / "cal.csv", index=False)
    (tmp_path / "cal.md").write_text(markdown_table(table) + "\n")
    csv, md = read_calibration(tmp_path / "cal.csv"), read_calibration(tmp_path / "cal.md")
    assert md["cov90"].tolist() == csv["cov90"].tolist() == [0.875, 0.913, 0.625]
    assert md["gate"].tolist() == [True, True, False]
    assert md["model"][0] == settings_text(model_settings(fit_info(shipped)))
    check_calibration(md, fit_info(shipped))


def test_model_settings_name_the_model_not_its_data():
    plain = {"law": "sun", "pool_by": "operands", "pooled": ["gamma"], "pooling": "partial",
             "robust": False, "inputs_kw": {}, "prior_source": "default"}
    s = model_settings(plain)
    assert (s["structure"], s["pool"], s["pooling"]) == ("none", "gamma=operands", "partial")
    # a structured fit whose runs could not identify the seed effect asked for it all the same
    structured = {"law": "sun", "structure": {"cell": True, "seed_effect": False,
                                              "sigma_d": True, "centred": False},
                  "dropped": ["seed"], "log2b_power": True, "format_effect": "flex",
                  "pool": {"gamma": "operands"}, "inputs_kw": {"tensor_log2b": 5.0}}
    s = model_settings(structured)
    assert s["structure"] == "cell,seed,sigma-d,log2b-power"
    assert (s["format_effect"], s["pool"], s["tensor_log2b"]) == ("flex", "gamma=operands", "5")
    assert parse_settings(settings_text(s)) == s


def test_pipeline_calibrates_the_model_it_fits():
    """The keywords the pipeline refits with give the model settings of its own fit."""
    from bayesfp.bayes.calibrate import make_model
    from bayesfp.cli.calibrate import structure_kw
    from bayesfp.laws import SUN_2025
    from bayesfp.pipeline import model_kw
    from bayesfp.simulate import run_grid, simulate_runs

    grid = run_grid((41e6, 85e6, 154e6), (10e9, 20e9), ((2, 1), (4, 3)), (32,),
                    operands=("w+w_bwd", "x"), seeds=(0, 1))
    runs = simulate_runs(grid, SUN_2025, sigma=0.01, seed=1)
    kw = model_kw("operands", structure_kw("cell,seed,sigma-d,log2b-power", None, "flex", "sun"))
    s = model_settings(make_model(runs, "sun", kw).config())
    assert s["structure"] == "cell,seed,sigma-d,log2b-power"
    assert (s["format_effect"], s["pool"]) == ("flex", "gamma=operands")
    s = model_settings(make_model(runs, "sun", model_kw("operands", {})).config())
    assert (s["structure"], s["pool"]) == ("none", "gamma=operands")


@pytest.mark.parametrize("name", ["runs_sun.nc", "demo_sun.nc"])
def test_a_fits_record_rebuilds_its_model(name):
    # the held-out check refits with model_kw_of(record): the rebuilt model has the fit's
    # settings (structured default fit and plain pooled demo fit)
    from bayesfp.bayes.calibrate import make_model, model_kw_of

    tree = load_fit(SHIPPED.parent / name, predictive=False)
    info = fit_info(tree)
    model = make_model(fit_table(tree, fitted_only=True).drop(columns=["in_fit"]), info["law"],
                       model_kw_of(info))
    assert model_settings(model.config()) == model_settings(info)


def test_a_table_of_another_model_or_run_set_is_refused(shipped):
    info = fit_info(shipped)
    ours = model_settings(info)
    structure = "none" if ours["structure"] != "none" else "cell,seed"
    robust = "no" if ours["robust"] == "yes" else "yes"
    other = settings_text(dict(ours, structure=structure, robust=robust))
    with pytest.raises(BayesfpInputError) as exc:
        check_calibration(calibration_table(shipped, model=other), info, "cal.csv")
    msg = str(exc.value)
    assert "\n" not in msg
    assert msg == (f"calibration: cal.csv was made with structure={structure}, robust={robust}; "
                   f"the fit has structure={ours['structure']}, robust={ours['robust']}")
    fewer = calibration_table(shipped)
    fewer["n_fit"] -= 10
    with pytest.raises(BayesfpInputError, match=f"computed on {info['n_runs'] - 10} runs"):
        check_calibration(fewer, info)


@pytest.mark.parametrize("make, message", [
    (lambda t: t.assign(model=t["model"].str.replace("law=sun", "law=kumar")),
     "calibration: {path} was made with law=kumar; the fit has law=sun"),
    (lambda t: t.drop(columns=["model"]), "calibration: {path} lacks the columns ['model']"),
    (lambda t: t.assign(cut=["top20_N", "top20_D", "top9_N"]), "calibration: {path} has "
     "unknown cuts ['top9_N']"),
    (lambda t: t.assign(cov90=[0.9, 0.9, 1.4]), "calibration: {path} has coverages outside"),
])
def test_bad_tables_exit_2_with_one_error_line(shipped, tmp_path, capsys, make, message):
    path = tmp_path / "cal.csv"
    make(calibration_table(shipped)).to_csv(path, index=False)
    out = tmp_path / "report"
    with pytest.raises(SystemExit) as exc:
        main(["report", str(SHIPPED), "-o", str(out), "--calibration", str(path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2
    assert err.startswith("error: " + message.format(path=path))
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_rendered_report_shows_the_calibration():
    html = rendered().read_text(encoding="utf-8")
    verdict = html[html.index('<div class="verdict'):html.index('<nav class="toc"')]
    n = int(calibration_table(small_fit())["n_held"][0])
    assert "Held-out calibration of this model" in verdict
    assert "top20_N (to 2x): 48% / 88%" in verdict
    section = html[html.index("<h3>Held-out calibration</h3>"):]
    assert f"<td>{n} (3)</td>" in section
