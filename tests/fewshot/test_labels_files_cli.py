"""Label files as spreadsheets write them, through `sslviz predict` (real subprocesses on a real
workspace): UTF-16 with a BOM, ';'-separated and decomposed (NFD) paths give the same predictions
as the plain UTF-8 file (they were refused: "binary content", "no header", "not in dataset")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sslviz.data import ingest
from sslviz.store import Store

CLASSES = {"café": 0, "crème": 1, "thé": 2}  # accented names: NFC and NFD differ


def _folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for name, channel in CLASSES.items():
        (root / name).mkdir(parents=True)
        for i in range(8):
            pixels = rng.integers(0, 70, (16, 16, 3)).astype(np.uint8)
            top, left = rng.integers(0, 8, 2)
            pixels[top : top + 8, left : left + 8, channel] = 230
            Image.fromarray(pixels).save(root / name / f"é{i}.png")
    return root


def _predict(home: Path, labels: Path, out: Path) -> dict:
    env = {**os.environ, "SSLVIZ_HOME": str(home), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "sslviz", "predict", "pixels", "--dataset", "cafes"]
        + ["--labels", str(labels), "--out", str(out), "--method", "poisson", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _predict_here(labels: Path, out: Path, capsys: pytest.CaptureFixture) -> dict:
    """The same command through the CLI's entry point in this process (no interpreter start)."""
    from sslviz.cli import main

    args = ["predict", "pixels", "--dataset", "cafes", "--labels", str(labels), "--out", str(out)]
    assert main([*args, "--method", "poisson", "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_utf16_semicolons_and_nfd_predict_like_utf8(
    home: Path, store: Store, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ingest(store, [_folder(tmp_path / "cafes")], name="cafes")
    given = {f"{name}/é{i}.png": name for name in CLASSES for i in range(3)}
    plain = "path,label\n" + "".join(f"{p},{v}\n" for p, v in given.items())
    files = {
        "utf8": plain.encode(),
        "utf16": plain.encode("utf-16"),
        "semicolon": plain.replace(",", ";").encode(),
        "nfd": unicodedata.normalize("NFD", plain).encode(),
    }
    assert files["nfd"] != files["utf8"]
    outputs = {}
    for kind, content in files.items():
        labels = tmp_path / f"{kind}.csv"
        labels.write_bytes(content)
        out = tmp_path / f"{kind}-out.csv"
        # one real subprocess (UTF-16, refused as binary before); the rest in this process
        result = (
            _predict(home, labels, out) if kind == "utf16" else _predict_here(labels, out, capsys)
        )
        assert (result["labeled"], result["predicted"]) == (9, 15), kind
        outputs[kind] = (tmp_path / f"{kind}-out.csv").read_text()
    assert outputs["utf16"] == outputs["utf8"]
    assert outputs["semicolon"] == outputs["utf8"]
    assert outputs["nfd"] == outputs["utf8"]
