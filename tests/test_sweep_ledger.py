"""The sweep's run table: torn last lines repaired, one writer, one record per id, failed runs
moved aside for a retry, and the lock freed when its holder is killed."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from training.sweep.ledger import Ledger, scan, sweep_dir


def rec(rid, status="ok", loss=3.0):
    return {"run_id": rid, "N": 1000, "D": 4096, "E": 8, "M": 7, "B": "none",
            "operands": "none", "loss": loss, "status": status, "seed": 0}


def write_lines(path, records, tail=b""):
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in records) + tail)


def test_sweep_dir(tmp_path):
    assert sweep_dir(tmp_path / "runs.jsonl") == tmp_path / "runs.sweep"
    assert sweep_dir(tmp_path / "runs") == tmp_path / "runs.sweep"


@pytest.mark.parametrize("n_whole", [0, 2])
def test_torn_last_line_is_repaired(tmp_path, n_whole):
    path = tmp_path / "runs.jsonl"
    whole = [rec(f"r{i}") for i in range(n_whole)]
    torn = json.dumps(rec("torn")).encode()[:37]
    write_lines(path, whole, torn)
    records, good, tail = scan(path)
    assert [r["run_id"] for r in records] == [r["run_id"] for r in whole] and tail == torn
    with Ledger.open(path) as ledger:
        assert ledger.repaired == len(torn)
        assert set(ledger.records) == {r["run_id"] for r in whole}
        assert path.stat().st_size == good
        assert ledger.append(rec("torn"))  # the torn run was not finished: it runs again
    assert (sweep_dir(path) / "torn.txt").read_bytes() == torn + b"\n"
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b"" and [json.loads(x)["run_id"] for x in lines[:-1]] == (
        [r["run_id"] for r in whole] + ["torn"])
    pd = pytest.importorskip("pandas")
    runs = pytest.importorskip("bayesfp.runs")
    table = runs.read_runs(path)
    assert isinstance(table, pd.DataFrame) and len(table) == n_whole + 1


def test_one_record_per_id(tmp_path):
    path = tmp_path / "runs.jsonl"
    with Ledger.open(path) as ledger:
        assert ledger.append(rec("a"))
        assert not ledger.append(rec("a", "failed", None))
        assert ledger.finished("a") and not ledger.finished("b")
    assert len(path.read_text().splitlines()) == 1


def test_bad_whole_lines_are_errors(tmp_path):
    path = tmp_path / "runs.jsonl"
    path.write_text(json.dumps(rec("a")) + "\n{oops\n" + json.dumps(rec("b")) + "\n")
    with pytest.raises(ValueError, match="line 2 is not valid JSON"):
        Ledger.open(path)
    write_lines(path, [rec("a"), rec("b"), rec("a")])
    with pytest.raises(ValueError, match="line 3 repeats run_id a of line 1"):
        Ledger.open(path)
    path.write_text('{"loss": 1}\n')
    with pytest.raises(ValueError, match="line 1 is not a run record"):
        Ledger.open(path)


def test_second_writer_refused(tmp_path):
    path = tmp_path / "runs.jsonl"
    with Ledger.open(path):
        with pytest.raises(ValueError, match="another sweep is writing"):
            Ledger.open(path)
    Ledger.open(path).close()


def test_lock_freed_when_holder_is_killed(tmp_path):
    path = tmp_path / "runs.jsonl"
    code = ("import sys, time; from training.sweep.ledger import Ledger; "
            f"l = Ledger.open({str(path)!r}); print('locked', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match="another sweep"):
            Ledger.open(path)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        t0 = time.monotonic()
        Ledger.open(path).close()
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_drop_failed(tmp_path):
    path = tmp_path / "runs.jsonl"
    write_lines(path, [rec("a"), rec("b", "failed", None), rec("c", "diverged", None),
                       rec("d", "failed", None)])
    with Ledger.open(path) as ledger:
        assert ledger.drop_failed() == 2
        assert list(ledger.records) == ["a", "c"]
        assert ledger.drop_failed() == 0
        assert ledger.append(rec("b"))
    assert [json.loads(x)["run_id"] for x in path.read_text().splitlines()] == ["a", "c", "b"]
    retried = (sweep_dir(path) / "retried.jsonl").read_text().splitlines()
    assert [json.loads(x)["run_id"] for x in retried] == ["b", "d"]
