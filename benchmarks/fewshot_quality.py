"""Few-shot quality and scale: how often is the predicted label right on the images nobody labeled,
and does ``covered`` tell labeled groups from groups nobody labeled?

Five data-set families that look nothing alike (``fewshot_sets.py``, all generated in code):
scikit-learn's digits at 32 px, the bundled demo photos, coloured shapes on noise, letters in PIL's
fonts, colour textures. Sources ``pixels`` and ``random`` (untrained encoder), embedded by
``sslviz.maps.embed`` exactly as the CLI and the page do (``--budget S`` adds a rotation run).

Accuracy: for each family, source and budget (1, 5, 10 labels per class), the mean accuracy on the
unlabeled rest over ``--draws`` random draws, for every predictor and for ``auto`` (which sees
only the labels; its estimate, corrected for the choice, is printed beside the truth). The
summary compares ``auto`` with the single method best on average, per family and overall.

``--imbalance R``: class i of K (in a shuffled order) keeps R^(i / (K - 1)) of its images (at
least 12), so the largest class is 1 / R times the smallest; the labels stay k per class, as a
researcher labels, while the images they predict are imbalanced.

Coverage: half the labels (rounded down, at least one) held out whole; 5 labels per class of the
rest; the share of the held-out groups' images marked uncovered and of the labeled groups'
unlabeled images marked covered.

Scale: ``predict`` auto and ``suggest`` on 100k synthetic embeddings (D = 128, 10 classes, 50
labels), timed side by side with the targets (60 s and 30 s on 2 cores).

    python benchmarks/fewshot_quality.py [--draws 5] [--budget 0] [--skip-scale] [--sets digits]
        [--budgets 1 5 10] [--imbalance 0.2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fewshot_sets import FAMILIES, HELD_OUT, truth_of, write_family  # noqa: E402

from sslviz.data import ingest  # noqa: E402
from sslviz.data.cache import build_cache  # noqa: E402
from sslviz.fewshot.coverage import coverage  # noqa: E402
from sslviz.fewshot.geometry import shared_scale  # noqa: E402
from sslviz.fewshot.predict import predict_vectors  # noqa: E402
from sslviz.fewshot.predictors import METHODS, Features  # noqa: E402
from sslviz.fewshot.suggest import suggest  # noqa: E402
from sslviz.maps.embed import BASELINE_SIZE, embed  # noqa: E402
from sslviz.runner.execute import execute  # noqa: E402
from sslviz.store import Store  # noqa: E402
from sslviz.training.config import default_config  # noqa: E402
from sslviz.training.train import create_run  # noqa: E402

BUDGETS = (1, 5, 10)


def draw(truth: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return np.concatenate(
        [rng.choice(np.flatnonzero(truth == c), per_class, replace=False) for c in np.unique(truth)]
    )


def score(features: Features, paths: list[str], truth: np.ndarray, per_class: int, draws: int):
    """{method: mean accuracy on the unlabeled rest}, auto's picks and its mean estimate."""
    vectors = features.vectors
    accuracy: dict[str, list[float]] = {m: [] for m in (*METHODS, "auto")}
    picks, estimates = [], []
    for d in range(draws):
        idx = draw(truth, per_class, np.random.default_rng(d))
        labels = {paths[i]: str(truth[i]) for i in idx}
        rest = np.setdiff1d(np.arange(len(truth)), idx)
        for method in METHODS:
            from sslviz.fewshot.predictors import fit_predict

            p = fit_predict(vectors, idx, truth[idx], method, features=features)
            accuracy[method].append(float((p.labels[rest] == truth[rest]).mean()))
        result = predict_vectors(vectors, paths, labels, "auto", features=features)
        accuracy["auto"].append(float((result.prediction.labels[rest] == truth[rest]).mean()))
        picks.append(result.method)
        if result.estimate.cv_accuracy is not None:
            estimates.append(result.estimate.cv_accuracy)
    mean = {m: float(np.mean(v)) for m, v in accuracy.items()}
    return mean, picks, (float(np.mean(estimates)) if estimates else None)


def covered_scores(features: Features, truth: np.ndarray, draws: int) -> tuple[float, float]:
    """(share of held-out groups' images uncovered, share of labeled groups' rest covered)."""
    names = np.unique(truth)
    out_share, in_share = [], []
    for d in range(draws):
        rng = np.random.default_rng(100 + d)
        held = rng.choice(names, max(1, len(names) // 2), replace=False)
        kept = np.setdiff1d(names, held)
        if len(kept) < 2:
            continue
        mask = np.isin(truth, kept)
        idx = draw(np.where(mask, truth, "~"), 5, rng)
        idx = idx[mask[idx]]
        found = coverage(features, idx, list(truth[idx]))
        rest = np.ones(len(truth), bool)
        rest[idx] = False
        out_share.append(float((~found.covered[~mask]).mean()))
        in_share.append(float(found.covered[mask & rest].mean()))
    return float(np.mean(out_share)), float(np.mean(in_share))


def rotation_run(store: Store, dataset, budget: float) -> str:
    config = default_config(dataset, "rotation").replace(
        epochs=1000, time_budget=budget, device="cpu"
    )
    run = execute(store, create_run(store, config).id)
    return str(run.id)


def imbalanced(truth: np.ndarray, ratio: float) -> np.ndarray:
    """Sorted rows to keep: class i of K (shuffled, seeded) keeps ratio^(i / (K - 1)) of its
    images, at least 12."""
    rng = np.random.default_rng(123)
    names = rng.permutation(np.unique(truth))
    keep = []
    for i, name in enumerate(names):
        rows = np.flatnonzero(truth == name)
        share = ratio ** (i / max(1, len(names) - 1))
        keep.append(rng.choice(rows, max(12, round(len(rows) * share)), replace=False))
    return np.sort(np.concatenate(keep))


def quality(
    sets: list[str], draws: int, budget: float, budgets: list[int], ratio: float = 1.0
) -> None:
    rows: dict[tuple[str, str, int], dict[str, float]] = {}
    covers = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "home")
        header = " | ".join(METHODS)
        print(
            f"| data set | source | labels/class | {header} | auto | auto picked | auto's estimate |"
        )
        print("|---" * (len(METHODS) + 6) + "|")
        for name in sets:
            folder = write_family(name, Path(tmp))
            dataset = ingest(store, [folder], name=name).dataset
            build_cache(store, dataset.id, BASELINE_SIZE, workers=1)
            sources = ["pixels", "random"]
            if budget > 0:
                build_cache(
                    store, dataset.id, default_config(dataset, "rotation").image_size, workers=1
                )
                sources.append(rotation_run(store, dataset, budget))
            for source in sources:
                emb = embed(store, dataset, source)
                paths = list(emb.paths)
                truth = truth_of(name, paths)
                keep = imbalanced(truth, ratio) if ratio < 1 else np.arange(len(paths))
                paths, truth = [paths[i] for i in keep], truth[keep]
                started = time.perf_counter()
                vectors = np.asarray(emb.vectors)[keep]
                features = Features(vectors, shared_scale=shared_scale(emb))
                assert len(features.umap)  # fitted once per embedding, as predict caches it
                umap_seconds = time.perf_counter() - started
                label = source if not source.isdigit() else f"rotation {budget:.0f} s"
                for per_class in budgets:
                    mean, picks, cv = score(features, paths, truth, per_class, draws)
                    rows[(name, label, per_class)] = mean
                    picked = ", ".join(f"{m} {picks.count(m)}" for m in sorted(set(picks)))
                    print(
                        f"| {name} | {label} ({emb.layer}) | {per_class} | "
                        + " | ".join(f"{mean[m]:.3f}" for m in (*METHODS, "auto"))
                        + f" | {picked} | {'—' if cv is None else f'{cv:.3f}'} |",
                        flush=True,
                    )
                out_share, in_share = covered_scores(features, truth, draws)
                covers.append((name, label, out_share, in_share, umap_seconds))
        store.close()
    summary(rows, budgets)
    print("\nCoverage, half the labels held out whole, 5 labels/class of the rest:")
    print(
        "| data set | source | held-out groups' images uncovered | labeled groups' images "
        "covered | UMAP fit s |"
    )
    print("|---|---|---|---|---|")
    for name, label, out_share, in_share, seconds in covers:
        print(f"| {name} | {label} | {out_share:.3f} | {in_share:.3f} | {seconds:.0f} |")


def summary(rows: dict[tuple[str, str, int], dict[str, float]], budgets: list[int]) -> None:
    """auto against the single method best on average, per budget: mean and worst gap."""
    print(
        "\n| labels/class | best single method (mean) | auto (mean) | auto - best, mean | "
        "auto - best, worst family | auto - per-family best, mean |"
    )
    print("|---|---|---|---|---|---|")
    for per_class in budgets:
        keys = [k for k in rows if k[2] == per_class]
        if not keys:
            continue
        means = {m: float(np.mean([rows[k][m] for k in keys])) for m in METHODS}
        best = max(means, key=means.get)
        gaps = [rows[k]["auto"] - rows[k][best] for k in keys]
        own = [rows[k]["auto"] - max(rows[k][m] for m in METHODS) for k in keys]
        auto = float(np.mean([rows[k]["auto"] for k in keys]))
        print(
            f"| {per_class} | {best} {means[best]:.3f} | {auto:.3f} | {np.mean(gaps):+.3f} | "
            f"{min(gaps):+.3f} | {np.mean(own):+.3f} |"
        )


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
        f"| predict auto ({len(result.estimates)} methods CV'd; picked {result.method}, accuracy {right:.3f}) | {predict_seconds:.1f} | 60 | {predict_seconds / 60:.2f} |"
    )
    print(
        f"| suggest, cold start ({cold.strategy}) | {cold_seconds:.1f} | 30 | {cold_seconds / 30:.2f} |"
    )
    print(
        f"| suggest, with labels ({warm.strategy}) | {warm_seconds:.1f} | 30 | {warm_seconds / 30:.2f} |"
    )


RULES = {
    "rule always": None,
    "1 SE, 0.01": (1.0, 0.01),
    "2 SE, 0.02": (2.0, 0.02),
    "2 SE, 0.01": (2.0, 0.01),
    "1.5 SE, 0.02": (1.5, 0.02),
}


def rules(features: Features, truth: np.ndarray, per_class: int, draws: int) -> dict[str, float]:
    """{rule: mean accuracy on the unlabeled rest of the method that rule picks}: the switch
    rules of ``estimate.switches`` compared on the same CV results and draws."""
    from sslviz.fewshot.estimate import (
        RULE,
        _paired_gain,
        candidates,
        cross_validate_many,
        switches,
    )
    from sslviz.fewshot.predictors import fit_predict

    out: dict[str, list[float]] = {name: [] for name in RULES}
    methods = candidates(features)[0]
    for d in range(draws):
        idx = draw(truth, per_class, np.random.default_rng(d))
        rest = np.setdiff1d(np.arange(len(truth)), idx)
        estimates = {
            e.method: e
            for e in cross_validate_many(
                features.vectors, idx, truth[idx], methods, features=features
            )
        }
        right = {
            m: float(
                (
                    fit_predict(features.vectors, idx, truth[idx], m, features=features).labels[
                        rest
                    ]
                    == truth[rest]
                ).mean()
            )
            for m in methods
        }
        for name, rule in RULES.items():
            best = estimates[RULE]
            for other in estimates.values():
                if rule is None or other.method == RULE:
                    continue
                gain, noise = _paired_gain(other, estimates[RULE])
                if (
                    switches(gain, noise, se=rule[0], least=rule[1])
                    and other.cv_accuracy > best.cv_accuracy
                ):
                    best = other
            out[name].append(right[best.method])
    return {name: float(np.mean(v)) for name, v in out.items()}


def compare_rules(sets: list[str], draws: int, budgets: list[int]) -> None:
    """auto's switch rules side by side (``--rules``): per family, source and budget."""
    print("| data set | source | labels/class | " + " | ".join(RULES) + " |")
    print("|---" * (len(RULES) + 3) + "|")
    means: dict[str, list[float]] = {name: [] for name in RULES}
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "home")
        for name in sets:
            folder = write_family(name, Path(tmp))
            dataset = ingest(store, [folder], name=name).dataset
            build_cache(store, dataset.id, BASELINE_SIZE, workers=1)
            for source in ("pixels", "random"):
                emb = embed(store, dataset, source)
                truth = truth_of(name, list(emb.paths))
                features = Features(np.asarray(emb.vectors), shared_scale=shared_scale(emb))
                for per_class in budgets:
                    found = rules(features, truth, per_class, draws)
                    for rule, value in found.items():
                        means[rule].append(value)
                    print(
                        f"| {name} | {source} | {per_class} | "
                        + " | ".join(f"{found[r]:.3f}" for r in RULES)
                        + " |",
                        flush=True,
                    )
        store.close()
    print("| mean | | | " + " | ".join(f"{np.mean(means[r]):.3f}" for r in RULES) + " |")


def again(n: int = 100_000, dim: int = 128, classes: int = 10, profile: bool = False) -> None:
    """``predict`` auto again after one more label on a cached embedding (issue 25), side by side
    in one run: the first prediction (nothing kept: builds the label-independent work and saves
    it beside the embedding), again in the same process (the labeling page's case: kept in
    memory), and again in a fresh Python process that reads what was saved (``sslviz predict``
    twice). Each with wall and CPU seconds (CPU ~ wall on a quiet machine) and the load average."""
    import json
    import os
    import subprocess

    from sslviz.fewshot import kept
    from sslviz.maps.embed import Embeddings

    rng = np.random.default_rng(0)
    latent = rng.normal(size=(n, 8)) + np.repeat(rng.normal(0, 3, (classes, 8)), n // classes, 0)
    vectors = (latent @ rng.normal(size=(8, dim)) + rng.normal(0, 0.5, (n, dim))).astype(np.float32)
    truth = np.repeat(np.arange(classes), n // classes).astype(str)
    paths = [f"{i:06d}.png" for i in range(n)]
    idx = draw(truth, 5, rng)
    labels = {paths[i]: truth[i] for i in idx}
    extra = np.setdiff1d(np.arange(n), idx)[:2]  # one more label: a different one per case
    more = [{**labels, paths[e]: truth[e]} for e in extra]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "home")
        file = Path(tmp) / "embedding.npy"
        np.save(file, vectors)
        emb = Embeddings(
            np.load(file, mmap_mode="r"), np.arange(n), paths, "random", "b", 1, dim, file=file
        )

        def timed(name: str, given: dict[str, str]) -> None:
            load = os.getloadavg()[0]
            wall, cpu = time.perf_counter(), time.process_time()
            result = predict_vectors(
                emb.vectors, paths, given, "auto", features=kept.kept_features(store, emb)
            )
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            rows.append((name, wall, cpu, load, result.method))

        kept.forget()
        timed("first prediction, nothing kept (builds and saves it)", labels)
        child = AGAIN_CHILD.format(root=Path(__file__).resolve().parents[1], tmp=tmp, n=n, dim=dim)
        with open(Path(tmp) / "labels.json", "w") as handle:
            json.dump(more[1], handle)
        load = os.getloadavg()[0]
        done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(done.stderr)
        found = json.loads(done.stdout.splitlines()[-1])
        rows.append(
            (
                "again, a fresh process reading what was saved (sslviz predict)",
                found["wall"],
                found["cpu"],
                load,
                found["method"],
            )
        )
        if profile:
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.enable()
        timed("again, kept in this process (the labeling page)", more[0])
        if profile:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        store.close()
    print(f"\nPredict again after one more label: {n:,} x {dim}, {len(more[0])} labels")
    print("| case | wall s | CPU s | load average | vs first (wall) | method |")
    print("|---|---|---|---|---|---|")
    for name, wall, cpu, load, method in rows:
        print(
            f"| {name} | {wall:.2f} | {cpu:.2f} | {load:.1f} | {wall / rows[0][1]:.2f} | {method} |"
        )


# The fresh process of ``again``: the embedding and its saved work read as ``sslviz predict`` reads
# them, the prediction alone timed (the interpreter's start and imports are not part of it, the
# modules predict imports on first use included: the CLI's process has those costs either way).
AGAIN_CHILD = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, "{root}")
import numpy as np
import scipy.optimize, sklearn.linear_model, sklearn.neighbors, sklearn.decomposition
from sslviz.fewshot import kept
from sslviz.fewshot.predict import predict_vectors
from sslviz.maps.embed import Embeddings
from sslviz.store import Store
tmp = Path("{tmp}")
store = Store.open(tmp / "home")
labels = json.loads((tmp / "labels.json").read_text())
paths = [f"{{i:06d}}.png" for i in range({n})]
wall, cpu = time.perf_counter(), time.process_time()
file = tmp / "embedding.npy"
emb = Embeddings(np.load(file, mmap_mode="r"), np.arange({n}), paths, "random", "b", 1, {dim},
                 file=file)
result = predict_vectors(emb.vectors, paths, labels, "auto", features=kept.kept_features(store, emb))
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({{"wall": wall, "cpu": cpu, "method": result.method}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument(
        "--budget", type=float, default=0, help="also a rotation run of this many seconds"
    )
    parser.add_argument("--sets", nargs="+", default=list(FAMILIES), choices=(*FAMILIES, *HELD_OUT))
    parser.add_argument("--budgets", nargs="+", type=int, default=list(BUDGETS))
    parser.add_argument(
        "--imbalance", type=float, default=1.0, help="smallest class / largest (1: as generated)"
    )
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--only-scale", action="store_true")
    parser.add_argument(
        "--again", action="store_true", help="only: predict again after one more label at 100k"
    )
    parser.add_argument("--again-size", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true", help="with --again: cProfile the repeat")
    parser.add_argument("--rules", action="store_true", help="only: auto's switch rules compared")
    args = parser.parse_args()
    if args.again:
        again(args.again_size, profile=args.profile)
        return
    if args.rules:
        compare_rules(args.sets, args.draws, args.budgets)
        return
    if not args.only_scale:
        quality(args.sets, args.draws, args.budget, args.budgets, args.imbalance)
    if not args.skip_scale:
        scale()


if __name__ == "__main__":
    main()
