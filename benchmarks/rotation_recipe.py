"""Which rotation recipe learns what is shown: augmentations measured side by side, in one process,
at equal training steps (so at equal cost: the augmentations are batched tensor work, and each
variant's training seconds are printed beside it to show it), on generated families that look
nothing alike (``fewshot_sets.py``: digits, shapes, letters, textures; ``icon_sets.py``: colour
icons in 9 semantic groups; ``clipart_sets.py``: ~565 emoji of mixed sizes in 10 semantic groups,
a stand-in for a folder of clip art) and the demo photos.

Variants (rotation task options, ``sslviz.pretext.augment``): ``base`` (none), ``crop`` (random
resized crops of >= 35% of the area), ``jitter`` (colour jitter 0.4), ``grey`` (20% turned grey),
``crop-grey`` and ``crop-jitter`` (crop with one colour augmentation), ``all`` (the three);
``wide`` (no augmentation, the small CNN at twice its widths, 32/128/256
channels, registered in this process only as ``small-cnn-wide``) trains fewer steps: ``--steps``
divided by its cost per step relative to the default width, measured here side by side (a
forward and backward pass of each on the same batch, interleaved), so it gets the same compute.
The variants of one family are trained one after the other in one process, the same seed.

Score: few-shot accuracy on the unlabeled rest, 5 labels per class, mean of ``--draws`` draws,
with ``auto`` (the predictor `sslviz predict` uses) on the run's default embedding layer; the
free baselines (pixels, random) beside them.

    python benchmarks/rotation_recipe.py [--sets digits shapes letters textures icons demo clipart]
        [--steps 300] [--draws 3] [--variants base crop jitter grey crop-grey crop-jitter all wide]
        [--images-per-class 40] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clipart_sets import write_clipart  # noqa: E402
from fewshot_sets import truth_of, write_family  # noqa: E402
from icon_sets import write_icons  # noqa: E402

from sslviz.data import ingest  # noqa: E402
from sslviz.fewshot.geometry import shared_scale  # noqa: E402
from sslviz.fewshot.predict import predict_vectors  # noqa: E402
from sslviz.fewshot.predictors import Features  # noqa: E402
from sslviz.maps.embed import embed  # noqa: E402
from sslviz.models.encoders import ENCODERS, SmallCNN  # noqa: E402
from sslviz.runner.execute import execute  # noqa: E402
from sslviz.store import Store  # noqa: E402
from sslviz.training.config import default_config  # noqa: E402
from sslviz.training.train import create_run  # noqa: E402

VARIANTS = {
    "base": {},
    "crop": {"crop": 0.35},
    "jitter": {"jitter": 0.4},
    "grey": {"grey": 0.2},
    "crop-grey": {"crop": 0.35, "grey": 0.2},
    "crop-jitter": {"crop": 0.35, "jitter": 0.4},
    "all": {"crop": 0.35, "jitter": 0.4, "grey": 0.2},
    "wide": {},
}
WIDE = (32, 128, 256)  # twice the small CNN's (16, 64, 128)
ENCODERS["small-cnn-wide"] = lambda in_channels=3, image_size=32: SmallCNN(in_channels, WIDE)


def width_cost(repeats: int = 10) -> float:
    """Seconds per training step of the wide small CNN / the default one: forward and backward
    of a rotation batch (128 images at 32 px), the two interleaved so load hits both alike."""
    models = [SmallCNN(3), SmallCNN(3, WIDE)]
    x = torch.randn(128, 3, 32, 32)
    spent = [0.0, 0.0]
    for r in range(repeats + 1):
        for i, model in enumerate(models):
            start = time.perf_counter()
            model(x).mean().backward()
            if r:  # the first round warms up
                spent[i] += time.perf_counter() - start
    return spent[1] / spent[0]


def fewshot(store: Store, dataset, source: str, name: str, draws: int) -> float:
    """Mean accuracy of ``auto`` on the unlabeled rest, 5 labels per class, ``draws`` draws."""
    emb = embed(store, dataset, source)
    paths = list(emb.paths)
    truth = truth_of(name, paths)  # icons, clip art: the folder, as the generated families
    features = Features(np.asarray(emb.vectors), shared_scale=shared_scale(emb))
    scores = []
    for d in range(draws):
        rng = np.random.default_rng(d)
        idx = np.concatenate(
            [rng.choice(np.flatnonzero(truth == c), 5, replace=False) for c in np.unique(truth)]
        )
        rest = np.setdiff1d(np.arange(len(truth)), idx)
        labels = {paths[i]: str(truth[i]) for i in idx}
        result = predict_vectors(features.vectors, paths, labels, "auto", features=features)
        scores.append(float((result.prediction.labels[rest] == truth[rest]).mean()))
    return float(np.mean(scores))


def family(store: Store, tmp: Path, name: str, args: argparse.Namespace):
    """Write and ingest family ``name``; (its dataset, the free baselines' scores)."""
    per_class = args.images_per_class
    if name == "icons":
        folder = write_icons(tmp / "icons", per_class)
    elif name == "clipart":  # every emoji once: the groups are as large as Unicode made them
        folder = write_clipart(tmp / "clipart")
    else:
        folder = write_family(name, tmp)
        if name != "demo":
            thin(folder, per_class)
    dataset = ingest(store, [folder], name=name).dataset
    free = () if args.no_baselines else ("pixels", "random")
    return dataset, {s: fewshot(store, dataset, s, name, args.draws) for s in free}


def variant_score(store: Store, dataset, name: str, variant: str, args) -> float:
    """Train rotation ``variant`` on ``dataset`` for ``--steps`` (wide: the same compute)."""
    base = default_config(dataset, "rotation")
    base = base.replace(batch_size=args.batch_size or base.batch_size)
    epochs = max(1, round(args.steps / max(1, int(0.9 * dataset.n_images) // base.batch_size)))
    config = base.replace(epochs=epochs, device="cpu", task_options=dict(VARIANTS[variant]))
    if variant == "wide":
        config = config.replace(
            encoder="small-cnn-wide", epochs=max(1, round(epochs / args.width_cost))
        )
    started = time.perf_counter()
    run = execute(store, create_run(store, config).id)
    seconds = time.perf_counter() - started
    score = fewshot(store, dataset, str(run.id), name, args.draws)
    print(
        f"  {name} {variant}: {score:.3f} ({run.step} steps, {seconds:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    return score


def print_table(rows: dict[str, dict[str, float]], columns: list[str]) -> None:
    """The families measured so far; the mean over the families that have every column."""
    print("| family | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for name, scores in rows.items():
        print(f"| {name} | " + " | ".join(f"{scores.get(c, np.nan):.3f}" for c in columns) + " |")
    means = {c: np.mean([rows[n].get(c, np.nan) for n in rows]) for c in columns}
    print("| mean | " + " | ".join(f"{means[c]:.3f}" for c in columns) + " |", flush=True)


def thin(folder: Path, per_class: int) -> None:
    """Keep the first ``per_class`` images of each class of a family written under ``folder``."""
    paths = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.png"))
    truth = truth_of(folder.name, paths)
    for label in np.unique(truth):
        for path in np.array(paths)[truth == label][per_class:]:
            (folder / path).unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sets",
        nargs="+",
        default=["digits", "shapes", "letters", "textures", "icons", "demo", "clipart"],
    )
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--images-per-class", type=int, default=40)
    parser.add_argument("--batch-size", type=int, help="images per step (default: the default's)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument("--no-baselines", action="store_true", help="skip pixels and random")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.width_cost = width_cost() if "wide" in args.variants else 1.0
    print(f"wide / default seconds per step: {args.width_cost:.2f}", file=sys.stderr, flush=True)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "home")
        datasets = {}
        for name in args.sets:
            datasets[name], rows[name] = family(store, Path(tmp), name, args)
        # variant by variant over the families, so a cut-short run still compares on every family
        for variant in args.variants:
            for name in args.sets:
                rows[name][variant] = variant_score(store, datasets[name], name, variant, args)
            free = [] if args.no_baselines else ["pixels", "random"]
            print_table(rows, [*free, *args.variants])
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
