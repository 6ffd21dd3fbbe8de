"""Tokenizer determinism, shard round trip, reader errors, and the shipped sample."""

import json

import numpy as np
import pytest

from training.corpus.build import shards_from_text_files
from training.corpus.shards import SAMPLE_DIR, TokenShards, write_shard


def _write_texts(tmp_path):
    words = "the quick brown fox jumps over a lazy dog while seven wise owls watch".split()
    rng = np.random.default_rng(0)
    paths = []
    for f in range(2):
        blocks = [" ".join(rng.choice(words, size=rng.integers(5, 40))) + "." for _ in range(300)]
        p = tmp_path / f"text{f}.txt"
        p.write_text("\n\n".join(blocks), encoding="utf-8")
        paths.append(p)
    return paths


def test_shards_from_text_files_is_deterministic_and_round_trips(tmp_path):
    Tokenizer = pytest.importorskip("tokenizers").Tokenizer

    paths = _write_texts(tmp_path)
    a = shards_from_text_files(paths, tmp_path / "a", vocab_size=300, val_fraction=0.1)
    b = shards_from_text_files(paths, tmp_path / "b", vocab_size=300, val_fraction=0.1)
    assert a.corpus_hash == b.corpus_hash
    assert (tmp_path / "a/tokenizer.json").read_bytes() == (
        tmp_path / "b/tokenizer.json"
    ).read_bytes()
    assert a.vocab_size == 300 and a.train.dtype == np.uint16
    assert a.val.size > 0 and int(a.train.max()) < 300
    a.verify()
    # Round trip: decoding the shard between end-of-text tokens gives back whole documents.
    tok = Tokenizer.from_file(str(tmp_path / "a/tokenizer.json"))
    ids = np.asarray(a.val)
    ends = np.flatnonzero(ids == a.eot)
    assert ends[-1] == ids.size - 1
    first = tok.decode(ids[: ends[0]].tolist())
    all_docs = set("\n\n".join(p.read_text() for p in paths).split("\n\n"))
    assert first in all_docs
    man = json.loads((tmp_path / "a/manifest.json").read_text())
    assert man["split"]["val"]["tokens"] == a.val.size
    assert man["stats"]["val_unigram_cross_entropy_nats"] > 0


def test_write_shard_is_raw_little_endian(tmp_path):
    ids = np.array([1, 258, 65535], dtype=np.uint16)
    write_shard(tmp_path / "x.bin", ids)
    assert (tmp_path / "x.bin").read_bytes() == b"\x01\x00\x02\x01\xff\xff"


def test_from_token_files_and_errors(tmp_path):
    write_shard(tmp_path / "t.bin", np.arange(100, dtype=np.uint16))
    write_shard(tmp_path / "v.bin", np.arange(10, dtype=np.uint16))
    ts = TokenShards.from_token_files(tmp_path / "t.bin", tmp_path / "v.bin", vocab_size=100)
    assert ts.train.size == 100 and ts.val[9] == 9 and len(ts.corpus_hash) == 64
    with pytest.raises(ValueError, match="token id 99 >= vocab_size 50"):
        TokenShards.from_token_files(tmp_path / "t.bin", tmp_path / "v.bin", vocab_size=50)
    with pytest.raises(ValueError, match="missing.bin: file not found"):
        TokenShards.from_token_files(tmp_path / "missing.bin", tmp_path / "v.bin", 100)
    (tmp_path / "odd.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="odd.bin: 3 bytes is odd"):
        TokenShards.from_token_files(tmp_path / "t.bin", tmp_path / "odd.bin", 100)
    with pytest.raises(ValueError, match="path: corpus directory not found"):
        TokenShards.open(tmp_path / "nope")
    with pytest.raises(ValueError, match="manifest.json: neither"):
        TokenShards.open(tmp_path)


def test_sample_opens_and_matches_its_manifest():
    ts = TokenShards.open(SAMPLE_DIR)
    ts.verify()
    assert ts.vocab_size == 8192 and ts.eot == 0
    assert 200_000 <= ts.train.size < 260_000 and 20_000 <= ts.val.size < 40_000
    assert ts.train[-1] == ts.eot and ts.val[-1] == ts.eot
    assert ts.manifest["shards"]["train.bin"]["tokens"] == ts.train.size


def test_sample_decodes_to_english():
    Tokenizer = pytest.importorskip("tokenizers").Tokenizer

    ts = TokenShards.open(SAMPLE_DIR)
    tok = Tokenizer.from_file(str(SAMPLE_DIR / "tokenizer.json"))
    text = tok.decode(np.asarray(ts.val[:2000]).tolist())
    assert sum(w in text.split() for w in ("the", "and", "of")) == 3
