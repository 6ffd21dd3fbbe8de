"""Token shards: ``train.bin`` and ``val.bin`` of raw little-endian uint16 ids, plus
``tokenizer.json`` and ``manifest.json``. The reader needs only NumPy.

Examples
--------
>>> from training.corpus.shards import TokenShards, SAMPLE_DIR
>>> ts = TokenShards.open(SAMPLE_DIR)
>>> ts.train.dtype, ts.vocab_size
(dtype('uint16'), 8192)
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.corpus.debs import sha256_file

DTYPE = np.dtype("<u2")
SHARD_FILES = ("train.bin", "val.bin")
SAMPLE_DIR = Path(__file__).resolve().parent.parent / "data" / "sample"


def corpus_hash(train_sha256: str, val_sha256: str, tokenizer_sha256: str | None) -> str:
    """sha256 (hex) naming a corpus: over the lines ``train.bin:<sha>``, ``val.bin:<sha>`` and
    ``tokenizer.json:<sha>`` (the last left out when there is no tokenizer)."""
    lines = f"train.bin:{train_sha256}\nval.bin:{val_sha256}\n"
    if tokenizer_sha256 is not None:
        lines += f"tokenizer.json:{tokenizer_sha256}\n"
    return hashlib.sha256(lines.encode("ascii")).hexdigest()


def _memmap(path: Path, vocab_size: int) -> np.memmap | np.ndarray:
    if not path.is_file():
        raise ValueError(f"{path.name}: file not found at {path}")
    size = path.stat().st_size
    if size % 2:
        raise ValueError(f"{path.name}: {size} bytes is odd, not a uint16 shard")
    if size == 0:
        raise ValueError(f"{path.name}: file is empty")
    arr = np.memmap(path, dtype=DTYPE, mode="r")
    top = int(arr.max())
    if top >= vocab_size:
        raise ValueError(f"{path.name}: token id {top} >= vocab_size {vocab_size}")
    return arr


def tokenizer_vocab_size(tokenizer_json: Path) -> int:
    """Vocabulary size (model vocabulary plus added tokens) of a ``tokenizer.json``."""
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    ids = list(spec["model"]["vocab"].values()) + [t["id"] for t in spec.get("added_tokens", [])]
    return max(ids) + 1


@dataclass
class TokenShards:
    """Train and validation token streams of a corpus, memory-mapped.

    Attributes
    ----------
    train, val : numpy.memmap of uint16, 1-D
        Token ids; documents end with the end-of-text id (0 for corpora built here).
    vocab_size : int
        Number of token ids; every id is below it.
    manifest : dict
        The corpus manifest (``manifest.json``), or a minimal one for bare shards.
    path : Path or None
        Directory the shards were opened from.
    """

    train: np.ndarray
    val: np.ndarray
    vocab_size: int
    manifest: dict = field(repr=False)
    path: Path | None = None

    @property
    def corpus_hash(self) -> str:
        """sha256 naming the corpus (see :func:`corpus_hash`); run records cite it."""
        return self.manifest["corpus_hash"]

    @property
    def eot(self) -> int | None:
        """End-of-text token id, if known."""
        return self.manifest.get("tokenizer", {}).get("eot_id")

    @classmethod
    def open(cls, path: str | Path) -> "TokenShards":
        """Open a corpus directory holding ``train.bin``, ``val.bin`` and ``manifest.json``
        (or, without a manifest, ``tokenizer.json`` to give the vocabulary size).

        Raises
        ------
        ValueError
            If the directory or a file is missing, a shard has an odd byte count, or a token id
            is not below the vocabulary size.
        """
        path = Path(path)
        if not path.is_dir():
            raise ValueError(f"path: corpus directory not found: {path}")
        man_path, tok_path = path / "manifest.json", path / "tokenizer.json"
        if man_path.is_file():
            manifest = json.loads(man_path.read_text(encoding="utf-8"))
            vocab_size = int(manifest["tokenizer"]["vocab_size"])
        elif tok_path.is_file():
            vocab_size = tokenizer_vocab_size(tok_path)
            manifest = {}
        else:
            raise ValueError(f"manifest.json: neither it nor tokenizer.json found in {path}")
        train = _memmap(path / "train.bin", vocab_size)
        val = _memmap(path / "val.bin", vocab_size)
        if "corpus_hash" not in manifest:
            tok_sha = sha256_file(tok_path) if tok_path.is_file() else None
            manifest = {
                "tokenizer": {"vocab_size": vocab_size},
                "shards": {f: {"sha256": sha256_file(path / f)} for f in SHARD_FILES},
            } | manifest
            manifest["corpus_hash"] = corpus_hash(
                manifest["shards"]["train.bin"]["sha256"],
                manifest["shards"]["val.bin"]["sha256"],
                tok_sha,
            )
        return cls(train, val, vocab_size, manifest, path)

    @classmethod
    def from_token_files(
        cls, train_bin: str | Path, val_bin: str | Path, vocab_size: int
    ) -> "TokenShards":
        """Use existing uint16 shards (any names, any tokenizer) with a stated vocabulary size."""
        if vocab_size < 1 or vocab_size > 65536:
            raise ValueError(f"vocab_size: must lie in [1, 65536] for uint16 ids, got {vocab_size}")
        train_bin, val_bin = Path(train_bin), Path(val_bin)
        train = _memmap(train_bin, vocab_size)
        val = _memmap(val_bin, vocab_size)
        tr_sha, va_sha = sha256_file(train_bin), sha256_file(val_bin)
        manifest = {
            "tokenizer": {"vocab_size": vocab_size},
            "shards": {
                "train.bin": {"file": str(train_bin), "sha256": tr_sha, "tokens": int(train.size)},
                "val.bin": {"file": str(val_bin), "sha256": va_sha, "tokens": int(val.size)},
            },
            "corpus_hash": corpus_hash(tr_sha, va_sha, None),
        }
        return cls(train, val, vocab_size, manifest, None)

    def verify(self) -> None:
        """Check the shard files against the sha256 in the manifest.

        Raises
        ------
        ValueError
            If a file's hash differs from the manifest, or the shards were not opened from a
            directory.
        """
        if self.path is None:
            raise ValueError("path: shards not opened from a corpus directory")
        for name in SHARD_FILES:
            want = self.manifest["shards"][name]["sha256"]
            if sha256_file(self.path / name) != want:
                raise ValueError(f"{name}: sha256 differs from manifest.json")


def write_shard(path: Path, ids: np.ndarray) -> str:
    """Write ids as raw little-endian uint16 and return the file's sha256."""
    assert ids.ndim == 1
    np.ascontiguousarray(ids, dtype=DTYPE).tofile(path)
    return sha256_file(path)
