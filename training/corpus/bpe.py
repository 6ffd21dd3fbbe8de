"""Byte-level BPE tokenizer: training on the train split, and fast encoding to uint16 ids.

Needs the ``tokenizers`` package (imported on use).
"""

import hashlib
import os
from collections.abc import Iterable

import numpy as np

EOT = "<|endoftext|>"  # id 0: separates documents in the shards


def train(docs: Iterable[str], vocab_size: int = 8192, min_frequency: int = 2):
    """Train a byte-level BPE tokenizer (``tokenizers.ByteLevelBPETokenizer``).

    Parameters
    ----------
    docs : iterable of str
        Training documents (the train split only).
    vocab_size : int
        Vocabulary size including the end-of-text token; at most 65536 (ids are uint16).
    min_frequency : int
        Minimum count of a pair to be merged.

    Returns
    -------
    tokenizers.Tokenizer
    """
    from tokenizers import ByteLevelBPETokenizer

    if not 256 < vocab_size <= 65536:
        raise ValueError(
            f"vocab_size: must lie in (256, 65536] for uint16 shards, got {vocab_size}"
        )
    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(
        docs,
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOT],
        show_progress=False,
    )
    assert tok.token_to_id(EOT) == 0
    return tok._tokenizer


def tokenizer_json(tok) -> str:
    """The tokenizer serialised as JSON (the form written to ``tokenizer.json``)."""
    return tok.to_str()


def json_hash(text: str) -> str:
    """sha256 (hex) of the UTF-8 bytes of a ``tokenizer.json`` text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def encode(tok, docs: list[str], batch_docs: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Encode documents to one uint16 array, each document followed by the end-of-text id.

    Uses ``encode_batch_fast`` (no offsets) over batches of ``batch_docs`` documents, which
    spreads the documents of a batch over all cores (``TOKENIZERS_PARALLELISM`` is set true
    if unset).

    Returns
    -------
    ids : numpy.ndarray of uint16
        The token stream.
    lengths : numpy.ndarray of int64
        Tokens of each document, end-of-text token included.
    """
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    eot = tok.token_to_id(EOT)
    assert eot is not None and tok.get_vocab_size() <= 65536
    parts, lengths = [], []
    for i in range(0, len(docs), batch_docs):
        for enc in tok.encode_batch_fast(docs[i : i + batch_docs], add_special_tokens=False):
            parts.append(np.asarray(enc.ids + [eot], dtype=np.uint16))
            lengths.append(len(enc.ids) + 1)
    if not parts:
        return np.zeros(0, np.uint16), np.zeros(0, np.int64)
    return np.concatenate(parts), np.asarray(lengths, np.int64)
