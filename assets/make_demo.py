"""Build assets/demo: square crops of freely licensed photos that scikit-image, scikit-learn and
matplotlib ship.

Run once by a maintainer (needs `pip install scikit-image`; the app itself does not):

    python assets/make_demo.py

Every photo has an "up" a person can see (sky, people, a cat, a cup on its saucer): rotation has
something to learn, and its held-out answers can be judged by eye. (Photos without one — a star
field, a micrograph, a dahlia seen face-on — scored chance on their held-out crops and are left
out, and so are grey photos, which colorization can't judge.) Each gives CROPS_PER_PHOTO
crops of random size and position (never rotated; in colour, for colorization; with structure,
for jigsaw), resized to SIZE px, in a subfolder named after the photo (handy as labels for a
few-shot demo). Deterministic.

The rule for what is held out: the last HELD_OUT crops of each photo (by name) come from its
right half and the others from its left half, so no held-out crop shares a pixel with a training
crop. The held-out crops are large (most of that half's width), so each shows enough of the scene
to tell which way is up; small crops of a strip (grass, fur, sky) could not be judged even by a
person. A run's default split holds out the last 10% of every folder (sslviz.training.split, 10%
of 51 rounded up = 6): every photo is then judged, on a half of it the model never saw.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 112
CROPS_PER_PHOTO = 51
QUALITY = 88
HELD_OUT = 6  # the last crops of each photo, from its right half
HELD_OUT_SHARE = 0.5  # of the photo's width: the right half is held out
TRAIN_CROP = (0.4, 0.9)  # side of a training crop, as a share of its region's shorter side
HELD_OUT_CROP = (0.8, 1.0)  # held-out crops are large: each shows enough to judge the up
# the source photos' sizes (width, height), so the crop boxes can be checked without them
PHOTO_SIZES = {
    "astronaut": (512, 512),
    "cat": (451, 300),
    "coffee": (600, 400),
    "rocket": (640, 427),
    "temple": (640, 427),
    "hopper": (512, 600),
}
OUT = Path(__file__).resolve().parent / "demo"


def sources() -> dict[str, Path]:
    import matplotlib
    import skimage
    import sklearn.datasets

    skdata = Path(skimage.__file__).parent / "data"
    sklearn_images = Path(sklearn.datasets.__file__).parent / "images"
    return {
        "astronaut": skdata / "astronaut.png",
        "cat": skdata / "chelsea.png",
        "coffee": skdata / "coffee.png",
        "rocket": skdata / "rocket.jpg",
        "temple": sklearn_images / "china.jpg",
        "hopper": Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg",
    }


def regions(width: int, height: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """((x, y, w, h) of the part the training crops come from, (x, y, w, h) of the part the
    held-out crops come from): the left and right parts, disjoint, together the whole photo."""
    held = int(HELD_OUT_SHARE * width)
    return (0, 0, width - held, height), (width - held, 0, held, height)


def crop_boxes(name: str, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """(left, top, side) of each crop of photo ``name``: the first CROPS_PER_PHOTO - HELD_OUT
    inside its training part, the last HELD_OUT inside its held-out part (``regions``)."""
    rest, held_part = regions(*PHOTO_SIZES[name])
    boxes = []
    for index in range(CROPS_PER_PHOTO):
        held = index >= CROPS_PER_PHOTO - HELD_OUT
        x0, y0, w, h = held_part if held else rest
        side = int(rng.uniform(*(HELD_OUT_CROP if held else TRAIN_CROP)) * min(w, h))
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
