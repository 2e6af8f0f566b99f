"""Build assets/demo: square crops of freely licensed photos that scikit-image and scikit-learn ship.

Run once by a maintainer (needs `pip install scikit-image`; the app itself does not):

    python assets/make_demo.py

Each source photo gives CROPS_PER_PHOTO crops of random size and position (upright, so rotation
has something to learn; in colour, for colorization; with structure, for jigsaw), resized to SIZE
px, in a subfolder named after the photo (handy as labels for a few-shot demo). Deterministic.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = 112
CROPS_PER_PHOTO = 34
QUALITY = 88
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


def main() -> None:
    rng = np.random.default_rng(20240601)
    shutil.rmtree(OUT, ignore_errors=True)
    for name, path in sources().items():
        photo = Image.open(path).convert("RGB")
        width, height = photo.size
        folder = OUT / name
        folder.mkdir(parents=True)
        for index in range(CROPS_PER_PHOTO):
            side = int(rng.uniform(0.22, 0.65) * min(width, height))
            left = int(rng.integers(0, width - side + 1))
            top = int(rng.integers(0, height - side + 1))
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
