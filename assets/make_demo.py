"""Build assets/demo: square crops of freely licensed photos that scikit-image and scikit-learn ship.

Run once by a maintainer (needs `pip install scikit-image`; the app itself does not):

    python assets/make_demo.py

Each source photo gives CROPS_PER_PHOTO crops of random size and position (upright, so rotation
has something to learn; in colour, for colorization; with structure, for jigsaw), resized to SIZE
px, in a subfolder named after the photo (handy as labels for a few-shot demo). Deterministic.

The last HELD_OUT crops of each photo (by name) come from a strip along one side of it
(HELD_OUT_SHARE of its width or height; the side chosen so the strip shows something with an up
where the photo has one: HELD_OUT_SIDE) and the others from the rest, so no crop from the strip
shares a pixel with a crop from the rest. With 9
folders, a run's default split holds out the last 4 images of every folder (sslviz.training.split,
10% of 34 rounded up): every photo is then judged, on a part of it the model never saw.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 112
CROPS_PER_PHOTO = 34
QUALITY = 88
HELD_OUT = 4  # the last crops of each photo, from a strip along one side
HELD_OUT_SHARE = 0.3  # of the photo's width (left/right strip) or height (top/bottom)
HELD_OUT_SIDE = {"cat": "left", "coffee": "left", "flower": "bottom"}  # the others: right
# the source photos' sizes (width, height), so the crop boxes can be checked without them
PHOTO_SIZES = {
    "astronaut": (512, 512),
    "cat": (451, 300),
    "coffee": (600, 400),
    "rocket": (640, 427),
    "hubble": (1000, 872),
    "tissue": (512, 512),
    "retina": (1411, 1411),
    "temple": (640, 427),
    "flower": (640, 427),
}
OUT = Path(__file__).resolve().parent / "demo"


def sources() -> dict[str, Path]:
    import skimage
    import sklearn.datasets

    skdata = Path(skimage.__file__).parent / "data"
    sklearn_images = Path(sklearn.datasets.__file__).parent / "images"
    return {
        "astronaut": skdata / "astronaut.png",
        "cat": skdata / "chelsea.png",
        "coffee": skdata / "coffee.png",
        "rocket": skdata / "rocket.jpg",
        "hubble": skdata / "hubble_deep_field.jpg",
        "tissue": skdata / "ihc.png",
        "retina": skdata / "retina.jpg",
        "temple": sklearn_images / "china.jpg",
        "flower": sklearn_images / "flower.jpg",
    }


def regions(name: str, width: int, height: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """((x, y, w, h) of the part the training crops come from, (x, y, w, h) of the strip the
    held-out crops come from): disjoint, together the whole photo."""
    side = HELD_OUT_SIDE.get(name, "right")
    if side in ("left", "right"):
        strip = int(HELD_OUT_SHARE * width)
        if side == "right":
            return (0, 0, width - strip, height), (width - strip, 0, strip, height)
        return (strip, 0, width - strip, height), (0, 0, strip, height)
    strip = int(HELD_OUT_SHARE * height)
    if side == "bottom":
        return (0, 0, width, height - strip), (0, height - strip, width, strip)
    return (0, strip, width, height - strip), (0, 0, width, strip)


def crop_boxes(name: str, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(left, top, side) of each crop of photo ``name``: the first CROPS_PER_PHOTO - HELD_OUT
    inside its training part, the last HELD_OUT inside its held-out strip (``regions``)."""
    rest, strip = regions(name, *PHOTO_SIZES[name])
    boxes = []
    for index in range(CROPS_PER_PHOTO):
        held = index >= CROPS_PER_PHOTO - HELD_OUT
        x0, y0, w, h = strip if held else rest
        share = rng.uniform(0.7, 1.0) if held else rng.uniform(0.22, 0.65)
        side = int(share * min(w, h))
        left = x0 + int(rng.integers(0, w - side + 1))
        top = y0 + int(rng.integers(0, h - side + 1))
        boxes.append((left, top, side))
    return boxes


def main() -> None:
    rng = np.random.default_rng(20240601)
    shutil.rmtree(OUT, ignore_errors=True)
    for name, path in sources().items():
        photo = Image.open(path).convert("RGB")
        assert photo.size == PHOTO_SIZES[name], (name, photo.size)
        folder = OUT / name
        folder.mkdir(parents=True)
        for index, (left, top, side) in enumerate(crop_boxes(name, rng)):
            crop = photo.crop((left, top, left + side, top + side))
            crop = crop.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
            if rng.random() < 0.5:  # mirror only left-right: "up" stays up
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            crop.save(folder / f"{name}_{index:03d}.jpg", quality=QUALITY)
    files = sorted(OUT.rglob("*.jpg"))
    total = sum(f.stat().st_size for f in files)
    print(f"{len(files)} images, {total / 1024**2:.2f} MB in {OUT}")


if __name__ == "__main__":
    main()
