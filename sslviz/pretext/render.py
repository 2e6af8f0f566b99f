"""Small PIL helpers that draw the result-page artifacts (image grids with captions)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw
from torch import Tensor

from sslviz.core.atomic import replacing

GOOD = (40, 160, 60)
BAD = (200, 40, 40)
PLAIN = (60, 60, 60)


def to_pil(images: Tensor, side: int = 96) -> list[Image.Image]:
    """uint8 (N, 3, h, w) -> N RGB images scaled (nearest, so pixels stay visible) to ``side``."""
    arr = images.detach().cpu().permute(0, 2, 3, 1).numpy()  # (N, h, w, 3)
    out = []
    for a in arr:
        img = Image.fromarray(a, "RGB")
        scale = max(1, side // max(img.size))
        out.append(img.resize((img.width * scale, img.height * scale), Image.NEAREST))
    return out


def label_tiles(
    images: Tensor, captions: Sequence[str], ok: Sequence[bool] | None = None, side: int = 96
) -> list[Image.Image]:
    """uint8 (N, 3, h, w) -> N captioned PIL images; caption green if ok, red if not."""
    out = []
    for i, img in enumerate(to_pil(images, side)):
        canvas = Image.new("RGB", (img.width, img.height + 14), "white")
        canvas.paste(img, (0, 0))
        colour = PLAIN if ok is None else (GOOD if ok[i] else BAD)
        ImageDraw.Draw(canvas).text((2, img.height + 1), captions[i], fill=colour)
        out.append(canvas)
    return out


def save_grid(tiles: Sequence[Image.Image], columns: int, path: Path, pad: int = 4) -> Path:
    """Lay PIL images out row by row, ``columns`` per row, on white; save as PNG, atomically (a
    page reading it, or a run killed while writing it, never sees half a picture)."""
    w = max(t.width for t in tiles)
    h = max(t.height for t in tiles)
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + pad) + pad), "white")
    for i, t in enumerate(tiles):
        r, c = divmod(i, columns)
        sheet.paste(t, (pad + c * (w + pad), pad + r * (h + pad)))
    with replacing(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path
