"""Rotation batches: properties of make_batch, and the held-out metrics' bookkeeping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from sslviz.models.encoders import create_encoder
from sslviz.pretext import create_task
from sslviz.pretext.base import denormalize


@pytest.mark.parametrize("flip", [False, True])
def test_rotating_back_recovers_the_image(photos32: torch.Tensor, flip: bool) -> None:
    task = create_task("rotation", flip=flip)
    batch = task.make_batch(photos32, torch.Generator().manual_seed(1))
    b = len(photos32)
    assert batch.inputs.shape == (4 * b, 3, 32, 32) and batch.inputs.dtype == torch.float32
    assert batch.targets.tolist() == [0, 1, 2, 3] * b
    for row, k in enumerate(batch.targets.tolist()):
        back = torch.rot90(denormalize(batch.inputs[row : row + 1]), -k, dims=(2, 3))[0]
        original = photos32[row // 4]
        if flip:  # an image may have been mirrored, but all four rotations share that choice
            assert torch.equal(back, original) or torch.equal(back, original.flip(-1))
        else:
            assert torch.equal(back, original)


def test_class_one_is_ninety_degrees_counter_clockwise(photos32: torch.Tensor) -> None:
    batch = create_task("rotation", flip=False).make_batch(photos32[:1])
    turned = denormalize(batch.inputs[1:2])[0]  # (3, H, W), class 1
    # Counter-clockwise: the top row (left to right) becomes the left column (bottom to top).
    assert torch.equal(turned[:, :, 0].flip(-1), photos32[0, :, 0, :])


def test_same_generator_same_batch(photos32: torch.Tensor) -> None:
    task = create_task("rotation", flip=True)  # the flips are the only randomness
    a = task.make_batch(photos32, torch.Generator().manual_seed(7))
    b = task.make_batch(photos32, torch.Generator().manual_seed(7))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)
    c = task.make_batch(photos32, torch.Generator().manual_seed(8))
    assert not torch.equal(a.inputs, c.inputs)


def test_no_flips_by_default(photos32: torch.Tensor) -> None:
    """A flip then 180 degrees is a vertical flip: symmetric content would get two labels."""
    task = create_task("rotation")
    assert not task.options["flip"] and not task.augment_flip
    batch = task.make_batch(photos32, torch.Generator().manual_seed(7))
    upright = batch.inputs[batch.targets == 0]
    assert torch.equal(denormalize(upright), photos32)


def test_non_square_images_are_refused() -> None:
    with pytest.raises(ValueError, match="square"):
        create_task("rotation").make_batch(torch.zeros(2, 3, 32, 24, dtype=torch.uint8))


def test_evaluate_and_artifacts(photos32: torch.Tensor, tmp_path: Path) -> None:
    task = create_task("rotation")
    model = task.build_model(create_encoder("small-cnn"), photos32)
    metrics = task.evaluate(model, photos32, batch_size=8)
    confusion = torch.tensor(metrics["confusion"])
    assert confusion.shape == (4, 4)
    assert confusion.sum(dim=1).tolist() == [len(photos32)] * 4  # every image at every angle
    assert metrics["accuracy"] == pytest.approx(confusion.trace().item() / confusion.sum().item())
    assert model.training  # evaluate restores the mode it found

    files = task.save_artifacts(model, photos32, tmp_path)
    kind, path = files["confusion"]
    assert json.loads(path.read_text())["confusion"] == metrics["confusion"]
    kind, path = files["examples"]
    assert kind == "image" and Image.open(path).size[0] > 4 * 32
