"""The sweep's MPS daemon: started with private folders, inherited by workers, stopped after.

A stand-in ``nvidia-cuda-mps-control`` on PATH logs how it is called, so the plumbing is tested
without a GPU; the real daemon was used for the H100 sweeps (docs/dataset.md).
"""

import os
import stat

import pytest

from training.sweep import mps

FAKE = """#!/bin/sh
echo "args=$* pipe=$CUDA_MPS_PIPE_DIRECTORY stdin=$(if [ -z "$1" ]; then cat; fi)" >> "{log}"
exit {rc}
"""


def _fake(tmp_path, monkeypatch, rc=0):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / mps.CONTROL
    log = tmp_path / "calls.log"
    exe.write_text(FAKE.format(log=log, rc=rc))
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("CUDA_MPS_PIPE_DIRECTORY", raising=False)
    return log


def test_daemon_started_inherited_and_stopped(tmp_path, monkeypatch):
    log = _fake(tmp_path, monkeypatch)
    lines = []
    with mps.mps_daemon(True, lines.append) as on:
        assert on
        pipe = os.environ["CUDA_MPS_PIPE_DIRECTORY"]
        assert os.path.isdir(pipe) and "sweep-mps-" in pipe
    assert "CUDA_MPS_PIPE_DIRECTORY" not in os.environ  # restored
    assert not os.path.exists(pipe)
    calls = log.read_text().splitlines()
    assert calls == [f"args=-d pipe={pipe} stdin=", f"args= pipe={pipe} stdin=quit"]
    assert lines[0].startswith("MPS: daemon started") and lines[-1] == "MPS: daemon stopped"


def test_daemon_stopped_when_the_block_raises(tmp_path, monkeypatch):
    log = _fake(tmp_path, monkeypatch)
    with pytest.raises(KeyboardInterrupt), mps.mps_daemon(True, lambda s: None):
        raise KeyboardInterrupt
    assert log.read_text().splitlines()[-1].endswith("stdin=quit")


def test_start_failure_goes_on_without(tmp_path, monkeypatch):
    _fake(tmp_path, monkeypatch, rc=1)
    lines = []
    with mps.mps_daemon(True, lines.append) as on:
        assert not on
        assert "CUDA_MPS_PIPE_DIRECTORY" not in os.environ
    assert lines == ["MPS: the daemon did not start (exit 1); packed runs take turns on the GPU"]


def test_missing_binary_and_disabled(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    lines = []
    with mps.mps_daemon(True, lines.append) as on:
        assert not on
    assert "not found" in lines[0]
    with mps.mps_daemon(False, lines.append) as on:
        assert not on
    assert len(lines) == 1
