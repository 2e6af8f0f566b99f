"""`sslviz predict` and `sslviz suggest` as a user runs them (subprocesses on a real workspace):
the --json keys of DESIGN 3.2, the predictions file, too few labels, and bad label files (one
line on stderr, exit 1, nothing written)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from finetune_helpers import first_per_class, make_labeled_dataset

from sslviz.fewshot.predictors import METHODS
from sslviz.store import Store


def sslviz(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SSLVIZ_HOME": str(home), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "sslviz", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.fixture
def truth(store: Store) -> dict[str, str]:
    return make_labeled_dataset(store, "toys", ("red", "green", "blue"), 8, size=16)


def write_labels(path: Path, labels: dict[str, str]) -> Path:
    path.write_text("path,label\n" + "".join(f"{p},{v}\n" for p, v in labels.items()))
    return path


def test_predict_json_and_file(home: Path, truth: dict[str, str], tmp_path: Path) -> None:
    labels = write_labels(tmp_path / "labels.csv", first_per_class(truth, 4))
    out = tmp_path / "predictions.csv"
    done = sslviz(
        home,
        "predict",
        "pixels",
        "--dataset",
        "toys",
        "--labels",
        str(labels),
        "--out",
        str(out),
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert {"method", "cv_accuracy", "cv_interval", "labeled", "predicted"} <= set(result)
    assert result["method"] in METHODS
    assert (result["labeled"], result["predicted"]) == (12, 12)
    assert result["covered_fraction"] >= 0.9  # every colour is labeled
    low, high = result["cv_interval"]
    assert 0 <= low <= result["cv_accuracy"] <= high <= 1
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["path", "label", "confidence", "labeled", "covered"]
    assert len(rows) == 24 and {r["path"] for r in rows} == set(truth)
    given = first_per_class(truth, 4)
    for row in rows:
        if row["path"] in given:
            assert (row["label"], row["labeled"]) == (given[row["path"]], "true")
            assert (row["confidence"], row["covered"]) == ("1.0000", "true")
        else:
            assert row["labeled"] == "false" and 0 <= float(row["confidence"]) <= 1
    right = sum(r["label"] == truth[r["path"]] for r in rows if r["labeled"] == "false")
    assert right >= 10  # the colours are easy


def test_predict_with_too_few_labels_says_so(
    store: Store, truth: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from sslviz.cli import main

    labels = write_labels(tmp_path / "labels.csv", first_per_class(truth, 1))
    out = tmp_path / "p.csv"
    args = ["predict", "pixels", "--dataset", "toys", "--labels", str(labels), "--out", str(out)]
    assert main([*args, "--method", "knn", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["method"] == "knn" and result["cv_accuracy"] is None
    assert result["cv_interval"] is None and "too few labels" in result["reason"]
    assert out.exists()


def test_predict_warns_when_labels_cover_only_some_groups(
    store: Store, truth: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from sslviz.cli import main

    given = {p: v for p, v in first_per_class(truth, 4).items() if v != "blue"}
    labels = write_labels(tmp_path / "labels.csv", given)
    out = tmp_path / "p.csv"
    args = ["predict", "pixels", "--dataset", "toys", "--labels", str(labels), "--out", str(out)]
    assert main([*args, "--method", "logreg"]) == 0
    captured = capsys.readouterr()
    assert "your labels cover about 2 of 3 groups" in captured.err
    rows = list(csv.DictReader(out.open()))
    blue = [r for r in rows if truth[r["path"]] == "blue"]
    assert sum(r["covered"] == "false" for r in blue) >= 6  # of 8 blue images nobody labeled


BAD_FILES = [  # each kind of bad file; the parser's unit tests cover the details
    ("path,label\nred/000.png,red\nmissing.png,blue\n", "missing.png"),
    ("path,label\nred/000.png,red\ngreen/001.png,\n", "empty labels: line 3"),
    ("path,label\nred/000.png,red\nred/003.png,red\n", "every row has the label 'red'"),
    ("red/000.png,red\ngreen/001.png,green\n", "no header"),
    (b"\x89PNG\r\n\x1a\n\x00\x00garbage", "not a CSV"),
]


def test_bad_label_file(home: Path, truth: dict[str, str], tmp_path: Path) -> None:
    content, message = BAD_FILES[0]
    labels = tmp_path / "labels.csv"
    labels.write_bytes(content if isinstance(content, bytes) else content.encode())
    out = tmp_path / "p.csv"
    done = sslviz(
        home,
        "predict",
        "pixels",
        "--dataset",
        "toys",
        "--labels",
        str(labels),
        "--out",
        str(out),
        "--json",
    )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr
    assert not out.exists()


def test_every_kind_of_bad_file_in_process(
    store: Store, truth: dict[str, str], tmp_path: Path
) -> None:
    """The same checks through the CLI's entry point in this process (no interpreter start-up)."""
    from sslviz.cli import main

    for content, message in BAD_FILES:
        labels = tmp_path / "labels.csv"
        labels.write_bytes(content if isinstance(content, bytes) else content.encode())
        out = tmp_path / "p.csv"
        args = [
            "predict",
            "pixels",
            "--dataset",
            "toys",
            "--labels",
            str(labels),
            "--out",
            str(out),
        ]
        assert main(args) == 1, message
        assert not out.exists()


def test_suggest_json(
    home: Path, truth: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from sslviz.cli import main

    done = sslviz(home, "suggest", "pixels", "--dataset", "toys", "--n", "3", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["strategy"] == "typiclust" and len(result["images"]) == 3
    assert set(result["images"]) <= set(truth)
    labels = write_labels(tmp_path / "labels.csv", first_per_class(truth, 1))
    args = ["suggest", "pixels", "--dataset", "toys", "--labels", str(labels), "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["images"]) == 10 and not set(result["images"]) & set(
        first_per_class(truth, 1)
    )
    assert main(["suggest", "pixels", "--dataset", "nope", "--json"]) == 1
    assert "no dataset named 'nope'" in capsys.readouterr().err


def test_predict_gives_the_majority_rate_and_flags_actively_chosen_labels(
    store: Store, truth: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """90% on labels that are 90% one label is nothing: the majority-class rate comes with every
    estimate; a labels file whose column suggested marks most rows gets the optimism note."""
    from sslviz.cli import main

    red = sorted(p for p, v in truth.items() if v == "red")
    given = {**dict.fromkeys(red[:8], "red"), **first_per_class(truth, 2)}
    given = {p: truth[p] for p in given}  # 8 red, 2 green, 2 blue (the first red twice)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "path,label,suggested\n"
        + "".join(
            f"{p},{v},{'true' if i % 4 else 'false'}\n" for i, (p, v) in enumerate(given.items())
        )
    )
    out = tmp_path / "p.csv"
    args = ["predict", "pixels", "--dataset", "toys", "--labels", str(labels), "--out", str(out)]
    assert main([*args, "--method", "logreg", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["majority_rate"] == pytest.approx(8 / 12)
    assert result["estimates"][0]["majority_rate"] == pytest.approx(8 / 12)
    assert result["suggested_share"] == pytest.approx(9 / 12) and result["actively_chosen"]
    assert "optimistic" in result["estimate_note"]
    assert main([*args, "--method", "logreg"]) == 0
    err = capsys.readouterr()
    assert "most common label: 0.667" in err.out and "optimistic" in err.err
