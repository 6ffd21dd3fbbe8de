"""Cleaning rules of training.corpus.clean on hand-written markup."""

import gzip

from training.corpus import clean


def test_gcide_entry_markup_removed():
    raw = (
        'Abdomen \\Ab*do"men\\, n. [L. abdomen (a word of uncertain\n'
        "   etymol.): cf. F. abdomen.]\n"
        "   1. (Anat.) The belly, or that part of the body between the\n"
        "      thorax and the pelvis.\n"
        "      [1913 Webster]\n"
        "\n"
        "   2. {(Zool.)} The posterior section of the body. --Bailey.\n"
        "      [1913 Webster]\n"
    )
    out = clean.clean_dict_entry(raw)
    assert out.split("\n") == [
        "Abdomen n. [L. abdomen (a word of uncertain etymol.): cf. F. abdomen.] "
        "1. (Anat.) The belly, or that part of the body between the thorax and the pelvis.",
        "2. (Zool.) The posterior section of the body.",
    ]


def test_gcide_accent_codes():
    assert clean.clean_dict_entry("caf[e']  and na[i:]ve") == "cafe and naive"


def test_dictd_number_base64():
    assert clean.dictd_number("A") == 0
    assert clean.dictd_number("Kj") == 10 * 64 + 35
    assert clean.dictd_number("BA") == 64


def test_dict_documents_uses_index_and_skips_metadata():
    data = (
        b"meta info\nCat \\Cat\\, n.\n   A small animal.\n   [1913 Webster]\nDog n. A \xff dog.\n"
    )
    i_cat, i_dog = data.index(b"Cat"), data.index(b"Dog")
    b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    def enc(n):
        return b64[n // 64] + b64[n % 64]

    index = (
        f"00-database-info\t{enc(0)}\t{enc(i_cat)}\n"
        f"cat\t{enc(i_cat)}\t{enc(i_dog - i_cat)}\n"
        f"Cat\t{enc(i_cat)}\t{enc(i_dog - i_cat)}\n"
        f"dog\t{enc(i_dog)}\t{enc(len(data) - i_dog)}\n"
    )
    docs = clean.dict_documents(gzip.decompress(gzip.compress(data)), index)
    assert docs == ["Cat n. A small animal.", "Dog n. A \ufffd dog."]


def test_sword_nd_marker_stars_and_pilcrow():
    body = "¶ And the \\nd LORD spake unto * Moses *, saying,  \n"
    assert clean.clean_sword_entry(body) == "And the LORD spake unto Moses , saying,"


def test_sword_documents_group_by_chapter_and_drop_repeats():
    imp = (
        "$$$[ Module Heading ]\n\n"
        "$$$Genesis 1:1\nIn the beginning.\n"
        "$$$Genesis 1:2\nAnd the earth.\n"
        "$$$Genesis 1:3\nIn the beginning.\n"
        "$$$Genesis 2:1\nThus the heavens.\n"
    )
    assert clean.sword_documents(imp, by_chapter=True) == [
        "In the beginning.\nAnd the earth.",
        "Thus the heavens.",
    ]
    assert clean.sword_documents(imp, by_chapter=False) == [
        "In the beginning.",
        "And the earth.",
        "Thus the heavens.",
    ]


def test_fortunes_split_and_overstrike():
    text = "First one.\n  -- Someone\n%\nB\x08Bold\x08d word\n%\n%\n"
    assert clean.fortune_documents(text) == ["First one.\n-- Someone", "Bold word"]


def test_wordnet_gloss():
    text = (
        "  1 This software and database is being provided\n"
        "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived\n"
        '00002098 02 v 01 move 0 000 | change location; "move the car"  \n'
    )
    assert clean.wordnet_documents(text) == [
        "that which is perceived",
        'change location; "move the car"',
    ]


def test_austen_chapters_and_italics():
    lines = [
        "EMMA",
        "",
        "CHAPTER I",
        "",
        "Emma Woodhouse,",
        "handsome.",
        "",
        "_You_ said.",
        "",
        "CHAPTER II",
        "",
        "Next.",
    ]
    assert clean.austen_documents(lines) == [
        "EMMA",
        "CHAPTER I\nEmma Woodhouse, handsome.\nYou said.",
        "CHAPTER II\nNext.",
    ]


def test_html_main_text():
    html = (
        "<html><body><div class='nav'>skip me</div><div role=\"main\"><h1>Title¶</h1>"
        "<p>Some <code>code</code> text.</p><div><p>inner</p></div></div><p>footer</p>"
        "<script>var x;</script></body></html>"
    )
    assert clean.html_main_text(html) == "Title\nSome code text.\ninner"
