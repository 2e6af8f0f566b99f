"""Which embedding layer and pooling to default to: a few-shot probe of every layer x grid of a
rotation run's encoder against the same architecture untrained (``random``), on three datasets.

    digits   scikit-learn's digits at 32 px (1,797 images, 10 classes)
    demo     the bundled assets/demo (306 crops of 9 photos; label = folder)
    colours  generated: 3 hues x 2 patterns (stripes / blobs) on noisy backgrounds (600 images)

Each dataset gets a rotation run as a user starts one (``default_config`` + ``--time-budget``),
stopped after a fixed number of steps so the table doesn't depend on how busy the machine is.
226 steps is 60 s at the README's 241 images/s; on digits that reached 0.81 held-out rotation
accuracy (digits_rotation.py reaches 0.93 in 60 s), so these runs are, if anything, shorter than
a 60 s run on an idle machine. Embeddings come from ``sslviz.maps.embed.embed`` (what ``sslviz embed``
writes). The probe is logistic regression on 5 labels per class, mean accuracy on the rest over
10 draws (standardised features).

    python benchmarks/embedding_layers.py [--steps 226] [--datasets digits demo colours]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from digits_rotation import few_shot, write_digits  # noqa: E402

from sslviz.data import ingest  # noqa: E402
from sslviz.maps.embed import available_layers, default_layer, embed  # noqa: E402
from sslviz.runner.execute import execute
from sslviz.store import Store  # noqa: E402
from sslviz.training.config import default_config  # noqa: E402
from sslviz.training.evaluate import evaluate_run  # noqa: E402
from sslviz.training.train import Callback, TrainState, create_run  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"
HUES = {"red": (200, 40, 40), "green": (40, 170, 60), "blue": (50, 70, 210)}


def write_colours(folder: Path, per_class: int = 100, size: int = 40, seed: int = 0) -> None:
    """Classes hue_pattern: a hue's stripes (random angle/period) or blobs (random discs) over a
    noisy background of random brightness. Hue alone doesn't decide the class: the pattern does
    too, so a probe needs both colour and shape."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    for hue, rgb in HUES.items():
        for pattern in ("stripes", "blobs"):
            out = folder / f"{hue}_{pattern}"
            out.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                base = rng.integers(20, 120)
                a = base + rng.normal(0, 18, (size, size, 3))
                if pattern == "stripes":
                    angle, period = rng.uniform(0, np.pi), rng.uniform(5, 10)
                    mask = (
                        np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period) > 0.3
                    )
                else:
                    mask = np.zeros((size, size), bool)
                    for _ in range(rng.integers(2, 5)):
                        cy, cx, r = rng.integers(0, size, 2).tolist() + [rng.integers(4, 9)]
                        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < r**2
                shade = rng.uniform(0.7, 1.2)
                a[mask] = np.array(rgb) * shade + rng.normal(0, 12, (mask.sum(), 3))
                Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(out / f"{i:03d}.png")


class StopAfter(Callback):
    """Ends training (checkpoint, status cancelled) once ``steps`` optimizer steps are done."""

    def __init__(self, steps: int) -> None:
        self.steps, self.done = steps, False

    def on_step_end(self, state: TrainState) -> None:
        self.done = state.step >= self.steps

    def should_stop(self) -> bool:
        return self.done


def labels_of(paths: list[str]) -> np.ndarray:
    return np.array([p.split("/")[0] for p in paths])


def prepare(name: str, root: Path) -> Path:
    folder = root / name
    if name == "digits":
        digits = root / "digits-flat"
        targets = write_digits(digits)
        for file, target in zip(sorted(digits.iterdir()), targets, strict=True):
            (folder / str(target)).mkdir(parents=True, exist_ok=True)
            file.rename(folder / str(target) / file.name)
    elif name == "demo":
        return DEMO
    else:
        write_colours(folder)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=226, help="training steps per run")
    parser.add_argument("--datasets", nargs="+", default=["digits", "demo", "colours"])
    parser.add_argument("--draws", type=int, default=10)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "home")
        for name in args.datasets:
            dataset = ingest(store, [prepare(name, Path(tmp))], name=name).dataset
            config = default_config(dataset, "rotation").replace(
                epochs=1000, time_budget=3600.0, device="cpu"
            )
            start = time.perf_counter()
            stop = StopAfter(args.steps)
            run = execute(
                store, create_run(store, config).id, should_stop=stop.should_stop, callbacks=[stop]
            )
            accuracy = evaluate_run(store, run.id)["accuracy"]
            print(
                f"{name}: {dataset.n_images} images, rotation run {run.id}: {run.step} steps in "
                f"{time.perf_counter() - start:.0f} s, held-out rotation accuracy {accuracy:.3f}",
                flush=True,
            )
            pixels = embed(store, name, "pixels")
            labels = labels_of(pixels.paths)
            rows.append(
                (
                    name,
                    "pixels",
                    pixels.layer,
                    1,
                    few_shot(pixels.vectors, labels, draws=args.draws),
                    None,
                )
            )
            for layer in available_layers(store, run.id):
                for grid in (1, 2):
                    scores = [
                        few_shot(
                            embed(store, name, s, layer=layer, grid=grid).vectors,
                            labels,
                            draws=args.draws,
                        )
                        for s in (run.id, "random")
                    ]
                    rows.append((name, "run", layer, grid, *scores))
                    print(
                        f"  {layer} grid {grid}: trained {scores[0]:.3f} random {scores[1]:.3f}",
                        flush=True,
                    )
        default = default_layer(store, "random")
        store.close()
    print(f"\nfew-shot probe (logreg, 5 labels/class, {args.draws} draws); default {default}")
    print(f"{'dataset':>8} {'layer':>7} {'pool':>6} {'trained':>8} {'random':>7} {'gain':>6}")
    for name, kind, layer, grid, ours, baseline in rows:
        pool = "global" if grid == 1 else f"{grid}x{grid}"
        if kind == "pixels":
            print(f"{name:>8} {'pixels':>7} {layer:>6} {ours:>8.3f}")
            continue
        mark = " <- default" if (layer, grid) == default else ""
        print(
            f"{name:>8} {layer:>7} {pool:>6} {ours:>8.3f} {baseline:>7.3f} {ours - baseline:>+6.3f}{mark}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
