"""pack/unpack: the archive round-trips and a corrupted one is refused."""

import hashlib

import numpy as np
import pytest

from training.corpus.build import write_manifest
from training.corpus.pack import pack, unpack
from training.corpus.shards import TokenShards, corpus_hash, write_shard


def _corpus(d):
    d.mkdir()
    rng = np.random.default_rng(1)
    tr = write_shard(d / "train.bin", rng.integers(0, 500, 5000).astype(np.uint16))
    va = write_shard(d / "val.bin", rng.integers(0, 500, 600).astype(np.uint16))
    tok = '{"model": {"vocab": {"a": 0, "b": 499}}, "added_tokens": []}'
    (d / "tokenizer.json").write_text(tok)
    tok_sha = hashlib.sha256(tok.encode()).hexdigest()
    manifest = {
        "tokenizer": {"vocab_size": 500, "sha256": tok_sha, "eot_id": 0},
        "shards": {"train.bin": {"sha256": tr}, "val.bin": {"sha256": va}},
        "corpus_hash": corpus_hash(tr, va, tok_sha),
    }
    write_manifest(d, manifest)
    return manifest


def test_pack_unpack_round_trip_is_byte_exact(tmp_path):
    man = _corpus(tmp_path / "c")
    sizes = pack(tmp_path / "c", tmp_path / "c.tar.xz")
    assert sizes["packed_bytes"] < sizes["raw_bytes"]
    pack(tmp_path / "c", tmp_path / "again.tar.xz")
    assert (tmp_path / "c.tar.xz").read_bytes() == (tmp_path / "again.tar.xz").read_bytes()
    got = unpack(tmp_path / "c.tar.xz", tmp_path / "u", expect_hash=man["corpus_hash"])
    assert got == man["corpus_hash"]
    for name in ("train.bin", "val.bin", "tokenizer.json", "manifest.json"):
        assert (tmp_path / "u" / name).read_bytes() == (tmp_path / "c" / name).read_bytes()
    assert TokenShards.open(tmp_path / "u").corpus_hash == man["corpus_hash"]


def test_unpack_refuses_a_corrupted_archive(tmp_path):
    _corpus(tmp_path / "c")
    pack(tmp_path / "c", tmp_path / "c.tar.xz")
    data = bytearray((tmp_path / "c.tar.xz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "bad.tar.xz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="archive: .* corrupt"):
        unpack(tmp_path / "bad.tar.xz", tmp_path / "u")
    assert not (tmp_path / "u").exists()


def test_unpack_refuses_a_shard_that_differs_from_the_manifest(tmp_path):
    _corpus(tmp_path / "c")
    raw = bytearray((tmp_path / "c/val.bin").read_bytes())
    raw[0] ^= 1
    (tmp_path / "c/val.bin").write_bytes(bytes(raw))  # valid archive, stale manifest
    pack(tmp_path / "c", tmp_path / "c.tar.xz")
    with pytest.raises(ValueError, match="val.bin: sha256 differs"):
        unpack(tmp_path / "c.tar.xz", tmp_path / "u")
    assert not (tmp_path / "u").exists()


def test_unpack_checks_the_expected_hash(tmp_path):
    _corpus(tmp_path / "c")
    pack(tmp_path / "c", tmp_path / "c.tar.xz")
    with pytest.raises(ValueError, match="corpus_hash: archive holds"):
        unpack(tmp_path / "c.tar.xz", tmp_path / "u", expect_hash="0" * 64)
    with pytest.raises(ValueError, match="archive: file not found"):
        unpack(tmp_path / "none.tar.xz", tmp_path / "u")
