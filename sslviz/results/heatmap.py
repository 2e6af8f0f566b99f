"""Heat maps over images (activation maps, saliency) and outlined boxes, as uint8 pictures the
pages, the CLI's PNGs and the tests share."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor

# "inferno"-like ramp (black -> purple -> orange -> yellow), 5 anchors interpolated: no colour
# library needed, and dark = cold reads on both the light and the dark theme.
_ANCHORS = torch.tensor(
    [[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=torch.float32
)
BOX_COLOUR = (0, 220, 255)


def colour_ramp(values: Tensor) -> Tensor:
    """float (H, W) in [0, 1] -> uint8 (3, H, W) through the ramp."""
    v = values.clamp(0, 1) * (len(_ANCHORS) - 1)
    low = v.floor().long().clamp(max=len(_ANCHORS) - 2)
    t = (v - low).unsqueeze(-1)  # (H, W, 1)
    rgb = _ANCHORS[low] * (1 - t) + _ANCHORS[low + 1] * t  # (H, W, 3)
    return rgb.round().to(torch.uint8).permute(2, 0, 1)


def overlay(
    image: Tensor, heat: Tensor, *, vmax: float | None = None, alpha: float = 0.6
) -> Tensor:
    """uint8 image (3, H, W) and a heat map (h, w) -> uint8 (3, H, W): the map resized to the
    image (bilinear), scaled to [0, 1] by ``vmax`` (default: its own max; negatives count as 0)
    and blended over a dimmed copy of the image."""
    h, w = image.shape[-2:]
    heat = heat.detach().float().cpu().clamp_min(0)
    up = F.interpolate(heat[None, None], size=(h, w), mode="bilinear", align_corners=False)[0, 0]
    top = float(vmax) if vmax is not None else float(up.max())
    scaled = up / top if top > 1e-12 else torch.zeros_like(up)
    coloured = colour_ramp(scaled).float()
    base = image.float() * 0.8
    weight = alpha * scaled.clamp(0.15, 1)  # cold spots keep the picture readable
    return (base * (1 - weight) + coloured * weight).round().clamp(0, 255).to(torch.uint8)


def outline(image: Image.Image, box: list[int] | tuple[int, ...], width: int = 2) -> Image.Image:
    """A copy of the RGB image with ``box`` [x0, y0, x1, y1] drawn on it."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    x0, y0, x1, y1 = box
    draw.rectangle([x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)], outline=BOX_COLOUR, width=width)
    return out
