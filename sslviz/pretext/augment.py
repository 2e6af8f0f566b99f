"""Batched photometric and geometric augmentations a pretext task may apply to its images before
making its batch (rotation's options ``crop``, ``jitter``, ``grey``): a random resized crop,
colour jitter and random grey, for a whole batch at once, drawn from the step's generator.

Rotation learns "which way is up" from whatever cue is easiest; SimCLR-style augmentations
(Chen et al., ICML 2020) take away the easy cues of colour and framing, so that the features
must describe what is shown. Whether that helps at a few minutes of CPU training is measured
(benchmarks/rotation_recipe.py); the defaults are what measured best.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from sslviz.pretext.base import uniform

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 weights of R, G, B


def resized_crop(images: Tensor, min_scale: float, generator: torch.Generator | None) -> Tensor:
    """uint8 (B, 3, H, W) -> uint8 (B, 3, H, W): each image a random square crop of
    ``min_scale``..1 of its area, anywhere inside it, resized back (bilinear)."""
    b = images.shape[0]
    u = uniform((b, 3), generator, images.device)  # (B, 3): area, x, y
    side = (min_scale + (1 - min_scale) * u[:, 0]).sqrt()  # (B,) share of the side
    centre = (1 - side)[:, None] * (2 * u[:, 1:] - 1)  # (B, 2) in [-(1-s), 1-s]
    theta = torch.zeros(b, 2, 3, device=images.device)
    theta[:, 0, 0], theta[:, 1, 1] = side, side
    theta[:, :, 2] = centre
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images.float(), grid, mode="bilinear", align_corners=False)
    return out.round().clamp(0, 255).to(torch.uint8)


def colour_jitter(images: Tensor, strength: float, generator: torch.Generator | None) -> Tensor:
    """uint8 (B, 3, H, W) -> uint8: brightness, contrast and saturation each scaled by a factor
    drawn in [1 - strength, 1 + strength] per image."""
    b = images.shape[0]
    f = 1 + strength * (2 * uniform((b, 3), generator, images.device) - 1)  # (B, 3)
    x = images.float() * f[:, 0].view(b, 1, 1, 1)
    luma = torch.tensor(LUMA, device=images.device).view(1, 3, 1, 1)
    grey = (x * luma).sum(dim=1, keepdim=True)  # (B, 1, H, W)
    mean = grey.mean(dim=(2, 3), keepdim=True)
    x = (x - mean) * f[:, 1].view(b, 1, 1, 1) + mean
    grey = (x * luma).sum(dim=1, keepdim=True)
    x = (x - grey) * f[:, 2].view(b, 1, 1, 1) + grey
    return x.round().clamp(0, 255).to(torch.uint8)


def random_grey(images: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    """uint8 (B, 3, H, W) -> uint8: each image turned grey (luma in all 3 channels) with
    probability ``p``."""
    b = images.shape[0]
    pick = uniform((b,), generator, images.device) < p  # (B,)
    luma = torch.tensor(LUMA, device=images.device).view(1, 3, 1, 1)
    grey = (images.float() * luma).sum(dim=1, keepdim=True).round().to(torch.uint8)
    return torch.where(pick.view(b, 1, 1, 1), grey.expand_as(images), images)


def augment(
    images: Tensor,
    generator: torch.Generator | None,
    *,
    crop: float = 1.0,
    jitter: float = 0.0,
    grey: float = 0.0,
) -> Tensor:
    """The augmentations asked for (``crop`` < 1: resized crops of at least that share of the
    area; ``jitter`` > 0; ``grey`` > 0), in that order; none: the images unchanged."""
    if crop < 1:
        images = resized_crop(images, crop, generator)
    if jitter > 0:
        images = colour_jitter(images, jitter, generator)
    if grey > 0:
        images = random_grey(images, grey, generator)
    return images
