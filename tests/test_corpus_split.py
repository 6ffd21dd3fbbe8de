"""Deduplication and the deterministic split by document."""

import pytest

from training.corpus import dedup, split


def test_exact_dedup_after_normalisation_keeps_first():
    docs = ["Hello  World.", "hello world.", "HELLO\nWORLD.", "Other text."]
    keep, n_exact, n_near = dedup.dedup(docs)
    assert keep == [0, 3]
    assert (n_exact, n_near) == (2, 0)


def _long(words, change=None):
    w = [f"w{i % 97}x{i}" for i in range(words)]
    if change is not None:
        w[change] = "changed"
    return " ".join(w)


def test_near_dedup_drops_a_one_word_edit_of_a_long_document():
    a = _long(300)
    b = _long(300, change=150)  # one word differs: 5 of ~296 shingles change
    c = _long(300, change=0).replace("w", "v")  # unrelated words
    keep, n_exact, n_near = dedup.dedup([a, b, c])
    assert keep == [0, 2]
    assert (n_exact, n_near) == (0, 1)
    assert dedup.dedup([a, b, c], near=False)[0] == [0, 1, 2]


def test_near_key_skips_short_documents_and_is_stable():
    assert dedup.near_key("too short to sketch") is None
    assert dedup.near_key(_long(100)) == dedup.near_key(_long(100))
    assert dedup.near_key(_long(100)) != dedup.near_key(_long(100).replace("w", "q"))


def test_split_is_by_document_and_order_free():
    docs = [f"document number {i} with some text" for i in range(2000)]
    train, val = split.split(docs, 0.1)
    assert set(train).isdisjoint(val)
    assert sorted(train + val) == sorted(docs)
    assert 100 < len(val) < 300
    train2, val2 = split.split(docs[::-1], 0.1)
    assert (train2, val2) == (train, val)


def test_split_rule_uses_the_hash_threshold():
    docs = [f"d{i}" for i in range(500)]
    _, val = split.split(docs, 0.2)
    assert all(split.doc_hash(d) < 0.2 * 2**64 for d in val)


def test_val_threshold_raised_to_reach_min_bytes():
    assert split.val_threshold(10_000_000, 0.01, 0) == 0.01
    assert split.val_threshold(10_000_000, 0.01, 500_000) == pytest.approx(0.05)
    with pytest.raises(ValueError, match="val_fraction"):
        split.val_threshold(100, 1.5, 0)
