"""A real English corpus built from pinned Debian packages, a byte-level BPE tokenizer and
uint16 token shards.

The builder (:mod:`training.corpus.build`) needs ``apt-get``, ``dpkg-deb`` and the
``tokenizers`` package; the reader (:mod:`training.corpus.shards`) needs only NumPy.
Nothing here imports torch.
"""
