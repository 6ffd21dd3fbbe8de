"""Every way a user can get a command wrong ends the same way: exit status 2, one ``error: ...``
line on stderr, no traceback and no file written; Ctrl-C ends with one ``interrupted`` line and
exit status 130, also without partial files.

Nearly all cases fail in option or input checks before any sampling, so the table is fast. The
decide and report cases use the shipped fit ``models/runs_sun.nc`` (read only, pooled over
operand sets).
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bayesfp.cli import main
from bayesfp.laws import SUN_2025
from bayesfp.simulate import run_grid, simulate_runs

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = str(ROOT / "models" / "runs_sun.nc")
HEADER = "run_id,N,D,E,M,B,operands,loss,status,seed"


def _tiny_runs(path: Path, formats=((2, 1), (4, 3))) -> Path:
    grid = run_grid(N=(41e6, 85e6, 154e6), D=(10e9, 20e9, 50e9), formats=formats,
                    blocks=(128,), seeds=(0,))
    simulate_runs(grid, SUN_2025, sigma=0.01, seed=3).to_csv(path, index=False)
    return path


@pytest.fixture()
def files(tmp_path):
    """Input files in ``tmp_path/in``; the command runs in ``tmp_path/work``."""
    src = tmp_path / "in"
    src.mkdir()
    runs = _tiny_runs(src / "runs.csv")
    bf16 = src / "bf16.csv"
    lines = runs.read_text().splitlines()
    bf16.write_text("\n".join([lines[0]] + [ln for ln in lines[1:] if ",none," in ln]) + "\n")

    def table(row):
        path = src / f"t{abs(hash(row))}.csv"
        path.write_text(f"{HEADER}\n{row}\n")
        return str(path)

    (src / "folder").mkdir()
    (src / "afile").write_text("x")
    (src / "point.json").write_text("{}")
    (src / "bad.json").write_text("{not json")
    (src / "garbage.nc").write_bytes(b"not a netcdf file")
    work = tmp_path / "work"
    work.mkdir()
    return {"RUNS": str(runs), "BF16": str(bf16), "DIR": str(src / "folder"),
            "FILE": str(src / "afile"), "POINT": str(src / "point.json"),
            "BADJSON": str(src / "bad.json"), "GARBAGE": str(src / "garbage.nc"),
            "SHIPPED": SHIPPED, "table": table, "work": work}


# (arguments, text the error line must contain); {NAME} is replaced from the fixture.
CASES = {
    # usage errors (the command line itself)
    "unknown command": (["nosuch"], "No such command"),
    "unknown option": (["fit", "{RUNS}", "--methd", "bayes"], "No such option: --methd"),
    "unknown root option": (["--bogus"], "No such option: --bogus"),
    "missing argument": (["decide"], "Missing argument"),
    "missing required option": (["report", "{SHIPPED}"], "Missing option"),
    "draws below minimum": (["fit", "{RUNS}", "--draws", "5"], "--draws"),
    "draws not a number": (["fit", "{RUNS}", "--draws", "abc"], "--draws"),
    "level out of range": (["fit", "{RUNS}", "--level", "2"], "--level"),
    "extra arguments": (["fit", "{RUNS}", "a", "b"], "unexpected extra argument"),
    # files
    "missing run table": (["runs", "missing.csv"], "no such file"),
    "missing fit": (["decide", "missing.nc", "--budget", "1e20"], "No such file"),
    "garbage fit": (["decide", "{GARBAGE}", "--budget", "1e20"], "cannot read"),
    "point fit given as fit": (["decide", "{POINT}", "--budget", "1e20"], "JSON"),
    "decision not JSON": (["report", "{SHIPPED}", "-o", "rep", "--decision", "{BADJSON}"],
                          "not valid JSON"),
    # run tables out of bounds
    "N beyond int64": (["runs", "table:r1,1e300,1e9,4,3,128,w,3.5,ok,0"], "too large"),
    "N out of bounds": (["runs", "table:r1,1e16,1e9,4,3,128,w,3.5,ok,0"], "column 'N'"),
    "E9M40": (["runs", "table:r1,85000000,1e9,9,40,128,w,3.5,ok,0"], "2 problems"),
    "loss 1e308": (["runs", "table:r1,85000000,1e9,4,3,128,w,1e308,ok,0"], "column 'loss'"),
    # fit options
    "unknown method": (["fit", "{RUNS}", "--method", "mcmc"], "unknown method"),
    "unknown law": (["fit", "{RUNS}", "--law", "nosuch"], "nosuch"),
    "robust with point": (["fit", "{RUNS}", "--robust"], "--robust: only --method bayes"),
    "pool-by with point": (["fit", "{RUNS}", "--pool-by", "operands"], "--pool-by"),
    "n-boot with bayes": (["fit", "{RUNS}", "--method", "bayes", "--n-boot", "3"],
                          "--n-boot: only --method point"),
    "bayes fit to .json": (["fit", "{RUNS}", "--method", "bayes", "-o", "f.json"],
                           "expected a .nc file"),
    "point fit to .nc": (["fit", "{RUNS}", "-o", "f.nc"], "expected a .json file"),
    "out is a folder": (["fit", "{RUNS}", "-o", "{DIR}"], "is a folder"),
    "tensor-log2b nan": (["fit", "{RUNS}", "--tensor-log2b", "nan"], "finite"),
    "malformed where": (["fit", "{RUNS}", "--where", "B"], "COLUMN=VALUE"),
    "where unknown column": (["fit", "{RUNS}", "--where", "nocol=1"], "no column 'nocol'"),
    "no quantized run": (["fit", "{BF16}", "--method", "bayes"], "none of the"),
    # pipeline: decision settings are checked before the fit
    "pipeline unknown format": (["pipeline", "{RUNS}", "-o", "out", "--formats", "foo"],
                                "unknown format 'foo'"),
    "pipeline negative budget": (["pipeline", "{RUNS}", "-o", "out", "--budget", "-1"],
                                 "budget"),
    "pipeline chinchilla": (["pipeline", "{RUNS}", "-o", "out", "--law", "chinchilla"],
                            "no precision term"),
    "pipeline format twice": (["pipeline", "{RUNS}", "-o", "out", "--formats", "e4m3,e4m3"],
                              "listed twice"),
    "pipeline out is a file": (["pipeline", "{RUNS}", "-o", "{FILE}"], "is a file"),
    # decide
    "pooled fit without group": (["decide", "{SHIPPED}", "--budget", "1e20"], "give --group"),
    "unknown group": (["decide", "{SHIPPED}", "--budget", "1e20", "--group", "zz"],
                      "not a group"),
    "zero budget": (["decide", "{SHIPPED}", "--budget", "0", "--group", "w"], "budget"),
    "budget with N and D": (["decide", "{SHIPPED}", "--budget", "1e20", "--N", "1e8", "--D",
                             "1e9", "--group", "w"], "nothing to spend"),
    "negative price": (["decide", "{SHIPPED}", "--budget", "1e20", "--price", "-1", "--group",
                        "w"], "price"),
    "bad block": (["decide", "{SHIPPED}", "--budget", "1e20", "--formats", "e4m3/0", "--group",
                   "w"], "block"),
    "decision out is a folder": (["decide", "{SHIPPED}", "--budget", "1e20", "--group", "w",
                                  "-o", "{DIR}"], "is a folder"),
    "decision out not json": (["decide", "{SHIPPED}", "--budget", "1e20", "--group", "w",
                               "-o", "d.csv"], "expected a .json file"),
    "unknown cost model": (["decide", "{SHIPPED}", "--budget", "1e20", "--group", "w",
                            "--cost", "nope"], "unknown cost model"),
    "k with throughput": (["decide", "{SHIPPED}", "--budget", "1e20", "--group", "w",
                           "--throughput", "{FILE}", "--k", "1"], "--k: a --throughput"),
    "report n-factor below 1": (["report", "{SHIPPED}", "-o", "rep", "--n-factor", "0.5"],
                                "--n-factor"),
    "E9M40 candidate": (["decide", "{SHIPPED}", "--budget", "1e20", "--group", "w",
                         "--formats", "e9m40"], "at most 8 exponent"),
    # report
    "report out is a file": (["report", "{SHIPPED}", "-o", "{FILE}"], "is a file"),
    "report calibration missing": (["report", "{SHIPPED}", "-o", "rep", "--calibration",
                                    "missing.csv"], "No such file"),
    "report calibration not a table": (["report", "{SHIPPED}", "-o", "rep", "--calibration",
                                        "{BADJSON}"], "calibration: "),
}


def _listing(root: Path) -> set:
    return {p.relative_to(root) for p in root.rglob("*")}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(files, capsys, monkeypatch, case):
    args, expect = CASES[case]
    argv = []
    for a in args:
        if a.startswith("table:"):
            argv.append(files["table"](a.removeprefix("table:")))
        else:
            argv.append(a.format(**{k: v for k, v in files.items() if isinstance(v, str)}))
    root = files["work"].parent
    before = _listing(root)
    monkeypatch.chdir(files["work"])
    monkeypatch.delenv("BAYESFP_DEBUG", raising=False)
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert info.value.code == 2, (case, out, err)
    assert "Traceback" not in out + err
    assert len(lines) in (1, 3 if case == "E9M40" else 1), err
    assert lines[0].startswith("error: "), err
    assert expect in err, (expect, err)
    assert _listing(root) == before, sorted(map(str, _listing(root) - before))


def test_the_table_has_at_least_30_cases():
    assert len(CASES) >= 30


def test_version_and_help_exit_0(capsys):
    import bayesfp

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"bayesfp {bayesfp.__version__}"
    with pytest.raises(SystemExit) as info:
        main(["fit", "--help"])
    assert info.value.code == 0 and "--method" in capsys.readouterr().out


# ------------------------------------------------------------------------------- interrupts


def _env():
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("BAYESFP_DEBUG", None)
    return env


def _interrupt(args, cwd, ready, timeout=120.0):
    """Start ``bayesfp ARGS``, send SIGINT once ``ready()`` holds, return (code, stderr)."""
    proc = subprocess.Popen([sys.executable, "-m", "bayesfp.cli", *args], cwd=cwd,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    t0 = time.monotonic()
    try:
        while not ready(proc):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() - t0 < timeout, "never got ready"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


@pytest.mark.slow
def test_sigint_during_sampling(tmp_path):
    runs = _tiny_runs(tmp_path / "runs.csv")
    seen = []

    def sampling(proc):
        # the command prints one line before it builds the model and samples
        seen.append(proc.stdout.readline())
        if "sampling" in seen[-1]:
            time.sleep(4.0)  # model compiled, sampler running
            return True
        return False

    before = _listing(tmp_path)
    code, err = _interrupt(["fit", str(runs), "--method", "bayes", "--draws", "200000",
                            "--chains", "2", "-o", "fit.nc"], tmp_path, sampling)
    assert code == 130, err
    assert err.strip().splitlines() == ["interrupted"], err
    assert _listing(tmp_path) == before


@pytest.fixture(scope="module")
def tiny_fit(tmp_path_factory):
    """A small Sun fit (2 chains x 100 draws) saved to a file."""
    from bayesfp.bayes.io import save_fit
    from bayesfp.bayes.models import model_for
    from bayesfp.runs import read_runs

    root = tmp_path_factory.mktemp("tinyfit")
    runs = read_runs(_tiny_runs(root / "runs.csv", formats=((2, 1), (3, 2), (4, 3))))
    fit = model_for("sun", runs, sampler=dict(draws=100, tune=200, chains=2, seed=1)).fit()
    return save_fit(fit, root / "fit.nc")


@pytest.mark.slow
def test_sigint_during_report_leaves_no_partial_report(tiny_fit, tmp_path):
    out = tmp_path / "reports" / "tiny"

    def rendering(proc):  # the staging folder appears once the report is being drawn
        return (tmp_path / "reports").exists() and any((tmp_path / "reports").iterdir())

    code, err = _interrupt(["report", str(tiny_fit), "-o", str(out)], tmp_path, rendering)
    assert code == 130, err
    assert err.strip().splitlines() == ["interrupted"], err
    assert not (tmp_path / "reports").exists(), sorted(map(str, _listing(tmp_path)))


def test_a_law_without_precision_term_cannot_decide():
    import numpy as np

    from bayesfp.decide import PosteriorDraws, decision_for_report
    from bayesfp.errors import BayesfpInputError

    chin = PosteriorDraws("chinchilla", {"n": np.array([406.4]), "alpha": np.array([0.34]),
                                         "d": np.array([410.7]), "beta": np.array([0.28]),
                                         "eps": np.array([1.69])}, [0.01])
    with pytest.raises(BayesfpInputError, match="no precision term"):
        decision_for_report(chin, budget=1e21, next_runs=None)
