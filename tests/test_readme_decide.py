"""The README's ``bayesfp decide`` line, run on the shipped fit, gives the shipped report's
decision (``reports/runs/decision.json``): same choice, P(best) and EVPI."""

import json
import shlex
from pathlib import Path

import pytest

from bayesfp.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _readme_command() -> list[str]:
    lines = [ln.strip() for ln in (ROOT / "README.md").read_text().splitlines()
             if ln.strip().startswith("bayesfp decide models/runs_sun.nc")]
    assert len(lines) == 1, lines
    return shlex.split(lines[0])[1:]


def test_readme_decide_reproduces_the_shipped_decision(tmp_path, monkeypatch, capsys):
    shipped = json.loads((ROOT / "reports" / "runs" / "decision.json").read_text())
    monkeypatch.chdir(ROOT)
    out = tmp_path / "decision.json"
    with pytest.raises(SystemExit) as info:
        main([*_readme_command(), "-o", str(out)])
    assert info.value.code == 0, capsys.readouterr().err
    got = json.loads(out.read_text())
    assert got["choice"] == shipped["choice"]
    assert got["evpi"] == pytest.approx(shipped["evpi"], rel=1e-9, abs=0)
    p_got = {c["format"]: c["p_best"] for c in got["candidates"]}
    p_shipped = {c["format"]: c["p_best"] for c in shipped["candidates"]}
    assert p_got == pytest.approx(p_shipped, rel=1e-9, abs=0)
    loss_got = {c["format"]: c["expected_loss"] for c in got["candidates"]}
    loss_shipped = {c["format"]: c["expected_loss"] for c in shipped["candidates"]}
    assert loss_got == pytest.approx(loss_shipped, rel=1e-12, abs=0)
    assert got["situation"]["budget"] == shipped["situation"]["budget"]
    # the decision records what reproduces it
    assert got["command"] == " ".join(["bayesfp", *_readme_command()])
    if "inputs" in shipped:
        assert got["inputs"] == shipped["inputs"]


@pytest.mark.parametrize("width", [80, 120])
def test_decision_table_keeps_its_answer_columns(monkeypatch, capsys, width):
    """Piped output (not a terminal) at 80 and 120 columns: plain ASCII, no line wider than the
    console, and every candidate's P(best), regret and verdict on its row."""
    from bayesfp.cli import output

    shipped = json.loads((ROOT / "reports" / "runs" / "decision.json").read_text())
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(output.console, "width", width)
    with pytest.raises(SystemExit) as info:
        main([*_readme_command(), "--next-runs", "none"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(ln) for ln in lines) <= width
    assert all(ord(ch) < 128 for ch in out)
    header = next(ln for ln in lines if "P(best)" in ln)
    assert "regret" in header and "verdict" in header
    for c in shipped["candidates"]:
        row = next(ln for ln in lines if ln.startswith(f"| {c['format']} "))
        cells = [x.strip() for x in row.strip("|").split("|")]
        assert f"{c['p_best']:.2f}" in cells and c["verdict"] in cells
