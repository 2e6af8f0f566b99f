"""``apply`` on real tiny runs of every task: the library call, the model cache, and ``sslviz
apply`` (in-process and as a real subprocess for the exit-code contract)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from trained_runs import Trained, oriented_image, png

from sslviz.cli import main
from sslviz.core.errors import UserError
from sslviz.models.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from sslviz.results.apply import Applied, apply_image, cached_run_model, read_image
from sslviz.store import Store
from sslviz.training import train
from sslviz.training.config import TrainConfig


def apply_file(store: Store, run_id: int, image: bytes | str | Path, **options) -> Applied:
    """What ``sslviz apply`` does: read the image (UserError if unusable), apply the run's model."""
    return apply_image(cached_run_model(store, run_id), read_image(image), **options)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """A new upright image (not in the dataset), larger and not square, as a user would give."""
    path = tmp_path / "photo.png"
    Image.fromarray(oriented_image(np.random.default_rng(123), 120)[:, :100]).save(path)
    return path


def test_rotation_names_every_turn_of_an_upright_image(trained: Trained, store: Store, photo):
    result = apply_file(store, trained.rotation, photo)
    probs = torch.tensor(result.values["rotation_probabilities"])
    assert probs.shape == (4, 4)
    assert torch.allclose(probs.sum(dim=1), torch.ones(4), atol=1e-4)
    assert probs.argmax(dim=1).tolist() == [0, 1, 2, 3]  # row = applied turn
    assert result.values["predicted_angles"] == [0, 90, 180, 270]
    assert [p.title for p in result.panels] == [
        "turned 0°",
        "turned 90°",
        "turned 180°",
        "turned 270°",
    ]
    assert all(p.ok for p in result.panels)
    assert 0 < result.seconds < 0.5
    assert set(result.to_json()) >= {"run", "task", "seconds", "rotation_probabilities"}


def test_colorization_compares_with_grey_and_anneals(trained: Trained, store: Store, photo):
    result = apply_file(store, trained.colorization, photo)
    assert result.values["input_has_colour"]
    assert isinstance(result.values["psnr"], float) and isinstance(
        result.values["psnr_grey"], float
    )
    grey, model, truth = (p.image for p in result.panels)
    assert grey.shape == model.shape == truth.shape == (3, 256, 256)
    spread = grey.int().amax(dim=0) - grey.int().amin(dim=0)  # (H, W): channels agree
    assert int(spread.max()) <= 1
    vivid = apply_file(store, trained.colorization, photo, temperature=0.05)
    mean = apply_file(store, trained.colorization, photo, temperature=1.0)
    assert vivid.values["temperature"] == 0.05
    assert vivid.values["colourfulness"] != mean.values["colourfulness"]


def test_colorization_of_a_grey_input_has_nothing_to_compare(trained: Trained, store: Store):
    grey = png(np.repeat(np.linspace(0, 255, 40 * 40).reshape(40, 40, 1), 3, 2).astype(np.uint8))
    result = apply_image(cached_run_model(store, trained.colorization), read_image(grey))
    assert not result.values["input_has_colour"]
    assert result.values["psnr"] is None and result.values["psnr_grey"] is None
    assert [p.title for p in result.panels] == ["grey input", "model"]


def test_l2_colorization_has_no_temperature_to_set(trained: Trained, store: Store, photo):
    a = apply_file(store, trained.colorization_l2, photo, temperature=0.05)
    b = apply_file(store, trained.colorization_l2, photo, temperature=1.0)
    assert torch.equal(a.panels[1].image, b.panels[1].image)


def test_jigsaw_solves_a_puzzle_with_permutations_of_nine_tiles(
    trained: Trained, store: Store, photo
):
    result = apply_file(store, trained.jigsaw, photo, seed=3)
    v = result.values
    assert sorted(v["permutation"]) == sorted(v["predicted"]) == list(range(9))
    assert v["hamming"] == sum(
        a != b for a, b in zip(v["permutation"], v["predicted"], strict=True)
    )
    assert v["correct"] == (v["hamming"] == 0)
    assert [p.title for p in result.panels] == ["shuffled tiles", "model's reassembly", "original"]
    again = apply_file(store, trained.jigsaw, photo, seed=3)
    assert again.values["permutation"] == v["permutation"]  # the seed fixes the puzzle


def test_model_cache_follows_the_checkpoint(trained: Trained, store: Store):
    first = cached_run_model(store, trained.rotation)
    assert cached_run_model(store, trained.rotation) is first
    path = checkpoint_path(store.workspace.run_dir(trained.rotation))
    newer = load_checkpoint(path)
    newer["step"] += 1  # as a running run writes its next checkpoint
    save_checkpoint(path, {k: v for k, v in newer.items() if k != "format"})
    os.utime(path, ns=(first.version + 10**9, first.version + 10**9))
    second = cached_run_model(store, trained.rotation)
    assert second is not first and second.step == first.step + 1


def test_bad_inputs_are_one_line_user_errors(trained: Trained, store: Store, tmp_path: Path):
    (tmp_path / "notes.png").write_text("not an image at all")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(UserError, match="notes.png is not a usable image"):
        apply_file(store, trained.rotation, tmp_path / "notes.png")
    with pytest.raises(UserError, match="empty file"):
        apply_file(store, trained.rotation, tmp_path / "empty.jpg")
    queued = train.create_run(
        store, TrainConfig(dataset="shapes", task="rotation", image_size=16, device="cpu")
    )
    with pytest.raises(UserError, match="no checkpoint yet"):
        apply_file(store, queued.id, png(oriented_image(np.random.default_rng(0))))


def test_cli_json_and_picture(trained: Trained, photo: Path, tmp_path: Path, capsys):
    out = tmp_path / "shown.png"
    assert main(["apply", str(trained.colorization), str(photo), "--out", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert {"run", "task", "seconds", "psnr", "psnr_grey"} <= set(printed)
    assert printed["task"] == "colorization" and printed["out"] == str(out)
    with Image.open(out) as picture:
        assert picture.format == "PNG" and picture.width > 3 * 256

    assert main(["apply", str(trained.jigsaw), str(photo), "--json"]) == 0
    assert {"permutation", "predicted", "hamming"} <= set(json.loads(capsys.readouterr().out))
    assert main(["apply", str(trained.rotation), str(photo), "--out", str(tmp_path / "x.jpg")]) == 1
    assert "name it FILE.png" in capsys.readouterr().err


def test_cli_subprocess_text_named_png_is_one_line_error(trained: Trained, tmp_path: Path):
    fake = tmp_path / "photo.png"
    fake.write_text("just text")
    done = subprocess.run(
        [sys.executable, "-m", "sslviz", "apply", str(trained.rotation), str(fake), "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "SSLVIZ_HOME": str(trained.home)},
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1
    assert "photo.png is not a usable image (not an image)" in done.stderr
