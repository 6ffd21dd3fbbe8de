"""Run records: one JSON object per training run, in the run-table schema of ``bayesfp.runs``.

Required fields: run_id, N (non-embedding parameters), D (tokens), E, M, B (block size, or
"tensor"/"channel", or "none" when nothing is quantized), operands ("+"-joined, or "none"), loss
(final validation loss, nats/token), status (ok/diverged/failed), seed. The rest (PTQ losses,
loss curves, throughput, environment, the resolved config as a JSON string) is optional.
Non-finite numbers are written as null, so every record is strict JSON.
"""

import dataclasses
import hashlib
import json
import math
import os
import platform
import subprocess
import tempfile
from pathlib import Path

from bayesfp.runs.schema import REQUIRED
from training.config import (
    IN_ID_IF_SET,
    NOT_IN_ID,
    TrainConfig,
    is_quantized,
    parse_em,
    parse_granularity,
)


def canonical_json(obj):
    """Return ``obj`` as JSON with sorted keys and no spaces (the text that gets hashed)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def run_id(cfg, corpus_hash):
    """Return a stable 12-hex-digit id of a resolved config.

    The id is the sha256 of the canonical JSON of the config without the fields that do not change
    what is computed (output path, device, data path, CUDA graph, backend, group label:
    ``NOT_IN_ID``) and without the fields of ``IN_ID_IF_SET`` left at their default, plus the
    corpus hash, which identifies the data in place of its path.

    Parameters
    ----------
    cfg : TrainConfig
        Resolved.
    corpus_hash : str

    Returns
    -------
    str
    """
    default = TrainConfig()
    d = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in NOT_IN_ID
         and not (k in IN_ID_IF_SET and v == getattr(default, k))}
    d["corpus_hash"] = corpus_hash
    return hashlib.sha256(canonical_json(d).encode()).hexdigest()[:12]


def precision_fields(cfg):
    """Return E, M, B, operands, format, convention and rounding of a resolved config.

    A run with no operand quantized is a baseline: E=8, M=7, B="none", operands="none",
    format "bf16", whatever ``format`` says.
    """
    if not is_quantized(cfg):
        return {"E": 8, "M": 7, "B": "none", "operands": "none", "format": "bf16"}
    e, m = parse_em(cfg.format)
    return {"E": e, "M": m, "B": parse_granularity(cfg.granularity), "operands": cfg.operands,
            "format": f"e{e}m{m}", "convention": cfg.convention, "rounding": cfg.rounding}


def code_rev():
    """Return the git commit of the source tree.

    ``BAYESFP_CODE_REV`` wins when set: a copy of the tree without ``.git`` (a GPU machine that
    receives the working tree) is told its revision that way. Otherwise ``git rev-parse HEAD``,
    or "unknown" outside a git checkout.
    """
    env = os.environ.get("BAYESFP_CODE_REV", "").strip()
    if env:
        return env
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    rev = out.stdout.strip()
    return rev if out.returncode == 0 and rev else "unknown"


def environment(device):
    """Return gpu, torch_version, cuda_version and code_rev for a run on ``device``."""
    import torch

    if str(device).startswith("cuda"):
        gpu = torch.cuda.get_device_name(torch.device(device))
    else:
        gpu = f"cpu ({platform.processor() or platform.machine()})"
    return {"gpu": gpu, "torch_version": torch.__version__,
            "cuda_version": torch.version.cuda or "none", "code_rev": code_rev()}


def _finite(x):
    """Replace non-finite floats, also inside lists and dicts, by None."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def check_record(record):
    """Raise ValueError if a required field is missing from ``record``."""
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"record: missing required field(s) {', '.join(missing)}")


def dumps(record):
    """Return ``record`` as one line of strict JSON (non-finite numbers as null)."""
    check_record(record)
    return json.dumps(_finite(record), allow_nan=False)


def write_record(path, record):
    """Write ``record`` to ``path`` as JSON, atomically (temporary file, fsync, os.replace).

    Parameters
    ----------
    path : str or os.PathLike
    record : dict
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(record), indent=1, allow_nan=False) + "\n"
    check_record(record)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def append_record(jsonl_path, record):
    """Append ``record`` as one line to a JSONL file, safe under concurrent writers.

    The line is written with a single ``os.write`` on a file opened with ``O_APPEND``, then
    fsynced, so lines from several processes never interleave.

    Parameters
    ----------
    jsonl_path : str or os.PathLike
    record : dict
    """
    data = (dumps(record) + "\n").encode("utf-8")
    Path(jsonl_path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(jsonl_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        n = os.write(fd, data)
        assert n == len(data), f"short write to {jsonl_path}: {n} of {len(data)} bytes"
        os.fsync(fd)
    finally:
        os.close(fd)


def read_record(path):
    """Read a record written by ``write_record``."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)
