"""Which defaults make a pretext run's embedding beat ``random`` (the same network untrained) and
``pixels``: a few-shot probe of every layer x pooling grid of a run's encoder, per data set family,
side by side with both baselines, and the training CPU time each run took.

    digits   scikit-learn's digits at 32 px (1,797 images, 10 classes)
    demo     the bundled assets/demo (306 crops of 6 photos; label = folder)
    icons    generated colourful clip art, one object per image, label = its kind (19 kinds;
             colorization_quality.py's drawing code, a seed nobody tuned on)
    colours  generated: 3 hues x 2 patterns (stripes / blobs) on noisy backgrounds (600 images)

Each data set gets one run per ``--tasks`` entry, as a user starts one (``default_config``) but
ended after a fixed number of optimizer steps with its cosine schedule fully annealed (the epochs
set to match), so the table doesn't depend on how busy the shared machine is. The default steps
are what 60 s buys on a quiet 2-core machine (README performance table: rotation 241 images/s
end to end = 3.8 steps of 64 images/s, so 226 steps). Embeddings come from
``sslviz.maps.embed.embed`` (what ``sslviz embed`` writes). The probe is logistic regression on
standardised features (``--predictor logreg``), ``--predictor ensemble`` (logistic regression and
the 10-D UMAP of all images, averaged) or what ``sslviz predict`` uses unless CV finds better
(``--predictor poisson``: Poisson learning on two views of all images), with
``--labels`` labels per class, mean accuracy on the rest over ``--draws`` random draws of the
labels (the same draws for every source).

    python benchmarks/embedding_layers.py [--steps 226] [--datasets digits demo icons]
        [--tasks rotation] [--labels 5] [--draws 5] [--predictor logreg]
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
from colorization_quality import write_icon_set  # noqa: E402
from digits_rotation import draw_labels, few_shot, write_digits  # noqa: E402

from sslviz.data import ingest  # noqa: E402
from sslviz.fewshot.geometry import shared_scale  # noqa: E402
from sslviz.fewshot.predictors import Features, fit_predict  # noqa: E402
from sslviz.maps.embed import Embeddings, available_layers, default_layer, embed  # noqa: E402
from sslviz.runner.execute import execute  # noqa: E402
from sslviz.store import Store  # noqa: E402
from sslviz.training.config import default_config, split_sizes  # noqa: E402
from sslviz.training.evaluate import evaluate_run  # noqa: E402
from sslviz.training.train import create_run  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"
HUES = {"red": (200, 40, 40), "green": (40, 170, 60), "blue": (50, 70, 210)}
ICONS_PER_KIND, ICON_SEED = 40, 7


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
    elif name == "icons":
        write_icon_set(folder, ICONS_PER_KIND, ICON_SEED)
    else:
        write_colours(folder)
    return folder


def predictor_scores(
    emb: Embeddings, labels: np.ndarray, per_class: int, draws: int, method: str
) -> list:
    """Accuracy on the rest of predictor ``method`` over the same seeded draws as ``few_shot``."""
    features = Features(np.asarray(emb.vectors), shared_scale=shared_scale(emb))
    scores = []
    for draw in range(draws):
        picked = draw_labels(labels, per_class, draw)
        rest = np.setdiff1d(np.arange(len(labels)), picked)
        guess = fit_predict(features.vectors, picked, labels[picked], method, features=features)
        scores.append(float((guess.labels[rest] == labels[rest]).mean()))
    return scores


def train_for_steps(store: Store, dataset, task: str, steps: int):
    """A run of ``default_config`` whose epochs make about ``steps`` optimizer steps, so its
    cosine schedule has annealed at the end (as a time-budgeted run's has when the time is up)."""
    config = default_config(dataset, task).replace(device="cpu")
    n_train, _ = split_sizes(dataset.n_images, config.holdout)
    per_epoch = max(1, n_train // config.batch_size)
    config = config.replace(epochs=max(1, round(steps / per_epoch)))
    cpu = time.process_time()
    run = execute(store, create_run(store, config).id)
    return run, time.process_time() - cpu


def report(rows: list, per_class: int, args: argparse.Namespace, defaults: dict) -> None:
    """The table at ``per_class`` labels per class, then each trained (source, layer, grid):
    its mean over the data sets and its margin over the best baseline on each."""
    print(
        f"\nfew-shot probe ({args.predictor}, {per_class} labels/class, {args.draws} draws, "
        f"{args.steps} steps); defaults {defaults}"
    )
    print(f"{'dataset':>8} {'source':>12} {'layer':>7} {'pool':>6} {'accuracy':>14}")
    acc = {(r[0], r[1], r[2], r[3]): r[4][per_class][0] for r in rows}
    for name, source, layer, grid, scores in rows:
        mean, std = scores[per_class]
        pool = "global" if grid == 1 else f"{grid}x{grid}"
        mark = " <- default" if (layer, grid) == defaults.get(source) else ""
        print(f"{name:>8} {source:>12} {layer:>7} {pool:>6} {mean:>8.3f} ± {std:.3f}{mark}")
    names = list(dict.fromkeys(r[0] for r in rows))
    best_baseline = {
        n: max(v for k, v in acc.items() if k[0] == n and k[1] in ("random", "pixels"))
        for n in names
    }
    print("mean over data sets; margin over the best baseline (random or pixels, any layer)")
    for source, layer, grid in sorted({k[1:] for k in acc if k[1] not in ("pixels",)}):
        mine = {n: acc.get((n, source, layer, grid)) for n in names}
        if None in mine.values():
            continue
        margins = " ".join(f"{n} {mine[n] - best_baseline[n]:+.3f}" for n in names)
        print(
            f"  {source:>12} {layer} grid {grid}: mean {np.mean(list(mine.values())):.3f}; {margins}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=226, help="training steps per run")
    parser.add_argument("--datasets", nargs="+", default=["digits", "demo", "icons"])
    parser.add_argument("--tasks", nargs="+", default=["rotation"])
    parser.add_argument("--labels", type=int, nargs="+", default=[5, 10], help="labels per class")
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--grids", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--predictor", choices=["logreg", "ensemble", "poisson"], default="logreg")
    args = parser.parse_args()
    rows = []  # (dataset, source, layer, grid, {labels per class: (mean, std)})
    defaults: dict[str, tuple[str, int]] = {}  # source label -> its (layer, grid) by default

    def probe(emb: Embeddings, labels: np.ndarray) -> dict[int, tuple[float, float]]:
        out = {}
        for per_class in args.labels:
            if args.predictor == "logreg":
                scores = [
                    few_shot(emb.vectors, labels, per_class=per_class, draws=1, first_draw=d)
                    for d in range(args.draws)
                ]
            else:
                scores = predictor_scores(emb, labels, per_class, args.draws, args.predictor)
            out[per_class] = (float(np.mean(scores)), float(np.std(scores)))
        return out

    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "home")
        for name in args.datasets:
            dataset = ingest(store, [prepare(name, Path(tmp))], name=name).dataset
            pixels = embed(store, name, "pixels")
            labels = labels_of(pixels.paths)
            rows.append((name, "pixels", pixels.layer, 1, probe(pixels, labels)))
            sources: list[tuple[str, int | str]] = [("random", "random")]
            for task in args.tasks:
                run, cpu = train_for_steps(store, dataset, task, args.steps)
                metric = evaluate_run(store, run.id)
                shown = {k: round(v, 3) for k, v in metric.items() if k in ("accuracy", "psnr")}
                print(
                    f"{name}: {dataset.n_images} images, {task} run {run.id}: {run.step} steps, "
                    f"{cpu:.0f} CPU s, held-out {shown}",
                    flush=True,
                )
                sources.append((task, run.id))
            for label, source in sources:
                defaults[label] = default_layer(store, source)
                for layer in available_layers(store, source):
                    for grid in args.grids:
                        emb = embed(store, name, source, layer=layer, grid=grid)
                        rows.append((name, label, layer, grid, probe(emb, labels)))
                        shown = " ".join(f"{k}: {m:.3f}" for k, (m, _) in rows[-1][4].items())
                        print(f"  {label} {layer} grid {grid}: {shown}", flush=True)
        store.close()

    for per_class in args.labels:
        report(rows, per_class, args, defaults)
    return 0


if __name__ == "__main__":
    sys.exit(main())
