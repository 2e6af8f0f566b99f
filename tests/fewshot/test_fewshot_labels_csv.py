"""Label files: good ones parse (BOM, ./ prefixes, extra columns), each kind of bad one is a
one-line error that names the rows."""

from __future__ import annotations

import pytest

from sslviz.core.errors import UserError
from sslviz.fewshot.labels_csv import labels_csv_text, parse_labels_csv, predictions_csv_text

KNOWN = {"a/1.png", "a/2.png", "b/1.png", "b/2.png"}


def parse(text: str | bytes, **kw) -> dict[str, str]:
    return parse_labels_csv(text, KNOWN, name="labels.csv", dataset="toys", **kw)


def test_good_files() -> None:
    assert parse("path,label\na/1.png,x\nb/1.png,y\n") == {"a/1.png": "x", "b/1.png": "y"}
    bom = "\ufeffpath,label\r\n./a/1.png, x \r\nb\\1.png,y\r\n\r\n".encode()
    assert parse(bom) == {"a/1.png": "x", "b/1.png": "y"}
    assert parse("label,path,note\nx,a/1.png,n\ny,b/2.png,\n") == {"a/1.png": "x", "b/2.png": "y"}
    assert parse("path,label\na/1.png,x\na/1.png,x\nb/1.png,y\n") == {
        "a/1.png": "x",
        "b/1.png": "y",
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "path,label\na/1.png,x\nzzz.png,y\nqqq.png,y\n",
            r"2 paths not in dataset 'toys': line 3 \('zzz.png'\), line 4",
        ),
        ("path,label\na/1.png,x\nb/1.png,\n", r"1 empty labels: line 3 \('b/1.png'\)"),
        ("path,label\na/1.png,x\na/2.png,x\n", "every row has the label 'x'"),
        ("a/1.png,x\nb/1.png,y\n", "no header: the first line must be 'path,label'"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a CSV file"),
        (b"path,label\n\xff\xfe,x\n", "not a CSV file"),
        ("", "the file is empty"),
        ("path,label\n", "no labeled rows"),
        (
            "path,label\na/1.png,x\na/1.png,y\n",
            r"two different labels: line 3 \('a/1.png': 'x' on line 2",
        ),
        ("path,label\na/1.png\n", "too few columns: line 2"),
        # blank lines count: the error names the line an editor shows
        ("path,label\n\na/1.png,x\n\nzzz.png,y\n", r"line 5 \('zzz.png'\)"),
        ('path,label\n"a/1.png",x\n"b/\n1.png",\n\nb/1.png,\n', r"line 3 .*line 6"),
    ],
)
def test_bad_files_name_the_rows(content: str | bytes, message: str) -> None:
    with pytest.raises(UserError, match=message) as error:
        parse(content)
    assert "\n" not in str(error.value)
    assert str(error.value).startswith("labels.csv: ")


def test_many_bad_rows_are_summed_up() -> None:
    rows = "".join(f"x{i}.png,a\n" for i in range(20))
    with pytest.raises(UserError, match="20 paths not in dataset.*and 15 more"):
        parse("path,label\n" + rows)


def test_written_files_round_trip() -> None:
    text = labels_csv_text({"b/1.png": "y", "a/1.png": "x"})
    assert text == "path,label\na/1.png,x\nb/1.png,y\n"
    assert parse(text) == {"a/1.png": "x", "b/1.png": "y"}
    import numpy as np

    out = predictions_csv_text(
        ["a/1.png", "a/2.png"], ["z", "x"], np.array([0.3, 0.81234]), {"a/1.png": "x"}
    )
    assert out.splitlines() == [
        "path,label,confidence,labeled",
        "a/1.png,x,1.0000,true",
        "a/2.png,x,0.8123,false",
    ]


def test_files_as_spreadsheets_write_them() -> None:
    """UTF-16 with a BOM ("Unicode text"), ';' (European locales), tabs, decomposed (NFD) paths:
    all read like the plain UTF-8 file (they were refused as binary, headerless, unknown paths)."""
    import unicodedata

    known = {"café/1.png", "café/2.png", "thé/1.png"}
    plain = "path,label\ncafé/1.png,crème\nthé/1.png,x\n"
    want = parse_labels_csv(plain, known)
    assert want == {"café/1.png": "crème", "thé/1.png": "x"}
    nfd = unicodedata.normalize("NFD", plain)
    assert nfd != plain
    for content in (
        plain.encode("utf-16"),  # BOM + native order
        plain.encode("utf-16-le").join([b"\xff\xfe", b""]),
        b"\xfe\xff" + plain.encode("utf-16-be"),
        plain.replace(",", ";").encode(),
        plain.replace(",", "\t").encode("utf-16"),
        nfd.encode(),
        nfd.replace(",", ";").encode("utf-16"),
    ):
        assert parse_labels_csv(content, known) == want, content[:20]
    # a store that kept NFD paths (ingested on macOS) is matched by NFC files, under its own paths
    stored_nfd = {unicodedata.normalize("NFD", p) for p in known}
    got = parse_labels_csv(plain.encode("utf-16"), stored_nfd)
    assert set(got) == {unicodedata.normalize("NFD", p) for p in want}
    with pytest.raises(UserError, match="no header"):
        parse_labels_csv("a;b\ncafé/1.png;x\n", known)
