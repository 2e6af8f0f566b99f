"""Colorization quality on images nobody tuned on: held-out PSNR of the vivid decode (annealed
mean), of the T = 1 mean and of the faithful decode against the grey baseline (true L, ab = 0),
after ``sslviz train --task colorization --time-budget 120`` (or ``--steps N``, the same length in
optimizer steps, for a shared machine) on the CPU at 32 px, per data set; optionally jigsaw
accuracy at 64 px on the same generated set.

Diagnosis, beside the held-out figures: the same differences on 300 of the run's own training
images (a gap to the held-out ones = overfitting) and on ``--unseen`` images of another seed of
the generator that no run trains on.

Data sets:
  flat  a generated set of small clip-art images (flat-coloured objects - fruit, cars, houses,
        fish, flowers, balloons, shapes ... - on white, pastel, landscape or random backgrounds,
        with or without outlines), written as PNGs from a fixed seed (``--seed``). Objects have
        the colours their kind usually has (apples red or green, suns yellow), with noise, and a
        share of them (balloons, shapes, cars) any colour: what a real icon set looks like.
        The development of the decoder used seed 1; the figures reported use seed 2.
  demo  the bundled demo photos (assets/demo).

Everything goes through the real CLI in a temporary workspace: ``sslviz ingest``, ``sslviz
train`` (foreground, torch's default threads), ``sslviz eval``. Prints per data set: PSNR, grey
PSNR and the difference (and jigsaw accuracy against chance).

    python benchmarks/colorization_quality.py [--sets flat demo] [--budget 120 | --steps 440]
        [--seed 2] [--images 1800] [--unseen 400] [--jigsaw] [--only-jigsaw] [--keep DIR]
"""

from __future__ import annotations

import argparse
import colorsys
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
SIDE = 64  # PNG side; colorization trains at 32 px (the cache resizes), jigsaw at 64
SS = 4  # supersampling of the drawing, for anti-aliased edges

# ---- the generated clip-art set -------------------------------------------------------------


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0), 1), min(max(v, 0), 1))
    return int(r * 255), int(g * 255), int(b * 255)


def _jitter(rng: np.random.Generator, hsv: tuple[float, float, float]) -> tuple[int, int, int]:
    h, s, v = hsv
    return _rgb(h + rng.normal(0, 0.02), s + rng.normal(0, 0.08), v + rng.normal(0, 0.08))


# typical colours (HSV) of each kind of object
RED, GREEN, YELLOW, ORANGE = (
    (0.0, 0.85, 0.85),
    (0.3, 0.75, 0.65),
    (0.15, 0.85, 0.95),
    (0.08, 0.9, 0.95),
)
BROWN, BLUE, PURPLE, PINK = (
    (0.07, 0.7, 0.45),
    (0.6, 0.75, 0.85),
    (0.78, 0.6, 0.6),
    (0.93, 0.45, 0.95),
)
SKY, SAND, GREY = (0.57, 0.4, 0.95), (0.12, 0.35, 0.9), (0.0, 0.0, 0.5)


def _any_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    return _rgb(rng.random(), rng.uniform(0.5, 1.0), rng.uniform(0.45, 1.0))


def _pick(rng: np.random.Generator, *choices: tuple[float, tuple[float, float, float]]):
    weights = np.array([w for w, _ in choices])
    return _jitter(rng, choices[rng.choice(len(choices), p=weights / weights.sum())][1])


def _poly(cx: float, cy: float, r: float, n: int, rot: float, inner: float = 1.0) -> list:
    points = []
    for k in range(n * (2 if inner != 1.0 else 1)):
        rad = r if k % 2 == 0 or inner == 1.0 else r * inner
        a = rot + math.pi * 2 * k / (n * (2 if inner != 1.0 else 1))
        points.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
    return points


KINDS = (
    "apple",
    "sun",
    "tree",
    "fish",
    "car",
    "house",
    "flower",
    "heart",
    "star",
    "banana",
    "carrot",
    "grapes",
    "tiger",
    "balloon",
    "shape",
    "leaf",
    "drop",
    "strawberry",
    "shoe",
)


def _draw_object(
    d: ImageDraw.ImageDraw, rng: np.random.Generator, cx, cy, r, line, kind: str | None = None
) -> None:
    """One object of ``kind`` (random if None) centred at (cx, cy) with radius ~r (supersampled
    px)."""
    kind = kind or rng.choice(KINDS)
    ol = {"outline": (25, 25, 25), "width": line} if line else {}
    dark = (20, 20, 20)
    if kind == "apple":
        d.ellipse(
            (cx - r, cy - r * 0.9, cx + r, cy + r),
            fill=_pick(rng, (7, RED), (2, GREEN), (1, YELLOW)),
            **ol,
        )
        d.rectangle(
            (cx - r * 0.08, cy - r * 1.25, cx + r * 0.08, cy - r * 0.8), fill=_jitter(rng, BROWN)
        )
        d.ellipse((cx, cy - r * 1.3, cx + r * 0.5, cy - r * 0.95), fill=_jitter(rng, GREEN))
    elif kind == "sun":
        colour = _pick(rng, (3, YELLOW), (1, ORANGE))
        for k in range(8):
            a = k * math.pi / 4 + rng.uniform(0, 0.3)
            d.line(
                (cx, cy, cx + 1.3 * r * math.cos(a), cy + 1.3 * r * math.sin(a)),
                fill=colour,
                width=max(2, int(r * 0.15)),
            )
        d.ellipse((cx - r * 0.8, cy - r * 0.8, cx + r * 0.8, cy + r * 0.8), fill=colour, **ol)
    elif kind == "tree":
        d.rectangle(
            (cx - r * 0.15, cy, cx + r * 0.15, cy + r * 1.2), fill=_jitter(rng, BROWN), **ol
        )
        crown = _pick(rng, (4, GREEN), (1, ORANGE), (0.5, YELLOW))
        d.ellipse((cx - r * 0.9, cy - r * 1.1, cx + r * 0.9, cy + r * 0.4), fill=crown, **ol)
    elif kind == "fish":
        body = _pick(rng, (3, ORANGE), (1, BLUE), (1, YELLOW))
        d.polygon(
            [(cx + r * 0.4, cy), (cx + r * 1.1, cy - r * 0.5), (cx + r * 1.1, cy + r * 0.5)],
            fill=body,
            **ol,
        )
        d.ellipse((cx - r, cy - r * 0.55, cx + r * 0.6, cy + r * 0.55), fill=body, **ol)
        d.ellipse((cx - r * 0.65, cy - r * 0.2, cx - r * 0.45, cy), fill=dark)
    elif kind == "car":
        body = (
            _any_colour(rng) if rng.random() < 0.5 else _pick(rng, (2, RED), (1, BLUE), (1, YELLOW))
        )
        d.rounded_rectangle(
            (cx - r * 1.1, cy - r * 0.2, cx + r * 1.1, cy + r * 0.45),
            radius=r * 0.15,
            fill=body,
            **ol,
        )
        d.polygon(
            [
                (cx - r * 0.6, cy - r * 0.2),
                (cx - r * 0.35, cy - r * 0.6),
                (cx + r * 0.45, cy - r * 0.6),
                (cx + r * 0.7, cy - r * 0.2),
            ],
            fill=body,
            **ol,
        )
        d.rectangle(
            (cx - r * 0.3, cy - r * 0.5, cx + r * 0.4, cy - r * 0.25), fill=_jitter(rng, SKY)
        )
        for wx in (-0.6, 0.6):
            d.ellipse(
                (cx + r * wx - r * 0.28, cy + r * 0.25, cx + r * wx + r * 0.28, cy + r * 0.8),
                fill=dark,
            )
    elif kind == "house":
        walls = _pick(rng, (2, SAND), (1, (0.1, 0.1, 0.97)), (1, YELLOW))
        d.rectangle((cx - r * 0.8, cy - r * 0.2, cx + r * 0.8, cy + r), fill=walls, **ol)
        d.polygon(
            [(cx - r, cy - r * 0.2), (cx, cy - r * 1.1), (cx + r, cy - r * 0.2)],
            fill=_pick(rng, (3, RED), (1, BROWN), (1, GREY)),
            **ol,
        )
        d.rectangle((cx - r * 0.15, cy + r * 0.4, cx + r * 0.15, cy + r), fill=_jitter(rng, BROWN))
        d.rectangle(
            (cx + r * 0.3, cy + r * 0.05, cx + r * 0.6, cy + r * 0.35), fill=_jitter(rng, SKY)
        )
    elif kind == "flower":
        d.line((cx, cy, cx, cy + r * 1.4), fill=_jitter(rng, GREEN), width=max(2, int(r * 0.12)))
        petal = _pick(rng, (2, PINK), (2, RED), (2, YELLOW), (1, PURPLE), (1, (0.0, 0.02, 1.0)))
        for k in range(6):
            a = k * math.pi / 3
            px, py = cx + r * 0.55 * math.cos(a), cy + r * 0.55 * math.sin(a)
            d.ellipse(
                (px - r * 0.38, py - r * 0.38, px + r * 0.38, py + r * 0.38), fill=petal, **ol
            )
        d.ellipse(
            (cx - r * 0.3, cy - r * 0.3, cx + r * 0.3, cy + r * 0.3),
            fill=_pick(rng, (2, YELLOW), (1, ORANGE), (1, BROWN)),
        )
    elif kind == "heart":
        colour = _pick(rng, (3, RED), (1, PINK))
        d.ellipse((cx - r, cy - r * 0.8, cx, cy + r * 0.2), fill=colour)
        d.ellipse((cx, cy - r * 0.8, cx + r, cy + r * 0.2), fill=colour)
        d.polygon(
            [(cx - r * 0.97, cy - r * 0.1), (cx, cy + r), (cx + r * 0.97, cy - r * 0.1)],
            fill=colour,
        )
    elif kind == "star":
        d.polygon(
            _poly(cx, cy, r, 5, -math.pi / 2 + rng.normal(0, 0.2), 0.45),
            fill=_pick(rng, (4, YELLOW), (1, ORANGE), (1, RED)),
            **ol,
        )
    elif kind == "banana":
        d.chord(
            (cx - r, cy - r * 1.4, cx + r, cy + r * 0.6),
            20,
            160,
            fill=_pick(rng, (5, YELLOW), (1, GREEN)),
            **ol,
        )
        d.ellipse((cx - r * 0.95, cy - r * 1.25, cx + r * 0.95, cy + r * 0.25), fill=None)
    elif kind == "carrot":
        d.polygon(
            [(cx - r * 0.35, cy - r * 0.6), (cx + r * 0.35, cy - r * 0.6), (cx, cy + r * 1.1)],
            fill=_jitter(rng, ORANGE),
            **ol,
        )
        for dx in (-0.2, 0, 0.2):
            d.line(
                (cx, cy - r * 0.6, cx + r * dx * 2, cy - r * 1.2),
                fill=_jitter(rng, GREEN),
                width=max(2, int(r * 0.12)),
            )
    elif kind == "grapes":
        colour = _pick(rng, (3, PURPLE), (2, GREEN))
        for row, count in enumerate((3, 2, 1)):
            for k in range(count):
                gx = cx + (k - (count - 1) / 2) * r * 0.6
                gy = cy - r * 0.5 + row * r * 0.5
                d.ellipse(
                    (gx - r * 0.32, gy - r * 0.32, gx + r * 0.32, gy + r * 0.32), fill=colour, **ol
                )
    elif kind == "tiger":
        fur = _pick(rng, (3, ORANGE), (1, GREY), (1, SAND))
        for sx in (-1, 1):
            d.polygon(
                [
                    (cx + sx * r * 0.9, cy - r * 0.3),
                    (cx + sx * r * 0.8, cy - r * 1.05),
                    (cx + sx * r * 0.25, cy - r * 0.75),
                ],
                fill=fur,
                **ol,
            )
        d.ellipse((cx - r, cy - r * 0.85, cx + r, cy + r * 0.85), fill=fur, **ol)
        if rng.random() < 0.7:
            for sx in (-1, 1):
                for k in range(2):
                    y = cy - r * 0.4 + k * r * 0.35
                    d.line(
                        (cx + sx * r * 0.95, y, cx + sx * r * 0.6, y + r * 0.1),
                        fill=dark,
                        width=max(2, int(r * 0.1)),
                    )
        for sx in (-1, 1):
            d.ellipse(
                (
                    cx + sx * r * 0.35 - r * 0.1,
                    cy - r * 0.25,
                    cx + sx * r * 0.35 + r * 0.1,
                    cy - r * 0.05,
                ),
                fill=dark,
            )
    elif kind == "balloon":
        d.line(
            (cx, cy + r * 0.9, cx + r * 0.2, cy + r * 1.6),
            fill=(90, 90, 90),
            width=max(1, int(r * 0.05)),
        )
        d.ellipse((cx - r * 0.75, cy - r, cx + r * 0.75, cy + r * 0.9), fill=_any_colour(rng), **ol)
    elif kind == "shape":
        colour = _any_colour(rng)
        n = int(rng.integers(3, 7))
        if rng.random() < 0.3:
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour, **ol)
        else:
            d.polygon(_poly(cx, cy, r, n, rng.uniform(0, math.pi)), fill=colour, **ol)
    elif kind == "leaf":
        d.ellipse(
            (cx - r, cy - r * 0.5, cx + r, cy + r * 0.5),
            fill=_pick(rng, (4, GREEN), (1, ORANGE), (1, YELLOW)),
            **ol,
        )
        d.line(
            (cx - r, cy, cx + r, cy),
            fill=_jitter(rng, (0.3, 0.8, 0.35)),
            width=max(1, int(r * 0.07)),
        )
    elif kind == "drop":
        colour = _pick(rng, (4, BLUE), (1, SKY))
        d.polygon(
            [(cx - r * 0.62, cy + r * 0.1), (cx, cy - r * 1.1), (cx + r * 0.62, cy + r * 0.1)],
            fill=colour,
        )
        d.ellipse((cx - r * 0.65, cy - r * 0.35, cx + r * 0.65, cy + r * 0.95), fill=colour)
    elif kind == "strawberry":
        d.polygon(
            [(cx - r * 0.8, cy - r * 0.5), (cx + r * 0.8, cy - r * 0.5), (cx, cy + r)],
            fill=_jitter(rng, RED),
            **ol,
        )
        d.ellipse((cx - r * 0.8, cy - r * 0.9, cx + r * 0.8, cy - r * 0.1), fill=_jitter(rng, RED))
        d.polygon(_poly(cx, cy - r * 0.75, r * 0.45, 5, 0, 0.4), fill=_jitter(rng, GREEN))
        for _ in range(5):
            sx, sy = cx + rng.uniform(-0.4, 0.4) * r, cy + rng.uniform(-0.3, 0.4) * r
            d.ellipse(
                (sx - r * 0.05, sy - r * 0.05, sx + r * 0.05, sy + r * 0.05),
                fill=_jitter(rng, YELLOW),
            )
    else:  # shoe
        colour = _pick(rng, (2, RED), (2, BROWN), (1, BLUE), (1, GREY))
        d.polygon(
            [
                (cx - r, cy + r * 0.4),
                (cx - r, cy - r * 0.5),
                (cx - r * 0.3, cy - r * 0.5),
                (cx + r * 0.1, cy),
                (cx + r, cy + r * 0.1),
                (cx + r, cy + r * 0.4),
            ],
            fill=colour,
            **ol,
        )
        d.rectangle((cx - r, cy + r * 0.4, cx + r, cy + r * 0.6), fill=(240, 240, 240), **ol)


def _background(rng: np.random.Generator, side: int) -> Image.Image:
    kind = rng.choice(
        ["white", "pastel", "landscape", "colour", "gradient"], p=[0.55, 0.15, 0.1, 0.1, 0.1]
    )
    image = Image.new("RGB", (side, side), (255, 255, 255))
    d = ImageDraw.Draw(image)
    if kind == "pastel":
        d.rectangle(
            (0, 0, side, side),
            fill=_rgb(rng.random(), rng.uniform(0.08, 0.3), rng.uniform(0.9, 1.0)),
        )
    elif kind == "landscape":
        horizon = side * rng.uniform(0.5, 0.8)
        d.rectangle((0, 0, side, horizon), fill=_jitter(rng, SKY))
        d.rectangle((0, horizon, side, side), fill=_pick(rng, (3, GREEN), (1, SAND)))
    elif kind == "colour":
        d.rectangle((0, 0, side, side), fill=_any_colour(rng))
    elif kind == "gradient":
        top, bottom = np.array(_any_colour(rng)), np.array((255, 255, 255))
        for y in range(side):
            t = y / side
            d.line((0, y, side, y), fill=tuple(int(c) for c in top * (1 - t) + bottom * t))
    return image


def clip_art(rng: np.random.Generator, side: int = SIDE) -> Image.Image:
    """One image: a background and 1-3 objects, drawn at SS x and reduced (anti-aliased)."""
    big = side * SS
    image = _background(rng, big)
    d = ImageDraw.Draw(image)
    line = int(rng.integers(3, 7)) if rng.random() < 0.5 else 0
    n = rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])
    for _ in range(n):
        r = big * rng.uniform(0.18, 0.34) / (1 if n == 1 else 1.4)
        cx, cy = rng.uniform(r, big - r), rng.uniform(r, big - r)
        _draw_object(d, rng, cx, cy, r, line)
    return image.resize((side, side), Image.LANCZOS)


def icon(rng: np.random.Generator, kind: str, side: int = SIDE) -> Image.Image:
    """One labelled icon: a background and one object of ``kind``, drawn at SS x and reduced."""
    big = side * SS
    image = _background(rng, big)
    line = int(rng.integers(3, 7)) if rng.random() < 0.5 else 0
    r = big * rng.uniform(0.22, 0.34)
    cx, cy = rng.uniform(r * 1.1, big - r * 1.1), rng.uniform(r * 1.1, big - r * 1.1)
    _draw_object(ImageDraw.Draw(image), rng, cx, cy, r, line, kind)
    return image.resize((side, side), Image.LANCZOS)


def write_icon_set(folder: Path, per_kind: int, seed: int) -> None:
    """A labelled icon set: ``folder/<kind>/NNN.png``, ``per_kind`` icons of each of the KINDS
    (label = folder), deterministic by ``seed``."""
    rng = np.random.default_rng([seed, 0x1C0])
    for kind in KINDS:
        (folder / kind).mkdir(parents=True, exist_ok=True)
        for i in range(per_kind):
            icon(rng, kind).save(folder / kind / f"{i:03d}.png")


def write_flat_set(folder: Path, n: int, seed: int) -> None:
    """``n`` PNGs of generated clip art, deterministic by ``seed``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, 0xC010])
    for i in range(n):
        clip_art(rng).save(folder / f"{i:05d}.png")


# ---- the measurement through the CLI ---------------------------------------------------------


def sslviz(env: dict[str, str], *args: str) -> dict:
    """Run ``sslviz ARGS --json`` and return its JSON object (stderr passes through)."""
    out = subprocess.run(
        [sys.executable, "-m", "sslviz", *args, "--json"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        check=True,
        text=True,
    ).stdout
    return json.loads(out)


def epochs_for(home: Path, dataset: str, task: str, steps: int) -> int:
    """Epochs of the default config that make about ``steps`` optimizer steps on ``dataset``
    (after the held-out split and, for colorization, the calibration images)."""
    import numpy as np

    from sslviz.pretext import TASKS
    from sslviz.store import Store
    from sslviz.training.config import default_config, split_sizes
    from sslviz.training.evaluate import calibration_split

    store = Store.open(home)
    config = default_config(store.datasets.get_by_name(dataset), task)
    n_train, _ = split_sizes(store.datasets.get_by_name(dataset).n_images, config.holdout)
    rows, _ = calibration_split(np.arange(n_train), TASKS[task].calibration_fraction, 0)
    store.close()
    return max(1, round(steps / max(1, len(rows) // config.batch_size)))


def train_and_eval(
    env: dict[str, str], dataset: str, task: str, budget: float, steps: int | None, *extra: str
):
    """``sslviz train`` for ``steps`` optimizer steps (epochs to match, the schedule annealed at
    the end) or, without ``steps``, for ``budget`` seconds; then ``sslviz eval``."""
    start = time.perf_counter()
    length = ["--time-budget", str(budget)]
    if steps:
        length = ["--epochs", str(epochs_for(Path(env["SSLVIZ_HOME"]), dataset, task, steps))]
    run = sslviz(
        env, "train", "--dataset", dataset, "--task", task, "--device", "cpu", *length, *extra
    )
    wall = time.perf_counter() - start
    status = sslviz(env, "status", str(run["run"]))
    return sslviz(env, "eval", str(run["run"])), status, wall


def diagnose(home: Path, run_id: int, unseen: str | None) -> dict[str, float]:
    """PSNR of the vivid and faithful decodes minus the grey image's on 300 of the run's own
    training images (a large gap to the held-out figure = overfitting) and on ``unseen``, a
    dataset the run never saw (another seed of the generator)."""
    import numpy as np
    import torch

    from sslviz.data.cache import open_cache
    from sslviz.pretext.colorization import psnr, without_colour
    from sslviz.store import Store
    from sslviz.training.batches import load_rows, split_indices
    from sslviz.training.evaluate import calibration_split, load_model

    store = Store.open(home)
    task, model, config, _ = load_model(store, run_id)
    cache = open_cache(store, store.runs.get(run_id).dataset_id, config.image_size)
    rows, _ = split_indices(len(cache), config.holdout, config.seed)
    rows, _ = calibration_split(rows, task.calibration_fraction, config.seed)
    sets = {"train": load_rows(cache, rows[:: max(1, len(rows) // 300)])}
    if unseen:
        other = store.datasets.get_by_name(unseen).id
        sets["unseen"] = torch.from_numpy(np.array(open_cache(store, other, config.image_size)))
    out = {}
    for name, images in sets.items():
        base = psnr(without_colour(images), images).mean().item()
        for decode, faithful in (("vivid", False), ("faithful", True)):
            colour = task.colorize(model, images, faithful=faithful)
            out[f"{name} {decode}"] = psnr(colour, images).mean().item() - base
    store.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=["flat", "demo"], choices=["flat", "demo"])
    parser.add_argument("--budget", type=float, default=120.0, help="training seconds per run")
    parser.add_argument(
        "--steps",
        type=int,
        help="train this many steps instead of --budget seconds (shared machine)",
    )
    parser.add_argument(
        "--unseen", type=int, default=400, help="images of another seed's clip art to test on"
    )
    parser.add_argument("--seed", type=int, default=2, help="seed of the generated set")
    parser.add_argument("--images", type=int, default=1800, help="size of the generated set")
    parser.add_argument("--jigsaw", action="store_true", help="also jigsaw at 64 px on flat")
    parser.add_argument("--only-jigsaw", action="store_true", help="jigsaw only (no colorization)")
    parser.add_argument("--keep", type=Path, help="workspace to use and keep (default: a temp dir)")
    parser.add_argument("--write-only", type=Path, help="just write the flat set to this folder")
    args = parser.parse_args()
    if args.write_only:
        write_flat_set(args.write_only, args.images, args.seed)
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        home = args.keep or Path(tmp) / "home"
        env = {**os.environ, "SSLVIZ_HOME": str(home)}
        env.pop("SSLVIZ_WORKER_THREADS", None)
        rows = []
        for name in args.sets:
            if name == "flat":
                folder = Path(tmp) / f"flat{args.seed}"
                write_flat_set(folder, args.images, args.seed)
            else:
                folder = REPO / "assets" / "demo"
            dataset = f"{name}{args.seed}" if name == "flat" else name
            existing = {d["name"] for d in sslviz(env, "datasets")["datasets"]}
            if dataset not in existing:
                ingested = sslviz(env, "ingest", str(folder), "--name", dataset)
                print(f"{dataset}: {ingested['accepted']} images", file=sys.stderr)
            unseen = None
            if name == "flat" and args.unseen:
                unseen = f"unseen{args.seed + 100}"
                if unseen not in existing:
                    write_flat_set(Path(tmp) / unseen, args.unseen, args.seed + 100)
                    sslviz(env, "ingest", str(Path(tmp) / unseen), "--name", unseen)
            if not args.only_jigsaw:
                result, status, wall = train_and_eval(
                    env, dataset, "colorization", args.budget, args.steps
                )
                result["diagnosis"] = diagnose(home, int(result["run"]), unseen)
                rows.append(("colorization", dataset, result, status, wall))
                r = result
                print(
                    f"colorization {dataset}: vivid {r['psnr']:.2f} faithful "
                    f"{r['psnr_faithful']:.2f} grey {r['psnr_grey']:.2f} dB ({status['step']} "
                    f"steps); {json.dumps(r['diagnosis'])}",
                    file=sys.stderr,
                    flush=True,
                )
            if (args.jigsaw or args.only_jigsaw) and name == "flat":
                result, status, wall = train_and_eval(
                    env, dataset, "jigsaw", args.budget, args.steps, "--image-size", "64"
                )
                rows.append(("jigsaw", dataset, result, status, wall))

        print(f"{'task':<13} {'data set':<9} {'steps':>6} {'wall s':>7}  result")
        for task, dataset, r, status, wall in rows:
            if task == "colorization":
                grey = r["psnr_grey"]
                text = (
                    f"held out: grey {grey:.2f} dB, vivid {r['psnr'] - grey:+.2f}, "
                    f"T = 1 {r.get('psnr_t1', math.nan) - grey:+.2f}, faithful "
                    f"{r['psnr_faithful'] - grey:+.2f} dB; "
                    + ", ".join(f"{k} {v:+.2f}" for k, v in r["diagnosis"].items())
                )
            else:
                chance = 1 / r["permutations"]
                text = (
                    f"accuracy {r['accuracy']:.3f} ({r['accuracy'] / chance:.0f}x chance "
                    f"{chance:.3f}), top-5 {r['top5']:.3f}, mean Hamming {r['mean_hamming']:.2f}"
                )
            print(f"{task:<13} {dataset:<9} {status['step']:>6} {wall:>7.0f}  {text}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
