"""Label and prediction CSV files (DESIGN 3.2).

``LABELS.csv`` has the header ``path,label`` (an optional column ``suggested``, true where the
image came from ``sslviz suggest``, lets the estimate say when labels were chosen actively); ``PREDICTIONS.csv`` the header
``path,label,confidence,labeled`` with one row per image of the dataset (labeled rows keep their
given label, ``labeled=true``, confidence 1).

A label file is read as spreadsheets write it: UTF-8 (with or without a BOM) or UTF-16 with a BOM
("Unicode text"); the cells separated by ``,``, ``;`` (European locales) or a tab, whichever
splits the header into ``path`` and ``label``; paths and labels compared after Unicode
normalisation (NFC), so a path macOS wrote decomposed (NFD) names the same image.

A bad label file is refused as a whole with one line naming the rows at fault (by line number):
not a CSV, no header, unknown paths, empty labels, one path given two labels, fewer than two
labels. Nothing is written or imported from a refused file.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sslviz.core.atomic import write_text
from sslviz.core.errors import UserError

if TYPE_CHECKING:
    from sslviz.store import Dataset, Store

LABELS_HEADER = ("path", "label")
PREDICTIONS_HEADER = ("path", "label", "confidence", "labeled")
SHOWN = 5  # bad rows named in an error message


def read_labels_csv(
    store: Store, dataset: Dataset | str | int, path: str | Path, *, min_classes: int = 2
) -> dict[str, str]:
    """``path -> label`` from a labels CSV of ``dataset``; UserError naming bad rows."""
    dataset = store.datasets.ready(dataset)
    file = Path(path)
    if not file.is_file():
        raise UserError(f"{path}: no such file; give a CSV with the header path,label")
    known = {image.path for image in store.datasets.images(dataset.id)}
    return parse_labels_csv(
        file.read_bytes(), known, name=str(path), dataset=dataset.name, min_classes=min_classes
    )


def parse_labels_csv(
    data: bytes | str,
    known_paths: Collection[str],
    *,
    name: str = "labels",
    dataset: str = "the dataset",
    min_classes: int = 2,
) -> dict[str, str]:
    """Parse and check a labels CSV's content against the dataset's image paths."""
    numbered = _rows(data, name)  # (line number in the file, row), blank lines left out
    rows = [row for _, row in numbered]
    # the dataset's paths by their NFC form (a store filled on macOS may hold NFD ones)
    stored = {unicodedata.normalize("NFC", p): p for p in known_paths}
    header = [cell.strip().lower().lstrip("\ufeff") for cell in rows[0]] if rows else []
    if "path" not in header or "label" not in header:
        first = ",".join(rows[0])[:60] if rows else ""
        raise UserError(
            f"{name}: no header: the first line must be 'path,label' (found {first!r})"
            if rows
            else f"{name}: the file is empty; write a header 'path,label' and one row per image"
        )
    col_path, col_label = header.index("path"), header.index("label")
    labels: dict[str, str] = {}
    line_of: dict[str, int] = {}
    unknown, empty, conflicting, short = [], [], [], []
    for line, row in numbered[1:]:
        if not any(cell.strip() for cell in row):
            continue  # a row of empty cells
        if len(row) <= max(col_path, col_label):
            short.append(f"line {line}")
            continue
        image = normalise_path(row[col_path])
        label = unicodedata.normalize("NFC", row[col_label].strip())
        if not label:
            empty.append(f"line {line} ({image!r})")
        elif image not in stored:
            unknown.append(f"line {line} ({image!r})")
        elif image in labels and labels[image] != label:
            conflicting.append(
                f"line {line} ({image!r}: {labels[image]!r} on line {line_of[image]}, then {label!r})"
            )
        else:
            labels[image] = label
            line_of.setdefault(image, line)
    labels = {stored[image]: label for image, label in labels.items()}
    for problem, where, fix in (
        ("rows with too few columns", short, "every row needs a path and a label"),
        ("empty labels", empty, "give every row a label or remove it"),
        (
            f"paths not in dataset {dataset!r}",
            unknown,
            "paths are relative to the ingested folder, with / separators",
        ),
        ("paths given two different labels", conflicting, "keep one label per image"),
    ):
        if where:
            raise UserError(f"{name}: {len(where)} {problem}: {_listing(where)}; {fix}")
    classes = sorted(set(labels.values()))
    if not labels:
        raise UserError(f"{name}: no labeled rows after the header; add rows 'path,label'")
    if len(classes) < min_classes:
        raise UserError(
            f"{name}: every row has the label {classes[0]!r}: predicting needs at least "
            f"{min_classes} different labels"
        )
    return labels


def suggested_in_labels_csv(data: bytes | str, name: str = "labels") -> set[str] | None:
    """Paths (NFC) the optional column ``suggested`` marks (true/1/yes) as chosen by
    ``sslviz suggest``; None when the file has no such column (not known)."""
    rows = [row for _, row in _rows(data, name)]
    header = [cell.strip().lower().lstrip("\ufeff") for cell in rows[0]] if rows else []
    if "suggested" not in header or "path" not in header:
        return None
    col_path, col = header.index("path"), header.index("suggested")
    return {
        normalise_path(row[col_path])
        for row in rows[1:]
        if len(row) > max(col_path, col) and row[col].strip().lower() in ("true", "1", "yes", "y")
    }


def normalise_path(text: str) -> str:
    """An image path compared with the store's: "/" separators, no leading "./" or spaces, NFC."""
    path = unicodedata.normalize("NFC", text.strip().replace("\\", "/"))
    while path.startswith("./"):
        path = path[2:]
    return path


def _rows(data: bytes | str, name: str) -> list[tuple[int, list[str]]]:
    """The file's non-blank rows, each with the line of the file it starts on (blank lines are
    counted, so an error names the line an editor shows)."""
    if isinstance(data, bytes):
        data = _decoded(data, name)
    data = data.lstrip("\ufeff")
    reader = csv.reader(io.StringIO(data, newline=""), delimiter=_delimiter(data))
    numbered, last_line = [], 0
    try:
        for row in reader:
            if row:
                numbered.append((last_line + 1, row))
            last_line = reader.line_num  # a quoted field may span lines: the next row starts after
    except csv.Error as error:
        raise UserError(f"{name}: not a CSV file ({error}); write 'path,label' rows") from None
    return numbered


def _decoded(data: bytes, name: str) -> str:
    """The text of a label file: UTF-16 when it starts with a UTF-16 BOM, else UTF-8."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")  # the BOM says which byte order
        except UnicodeDecodeError:
            raise UserError(
                f"{name}: not a CSV file (broken UTF-16 text); save it as UTF-8 CSV"
            ) from None
        if "\x00" in text[:4096]:
            raise UserError(f"{name}: not a CSV file (binary content); give a text file path,label")
        return text
    if b"\x00" in data[:4096]:
        raise UserError(f"{name}: not a CSV file (binary content); give a text file path,label")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{name}: not a CSV file (not UTF-8 text); save it as UTF-8 CSV") from None


def _delimiter(text: str) -> str:
    """``,``, ``;`` or a tab: the first that splits the first non-blank line into cells named
    path and label (a comma when none does: the error then says what the header must be)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    for delimiter in (",", ";", "\t"):
        cells = {cell.strip().strip('"').lower() for cell in first.split(delimiter)}
        if {"path", "label"} <= cells:
            return delimiter
    return ","


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


# --- writing ---------------------------------------------------------------------------------------
def labels_csv_text(labels: Mapping[str, str]) -> str:
    """A labels CSV (``path,label``, sorted by path) as text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LABELS_HEADER)
    writer.writerows(sorted(labels.items()))
    return out.getvalue()


def predictions_csv_text(
    paths: Sequence[str],
    predicted: Sequence[str] | np.ndarray,
    confidence: np.ndarray,
    labels: Mapping[str, str],
    covered: np.ndarray | None = None,
) -> str:
    """A predictions CSV: one row per image, labeled rows with their given label (confidence 1).

    With ``covered`` (N,) bool a last column ``covered`` says whether the image looks like any
    labeled group (``sslviz.fewshot.coverage``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*PREDICTIONS_HEADER, *(["covered"] if covered is not None else [])])
    flags = [] if covered is None else ["true" if c else "false" for c in covered]
    for i, (path, label, conf) in enumerate(zip(paths, predicted, confidence, strict=True)):
        tail = [flags[i]] if flags else []
        if path in labels:
            writer.writerow([path, labels[path], "1.0000", "true", *tail])
        else:
            writer.writerow([path, label, f"{float(conf):.4f}", "false", *tail])
    return out.getvalue()


def write_predictions_csv(
    path: str | Path,
    paths: Sequence[str],
    predicted: Sequence[str] | np.ndarray,
    confidence: np.ndarray,
    labels: Mapping[str, str],
    covered: np.ndarray | None = None,
) -> Path:
    text = predictions_csv_text(paths, predicted, confidence, labels, covered)
    return write_text(path, text)
