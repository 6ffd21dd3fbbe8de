"""The pinned Debian packages the corpus is built from, and the sources extracted from them.

Versions are those of Debian 12 (bookworm) on the day the corpus was first built. A version
that has left the archive makes the build fail (see :func:`training.corpus.debs.download`).
"""

from dataclasses import dataclass

# Debian package -> exact version.
PACKAGES: dict[str, str] = {
    "dict-gcide": "0.48.5+nmu2",
    "dict-foldoc": "20230119-1",
    "dict-jargon": "4.4.7-3.1",
    "dict-devil": "1.0-13.1",
    "fortunes": "1:1.99.1-7.3",
    "fortunes-min": "1:1.99.1-7.3",
    "wordnet-base": "1:3.0-37",
    "sword-text-kjv": "14.3-1",
    "sword-text-web": "426.0-1",
    "sword-comm-mhcc": "2.0-1",
    "sword-comm-tdavid": "2.1-1",
    "sword-comm-scofield": "2.1-1",
    "sword-dict-naves": "3.0-1",
    "r-cran-janeaustenr": "1.0.0-1",
    "python3.11-doc": "3.11.2-6+deb12u9",
}

# Tools installed with apt-get to decode some sources (package -> exact version).
TOOLS: dict[str, str] = {
    "diatheke": "1.9.0+dfsg-4+b4",
    "libsword-utils": "1.9.0+dfsg-4+b4",  # mod2imp
    "r-base-core": "4.2.2.20221110-2",  # Rscript, for the Austen lazy-load data
}


@dataclass(frozen=True)
class Source:
    """One text source: where it comes from and how it is read.

    Attributes
    ----------
    name : str
        Short identifier used in the manifest.
    package : str
        Debian package that ships it (a key of ``PACKAGES``).
    kind : str
        Extractor: ``"sword"``, ``"dict"``, ``"fortune"``, ``"wordnet"``, ``"austen"``,
        ``"pydoc"``.
    arg : str
        Extractor argument (SWORD module name, dictd database name, ...).
    licence : str
        Licence of the text.
    domain : str
        ``"prose"`` (default corpus) or ``"tech"`` (only with ``--with-tech``).
    """

    name: str
    package: str
    kind: str
    arg: str
    licence: str
    domain: str = "prose"


SOURCES: tuple[Source, ...] = (
    Source("kjv", "sword-text-kjv", "sword", "engKJV2006eb", "public domain"),
    Source("web", "sword-text-web", "sword", "engWEB2015eb", "public domain"),
    Source("mhcc", "sword-comm-mhcc", "sword", "MHCC", "public domain"),
    Source("tdavid", "sword-comm-tdavid", "sword", "TDavid", "public domain"),
    Source("scofield", "sword-comm-scofield", "sword", "Scofield", "public domain"),
    Source("naves", "sword-dict-naves", "sword", "Nave", "public domain"),
    Source("gcide", "dict-gcide", "dict", "gcide", "GPL-2+"),
    Source("foldoc", "dict-foldoc", "dict", "foldoc", "GFDL-1.2"),
    Source("jargon", "dict-jargon", "dict", "jargon", "public domain"),
    Source("devil", "dict-devil", "dict", "devil", "public domain"),
    Source("fortunes", "fortunes", "fortune", "", "BSD-3-Clause (program); quotes mixed"),
    Source("fortunes-min", "fortunes-min", "fortune", "", "BSD-3-Clause (program); quotes mixed"),
    Source("wordnet", "wordnet-base", "wordnet", "", "WordNet-3.0 (BSD-like)"),
    Source("austen", "r-cran-janeaustenr", "austen", "", "MIT (texts public domain)"),
    Source("pydoc", "python3.11-doc", "pydoc", "3.11", "PSF-2.0 and others", domain="tech"),
)


def select(with_tech: bool) -> tuple[Source, ...]:
    """Sources of the prose domain, plus the technical domain when ``with_tech``."""
    return tuple(s for s in SOURCES if s.domain == "prose" or with_tech)
