"""``sslviz upright`` precision and recall on a held-out set with a known fraction stored turned,
at several thresholds side by side (the default marked), and the saliency sanity check.

A rotation run is trained for a fixed number of epochs (not seconds: the result must not depend
on the shared machine's load) on scikit-learn's digits (1,000 images, 32 px), then checked on the
other 797 digits with 25% of them turned by 90/180/270 degrees (the turn drawn at random), and on
the same held-out digits none turned (false alarms). Digits are a hard case: 0, 1 and 8 look alike
turned by 180 degrees, so the threshold has to keep them out.

The saliency check (Adebayo et al. 2018): Spearman rank correlation between the trained model's
Grad-CAM and that of the same network with re-initialised weights, on 64 held-out digits (the
trained map against itself is 1.0; near 0 passes).

    python benchmarks/upright_quality.py [--epochs 8] [--fraction 0.25]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95)


def write_digits(folder: Path, images: np.ndarray, turns: np.ndarray) -> list[str]:
    folder.mkdir(parents=True)
    names = []
    for i, (img, k) in enumerate(zip(images, turns, strict=True)):
        grey = Image.fromarray((img * 255 / 16).astype(np.uint8)).resize((32, 32), Image.BICUBIC)
        name = f"{i:04d}.png"
        grey.convert("RGB").rotate(90 * int(k), expand=True).save(folder / name)
        names.append(name)
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--fraction", type=float, default=0.25)
    args = parser.parse_args()
    import torch
    from sklearn.datasets import load_digits

    from sslviz.api import ingest, open_workspace, pretrain
    from sslviz.data.cache import open_cache
    from sslviz.pretext.base import normalize
    from sslviz.results.saliency import gradcam, randomisation_check, spearman
    from sslviz.results.upright import DEFAULT_MIN_CONFIDENCE, rotate_by, upright_check
    from sslviz.training.evaluate import load_model

    digits = load_digits().images
    rng = np.random.default_rng(0)
    order = rng.permutation(len(digits))
    train, held = digits[order[:1000]], digits[order[1000:]]
    turns = np.where(rng.random(len(held)) < args.fraction, rng.integers(1, 4, len(held)), 0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = open_workspace(root / "home")
        write_digits(root / "train", train, np.zeros(len(train), int))
        names = write_digits(root / "held", held, turns)
        write_digits(root / "clean", held, np.zeros(len(held), int))
        for name in ("train", "held", "clean"):
            ingest(store, root / name, name=name)
        run = pretrain(store, "train", "rotation", epochs=args.epochs, image_size=32, device="cpu")
        truth = {n: rotate_by(int(k)) if k else 0 for n, k in zip(names, turns, strict=True)}
        n_turned = sum(1 for v in truth.values() if v)
        every = upright_check(
            store, run.id, store.datasets.get_by_name("held"), min_confidence=1e-9
        )
        clean = upright_check(
            store, run.id, store.datasets.get_by_name("clean"), min_confidence=1e-9
        )
        print(
            f"rotation run: {args.epochs} epochs on 1,000 digits; held-out {len(held)} digits, "
            f"{n_turned} turned; load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"{'threshold':>9} {'listed':>6} {'precision':>9} {'recall':>6} {'false alarms on clean':>21}"
        )
        for t in sorted({*THRESHOLDS, DEFAULT_MIN_CONFIDENCE}):
            listed = [x for x in every.turned if x.confidence >= t]
            right = sum(truth[x.path] == x.rotate_by for x in listed)
            alarms = sum(x.confidence >= t for x in clean.turned)
            mark = " (default)" if t == DEFAULT_MIN_CONFIDENCE else ""
            print(
                f"{t:>9.2f} {len(listed):>6} {right / max(1, len(listed)):>9.3f} "
                f"{right / max(1, n_turned):>6.3f} {alarms:>21}{mark}"
            )

        _, model, _, _ = load_model(store, run.id)
        cache = open_cache(store, store.datasets.get_by_name("clean").id, 32)
        x = normalize(torch.from_numpy(np.array(cache[:64])))
        r = randomisation_check(model, x)
        same = spearman(gradcam(model, x, relu=False), gradcam(model, x, relu=False))
        print(
            f"saliency sanity check (Grad-CAM, block3, 64 digits): Spearman trained vs "
            f"randomised weights mean {float(r.mean()):.3f} (|r| mean {float(r.abs().mean()):.3f}); "
            f"trained vs itself {float(same.mean()):.3f}"
        )
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
