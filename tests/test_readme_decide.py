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
