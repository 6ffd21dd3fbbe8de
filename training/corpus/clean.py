"""Markup removal for each kind of source. Pure string functions: no I/O.

Every function takes raw text and returns cleaned text, or a list of documents. A document is
a str of one or more paragraphs, one paragraph per line, with no empty lines.
"""

import re

# ---- shared ----------------------------------------------------------------------------------

_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def squeeze(text: str) -> str:
    """Collapse runs of blanks on each line, strip lines, and drop empty lines."""
    lines = (_SPACES.sub(" ", _CONTROL.sub("", line)).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


# ---- SWORD modules (mod2imp -s output) ------------------------------------------------------

_IMP_KEY = re.compile(r"^\$\$\$(.*)\n", re.MULTILINE)
_SWORD_CODE = re.compile(r"\\[a-z]+\*? ?")  # \nd (divine name) and other leftover codes
_SWORD_MARKS = re.compile(r"[*¶]")


def split_imp(text: str) -> list[tuple[str, str]]:
    """Split ``mod2imp`` output into ``(key, body)`` pairs, in module order."""
    parts = _IMP_KEY.split(text)
    # parts = [before, key1, body1, key2, body2, ...]
    return [(parts[i].strip(), parts[i + 1]) for i in range(1, len(parts) - 1, 2)]


def clean_sword_entry(body: str) -> str:
    """Remove SWORD emphasis stars, pilcrows and backslash codes from one entry."""
    return squeeze(_SWORD_MARKS.sub("", _SWORD_CODE.sub("", body)))


_VERSE_KEY = re.compile(r"^(.+ \d+):\d+$")


def sword_documents(text: str, by_chapter: bool) -> list[str]:
    """Documents of one SWORD module dump.

    Entries are cleaned, empty ones and exact repeats (linked entries) dropped. With
    ``by_chapter`` the entries of one chapter (keys ``"Book C:V"``) are joined, one per line,
    into one document; otherwise every entry is a document.
    """
    seen: set[str] = set()
    groups: dict[str, list[str]] = {}
    for key, body in split_imp(text):
        entry = clean_sword_entry(body)
        if not entry or entry in seen:
            continue
        seen.add(entry)
        m = _VERSE_KEY.match(key)
        group = m.group(1) if (by_chapter and m) else key
        groups.setdefault(group, []).append(entry)
    return ["\n".join(v) for v in groups.values()]


# ---- dictd databases (GCIDE, FOLDOC, Jargon, Devil) -----------------------------------------

_DICT_SOURCE_LINE = re.compile(r"^\s*\[[^\]\n]{1,60}\]\s*$", re.MULTILINE)  # [1913 Webster]
_DICT_PRON = re.compile(r"\\[^\\\n]{1,80}\\,?")  # \Ab*do"men\,
_DICT_BRACES = re.compile(r"[{}]")
_DICT_ACCENT = re.compile(r"\[['`^\"=~:.,-]?([a-zA-Z]{1,2})['`^\"=~:.,-]?\]")  # [=a] -> a
_DICT_AUTHOR = re.compile(r" --[A-Z][^\n]{0,60}?\.$", re.MULTILINE)  # " --Bailey." at line end


def clean_dict_entry(raw: str) -> str:
    """Clean one dictd entry: drop source lines, pronunciations, braces, author citations.

    Paragraphs (separated by blank lines in the source) become single lines.
    """
    text = _DICT_SOURCE_LINE.sub("", raw)
    text = _DICT_PRON.sub("", text)
    text = _DICT_BRACES.sub("", text)
    text = _DICT_ACCENT.sub(r"\1", text)
    text = _DICT_AUTHOR.sub("", text)
    paragraphs = re.split(r"\n\s*\n", text)
    return squeeze("\n".join(" ".join(p.split()) for p in paragraphs))


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def dictd_number(code: str) -> int:
    """Decode a dictd index number (base 64, most significant digit first)."""
    n = 0
    for ch in code:
        n = n * 64 + _B64.index(ch)
    return n


def dict_documents(data: bytes, index: str) -> list[str]:
    """Documents of a dictd database: one per distinct entry of the index, in data order.

    Parameters
    ----------
    data : bytes
        The uncompressed ``.dict`` file.
    index : str
        The ``.index`` file (``headword<TAB>offset<TAB>length`` per line, offsets in bytes).

    Entries whose headword starts with ``00-database`` (metadata) are skipped. Bytes that are
    not valid UTF-8 are replaced with U+FFFD.
    """
    spans = set()
    for line in index.splitlines():
        fields = line.split("\t")
        if (
            len(fields) < 3
            or fields[0].startswith("00-database")
            or fields[0].startswith("00database")
        ):
            continue
        spans.add((dictd_number(fields[1]), dictd_number(fields[2])))
    docs = []
    for off, length in sorted(spans):
        doc = clean_dict_entry(data[off : off + length].decode("utf-8", errors="replace"))
        if doc:
            docs.append(doc)
    return docs


# ---- fortune files -------------------------------------------------------------------------

_OVERSTRIKE = re.compile(r".\x08")


def fortune_documents(text: str) -> list[str]:
    """One document per fortune (records separated by lines holding only ``%``).

    Overstrike sequences (``x<BS>x``, ``_<BS>x``) are reduced to the last character.
    """
    text = _OVERSTRIKE.sub("", text)
    docs = (squeeze(rec) for rec in re.split(r"^%\s*$", text, flags=re.MULTILINE))
    return [d for d in docs if d]


# ---- WordNet data files --------------------------------------------------------------------


def wordnet_documents(text: str) -> list[str]:
    """One document per synset: its gloss (definition and quoted examples), from a ``data.*`` file.

    Lines starting with two spaces are the licence header and are skipped; the gloss is what
    follows ``" | "`` on a synset line.
    """
    docs = []
    for line in text.splitlines():
        if line.startswith("  ") or " | " not in line:
            continue
        gloss = line.split(" | ", 1)[1].strip()
        if gloss:
            docs.append(gloss)
    return docs


# ---- Austen novels (one printed line per element, "" between paragraphs) -------------------

_CHAPTER = re.compile(r"^(CHAPTER|Chapter) [0-9IVXLC]+\.?$")
_ITALIC = re.compile(r"_([^_\n]+)_")  # _You_ -> You


def austen_documents(lines: list[str]) -> list[str]:
    """Documents of one novel: one per chapter, paragraphs joined into single lines.

    Text before the first chapter heading (title page) forms its own document.
    """
    docs: list[list[str]] = [[]]
    para: list[str] = []

    def flush() -> None:
        if para:
            docs[-1].append(" ".join(para))
            para.clear()

    for raw in lines:
        line = raw.strip()
        if _CHAPTER.match(line):
            flush()
            docs.append([line])
        elif not line:
            flush()
        else:
            para.append(line)
    flush()
    return [squeeze(_ITALIC.sub(r"\1", "\n".join(d))) for d in docs if d]


# ---- HTML (python3.11-doc) -----------------------------------------------------------------


def html_main_text(html: str) -> str:
    """Text of the ``div[role=main]`` element of a Sphinx page: one block per line, no ``¶``."""
    from html.parser import HTMLParser

    blocks = {"p", "div", "li", "dt", "dd", "pre", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "br"}

    class Main(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.depth = 0  # div nesting inside the main div; 0 = outside
            self.skip = 0  # inside <script>/<style>
            self.out: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag in ("script", "style"):
                self.skip += 1
            if tag == "div":
                if self.depth:
                    self.depth += 1
                elif ("role", "main") in attrs:
                    self.depth = 1
            if self.depth and tag in blocks:
                self.out.append("\n")

        def handle_endtag(self, tag):
            if tag in ("script", "style") and self.skip:
                self.skip -= 1
            if self.depth and tag in blocks:
                self.out.append("\n")
            if tag == "div" and self.depth:
                self.depth -= 1

        def handle_data(self, data):
            if self.depth and not self.skip:
                self.out.append(data)

    parser = Main()
    parser.feed(html)
    return squeeze("".join(parser.out).replace("¶", ""))
