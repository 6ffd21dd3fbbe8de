"""The run table of a sweep: one JSONL file, one record per line, written by one process.

Guarantees:

- **One writer.** ``Ledger.open`` takes an exclusive ``fcntl.flock`` on ``<file>.lock``; a second
  sweep on the same file is refused. The kernel drops the lock when its holder dies, even by
  ``kill -9``, so a dead sweep never blocks the next.
- **Whole lines.** A record is appended as one line with a single ``os.write`` on an ``O_APPEND``
  file, then fsynced (``training.record.append_record``). A line that was cut short (no newline
  at the end of the file: the machine died during the write) is a torn line. Opening the ledger
  moves it to ``<sweep dir>/torn.txt`` and truncates the file back to the last whole line, before
  anything is appended, so a torn line never becomes part of a record.
- **Once per id.** ``append`` writes a record only if its id is not finished yet; a complete line
  that does not parse, or a second line with the same id, is an error naming the line (it cannot
  come from a sweep; a person edited the file).

Records with status ``ok``, ``diverged`` and ``failed`` are all finished. ``drop_failed``
removes the failed ones (copied first to ``<sweep dir>/retried.jsonl``) by rewriting the file
atomically, so that they run again.
"""

import fcntl
import json
import os
import tempfile
from pathlib import Path

from training.record import append_record, dumps

FINISHED = ("ok", "diverged", "failed")


def sweep_dir(out):
    """Return the working directory of a sweep writing ``out``: ``runs.jsonl`` -> ``runs.sweep``."""
    out = Path(out)
    return out.with_name(out.stem + ".sweep") if out.suffix else out.with_name(out.name + ".sweep")


def scan(path):
    """Read a JSONL run table.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    records : list of dict
        The whole lines, in file order (blank lines skipped).
    good_bytes : int
        Length of the file up to and including the last newline.
    torn : bytes
        What follows the last newline (empty when the file ends with one).

    Raises
    ------
    ValueError
        On a whole line that is not a JSON object with a ``run_id``, or a repeated ``run_id``.
    """
    path = Path(path)
    if not path.exists():
        return [], 0, b""
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1
    records, seen = [], {}
    for i, line in enumerate(data[:cut].split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError(f"out: {path} line {i} is not valid JSON; remove or fix it") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("run_id"), str):
            raise ValueError(f"out: {path} line {i} is not a run record with a run_id")
        if rec["run_id"] in seen:
            raise ValueError(f"out: {path} line {i} repeats run_id {rec['run_id']} of line "
                             f"{seen[rec['run_id']]}")
        seen[rec["run_id"]] = i
        records.append(rec)
    return records, cut, data[cut:]


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Ledger:
    """The run table of one sweep, held open for writing.

    Use ``Ledger.open(path)`` (or ``with Ledger.open(path) as ledger:``).

    Attributes
    ----------
    path : Path
    records : dict of str to dict
        Finished records by run id.
    repaired : int
        Bytes of a torn last line removed on opening (0 if none).
    """

    def __init__(self, path, lock_fd, records, repaired):
        self.path = path
        self._lock_fd = lock_fd
        self.records = records
        self.repaired = repaired

    @classmethod
    def open(cls, path):
        """Lock ``path`` for this process, repair a torn last line and read the records.

        Raises
        ------
        ValueError
            If another process holds the lock, or the file has a bad whole line.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_fd = os.open(f"{path}.lock", os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise ValueError(f"out: another sweep is writing {path} (lock {path}.lock is "
                             f"held)") from None
        try:
            records, good, torn = scan(path)
            if torn:
                d = sweep_dir(path)
                d.mkdir(parents=True, exist_ok=True)
                with open(d / "torn.txt", "ab") as f:
                    f.write(torn + b"\n")
                    f.flush()
                    os.fsync(f.fileno())
                with open(path, "r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
        except BaseException:
            os.close(lock_fd)
            raise
        return cls(path, lock_fd, {r["run_id"]: r for r in records}, len(torn))

    def close(self):
        """Release the lock."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def finished(self, run_id):
        """Whether ``run_id`` has a record (ok, diverged or failed)."""
        return run_id in self.records

    def append(self, record):
        """Append ``record`` unless its id is finished; return whether it was written."""
        assert self._lock_fd is not None, "ledger is closed"
        if record["run_id"] in self.records:
            return False
        append_record(self.path, record)
        self.records[record["run_id"]] = record
        return True

    def drop_failed(self):
        """Remove the failed records so their runs are made again; return how many.

        The failed lines are appended to ``<sweep dir>/retried.jsonl`` first, then the table is
        rewritten without them (temporary file, fsync, rename).
        """
        failed = [r for r in self.records.values() if r.get("status") == "failed"]
        if not failed:
            return 0
        d = sweep_dir(self.path)
        d.mkdir(parents=True, exist_ok=True)
        with open(d / "retried.jsonl", "a", encoding="utf-8") as f:
            f.write("".join(dumps(r) + "\n" for r in failed))
            f.flush()
            os.fsync(f.fileno())
        keep = [r for r in self.records.values() if r.get("status") != "failed"]
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write("".join(dumps(r) + "\n" for r in keep))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        _fsync_dir(self.path.parent)
        self.records = {r["run_id"]: r for r in keep}
        return len(failed)
