"""Data-set families for the few-shot benchmarks, all generated in code (no downloads).

Each writer fills ``folder`` with one sub-folder per label (labels = folder name), except digits,
whose labels come from scikit-learn. They look nothing alike on purpose, so no predictor or rule
can be tuned to one family:

- ``digits``: scikit-learn's 8x8 handwritten digits upscaled to 32 px grey (labels: the digit).
- ``demo``: the bundled photos (assets/demo; labels: the folder).
- ``shapes``: five filled or outlined shapes of random colour, size and place on noise.
- ``letters``: ten letters, upper and lower case, drawn with PIL's two built-in fonts (the
  scalable one and the bitmap one) at several sizes, stroke widths and rotations, ink and paper
  of random grey levels.
- ``textures``: eight colour textures (stripes in three directions, checks, dots, rings, blobs,
  plaid) of random colours, frequency and phase.
- ``clipart`` (held out: no predictor or rule was tuned on it): ten clip-art glyphs (star, heart,
  arrow, house, moon, bolt, drop, cloud, key, smiley) of random colour, size (a quarter to nine
  tenths of the image), place and tilt, filled or outlined, at 64 px on a white or a transparent
  background (RGBA: ingest composites it), 44 of each, like a folder of icons from the web.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"
SHAPES = ("disc", "square", "triangle", "cross", "ring")
LETTERS = "AEGKMQRSWZ"
CLIPART = ("star", "heart", "arrow", "house", "moon", "bolt", "drop", "cloud", "key", "smiley")
TEXTURES = ("horizontal", "vertical", "diagonal", "checks", "dots", "rings", "blobs", "plaid")


def write_digits(folder: Path) -> np.ndarray:
    """Digits as 32 px RGB PNGs named by their sklearn index; returns the labels (N,)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True)
    for i, image in enumerate(digits.images):
        grey = Image.fromarray((image * (255 / 16)).astype(np.uint8)).resize(
            (32, 32), Image.BICUBIC
        )
        grey.convert("RGB").save(folder / f"{i:04d}.png")
    return digits.target


def write_shapes(folder: Path, per_class: int = 150, size: int = 32, seed: int = 0) -> None:
    """Shapes of random colour, size and place on noisy backgrounds, one folder per shape."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    for c, name in enumerate(SHAPES):
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            cx, cy = rng.uniform(11, 21, 2)
            dx, dy = (xx - cx) / rng.uniform(6, 10), (yy - cy) / rng.uniform(6, 10)
            r2 = dx**2 + dy**2
            mask = [
                r2 < 1,
                (abs(dx) < 0.8) & (abs(dy) < 0.8),
                (dy > -0.8) & (dy < 0.8) & (abs(dx) < (dy + 0.8) / 1.6 * 0.9),
                ((abs(dx) < 0.3) | (abs(dy) < 0.3)) & (abs(dx) < 1) & (abs(dy) < 1),
                (r2 < 1) & (r2 > 0.45),
            ][c]
            pixels = np.where(mask[..., None], rng.uniform(120, 255, 3), rng.uniform(0, 60, 3))
            pixels = np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / name / f"{i:03d}.png")


def write_letters(folder: Path, per_class: int = 150, size: int = 32, seed: int = 0) -> None:
    """Letters in PIL's built-in fonts at random size, weight, rotation, place and grey levels."""
    rng = np.random.default_rng(seed)
    bitmap = ImageFont.load_default_imagefont()
    for letter in LETTERS:
        (folder / letter).mkdir(parents=True)
        for i in range(per_class):
            text = letter if rng.random() < 0.5 else letter.lower()
            canvas = 64
            ink, paper = (
                int(v) for v in rng.permutation([rng.integers(0, 90), rng.integers(160, 256)])
            )
            image = Image.new("L", (canvas, canvas), paper)
            draw = ImageDraw.Draw(image)
            if rng.random() < 0.3:  # the bitmap font, drawn small then scaled up (blocky)
                small = Image.new("L", (16, 16), paper)
                ImageDraw.Draw(small).text((4, 1), text, fill=ink, font=bitmap)
                scale = int(rng.integers(3, 5))
                image.paste(small.resize((16 * scale, 16 * scale), Image.NEAREST), (0, 0))
            else:
                font = ImageFont.load_default(size=int(rng.integers(26, 44)))
                stroke = int(rng.integers(0, 3))
                draw.text(
                    (canvas / 2, canvas / 2),
                    text,
                    fill=ink,
                    font=font,
                    anchor="mm",
                    stroke_width=stroke,
                    stroke_fill=ink,
                )
            image = image.rotate(
                float(rng.uniform(-25, 25)), fillcolor=paper, translate=tuple(rng.uniform(-5, 5, 2))
            )
            box = np.asarray(image) != paper
            rows, cols = np.flatnonzero(box.any(1)), np.flatnonzero(box.any(0))
            if len(rows):  # crop around the ink with a random margin
                side = max(rows[-1] - rows[0], cols[-1] - cols[0]) + int(rng.integers(6, 16))
                cy, cx = (rows[0] + rows[-1]) / 2, (cols[0] + cols[-1]) / 2
                left, top = int(cx - side / 2), int(cy - side / 2)
                image = image.crop((left, top, left + side, top + side))
            image = image.resize((size, size), Image.BILINEAR)
            noisy = np.asarray(image, np.float32) + rng.normal(0, 8, (size, size))
            grey = np.clip(noisy, 0, 255).astype(np.uint8)
            Image.fromarray(grey).convert("RGB").save(folder / letter / f"{i:03d}.png")


def write_textures(folder: Path, per_class: int = 150, size: int = 32, seed: int = 0) -> None:
    """Two-colour textures of random colours, scale, phase and slight rotation."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    for name in TEXTURES:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            period = rng.uniform(5, 11)
            phase = rng.uniform(0, 2 * np.pi)
            tilt = rng.uniform(-0.25, 0.25)
            u = xx * np.cos(tilt) - yy * np.sin(tilt)
            v = xx * np.sin(tilt) + yy * np.cos(tilt)
            w = 2 * np.pi / period
            if name == "horizontal":
                field = np.sin(w * v + phase)
            elif name == "vertical":
                field = np.sin(w * u + phase)
            elif name == "diagonal":
                field = np.sin(w * (u + v) / np.sqrt(2) + phase)
            elif name == "checks":
                field = np.sin(w * u + phase) * np.sin(w * v + phase)
            elif name == "dots":
                field = np.cos(w * u + phase) + np.cos(w * v + phase) - 1.2
            elif name == "rings":
                cx, cy = rng.uniform(8, 24, 2)
                field = np.sin(w * np.hypot(xx - cx, yy - cy) + phase)
            elif name == "blobs":
                noise = rng.normal(size=(size // 8, size // 8))
                up = np.asarray(
                    Image.fromarray(noise.astype(np.float32)).resize((size, size), Image.BICUBIC)
                )
                field = up - np.median(up)
            else:  # plaid: thin lines both ways
                field = np.maximum(np.sin(w * u + phase), np.sin(w * v + phase)) - 0.7
            a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
            mix = (field > 0)[..., None]
            pixels = np.where(mix, a, b) + rng.normal(0, 12, (size, size, 3))
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
                folder / name / f"{i:03d}.png"
            )


def _glyph(name: str, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """Polygons (in a unit box, y down) of one clip-art glyph, slightly varied per image."""
    j = lambda v: v + rng.uniform(-0.03, 0.03)  # noqa: E731  a hand-drawn wobble
    if name == "star":
        t = np.linspace(-np.pi / 2, 3 * np.pi / 2, 11)[:-1]
        r = np.where(np.arange(10) % 2 == 0, 0.5, rng.uniform(0.18, 0.25))
        return [[(0.5 + r[i] * np.cos(t[i]), 0.5 + r[i] * np.sin(t[i])) for i in range(10)]]
    if name == "heart":
        t = np.linspace(0, 2 * np.pi, 40)
        x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t))
        return [[(0.5 + a / 36, 0.47 + b / 36) for a, b in zip(x, y, strict=True)]]
    if name == "arrow":
        w = rng.uniform(0.12, 0.2)
        return [
            [
                (0.05, 0.5 - w),
                (j(0.55), 0.5 - w),
                (0.55, 0.15),
                (0.95, 0.5),
                (0.55, 0.85),
                (j(0.55), 0.5 + w),
                (0.05, 0.5 + w),
            ]
        ]
    if name == "house":
        return [[(0.15, 0.95), (0.15, j(0.45)), (0.5, 0.08), (0.85, j(0.45)), (0.85, 0.95)]]
    if name == "moon":
        t = np.linspace(-np.pi / 2, np.pi / 2, 20)
        inner = rng.uniform(0.15, 0.3)
        outer = [(0.5 + 0.45 * np.cos(a), 0.5 + 0.45 * np.sin(a)) for a in t]
        back = [(0.5 + inner * np.cos(a), 0.5 + 0.45 * np.sin(a)) for a in t[::-1]]
        return [outer + back]
    if name == "bolt":
        return [
            [
                (0.55, 0.02),
                (j(0.2), 0.55),
                (0.48, 0.55),
                (0.38, 0.98),
                (j(0.8), 0.4),
                (0.52, 0.4),
                (0.7, 0.02),
            ]
        ]
    if name == "drop":
        t = np.linspace(0, np.pi, 20)
        return [[(0.5, 0.05)] + [(0.5 + 0.3 * np.cos(a), 0.65 + 0.3 * np.sin(a)) for a in t]]
    if name == "cloud":
        out = []
        for cx, cy, r in ((0.3, 0.6, 0.2), (0.5, 0.45, 0.25), (0.72, 0.6, 0.2)):
            t = np.linspace(0, 2 * np.pi, 24)
            out.append([(cx + j(r) * np.cos(a), cy + r * np.sin(a)) for a in t])
        out.append([(0.12, 0.6), (0.9, 0.6), (0.9, 0.8), (0.12, 0.8)])
        return out
    if name == "key":
        t = np.linspace(0, 2 * np.pi, 24)
        ring = [(0.25 + 0.18 * np.cos(a), 0.5 + 0.18 * np.sin(a)) for a in t]
        shaft = [
            (0.4, 0.45),
            (0.95, 0.45),
            (0.95, 0.62),
            (0.85, 0.62),
            (0.85, 0.55),
            (j(0.75), 0.55),
            (0.75, 0.62),
            (0.65, 0.62),
            (0.65, 0.55),
            (0.4, 0.55),
        ]
        return [ring, shaft]
    t = np.linspace(0, 2 * np.pi, 32)  # smiley: a face (eyes and mouth cut out when drawn)
    return [[(0.5 + 0.45 * np.cos(a), 0.5 + 0.45 * np.sin(a)) for a in t]]


def write_clipart(folder: Path, per_class: int = 44, size: int = 64, seed: int = 7) -> None:
    """Clip-art glyphs, one folder per category (see the module docstring)."""
    rng = np.random.default_rng(seed)
    for name in CLIPART:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            transparent = rng.random() < 0.5
            big = 4 * size  # drawn large, then shrunk: smooth edges as icons have
            background = (255, 255, 255, 0 if transparent else 255)
            canvas = Image.new("RGBA", (big, big), background)
            draw = ImageDraw.Draw(canvas)
            hue = rng.uniform(0, 1)
            colour = tuple(
                int(255 * c) for c in _hsv(hue, rng.uniform(0.5, 1), rng.uniform(0.4, 0.95))
            )
            side = rng.uniform(0.25, 0.9) * big
            x0, y0 = rng.uniform(0, big - side, 2)
            outlined = rng.random() < 0.3
            for polygon in _glyph(name, rng):
                points = [(x0 + u * side, y0 + v * side) for u, v in polygon]
                if outlined:
                    draw.line(
                        [*points, points[0]], fill=(*colour, 255), width=max(2, int(side / 14))
                    )
                else:
                    draw.polygon(points, fill=(*colour, 255))
            if name == "smiley":  # eyes and mouth in the background's colour
                hole = background
                for ex in (0.35, 0.65):
                    draw.ellipse(
                        [
                            x0 + (ex - 0.06) * side,
                            y0 + 0.3 * side,
                            x0 + (ex + 0.06) * side,
                            y0 + 0.42 * side,
                        ],
                        fill=hole,
                    )
                draw.arc(
                    [x0 + 0.28 * side, y0 + 0.4 * side, x0 + 0.72 * side, y0 + 0.75 * side],
                    20,
                    160,
                    fill=hole,
                    width=max(2, int(side / 16)),
                )
            canvas = canvas.rotate(
                float(rng.uniform(-20, 20)), resample=Image.BICUBIC, fillcolor=background
            )
            canvas.resize((size, size), Image.LANCZOS).save(folder / name / f"{i:03d}.png")


def _hsv(h: float, s: float, v: float) -> tuple[float, float, float]:
    import colorsys

    return colorsys.hsv_to_rgb(h, s, v)


def write_family(name: str, folder: Path) -> Path:
    """Write family ``name`` under ``folder`` (the demo is read in place); returns its folder."""
    if name == "demo":
        return DEMO
    target = folder / name
    {
        "digits": write_digits,
        "shapes": write_shapes,
        "letters": write_letters,
        "textures": write_textures,
        "clipart": write_clipart,
    }[name](target)
    return target


def truth_of(name: str, paths: list[str]) -> np.ndarray:
    """(N,) the true label of each image path of family ``name``."""
    if name == "digits":
        from sklearn.datasets import load_digits

        target = load_digits().target.astype(str)
        return target[[int(Path(p).stem) for p in paths]]
    return np.array([p.split("/")[0] for p in paths])


FAMILIES = ("digits", "demo", "shapes", "letters", "textures")
HELD_OUT = ("clipart",)  # families nothing was tuned on: --sets clipart
