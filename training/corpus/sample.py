"""The small sample shipped in ``training/data/sample`` for CPU tests: the first whole documents
of each split of a built corpus (the splits are in hash order, so this is a random sample)."""

import shutil
from pathlib import Path

import numpy as np

from training.corpus.build import FORMAT, write_manifest
from training.corpus.shards import TokenShards, corpus_hash, write_shard


def _head_documents(ids: np.ndarray, eot: int, n_tokens: int) -> np.ndarray:
    """The shortest prefix of whole documents holding at least ``n_tokens`` tokens."""
    ends = np.flatnonzero(np.asarray(ids[: n_tokens * 4 + 100_000]) == eot)
    if ends.size == 0:
        raise ValueError("corpus: no end-of-text token found in the shard")
    k = np.searchsorted(ends, n_tokens - 1)
    stop = int(ends[min(k, ends.size - 1)]) + 1
    return np.array(ids[:stop], dtype=np.uint16)


def cut_sample(corpus: Path, out: Path, train_tokens: int, val_tokens: int) -> dict:
    """Write a sample corpus (shards, tokenizer, manifest) cut from ``corpus`` into ``out``."""
    ts = TokenShards.open(corpus)
    eot = ts.eot
    if eot is None:
        raise ValueError("manifest.json: corpus has no tokenizer.eot_id")
    tr = _head_documents(ts.train, eot, train_tokens)
    va = _head_documents(ts.val, eot, val_tokens)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(corpus / "tokenizer.json", out / "tokenizer.json")
    shas = {
        "train.bin": write_shard(out / "train.bin", tr),
        "val.bin": write_shard(out / "val.bin", va),
    }
    parent = ts.manifest
    manifest = {
        "format": FORMAT,
        "sample_of": {
            "corpus_hash": parent["corpus_hash"],
            "rule": "first whole documents of train.bin and val.bin (both in hash order)",
            "train_tokens_requested": train_tokens,
            "val_tokens_requested": val_tokens,
            "sources": {k: v["package"] + "=" + v["version"] for k, v in parent["sources"].items()},
        },
        "tokenizer": parent["tokenizer"],
        "shards": {
            name: {
                "sha256": shas[name],
                "tokens": int(a.size),
                "bytes": int(a.size) * 2,
                "docs": int((a == eot).sum()),
                "dtype": "uint16 little-endian",
            }
            for name, a in (("train.bin", tr), ("val.bin", va))
        },
        "corpus_hash": corpus_hash(
            shas["train.bin"], shas["val.bin"], parent["tokenizer"]["sha256"]
        ),
    }
    write_manifest(out, manifest)
    return manifest
