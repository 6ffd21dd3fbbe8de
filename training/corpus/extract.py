"""Reading each source's documents out of its unpacked Debian package.

SWORD modules are dumped with ``mod2imp -s`` (libsword-utils) and the Austen novels with
``Rscript`` (r-base-core); everything else is read directly. Cleaning is done by
:mod:`training.corpus.clean`.
"""

import gzip
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from training.corpus import clean
from training.corpus.sources import Source

# Fortune files that are pictures rather than text.
FORTUNE_SKIP = ("ascii-art",)


def _sword_path(roots: Path, work: Path) -> Path:
    """A SWORD_PATH joining every unpacked sword-* package, with the MHCC driver fixed.

    Rebuilt from scratch on each call.

    sword-comm-mhcc 2.0-1 declares ``ModDrv=zCom4`` but ships zCom files (10-byte index);
    read as zCom4 every verse returns the rest of its block, so the text repeats many times.
    """
    sword = work / "sword"
    if sword.exists():
        shutil.rmtree(sword)
    (sword / "mods.d").mkdir(parents=True)
    for pkg in sorted(roots.glob("sword-*")):
        share = pkg / "usr/share/sword"
        for conf in sorted((share / "mods.d").glob("*.conf")):
            text = conf.read_text(encoding="utf-8", errors="replace")
            if conf.name == "mhcc.conf":
                text = re.sub(r"^ModDrv=zCom4$", "ModDrv=zCom", text, flags=re.MULTILINE)
            (sword / "mods.d" / conf.name).write_text(text, encoding="utf-8")
        for f in sorted((share / "modules").rglob("*")):
            if f.is_file():
                dest = sword / "modules" / f.relative_to(share / "modules")
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not dest.exists():
                    dest.symlink_to(f.resolve())
    return sword


def sword(src: Source, roots: Path, work: Path) -> list[str]:
    """Documents of a SWORD module: Bibles and commentaries by chapter, lexicons by entry."""
    sword_dir = work / "sword"
    if not (sword_dir / "mods.d").exists():
        _sword_path(roots, work)
    env = dict(os.environ, SWORD_PATH=str(sword_dir.resolve()))
    res = subprocess.run(["mod2imp", src.arg, "-s"], env=env, capture_output=True, check=True)
    text = res.stdout.decode("utf-8", errors="replace")
    return clean.sword_documents(
        text, by_chapter=src.package.startswith(("sword-text", "sword-comm"))
    )


def dictd(src: Source, roots: Path, work: Path) -> list[str]:
    """Documents of a dictd database, one per entry."""
    base = roots / src.package / "usr/share/dictd" / src.arg
    data = gzip.decompress(base.with_suffix(".dict.dz").read_bytes())
    index = base.with_suffix(".index").read_text(encoding="utf-8", errors="replace")
    return clean.dict_documents(data, index)


def fortune(src: Source, roots: Path, work: Path) -> list[str]:
    """Documents of every fortune file of a package (``.dat``, ``.u8`` links and art skipped)."""
    docs = []
    for f in sorted((roots / src.package / "usr/share/games/fortunes").iterdir()):
        if f.suffix in (".dat", ".u8") or f.is_symlink() or f.name in FORTUNE_SKIP:
            continue
        docs += clean.fortune_documents(f.read_bytes().decode("utf-8", errors="replace"))
    return docs


def wordnet(src: Source, roots: Path, work: Path) -> list[str]:
    """Glosses of the noun, verb, adjective and adverb synsets."""
    docs = []
    for pos in ("noun", "verb", "adj", "adv"):
        f = roots / src.package / "usr/share/wordnet" / f"data.{pos}"
        docs += clean.wordnet_documents(f.read_text(encoding="utf-8", errors="replace"))
    return docs


def austen(src: Source, roots: Path, work: Path) -> list[str]:
    """Chapters of the six novels, dumped from the R lazy-load data with ``Rscript``."""
    data = roots / src.package / "usr/lib/R/site-library/janeaustenr/data/Rdata"
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        script = (
            f'e<-new.env();lazyLoad("{data}",envir=e);'
            f'for(n in ls(e))writeLines(get(n,e),file.path("{tmp}",paste0(n,".txt")))'
        )
        subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
        docs = []
        for f in sorted(Path(tmp).glob("*.txt")):
            docs += clean.austen_documents(f.read_text(encoding="utf-8").split("\n"))
    return docs


def pydoc(src: Source, roots: Path, work: Path) -> list[str]:
    """Main text of each page of the Python HTML documentation, one document per page."""
    html = roots / src.package / "usr/share/doc" / f"python{src.arg}" / "html"
    docs = []
    for f in sorted(html.rglob("*.html")):
        rel = f.relative_to(html)
        if any(p.startswith("_") for p in rel.parts) or f.name.startswith(
            ("genindex", "py-modindex", "search")
        ):
            continue
        doc = clean.html_main_text(f.read_text(encoding="utf-8", errors="replace"))
        if doc:
            docs.append(doc)
    return docs


EXTRACTORS = {
    "sword": sword,
    "dict": dictd,
    "fortune": fortune,
    "wordnet": wordnet,
    "austen": austen,
    "pydoc": pydoc,
}


def documents(src: Source, roots: Path, work: Path) -> list[str]:
    """Cleaned documents of one source, in a fixed order.

    Parameters
    ----------
    src : Source
        The source to read.
    roots : Path
        Directory holding one unpacked tree per Debian package (``roots/<package>/usr/...``).
    work : Path
        Scratch directory (SWORD_PATH, R output).
    """
    return EXTRACTORS[src.kind](src, roots, work)
