"""Colour icons generated in code (nothing downloaded): one object on white per image, in nine
semantic groups (apple, sun, tree, fish, car, house, flower, heart, star), drawn by
``colorization_quality._draw_object``, half of them in their kind's usual colours and half with
their hue turned at random (what an icon set looks like: a red apple, and a purple one).

    write_icons(folder, per_group=40, seed=0)           # folder/<group>/NNN.png (label = group)
    write_icons(folder, per_group=40, seed=0, flat=True)  # folder/<group>_NNN.png, one folder

Used by the colorization tests (a flat folder the faithful decode must not lose on) and as the
``icons`` family of the few-shot benchmarks (labels: the group).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
from colorization_quality import SS, _draw_object  # noqa: E402

GROUPS = ("apple", "sun", "tree", "fish", "car", "house", "flower", "heart", "star")
SIDE = 64


def icon(rng: np.random.Generator, group: str, side: int = SIDE) -> Image.Image:
    """One icon of ``group`` on white, anti-aliased, its hue turned at random half the time."""
    big = side * SS
    image = Image.new("RGB", (big, big), (255, 255, 255))
    line = int(rng.integers(3, 7)) if rng.random() < 0.5 else 0
    r = big * rng.uniform(0.22, 0.34)
    cx, cy = rng.uniform(r * 1.1, big - r * 1.1), rng.uniform(r * 1.1, big - r * 1.1)
    _draw_object(ImageDraw.Draw(image), rng, cx, cy, r, line, group)
    image = image.resize((side, side), Image.LANCZOS)
    if rng.random() < 0.5:
        hsv = np.asarray(image.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int64) + int(rng.integers(30, 226))) % 256
        image = Image.fromarray(hsv, "HSV").convert("RGB")
    return image


def write_icons(folder: Path, per_group: int = 40, seed: int = 0, flat: bool = False) -> Path:
    """``per_group`` icons of each group under ``folder`` (made if needed); returns it."""
    rng = np.random.default_rng([seed, 0x1C05])
    folder.mkdir(parents=True, exist_ok=True)
    for group in GROUPS:
        target = folder if flat else folder / group
        target.mkdir(exist_ok=True)
        for i in range(per_group):
            name = f"{group}_{i:03d}.png" if flat else f"{i:03d}.png"
            icon(rng, group).save(target / name)
    return folder


if __name__ == "__main__":
    write_icons(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40, flat=True)
