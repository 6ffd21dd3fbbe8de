"""The corpus build: packages -> cleaned documents -> dedup -> split -> BPE -> uint16 shards.

:func:`build` runs the whole pipeline from Debian packages; :func:`build_from_documents` is the
part after extraction, shared with bring-your-own text (:func:`shards_from_text_files`).
"""

import json
import platform
import shutil
import time
from pathlib import Path

import numpy as np

from training.corpus import bpe, clean, debs, dedup, extract, split
from training.corpus.shards import SHARD_FILES, TokenShards, corpus_hash, write_shard
from training.corpus.sources import PACKAGES, TOOLS, select

FORMAT = "bayesfp-corpus/1"
VAL_FRACTION = 0.01
MIN_VAL_BYTES = 800_000  # about 200k tokens at ~4 bytes/token


def text_file_documents(path: Path) -> list[str]:
    """Documents of a plain text file: blocks separated by blank lines, blanks squeezed."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    docs = (clean.squeeze(block) for block in clean.re.split(r"\n[ \t\r]*\n", text))
    return [d for d in docs if d]


def unigram_cross_entropy(train: np.ndarray, val: np.ndarray, vocab_size: int) -> float:
    """Mean negative log-probability (nats/token) of ``val`` under the add-one smoothed unigram
    distribution of ``train``: the loss of a model that ignores context."""
    counts = np.bincount(train, minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts) - np.log(counts.sum())
    return float(-logp[val].mean())


def build_from_documents(
    docs_by_source: dict[str, list[str]],
    out_dir: Path,
    vocab_size: int = 8192,
    min_frequency: int = 2,
    val_fraction: float = VAL_FRACTION,
    min_val_bytes: int = MIN_VAL_BYTES,
    near_dedup: bool = True,
    extra: dict | None = None,
) -> dict:
    """Deduplicate, split, train the tokenizer, write shards, tokenizer and manifest.

    Parameters
    ----------
    docs_by_source : dict of str to list of str
        Cleaned documents per source, in a fixed order (earlier sources win duplicates).
    out_dir : Path
        Output directory (created).
    vocab_size, min_frequency : int
        BPE parameters.
    val_fraction : float
        Fraction of documents sent to validation, raised to reach ``min_val_bytes`` (bytes).
    near_dedup : bool
        Also drop near duplicates (see :func:`training.corpus.dedup.near_key`).
    extra : dict, optional
        Entries merged into the manifest (package and source records).

    Returns
    -------
    dict
        The manifest written to ``out_dir/manifest.json``.
    """
    t0 = time.perf_counter()
    timing = {}
    names = [n for n, d in docs_by_source.items() for _ in d]
    docs = [d for ds in docs_by_source.values() for d in ds]
    keep, n_exact, n_near = dedup.dedup(docs, near=near_dedup)
    source_of = {docs[i]: names[i] for i in keep}
    kept = [docs[i] for i in keep]
    if not kept:
        raise ValueError("paths: no documents found in the input text")
    timing["dedup_s"] = time.perf_counter() - t0

    total_bytes = sum(len(d.encode("utf-8")) for d in kept)
    threshold = split.val_threshold(total_bytes, val_fraction, min_val_bytes)
    train_docs, val_docs = split.split(kept, threshold)
    if not train_docs or not val_docs:
        raise ValueError("val_fraction: the split left train or validation empty; add text")

    t = time.perf_counter()
    tok = bpe.train(train_docs, vocab_size=vocab_size, min_frequency=min_frequency)
    timing["bpe_train_s"] = time.perf_counter() - t
    t = time.perf_counter()
    tr_ids, tr_len = bpe.encode(tok, train_docs)
    va_ids, va_len = bpe.encode(tok, val_docs)
    timing["encode_s"] = time.perf_counter() - t
    timing["encode_mb_per_s"] = total_bytes / 1e6 / timing["encode_s"]

    out_dir.mkdir(parents=True, exist_ok=True)
    tok_json = bpe.tokenizer_json(tok)
    (out_dir / "tokenizer.json").write_text(tok_json, encoding="utf-8")
    tok_sha = bpe.json_hash(tok_json)
    shas = {
        "train.bin": write_shard(out_dir / "train.bin", tr_ids),
        "val.bin": write_shard(out_dir / "val.bin", va_ids),
    }

    sources: dict[str, dict] = {
        n: {"docs_extracted": len(d), "docs": 0, "bytes": 0, "tokens": 0, "val_docs": 0}
        for n, d in docs_by_source.items()
    }
    for part, part_docs, lengths in (("train", train_docs, tr_len), ("val", val_docs, va_len)):
        for d, n_tok in zip(part_docs, lengths.tolist()):
            rec = sources[source_of[d]]
            rec["docs"] += 1
            rec["bytes"] += len(d.encode("utf-8"))
            rec["tokens"] += n_tok
            rec["val_docs"] += part == "val"

    def part_stats(part_docs, ids):
        nb = sum(len(d.encode("utf-8")) for d in part_docs)
        return {"docs": len(part_docs), "bytes": nb, "tokens": int(ids.size)}

    tr_stats, va_stats = part_stats(train_docs, tr_ids), part_stats(val_docs, va_ids)
    manifest = {
        "format": FORMAT,
        "builder": {
            "vocab_size": vocab_size,
            "min_frequency": min_frequency,
            "val_fraction": val_fraction,
            "min_val_bytes": min_val_bytes,
            "near_dedup": near_dedup,
            "tokenizers": _tokenizers_version(),
            "python": platform.python_version(),
        },
        **(extra or {}),
        "dedup": {
            "docs_in": len(docs),
            "exact_dropped": n_exact,
            "near_dropped": n_near,
            "docs_out": len(kept),
        },
        "split": {
            "rule": "val if first 8 bytes of sha256(doc utf-8), little-endian / 2**64 < threshold",
            "threshold": threshold,
            "order": "each split sorted by that hash",
            "train": tr_stats,
            "val": va_stats,
        },
        "tokenizer": {
            "type": "tokenizers ByteLevelBPETokenizer (byte-level BPE), trained on train only",
            "file": "tokenizer.json",
            "sha256": tok_sha,
            "vocab_size": tok.get_vocab_size(),
            "eot": bpe.EOT,
            "eot_id": tok.token_to_id(bpe.EOT),
            "document_separator": "eot id after every document",
        },
        "sources_stats": sources,
        "shards": {
            name: {
                "sha256": shas[name],
                "tokens": int(ids.size),
                "bytes": int(ids.size) * 2,
                "dtype": "uint16 little-endian",
            }
            for name, ids in zip(SHARD_FILES, (tr_ids, va_ids))
        },
        "stats": {
            "bytes_per_token_train": tr_stats["bytes"] / max(tr_stats["tokens"], 1),
            "bytes_per_token_val": va_stats["bytes"] / max(va_stats["tokens"], 1),
            "val_unigram_cross_entropy_nats": unigram_cross_entropy(
                tr_ids, va_ids, tok.get_vocab_size()
            ),
            "unigram_note": "val tokens under the add-one smoothed train unigram distribution",
        },
        "corpus_hash": corpus_hash(shas["train.bin"], shas["val.bin"], tok_sha),
    }
    timing["after_extract_s"] = time.perf_counter() - t0
    manifest["timing"] = {k: round(v, 2) for k, v in timing.items()}
    write_manifest(out_dir, manifest)
    return manifest



def shards_from_text_files(
    paths: list[str | Path],
    out_dir: str | Path,
    vocab_size: int = 8192,
    val_fraction: float = 0.01,
    min_val_bytes: int = 0,
) -> TokenShards:
    """Build a corpus from your own UTF-8 text files and open it.

    Each file is split into documents at blank lines; documents are de-duplicated, split
    by hash, a BPE tokenizer is trained on the train split, and the shards, tokenizer and
    manifest are written to ``out_dir``. Needs the ``tokenizers`` package.

    Parameters
    ----------
    paths : list of path
        Text files (UTF-8; invalid bytes are replaced).
    out_dir : path
        Directory to write ``train.bin``, ``val.bin``, ``tokenizer.json``, ``manifest.json``.
    vocab_size : int
        BPE vocabulary size (ids), at most 65536.
    val_fraction : float
        Fraction of documents for validation, in (0, 1).
    min_val_bytes : int
        Raise the validation fraction until about this many bytes of text are in it.

    Returns
    -------
    TokenShards
        The corpus just written, opened from ``out_dir``.
    """
    docs_by_source = {}
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise ValueError(f"paths: text file not found: {p}")
        docs_by_source[p.name] = text_file_documents(p)
    build_from_documents(
        docs_by_source,
        Path(out_dir),
        vocab_size=vocab_size,
        val_fraction=val_fraction,
        min_val_bytes=min_val_bytes,
        extra={"inputs": [str(p) for p in paths]},
    )
    return TokenShards.open(out_dir)

def write_manifest(out_dir: Path, manifest: dict) -> None:
    """Write ``manifest.json`` (sorted keys are not used: the order above is the reading order)."""
    text = json.dumps(manifest, indent=1, ensure_ascii=False) + "\n"
    (out_dir / "manifest.json").write_text(text, encoding="utf-8")


def _tokenizers_version() -> str:
    import tokenizers

    return tokenizers.__version__


def build(
    out: Path,
    cache: Path = Path("build/corpus"),
    with_tech: bool = False,
    vocab_size: int = 8192,
    min_frequency: int = 2,
    val_fraction: float = VAL_FRACTION,
    min_val_bytes: int = MIN_VAL_BYTES,
    near_dedup: bool = True,
) -> dict:
    """Build the corpus from the pinned Debian packages into ``out``.

    Downloads the ``.deb`` files into ``cache/deb`` (kept between builds, sha256 recorded),
    unpacks them under ``cache/root``, installs the decoding tools with apt-get, extracts and
    cleans every source, then calls :func:`build_from_documents`.

    Returns
    -------
    dict
        The manifest.
    """
    t0 = time.perf_counter()
    srcs = select(with_tech)
    pkgs = {p: PACKAGES[p] for p in dict.fromkeys(s.package for s in srcs)}
    deb_info = debs.download(pkgs, cache / "deb")
    debs.unpack(deb_info, cache / "deb", cache / "root")
    tools = debs.ensure_tools(TOOLS)
    t_fetch = time.perf_counter() - t0
    work = cache / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    docs_by_source = {}
    for s in srcs:
        docs_by_source[s.name] = extract.documents(s, cache / "root", work)
    t_extract = time.perf_counter() - t0 - t_fetch
    extra = {
        "packages": deb_info,
        "tools": {
            "installed": tools,
            "used_for": {
                "libsword-utils": (
                    "mod2imp -s dumps SWORD modules (MHCC conf: ModDrv zCom4 -> zCom)"
                ),
                "diatheke": "installed with libsword-utils; not called",
                "r-base-core": "Rscript reads the janeaustenr lazy-load data",
            },
        },
        "sources": {
            s.name: {
                "package": s.package,
                "version": PACKAGES[s.package],
                "licence": s.licence,
                "domain": s.domain,
                "extractor": s.kind,
                "arg": s.arg,
            }
            for s in srcs
        },
    }
    manifest = build_from_documents(
        docs_by_source,
        out,
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        val_fraction=val_fraction,
        min_val_bytes=min_val_bytes,
        near_dedup=near_dedup,
        extra=extra,
    )
    manifest["builder"]["with_tech"] = with_tech
    manifest["timing"] = {
        "fetch_s": round(t_fetch, 2),
        "extract_s": round(t_extract, 2),
        **manifest["timing"],
        "total_s": round(time.perf_counter() - t0, 2),
    }
    write_manifest(out, manifest)
    return manifest
