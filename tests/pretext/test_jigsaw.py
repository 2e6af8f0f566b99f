"""Jigsaw batches: labels index the set, reassembly recovers the tiles, per-tile statistics."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from sslviz.core.errors import UserError
from sslviz.models.encoders import create_encoder
from sslviz.pretext import create_task
from sslviz.pretext.jigsaw import standardize_tiles, tile_side


def tiles_by_loop(images: torch.Tensor, offsets: torch.Tensor, t: int) -> torch.Tensor:
    """Reference cut, one tile at a time: (B, 9, C, t, t) in reading order."""
    cell = images.shape[-1] // 3
    out = torch.empty(images.shape[0], 9, images.shape[1], t, t, dtype=images.dtype)
    for i in range(images.shape[0]):
        for k in range(9):
            y = (k // 3) * cell + int(offsets[i, k, 0])
            x = (k % 3) * cell + int(offsets[i, k, 1])
            out[i, k] = images[i, :, y : y + t, x : x + t]
    return out


@pytest.mark.parametrize("size", [24, 32, 64])
def test_reassembling_with_the_label_recovers_the_tiles(size: int) -> None:
    from .conftest import photo_crops

    images = photo_crops(6, size, seed=size)
    task = create_task("jigsaw", grey_p=0.0)
    t = tile_side(size)
    assert task.encoder_input_size(size) == t and 0.7 * (size // 3) <= t < size // 3
    batch = task.make_batch(images, torch.Generator().manual_seed(5))
    layout = task.sample_layout(len(images), size, torch.Generator().manual_seed(5), images.device)
    assert batch.inputs.shape == (6, 9, 3, t, t)
    assert torch.equal(batch.targets, layout.labels)
    assert ((batch.targets >= 0) & (batch.targets < 100)).all()
    assert ((layout.offsets >= 0) & (layout.offsets <= size // 3 - t)).all()

    expected = standardize_tiles(tiles_by_loop(images, layout.offsets, t).float() / 255.0)
    order = task.permutations[batch.targets]  # (B, 9): position j holds tile order[j]
    unshuffled = torch.empty_like(batch.inputs)
    unshuffled[torch.arange(6)[:, None], order] = batch.inputs
    torch.testing.assert_close(unshuffled, expected, atol=1e-4, rtol=1e-4)


def test_tiles_are_standardized_and_some_grey(photos32: torch.Tensor) -> None:
    task = create_task("jigsaw", grey_p=0.5)
    batch = task.make_batch(photos32, torch.Generator().manual_seed(0))
    x = batch.inputs  # (B, 9, 3, t, t)
    flat = x.flatten(-2)
    torch.testing.assert_close(flat.mean(-1), torch.zeros(flat.shape[:-1]), atol=1e-4, rtol=0)
    std = flat.std(-1, unbiased=False)
    assert ((std - 1).abs() < 1e-2).logical_or(std < 1e-3).all()  # flat tiles stay 0
    grey = (x[:, :, 0] == x[:, :, 1]).flatten(-2).all(-1) & (x[:, :, 1] == x[:, :, 2]).flatten(
        -2
    ).all(-1)
    assert 0.3 < grey.float().mean().item() < 0.7  # photos have colour: only chosen tiles are grey


def test_same_generator_same_batch(photos32: torch.Tensor) -> None:
    task = create_task("jigsaw")
    a = task.make_batch(photos32, torch.Generator().manual_seed(3))
    b = task.make_batch(photos32, torch.Generator().manual_seed(3))
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.targets, b.targets)


def test_options_are_checked() -> None:
    assert len(create_task("jigsaw", permutations=30).permutations) == 30
    with pytest.raises(UserError, match="30"):
        create_task("jigsaw", permutations=7)
    with pytest.raises(ValueError, match="at least"):
        create_task("jigsaw").make_batch(torch.zeros(2, 3, 18, 18, dtype=torch.uint8))


def test_evaluate_and_artifacts(photos32: torch.Tensor, tmp_path: Path) -> None:
    task = create_task("jigsaw", permutations=30)
    enc = create_encoder("small-cnn", image_size=task.encoder_input_size(32))
    model = task.build_model(enc, photos32)
    m = task.evaluate(model, photos32, batch_size=8)
    assert set(m) >= {"accuracy", "top5", "mean_hamming", "permutations"}
    assert m["permutations"] == 30 and 0 <= m["accuracy"] <= m["top5"] <= 1
    assert 0 <= m["mean_hamming"] <= 9
    assert task.evaluate(model, photos32, batch_size=5) == pytest.approx(m)  # puzzles fixed by seed
    kind, path = task.save_artifacts(model, photos32, tmp_path)["examples"]
    assert kind == "image" and Image.open(path).size[1] > 3 * 32


def coordinate_images(n: int, size: int) -> torch.Tensor:
    """uint8 (n, 3, size, size): red = row index, green = column index."""
    rows = torch.arange(size).view(size, 1).expand(size, size)
    cols = torch.arange(size).view(1, size).expand(size, size)
    image = torch.stack([rows, cols, torch.zeros_like(rows)]).to(torch.uint8)
    return image.expand(n, 3, size, size).contiguous()


def test_training_augmentation_mirrors_no_border_content_into_jigsaw_tiles() -> None:
    """The shared shift pads by reflection: mirrored content at the border of a border tile tells
    the network where it goes. For jigsaw the loader's augmentation must be crop-only: every row
    reads rows in order and every column sequence is one straight run (a flip at most)."""
    from sslviz.training.batches import augment_for

    images = coordinate_images(32, 64)
    for seed in range(4):
        out = augment_for(create_task("jigsaw"), images, torch.Generator().manual_seed(seed))
        row_steps = out[:, 0].long().diff(dim=1)  # down the image
        col_steps = out[:, 1].long().diff(dim=2)  # along each row
        assert (row_steps == 1).all()
        assert ((col_steps == 1).flatten(1).all(1) | (col_steps == -1).flatten(1).all(1)).all()
    # the other tasks keep their shift (reflection there is harmless, and it helps)
    shifted = augment_for(create_task("rotation"), images, torch.Generator().manual_seed(0))
    assert not (shifted[:, 0].long().diff(dim=1) == 1).all()
