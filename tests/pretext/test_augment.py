"""Rotation's optional augmentations (pretext/augment.py): batched, seeded, and applied to an
image before its four turns, so the four rows of one image are still turns of one picture."""

from __future__ import annotations

import pytest
import torch

from sslviz.core.errors import UserError
from sslviz.pretext import create_task
from sslviz.pretext.augment import augment, colour_jitter, random_grey, resized_crop


def test_none_asked_is_the_identity_and_each_is_seeded(photos32: torch.Tensor) -> None:
    assert torch.equal(augment(photos32, None), photos32)
    for f, arg in ((resized_crop, 0.3), (colour_jitter, 0.4), (random_grey, 0.5)):
        one = f(photos32, arg, torch.Generator().manual_seed(1))
        assert one.shape == photos32.shape and one.dtype == torch.uint8
        assert torch.equal(one, f(photos32, arg, torch.Generator().manual_seed(1)))
        assert not torch.equal(one, photos32)
    # a crop of the whole area is the image itself, give or take rounding
    whole = resized_crop(photos32, 1.0, torch.Generator().manual_seed(0))
    assert (whole.int() - photos32.int()).abs().max() <= 1
    grey = random_grey(photos32, 1.0, None)
    assert torch.equal(grey[:, 0], grey[:, 1]) and torch.equal(grey[:, 1], grey[:, 2])


def test_rotation_turns_the_augmented_image(photos32: torch.Tensor) -> None:
    task = create_task("rotation", crop=0.4, jitter=0.4, grey=0.3)
    batch = task.make_batch(photos32[:4], torch.Generator().manual_seed(3))
    rows = batch.inputs.view(4, 4, *batch.inputs.shape[1:])  # (B, 4 turns, 3, H, W)
    for k in range(4):
        assert torch.equal(rows[:, k], torch.rot90(rows[:, 0], k, dims=(2, 3)))
    plain = create_task("rotation").make_batch(photos32[:4], torch.Generator().manual_seed(3))
    assert not torch.equal(plain.inputs, batch.inputs)
    with pytest.raises(UserError, match="crop in"):
        create_task("rotation", crop=0)
