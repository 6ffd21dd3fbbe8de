"""Read and write the JSON files of bayesfp (decisions, point fits), atomically."""

import json
import os
from pathlib import Path

from bayesfp.errors import BayesfpInputError


def write_json(obj, path, default=None) -> Path:
    """Write ``obj`` as indented JSON to ``path`` through a temporary file; return the path.

    ``default`` converts what ``json`` cannot (as in :func:`json.dumps`).
    """
    path = Path(path)
    if path.is_dir():
        raise BayesfpInputError(f"out: {path} is a folder; give a file name")
    text = json.dumps(obj, indent=1, default=default)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_json(path, key: str):
    """The content of a JSON file; a :class:`BayesfpInputError` naming ``key`` if it is not JSON."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BayesfpInputError(f"{key}: {path} is not valid JSON ({exc})") from None
