"""Real photographs for the pretext tests: crops of the two photos scikit-learn ships."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_sample_images

torch.set_num_threads(1)  # the machine is shared; these tests are small on purpose


def photo_crops(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """uint8 (n, 3, size, size): random square crops of china.jpg / flower.jpg, downscaled."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    photos = load_sample_images().images  # two (427, 640, 3) uint8 arrays
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        side = int(rng.integers(96, 300))
        y = int(rng.integers(0, photo.shape[0] - side))
        x = int(rng.integers(0, photo.shape[1] - side))
        crop = Image.fromarray(photo[y : y + side, x : x + side]).resize(
            (size, size), Image.BILINEAR
        )
        out.append(torch.from_numpy(np.array(crop)).permute(2, 0, 1))
    return torch.stack(out).contiguous()


@pytest.fixture(scope="session")
def photos32() -> torch.Tensor:
    return photo_crops(16, 32)
