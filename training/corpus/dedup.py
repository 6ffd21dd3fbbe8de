"""Duplicate removal: exact after normalisation, then a cheap near-duplicate pass.

The first occurrence (in source order) is kept. Both passes compare hashes only, so the cost
is linear in the corpus size.
"""

import hashlib
import re
import unicodedata
import zlib

import numpy as np

_WS = re.compile(r"\s+")
_NON_ALNUM = re.compile(r"[\W_]+")


def normalise(doc: str) -> str:
    """NFKC, case-folded, whitespace collapsed: the key of the exact pass."""
    return _WS.sub(" ", unicodedata.normalize("NFKC", doc).casefold()).strip()


def _h64(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode("utf-8"), digest_size=8).digest(), "little")


def near_key(doc: str, shingle: int = 5, k: int = 4, min_words: int = 50) -> int | None:
    """Bottom-k sketch of the document's word shingles, or None for short documents.

    Words are the case-folded alphanumeric runs. Two documents get the same key when the
    ``k`` smallest hashes of their ``shingle``-word shingles agree, which happens with high
    probability only when their shingle sets are nearly the same (high Jaccard similarity).
    Documents under ``min_words`` words have no key (short dictionary entries are often
    alike without being copies). Hashes are crc32-based, so keys are the same in every process.
    """
    return _sketch(normalise(doc), shingle, k, min_words)


def _sketch(norm: str, shingle: int = 5, k: int = 4, min_words: int = 50) -> int | None:
    """:func:`near_key` of an already normalised text."""
    if len(norm) < 2 * min_words - 1:  # too few characters to hold min_words words
        return None
    words = _NON_ALNUM.sub(" ", norm).split()
    if len(words) < min_words:
        return None
    w = np.fromiter((zlib.crc32(x.encode("utf-8")) for x in words), np.uint64, len(words))
    n = len(words) - shingle + 1
    h = np.zeros(n, np.uint64)
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps by design
        for j in range(shingle):
            h = h * np.uint64(0x100000001B3) + w[j : j + n]
        h ^= h >> np.uint64(29)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(32)
    return _h64(" ".join(str(int(x)) for x in np.unique(h)[:k]))


def dedup(docs: list[str], near: bool = True) -> tuple[list[int], int, int]:
    """Find the documents to keep: not an exact (after :func:`normalise`) or, if ``near``,
    near duplicate of an earlier one.

    Returns
    -------
    keep : list of int
        Indices of the surviving documents, ascending.
    n_exact, n_near : int
        Number of documents dropped by each pass.
    """
    seen: set[bytes] = set()
    seen_near: set[int] = set()
    keep, n_exact, n_near = [], 0, 0
    for i, doc in enumerate(docs):
        norm = normalise(doc)
        key = hashlib.sha256(norm.encode("utf-8")).digest()
        if key in seen:
            n_exact += 1
            continue
        seen.add(key)
        if near:
            nk = _sketch(norm)
            if nk is not None:
                if nk in seen_near:
                    n_near += 1
                    continue
                seen_near.add(nk)
        keep.append(i)
    return keep, n_exact, n_near
