"""One run of a sweep: a ``training train`` subprocess and its outcome as a run record.

A run is its own process, so a crash, an out-of-memory kill or a hang of one run never takes the
sweep down. The child writes its record to ``<sweep dir>/records/<run_id>.json`` (atomically, as
the trainer always does) and its output to ``<sweep dir>/logs/<run_id>.{out,err}``; only the
sweep appends to the run table. The child is in its own session (a Ctrl-C reaches the sweep only,
which then stops its children) and gets SIGKILL when the process that started it dies (Linux
``PR_SET_PDEATHSIG``), so a killed sweep leaves no run behind.

A run that exits with status 0 gives the trainer's record (ok, diverged, or failed when the GPU
ran out of memory). Any other end (non-zero exit, a signal, the time limit) gives a ``failed``
record built here, with the reason and the last lines of the run's stderr.
"""

import ctypes
import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from training.record import canonical_json, precision_fields

SOURCE_ROOT = Path(__file__).resolve().parents[2]
STDERR_LINES = 6  # lines of stderr kept in a failed record's reason
REASON_CHARS = 1500
_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child, before exec: new session, and SIGKILL when the parent dies (Linux)."""
    os.setsid()
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # not Linux: the child may outlive a killed sweep, its record is harvested later


def data_path(path):
    """Absolute path of a data directory, looked up as the trainer does (working directory, then
    the source root), so that a child finds it from any working directory."""
    p = Path(path)
    if not p.exists() and not p.is_absolute():
        p = SOURCE_ROOT / p
    return str(p.resolve()) if p.exists() else str(path)


def child_config(run):
    """The config given to the child: the run's config with an absolute data path.

    The data path is not part of the run id, so the id does not change.
    """
    return dataclasses.replace(run.config, data=data_path(run.config.data), out="")


def failed_base(run):
    """The fields of a ``failed`` record of ``run`` that do not depend on how it failed."""
    cfg = run.resolved
    record = {
        "run_id": run.run_id, "N": run.N, "D": run.D, **precision_fields(cfg),
        "loss": None, "status": "failed", "seed": cfg.seed, "reason": "",
        "epochs": run.epochs, "corpus_hash": run.corpus_hash,
        "config": canonical_json(dataclasses.asdict(cfg)), "C": run.C,
        "steps": run.D // (cfg.batch_size * cfg.seq_len), "steps_done": 0,
    }
    if cfg.group:
        record["group"] = cfg.group
    return record


def job_spec(run, workdir, env, timeout):
    """Everything a worker needs to make ``run``, as plain data (for Ray)."""
    return {
        "run_id": run.run_id,
        "config": dataclasses.asdict(child_config(run)),
        "failed": failed_base(run),
        "workdir": str(workdir) if workdir else None,
        "env": dict(env),
        "timeout": timeout,
    }


def paths(workdir, run_id):
    """Config, record, stdout and stderr paths of a run under ``workdir``."""
    w = Path(workdir)
    return {"config": w / "configs" / f"{run_id}.json", "record": w / "records" / f"{run_id}.json",
            "out": w / "logs" / f"{run_id}.out", "err": w / "logs" / f"{run_id}.err"}


def start(spec):
    """Write the config and start the child; return ``(Popen, paths)``.

    A record file left by an earlier attempt is removed first, so only this attempt's counts.
    """
    p = paths(spec["workdir"], spec["run_id"])
    for key in ("config", "record", "out"):
        p[key].parent.mkdir(parents=True, exist_ok=True)
    p["config"].write_text(json.dumps(spec["config"], indent=1) + "\n", encoding="utf-8")
    p["record"].unlink(missing_ok=True)
    env = os.environ | spec["env"]
    env["PYTHONPATH"] = os.pathsep.join(
        [str(SOURCE_ROOT)] + [x for x in env.get("PYTHONPATH", "").split(os.pathsep) if x])
    cmd = [sys.executable, "-m", "training", "train", "--config", str(p["config"]),
           "--out", str(p["record"]), "--quiet"]
    with open(p["out"], "wb") as out, open(p["err"], "wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env,
                                preexec_fn=_die_with_parent)
    return proc, p


def kill(proc):
    """SIGKILL the child's whole session (the trainer and anything it started) and reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _tail(path, n=STDERR_LINES):
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[-REASON_CHARS:]


def outcome(spec, p, returncode, seconds, timed_out=False):
    """Return ``(record, retryable)`` of a finished child.

    Parameters
    ----------
    spec : dict
        From ``job_spec``.
    p : dict
        From ``paths``.
    returncode : int
        The child's exit status (negative: killed by that signal).
    seconds : float
        Wall time of the child, start-up included (``sweep_wall_s`` in the record).
    timed_out : bool
        The child was killed at its time limit.

    Returns
    -------
    record : dict
    retryable : bool
        Whether the run failed outside the trainer (may be tried again in this sweep).
    """
    if returncode == 0 and not timed_out:
        try:
            record = json.loads(p["record"].read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            record = None
        if record is not None and record.get("run_id") == spec["run_id"]:
            record["sweep_wall_s"] = seconds
            return record, False
        why = ("the trainer wrote no record" if record is None else
               f"the trainer's run id {record.get('run_id')} is not the planned "
               f"{spec['run_id']} (changed corpus or code?)")
    elif timed_out:
        why = f"time limit of {spec['timeout']:g} s reached"
    elif returncode < 0:
        try:
            why = f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            why = f"killed by signal {-returncode}"
    else:
        why = f"exit status {returncode}"
    tail = _tail(p["err"])
    record = dict(spec["failed"], reason=why + (f"; stderr: {tail}" if tail else ""),
                  sweep_wall_s=seconds)
    return record, True


def run_job(spec):
    """Make one run to the end in this process's worker; return the outcome as plain data.

    Used by the Ray executor. Without a ``workdir`` the files go to a temporary directory that
    is removed afterwards.

    Returns
    -------
    dict
        ``record``, ``retryable`` and ``seconds``.
    """
    with tempfile.TemporaryDirectory(prefix="sweep-run-") as tmp:
        spec = dict(spec, workdir=spec["workdir"] or tmp)
        t0 = time.monotonic()
        proc, p = start(spec)
        timed_out = False
        try:
            proc.wait(timeout=spec["timeout"] or None)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill(proc)
        except BaseException:
            kill(proc)
            raise
        seconds = time.monotonic() - t0
        record, retryable = outcome(spec, p, proc.returncode, seconds, timed_out)
    return {"record": record, "retryable": retryable, "seconds": seconds}


def harvest(run, workdir):
    """Return the ok or diverged record a child of an earlier, killed sweep left for ``run``."""
    p = paths(workdir, run.run_id)["record"]
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if record.get("run_id") != run.run_id or record.get("status") not in ("ok", "diverged"):
        return None
    if not isinstance(record.get("loss"), (float, int)) and record["status"] == "ok":
        return None
    if isinstance(record.get("loss"), float) and not math.isfinite(record["loss"]):
        return None
    return record
