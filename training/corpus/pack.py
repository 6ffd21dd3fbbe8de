"""A single compressed file that carries a corpus directory to another machine.

``pack`` writes a tar archive compressed with xz (preset 9 | extreme) holding
``manifest.json``, ``tokenizer.json``, ``train.bin`` and ``val.bin``, with fixed
owners and times so the archive bytes depend only on the corpus. ``unpack`` extracts it and
refuses it unless every file matches the sha256 in the manifest and the corpus hash agrees.
"""

import json
import lzma
import shutil
import tarfile
from pathlib import Path

from training.corpus.debs import sha256_file
from training.corpus.shards import corpus_hash

MEMBERS = ("manifest.json", "tokenizer.json", "train.bin", "val.bin")
XZ_PRESET = 9 | lzma.PRESET_EXTREME


def pack(corpus_dir: str | Path, out_file: str | Path) -> dict:
    """Write ``out_file`` (.tar.xz) from ``corpus_dir``; return sizes in bytes."""
    corpus_dir, out_file = Path(corpus_dir), Path(out_file)
    for name in MEMBERS:
        if not (corpus_dir / name).is_file():
            raise ValueError(f"{name}: not found in corpus directory {corpus_dir}")
    out_file.parent.mkdir(parents=True, exist_ok=True)
    raw = 0
    with lzma.open(out_file, "wb", preset=XZ_PRESET) as xz:
        with tarfile.open(fileobj=xz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name in MEMBERS:
                path = corpus_dir / name
                info = tarfile.TarInfo(name)
                info.size = path.stat().st_size
                info.mode, info.mtime, info.uid, info.gid = 0o644, 0, 0, 0
                raw += info.size
                with open(path, "rb") as f:
                    tar.addfile(info, f)
    return {"raw_bytes": raw, "packed_bytes": out_file.stat().st_size}


def unpack(archive: str | Path, out_dir: str | Path, expect_hash: str | None = None) -> str:
    """Extract a packed corpus into ``out_dir`` after checking it; return its corpus hash.

    Raises
    ------
    ValueError
        If the archive cannot be read, holds unexpected members, a file's sha256 differs from
        the manifest, or the corpus hash differs from the manifest or from ``expect_hash``.
        Nothing is left in ``out_dir`` then.
    """
    archive, out_dir = Path(archive), Path(out_dir)
    if not archive.is_file():
        raise ValueError(f"archive: file not found: {archive}")
    tmp = out_dir.parent / (out_dir.name + ".unpacking")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        try:
            with tarfile.open(archive, mode="r:xz") as tar:
                names = tar.getnames()
                if sorted(names) != sorted(MEMBERS):
                    raise ValueError(f"archive: members {names} are not {list(MEMBERS)}")
                for name in MEMBERS:
                    src = tar.extractfile(name)
                    assert src is not None
                    with open(tmp / name, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        except (tarfile.TarError, lzma.LZMAError, EOFError, OSError) as e:
            raise ValueError(f"archive: {archive} is corrupt or not a packed corpus ({e})")
        try:
            manifest = json.loads((tmp / "manifest.json").read_text(encoding="utf-8"))
            shard_sha = {n: manifest["shards"][n]["sha256"] for n in ("train.bin", "val.bin")}
            tok_sha = manifest["tokenizer"]["sha256"]
            want = manifest["corpus_hash"]
        except (ValueError, KeyError) as e:
            raise ValueError(f"manifest.json: unreadable in archive {archive} ({e})")
        for name, sha in (*shard_sha.items(), ("tokenizer.json", tok_sha)):
            if sha256_file(tmp / name) != sha:
                raise ValueError(f"{name}: sha256 differs from manifest.json in {archive}")
        got = corpus_hash(shard_sha["train.bin"], shard_sha["val.bin"], tok_sha)
        if got != want:
            raise ValueError(f"corpus_hash: {got} differs from manifest.json ({want})")
        if expect_hash is not None and got != expect_hash:
            raise ValueError(f"corpus_hash: archive holds {got}, expected {expect_hash}")
        out_dir.mkdir(parents=True, exist_ok=True)
        for name in MEMBERS:
            (tmp / name).replace(out_dir / name)
        return got
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def xz_size(data: bytes) -> int:
    """Size in bytes of ``data`` compressed like the archive (for reporting)."""
    return len(lzma.compress(data, preset=XZ_PRESET))
