"""Every command that writes a file answers ``--out`` naming a folder (or a file inside a missing
folder, or a file as its folder) with one line and exit 1, before any work, instead of a
traceback; files it does write get the umask's mode, as ``open()`` would give them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import trained_runs
from PIL import Image

from sslviz.cli import main
from sslviz.store import Store


@pytest.fixture
def sslviz(capsys: pytest.CaptureFixture[str]):
    """The command line in this process (torch imported once): (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def _commands(run: int, labels: Path, out: str) -> dict[str, list[str]]:
    """Each writing command with ``out`` where its file goes (``trained_runs``' dataset)."""
    data = ["--dataset", "shapes"]
    return {
        "predict": [
            "predict",
            "pixels",
            *data,
            "--labels",
            str(labels),
            "--method",
            "logreg",
            "--out",
            out,
        ],
        "embed": ["embed", "pixels", *data, "--out", out],
        "project": ["project", "pixels", *data, "--out", out],
        "upright": ["upright", str(run), *data, "--out", out],
        "scores": ["scores", str(run), "--out", out],
        "apply --out": ["apply", str(run), "IMAGE", "--out", out],
        "apply --saliency": ["apply", str(run), "IMAGE", "--saliency", out],
        "finetune": ["finetune", str(run), "--labels", str(labels), "--out", out, "--steps", "4"],
    }


@pytest.fixture
def labels(trained, tmp_path: Path) -> Path:
    store = Store.open(trained.home)
    try:
        dataset = store.datasets.get_by_name("shapes")
        paths = [image.path for image in store.datasets.images(dataset.id)][:8]
    finally:
        store.close()
    csv = tmp_path / "labels.csv"
    csv.write_text("path,label\n" + "".join(f"{p},{'ab'[i % 2]}\n" for i, p in enumerate(paths)))
    return csv


def _one_line_error(result: tuple[int, str, str], *words: str) -> None:
    code, out, err = result
    lines = err.strip().splitlines()
    assert code == 1 and len(lines) == 1, err
    assert all(word in lines[0] for word in words), lines[0]
    assert out == ""


def test_out_naming_a_folder_is_one_line_for_every_writing_command(
    trained, labels, tmp_path, sslviz
):
    image = tmp_path / "photo.png"
    Image.fromarray(trained_runs.oriented_image(np.random.default_rng(0))).save(image)
    suffix = {"embed": ".npy", "apply --out": ".png", "apply --saliency": ".png"}
    for name, args in _commands(trained.rotation, labels, "OUT").items():
        args = [str(image) if a == "IMAGE" else a for a in args]
        # a folder named like the file it should be (so the name check alone can't catch it)
        folder = tmp_path / name.replace(" ", "_") / f"out{suffix.get(name, '.csv')}"
        folder.mkdir(parents=True)
        result = sslviz(*[str(folder) if a == "OUT" else a for a in args])
        _one_line_error(result, str(folder), "folder")
        assert folder.is_dir() and not any(folder.iterdir())  # nothing written into it


def test_a_file_as_the_folder_is_one_line(trained, labels, tmp_path, sslviz):
    blocker = tmp_path / "notafolder"
    blocker.write_text("x")
    result = sslviz(*_commands(trained.rotation, labels, str(blocker / "p.csv"))["predict"])
    _one_line_error(result, "not a folder")


def test_written_files_get_the_umask_mode(trained, labels, tmp_path, sslviz):
    out = tmp_path / "predictions.csv"
    old = os.umask(0o022)
    try:
        result = sslviz(*_commands(trained.rotation, labels, str(out))["predict"])
    finally:
        os.umask(old)
    assert result[0] == 0, result[2]
    assert stat.S_IMODE(out.stat().st_mode) == 0o644  # mkstemp's 0600 hid it from the group
