"""Deterministic train/validation split by document, from a hash of the document's text."""

import hashlib


def doc_hash(doc: str) -> int:
    """First 8 bytes of the sha256 of the UTF-8 text, as an unsigned little-endian integer."""
    return int.from_bytes(hashlib.sha256(doc.encode("utf-8")).digest()[:8], "little")


def val_threshold(total_bytes: int, val_fraction: float, min_val_bytes: int) -> float:
    """Fraction of documents (by hash) sent to validation: ``val_fraction``, raised if needed so
    that about ``min_val_bytes`` of text (bytes) land in validation."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction: must lie in (0, 1), got {val_fraction}")
    return min(0.5, max(val_fraction, min_val_bytes / max(total_bytes, 1)))


def split(docs: list[str], fraction: float) -> tuple[list[str], list[str]]:
    """Send a document to validation when its hash, scaled to [0, 1), is below ``fraction``.

    Both splits are returned sorted by document hash (a fixed shuffle that mixes the sources),
    so the result depends only on the set of documents, not on their order.
    """
    cut = int(fraction * 2**64)
    keyed = sorted((doc_hash(d), d) for d in docs)
    train = [d for h, d in keyed if h >= cut]
    val = [d for h, d in keyed if h < cut]
    return train, val
