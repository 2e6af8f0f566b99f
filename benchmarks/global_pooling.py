"""Global pooling of a trained run's default layer: each channel's average, its maximum, or both
(what ``Encoder.embed`` gives at grid 1), against the 2x2 grid and the free baselines.

Per family: a rotation run of ``--steps`` optimizer steps (the CLI's other defaults; 226 is what
60 s buys on a quiet 2-core machine), then its block3 maps pooled each way, the untrained network
at its default (block2, 2x2) and pixels; accuracy on the unlabeled rest with 5 and 10 labels per
class, mean of ``--draws`` draws, with a linear probe (logreg) and with Poisson learning (what
``auto`` picks most often). Families: digits (scikit-learn, 32 px), the colour icons
(``icon_sets.py``), the demo photos, and emoji clip art (``clipart_sets.py``, when its font is
installed).

    python benchmarks/global_pooling.py [--families digits icons demo clipart] [--steps 226]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clipart_sets import available, write_clipart  # noqa: E402
from digits_rotation import write_digits  # noqa: E402
from icon_sets import write_icons  # noqa: E402
from leaderboard import draw  # noqa: E402

from sslviz.data import ingest  # noqa: E402
from sslviz.data.cache import open_cache  # noqa: E402
from sslviz.data.demo import DEMO_DIR  # noqa: E402
from sslviz.fewshot.predictors import Features, fit_predict  # noqa: E402
from sslviz.maps.embed import embed, encoder_for_source  # noqa: E402
from sslviz.runner.execute import execute  # noqa: E402
from sslviz.store import Store  # noqa: E402
from sslviz.training.config import default_config, split_sizes  # noqa: E402
from sslviz.training.train import create_run  # noqa: E402


def folder_of(family: str, tmp: Path) -> Path:
    if family == "digits":  # into one folder per digit, so the label is the folder
        flat = tmp / "digits-flat"
        for i, digit in enumerate(write_digits(flat)):
            (tmp / "digits" / str(digit)).mkdir(parents=True, exist_ok=True)
            (flat / f"{i:04d}.png").rename(tmp / "digits" / str(digit) / f"{i:04d}.png")
        return tmp / "digits"
    if family == "icons":
        return write_icons(tmp / "icons", 100)
    if family == "clipart":
        return write_clipart(tmp / "clipart")
    return DEMO_DIR


def poolings(store: Store, dataset_id: int, source: str) -> dict[str, np.ndarray]:
    encoder, view, size, _ = encoder_for_source(store, source)
    images = torch.from_numpy(np.array(open_cache(store, dataset_id, size)[:]))
    with torch.inference_mode():
        maps = torch.cat(
            [
                encoder.feature_maps(view(images[i : i + 256]), ["block3"])["block3"]
                for i in range(0, len(images), 256)
            ]
        )  # (N, D, h, w)
    average, maximum = maps.mean(dim=(2, 3)), maps.amax(dim=(2, 3))
    grid = torch.nn.functional.adaptive_avg_pool2d(maps, 2).flatten(1)
    found = {"average": average, "max": maximum, "average + max": torch.cat([average, maximum], 1)}
    return {k: v.numpy() for k, v in {**found, "2x2": grid}.items()}


def accuracy(vectors, paths, truth, labels, method, shared=False) -> float:
    row = {p: i for i, p in enumerate(paths)}
    labeled = sorted(labels)
    idx = np.array([row[p] for p in labeled])
    features = Features(np.asarray(vectors, dtype=np.float32), shared_scale=shared)
    prediction = fit_predict(
        features.vectors, idx, [labels[p] for p in labeled], method, features=features
    )
    rest = [i for i, p in enumerate(paths) if p not in labels]
    return float(np.mean([prediction.labels[i] == truth[paths[i]] for i in rest]))


def family(store: Store, name: str, tmp: Path, args: argparse.Namespace) -> None:
    ingest(store, [folder_of(name, tmp)], name=name)
    dataset = store.datasets.get_by_name(name)
    paths = [image.path for image in store.datasets.images(dataset.id)]
    truth = {p: p.split("/")[0] for p in paths}
    config = default_config(dataset, "rotation")
    per_epoch = max(1, split_sizes(dataset.n_images, config.holdout)[0] // config.batch_size)
    epochs = max(1, round(args.steps / per_epoch))
    config = config.replace(epochs=epochs, warmup_epochs=min(1.0, epochs / 10), device="cpu")
    run = execute(store, create_run(store, config).id)
    rows = {
        f"rotation block3 {k}": (v, False)
        for k, v in poolings(store, dataset.id, str(run.id)).items()
    }
    rows["random (block2 2x2)"] = (np.asarray(embed(store, dataset, "random").vectors), False)
    rows["pixels"] = (np.asarray(embed(store, dataset, "pixels").vectors), True)
    print(
        f"\n## {name}: {len(paths)} images, {run.step} steps; logreg / poisson, "
        f"load {os.getloadavg()[0]:.1f}\n\n| readout | 5 per class | 10 per class |\n|---|---|---|"
    )
    draws = {k: [draw(truth, k, seed) for seed in range(args.draws)] for k in (5, 10)}
    for key, (vectors, shared) in rows.items():
        cells = [
            " / ".join(
                f"{np.mean([accuracy(vectors, paths, truth, d, m, shared) for d in draws[k]]):.3f}"
                for m in ("logreg", "poisson")
            )
            for k in (5, 10)
        ]
        print(f"| {key} | {cells[0]} | {cells[1]} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--families",
        nargs="+",
        default=["digits", "icons", "demo", "clipart"],
        choices=["digits", "icons", "demo", "clipart"],
    )
    parser.add_argument("--steps", type=int, default=226)
    parser.add_argument("--draws", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "home")
        for name in args.families:
            if name == "clipart" and not available():
                print(
                    "clipart: skipped (apt-get install fonts-noto-color-emoji; pip install fonttools)"
                )
                continue
            family(store, name, Path(tmp), args)
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
