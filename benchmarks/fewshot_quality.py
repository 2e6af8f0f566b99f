"""Few-shot quality and scale: how often is the predicted label right on the images nobody labeled?

For each data set, source and label budget: accuracy on the unlabeled rest, averaged over
``--draws`` random draws of the labeled images, for each predictor and for ``auto`` (which also
reports its CV estimate, to compare with the truth). Data sets: scikit-learn's digits at 32 px
(labels = digit), the bundled demo set (labels = folder), and a generated set of shapes (disc,
square, triangle, cross, ring; random colours, sizes and places on noise). Sources: ``pixels``,
``random`` (untrained encoder) and a short rotation run of that data set (``--budget`` seconds),
embedded by ``sslviz.maps.embed`` exactly as the CLI and the page do.

Scale: ``predict`` auto (all three methods cross-validated, then the chosen one fitted) and
``suggest`` on 100k synthetic embeddings (D = 128, 10 classes, 50 labels), timed side by side with
the targets (60 s and 30 s on 2 cores).

    python benchmarks/fewshot_quality.py [--draws 5] [--budget 60] [--skip-scale] [--sets digits]
    python benchmarks/fewshot_quality.py --features --skip-scale    # standardise vs unit rows
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from digits_rotation import write_digits  # noqa: E402

from sslviz.data import ingest  # noqa: E402
from sslviz.data.cache import build_cache  # noqa: E402
from sslviz.fewshot.predict import predict_vectors  # noqa: E402
from sslviz.fewshot.predictors import METHODS, Features  # noqa: E402
from sslviz.fewshot.suggest import suggest  # noqa: E402
from sslviz.maps.embed import BASELINE_SIZE, embed  # noqa: E402
from sslviz.runner.execute import execute
from sslviz.store import Store  # noqa: E402
from sslviz.training.config import default_config  # noqa: E402
from sslviz.training.train import create_run  # noqa: E402

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"
SHAPES = ("disc", "square", "triangle", "cross", "ring")


def write_shapes(folder: Path, per_class: int = 200, size: int = 32, seed: int = 0) -> None:
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


def draw(truth: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate(
        [rng.choice(np.flatnonzero(truth == c), per_class, replace=False) for c in np.unique(truth)]
    )


def score(vectors: np.ndarray, paths: list[str], truth: np.ndarray, per_class: int, draws: int):
    """{method: mean accuracy on the unlabeled rest}, auto's picks and its mean CV estimate."""
    features = Features(vectors)  # the graph is built once per source
    accuracy: dict[str, list[float]] = {m: [] for m in (*METHODS, "auto")}
    picks, estimates = [], []
    for d in range(draws):
        idx = draw(truth, per_class, np.random.default_rng(d))
        labels = {paths[i]: str(truth[i]) for i in idx}
        for method in (*METHODS, "auto"):
            result = predict_vectors(vectors, paths, labels, method, features=features)
            rest = ~result.labeled
            accuracy[method].append(float((result.prediction.labels[rest] == truth[rest]).mean()))
            if method == "auto":
                picks.append(result.method)
                if result.estimate.accuracy is not None:
                    estimates.append(result.estimate.accuracy)
    mean = {m: float(np.mean(v)) for m, v in accuracy.items()}
    return mean, picks, (float(np.mean(estimates)) if estimates else None)


def variants(vectors: np.ndarray, truth: np.ndarray, per_class: int, draws: int) -> dict:
    """Accuracy of the feature preparations the predictors choose between (LOGREG_FEATURES,
    COSINE_FEATURES): what measured best on average is the default."""
    from sslviz.fewshot.predictors import fit_predict

    out: dict[str, list[float]] = {}
    options = [("logreg", {"logreg_features": f}) for f in ("standardize", "l2", "l2+standardize")]
    options += [(m, {"cosine_features": f}) for m in ("knn", "label-spreading")
                for f in ("center", "standardize")]  # fmt: skip
    for d in range(draws):
        idx = draw(truth, per_class, np.random.default_rng(d))
        rest = np.setdiff1d(np.arange(len(truth)), idx)
        for method, kw in options:
            p = fit_predict(vectors, idx, truth[idx], method, features=Features(vectors, **kw))
            key = f"{method} {next(iter(kw.values()))}"
            out.setdefault(key, []).append(float((p.labels[rest] == truth[rest]).mean()))
    return {k: float(np.mean(v)) for k, v in out.items()}


def rotation_run(store: Store, dataset, budget: float) -> str:
    config = default_config(dataset, "rotation").replace(
        epochs=1000, time_budget=budget, device="cpu"
    )
    run = execute(store, create_run(store, config).id)
    return str(run.id)


def quality(sets: list[str], draws: int, budget: float, compare_features: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "home")
        folders = {}
        if "digits" in sets:
            write_digits(Path(tmp) / "digits")
            folders["digits"] = Path(tmp) / "digits"
        if "demo" in sets:
            folders["demo"] = DEMO
        if "shapes" in sets:
            write_shapes(Path(tmp) / "shapes")
            folders["shapes"] = Path(tmp) / "shapes"
        digits_truth = None
        if compare_features:
            print("| data set | source | labels/class | accuracy on the unlabeled rest |")
            print("|---|---|---|---|")
        else:
            print("| data set | source | labels/class | logreg | knn | label-spreading | auto "
                  "| auto picked | auto's CV estimate |")  # fmt: skip
            print("|---|---|---|---|---|---|---|---|---|")
        for name, folder in folders.items():
            dataset = ingest(store, [folder], name=name).dataset
            # Decode in this process: the image caches are built once, before anything is timed.
            size = default_config(dataset, "rotation").image_size
            for side in {BASELINE_SIZE, size}:
                build_cache(store, dataset.id, side, workers=1)
            sources = ["pixels", "random"]
            if budget > 0:
                started = time.perf_counter()
                sources.append(rotation_run(store, dataset, budget))
                trained = time.perf_counter() - started
            for source in sources:
                emb = embed(store, dataset, source)
                paths = list(emb.paths)
                if name == "digits":
                    from sklearn.datasets import load_digits

                    digits_truth = load_digits().target.astype(str)
                    truth = digits_truth[[int(Path(p).stem) for p in paths]]
                else:
                    truth = np.array([p.split("/")[0] for p in paths])
                label = (
                    source
                    if not source.isdigit()
                    else f"rotation ({budget:.0f} s, {trained:.0f} s wall)"
                )
                for per_class in (1, 5):
                    if compare_features:
                        found = variants(np.asarray(emb.vectors), truth, per_class, draws)
                        print(f"| {name} | {label} | {per_class} | "
                              + " | ".join(f"{k} {v:.3f}" for k, v in found.items()) + " |",
                              flush=True)  # fmt: skip
                        continue
                    mean, picks, cv = score(np.asarray(emb.vectors), paths, truth, per_class, draws)
                    picked = ", ".join(f"{m} {picks.count(m)}" for m in sorted(set(picks)))
                    print(
                        f"| {name} | {label} ({emb.layer}, grid {emb.grid}) | {per_class} | "
                        + " | ".join(f"{mean[m]:.3f}" for m in (*METHODS, "auto"))
                        + f" | {picked} | {'—' if cv is None else f'{cv:.3f}'} |",
                        flush=True,
                    )
        store.close()


def scale(n: int = 100_000, dim: int = 128, classes: int = 10) -> None:
    """predict (auto) and suggest on n x dim embeddings with clusters of low intrinsic dimension."""
    rng = np.random.default_rng(0)
    latent = rng.normal(size=(n, 8)) + np.repeat(rng.normal(0, 3, (classes, 8)), n // classes, 0)
    vectors = (latent @ rng.normal(size=(8, dim)) + rng.normal(0, 0.5, (n, dim))).astype(np.float32)
    truth = np.repeat(np.arange(classes), n // classes).astype(str)
    paths = [f"{i:06d}.png" for i in range(n)]
    idx = draw(truth, 5, rng)
    labels = {paths[i]: truth[i] for i in idx}
    started = time.perf_counter()
    result = predict_vectors(vectors, paths, labels, "auto")
    predict_seconds = time.perf_counter() - started
    started = time.perf_counter()
    cold = suggest(vectors, [], [], n=20)
    cold_seconds = time.perf_counter() - started
    started = time.perf_counter()
    warm = suggest(vectors, idx, list(truth[idx]), n=20)
    warm_seconds = time.perf_counter() - started
    right = float((result.prediction.labels[~result.labeled] == truth[~result.labeled]).mean())
    print(
        f"\nScale: {n:,} x {dim} embeddings, {len(labels)} labels (machine shared with other work)"
    )
    print("| step | seconds | target | seconds / target |")
    print("|---|---|---|---|")
    print(
        f"| predict auto (3 methods CV'd; picked {result.method}, accuracy {right:.3f}) | {predict_seconds:.1f} | 60 | {predict_seconds / 60:.2f} |"
    )
    print(
        f"| suggest, cold start ({cold.strategy}) | {cold_seconds:.1f} | 30 | {cold_seconds / 30:.2f} |"
    )
    print(
        f"| suggest, with labels ({warm.strategy}) | {warm_seconds:.1f} | 30 | {warm_seconds / 30:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument(
        "--budget", type=float, default=60, help="rotation training seconds (0: none)"
    )
    parser.add_argument("--sets", nargs="+", default=["digits", "demo", "shapes"])
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument(
        "--features", action="store_true", help="compare the feature preparations instead"
    )
    parser.add_argument("--only-scale", action="store_true")
    args = parser.parse_args()
    if not args.only_scale:
        quality(args.sets, args.draws, args.budget, args.features)
    if not args.skip_scale:
        scale()


if __name__ == "__main__":
    main()
