"""Few-shot quality of every source, of fine-tuning (supervised and semi-supervised), and the
leaderboard's cost, on digits and on the demo set.

For each data set: one run of each pretext task (``--tasks``) with the same time budget, then over
>= 5 random draws of ``--per-class`` labels per class, the accuracy on the unlabeled rest (images
whose labels chose nothing and trained nothing: untouched) of
  - pixels, random (baselines), each task's run: frozen embedding at its default layer with its
    default pooling and with the other one (the leaderboard's two rows of a run), with the
    predictor the leaderboard picks for it (``estimate.choose``, as `sslviz leaderboard`);
  - fine-tunes of the best run (by the mean over draws of its frozen accuracy), default settings:
    supervised, and semi-supervised (FixMatch, ``--semi-supervised``). Each is compared with the
    same run frozen on the same draw (paired), and its own reported ``holdout_accuracy`` (on the
    labels it left untouched) is set beside the truth on the rest: an honest estimate is not
    higher on average.
Fine-tunes run a fixed number of steps (the default schedule), so their quality does not depend
on how busy the machine is; their wall time does.
Also: whether the leaderboard's top row (by cross-validation on the labels only) is the row that
scores best on the rest, and the leaderboard's time on the first draw's labels cold, then again
with one more label (both in this process: imports are paid before either).
Digits: scikit-learn's 1,797 8 px digits upscaled to 32 px; demo: ``assets/demo`` (labels = the
photo each crop came from); shapes, letters, textures (``fewshot_sets.py``) and icons
(``icon_sets.py``, 9 semantic groups of colour icons), clipart (``clipart_sets.py``, colour emoji
in 10 semantic groups): generated, labels = the folder.

    python benchmarks/leaderboard.py [--budget 60 | --epochs N | --steps N [--batch-size B]]
        [--draws 5] [--datasets digits demo] [--tasks rotation multi] [--threads 1] [--only-timing]
        [--images-per-class N] [--no-finetune]

``--steps``: every task trains the same number of optimizer steps (multi costs ~1.6x rotation's
per step; the seconds per step are printed); ``--no-finetune``: frozen sources only, and a table
of the families (pixels, random, each task, best trained - best baseline) at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clipart_sets import write_clipart  # noqa: E402
from digits_rotation import write_digits  # noqa: E402
from fewshot_sets import write_family  # noqa: E402
from icon_sets import write_icons  # noqa: E402

from sslviz.data import ingest  # noqa: E402
from sslviz.data.demo import DEMO_DIR  # noqa: E402
from sslviz.fewshot.estimate import RULE, choose  # noqa: E402
from sslviz.fewshot.finetune import FineTuneConfig, finetune_result, submit_finetune  # noqa: E402
from sslviz.fewshot.finetune_data import read_predictions  # noqa: E402
from sslviz.fewshot.leaderboard import OTHER_POOLING, leaderboard  # noqa: E402
from sslviz.fewshot.predictors import Features, fit_predict  # noqa: E402
from sslviz.maps.embed import default_layer, embed  # noqa: E402
from sslviz.runner.execute import execute  # noqa: E402
from sslviz.store import Store  # noqa: E402
from sslviz.training.config import default_config, split_sizes  # noqa: E402
from sslviz.training.train import create_run  # noqa: E402

TASKS = ("rotation", "colorization", "jigsaw", "multi")


def draw(truth: dict[str, str], per_class: int, seed: int) -> dict[str, str]:
    rng = np.random.default_rng(seed)
    out = {}
    for label in sorted(set(truth.values())):
        paths = sorted(p for p, v in truth.items() if v == label)
        for i in rng.choice(len(paths), per_class, replace=False):
            out[paths[i]] = label
    return out


def frozen_accuracy(
    vectors: np.ndarray,
    paths: list[str],
    truth: dict[str, str],
    labels: dict[str, str],
    shared_scale: bool = False,
    by_cv: bool = True,
) -> tuple[float, str, float | None]:
    """(accuracy on the unlabeled rest, the method choose() picked, its CV estimate);
    ``shared_scale`` for pixels (``geometry.shared_scale``); ``by_cv=False``: auto's rule
    without CV (a fine-tune's encoder, as the leaderboard scores it)."""
    row = {p: i for i, p in enumerate(paths)}
    labeled = sorted(labels)
    idx = np.array([row[p] for p in labeled])
    y = [labels[p] for p in labeled]
    features = Features(vectors, shared_scale=shared_scale)
    if by_cv:
        choice = choose(vectors, idx, y, features=features)
        method, estimate = choice.method, choice.estimate.cv_accuracy
    else:
        method, estimate = RULE, None
    prediction = fit_predict(vectors, idx, y, method, features=features)
    rest = [i for i, p in enumerate(paths) if p not in labels]
    right = np.mean([prediction.labels[i] == truth[paths[i]] for i in rest])
    return float(right), method, estimate


def fine_tuned_accuracy(
    store: Store,
    parent: int,
    labels: dict[str, str],
    paths: list[str],
    truth: dict[str, str],
    semi: bool,
) -> tuple[float, float | None, float, float]:
    """(accuracy on the unlabeled rest, the run's own holdout_accuracy, wall seconds, accuracy
    on the rest of the fine-tuned encoder's embedding with auto's rule, as the leaderboard)."""
    config = FineTuneConfig(semi_supervised=semi)
    run = submit_finetune(store, parent, labels, config=config, device="auto", background=False)
    start = time.perf_counter()
    run = execute(store, run.id)
    seconds = time.perf_counter() - start
    assert run.status == "finished", run.error
    _, probabilities, classes = read_predictions(store.workspace.run_dir(run.id))
    predicted = [classes[k] for k in probabilities.argmax(1)]
    rest = [i for i, p in enumerate(paths) if p not in labels]
    accuracy = float(np.mean([predicted[i] == truth[paths[i]] for i in rest]))
    reported = finetune_result(store, run.id)["holdout_accuracy"]
    tuned = embed(store, store.datasets.get(run.dataset_id), str(run.id), **_layer(run))
    embedded, method, _ = frozen_accuracy(
        np.asarray(tuned.vectors), paths, truth, labels, by_cv=False
    )
    print(
        f"  fine-tune run {run.id} ({'FixMatch' if semi else 'supervised'}): {run.step} steps, "
        f"{seconds:.0f} s wall, rest {accuracy:.3f}, reported {reported}, its embedding + "
        f"{method} {embedded:.3f}",
        flush=True,
    )
    return accuracy, reported, seconds, embedded


def _layer(run) -> dict[str, object]:
    return {"layer": run.config.get("layer"), "grid": run.config.get("grid")}


def leaderboard_times(
    store: Store, name: str, labels: dict[str, str], truth: dict[str, str]
) -> tuple[float, float, int]:
    """Seconds for the leaderboard cold, and again with one more label; rows in the table."""
    start = time.perf_counter()
    board = leaderboard(store, name, labels, background=False)
    cold = time.perf_counter() - start
    extra = next(p for p in sorted(truth) if p not in labels)
    start = time.perf_counter()
    leaderboard(store, name, {**labels, extra: truth[extra]}, background=False)
    return cold, time.perf_counter() - start, len(board.rows)


def bench(store: Store, name: str, truth: dict[str, str], args: argparse.Namespace) -> None:
    dataset = store.datasets.get_by_name(name)
    print(f"\n## {name}: {dataset.n_images} images, {len(set(truth.values()))} classes", flush=True)
    sources: dict[str, str] = {"pixels": "pixels", "random": "random"}
    seconds: dict[str, float] = {}  # wall seconds per step of each task's run
    for task in args.tasks:
        if args.steps:  # equal optimizer steps for every task, however busy the machine
            config = default_config(dataset, task)
            config = config.replace(batch_size=args.batch_size or config.batch_size)
            per_epoch = max(
                1, split_sizes(dataset.n_images, config.holdout)[0] // config.batch_size
            )
            epochs = max(1, round(args.steps / per_epoch))
            config = config.replace(
                epochs=epochs, warmup_epochs=min(1.0, epochs / 10), device="cpu"
            )
        elif args.epochs:  # a fixed amount of training: the same model however busy the machine
            config = default_config(dataset, task).replace(epochs=args.epochs, device="cpu")
        else:
            config = default_config(dataset, task).replace(
                epochs=1000, time_budget=args.budget, device="cpu"
            )
        start = time.perf_counter()
        run = execute(store, create_run(store, config).id)
        print(
            f"  trained {task} run {run.id}: {run.step} steps, "
            f"{time.perf_counter() - start:.0f} s wall",
            flush=True,
        )
        sources[task] = str(run.id)
        seconds[task] = (time.perf_counter() - start) / max(1, run.step)
    paths = [image.path for image in store.datasets.images(dataset.id)]
    draws = [draw(truth, args.per_class, seed) for seed in range(args.draws)]
    if not args.no_finetune:
        cold, warm, n_rows = leaderboard_times(store, name, draws[0], truth)
    if args.only_timing:
        print(
            f"leaderboard ({n_rows} rows, {len(draws[0])} labels): cold {cold:.2f} s, one more "
            f"label {warm:.2f} s = {warm / cold:.2f}x",
            flush=True,
        )
        return
    vectors = {k: np.asarray(embed(store, dataset, s).vectors) for k, s in sources.items()}
    for task in args.tasks:  # the leaderboard's second row of a run: its other pooling
        layer, grid = default_layer(store, sources[task])
        other = OTHER_POOLING.get(grid, 1)
        tuned = embed(store, dataset, sources[task], layer=layer, grid=other)
        vectors[f"{task} ({layer} {'global' if other == 1 else f'{other}x{other}'})"] = np.asarray(
            tuned.vectors
        )

    scores: dict[str, list[float]] = {k: [] for k in vectors}
    methods: dict[str, list[str]] = {k: [] for k in vectors}
    top_right = 0
    for labels in draws:
        cv = {}
        for key in vectors:
            accuracy, method, estimate = frozen_accuracy(
                vectors[key], paths, truth, labels, shared_scale=key == "pixels"
            )
            scores[key].append(accuracy)
            methods[key].append(method)
            cv[key] = estimate or 0.0
        top_right += max(cv, key=cv.get) == max(vectors, key=lambda k: scores[k][-1])

    best_task = max(args.tasks, key=lambda k: np.mean(scores[k]))
    SUMMARY[name] = _summary(scores, args.tasks, seconds)
    if args.no_finetune:
        _print_sources(scores, methods, args.draws)
        return
    tuned: dict[str, list[tuple[float, float | None, float, float]]] = {
        "supervised": [],
        "FixMatch": [],
    }
    for labels in draws:
        for mode in tuned:
            tuned[mode].append(
                fine_tuned_accuracy(
                    store, int(sources[best_task]), labels, paths, truth, mode == "FixMatch"
                )
            )

    print(f"\n| source | accuracy on the rest (mean ± sd over {args.draws} draws) | predictor |")
    print("|---|---|---|")
    for key in vectors:
        used = max(set(methods[key]), key=methods[key].count)
        print(f"| {key} | {np.mean(scores[key]):.3f} ± {np.std(scores[key]):.3f} | {used} |")
    frozen = scores[best_task]
    for mode, results in tuned.items():
        rest = [r[0] for r in results]
        print(
            f"| {best_task} fine-tuned, {mode} | {np.mean(rest):.3f} ± {np.std(rest):.3f} | "
            "fine-tuned head |"
        )
        embedded = [r[3] for r in results]
        print(
            f"| {best_task} fine-tuned, {mode}, its encoder | {np.mean(embedded):.3f} ± "
            f"{np.std(embedded):.3f} | auto's rule |"
        )
    best_learned = max(np.mean(v) for k, v in scores.items() if k not in ("pixels", "random"))
    best_base = max(np.mean(scores["pixels"]), np.mean(scores["random"]))
    print(
        f"\nbest learned / best baseline: {best_learned:.3f} / {best_base:.3f} = "
        f"{best_learned / best_base:.3f}"
    )
    for mode, results in tuned.items():
        rest = [r[0] for r in results]
        wins = sum(t > s for t, s in zip(rest, frozen, strict=True))
        reported = [r[1] for r in results if r[1] is not None]
        print(
            f"fine-tuned {mode} / the same run frozen ({best_task}), on the untouched rest: "
            f"{np.mean(rest):.3f} / {np.mean(frozen):.3f} = {np.mean(rest) / np.mean(frozen):.3f}"
            f" (paired wins {wins}/{args.draws}); its embedding with auto's rule "
            f"{np.mean([r[3] for r in results]) / np.mean(frozen):.3f}x frozen; "
            f"its reported holdout_accuracy "
            f"{np.mean(reported):.3f} vs the truth on the rest {np.mean(rest):.3f}; "
            f"{np.mean([r[2] for r in results]):.0f} s wall each"
        )
    print(
        f"leaderboard's top row (by CV on the labels) was the best on the rest in "
        f"{top_right}/{args.draws} draws",
        flush=True,
    )
    print(
        f"leaderboard ({n_rows} rows, {len(draws[0])} labels): cold {cold:.2f} s, one more "
        f"label {warm:.2f} s = {warm / cold:.2f}x",
        flush=True,
    )


SUMMARY: dict[str, dict[str, float]] = {}  # family -> column -> mean accuracy over the draws


def _summary(
    scores: dict[str, list[float]], tasks: list[str], seconds: dict[str, float]
) -> dict[str, float]:
    """A family's row: each baseline, each task at the better of its two rows (the leaderboard
    offers both), the best of each, and each task's seconds per step."""
    row = {k: float(np.mean(scores[k])) for k in ("pixels", "random")}
    for task in tasks:
        row[task] = max(float(np.mean(v)) for k, v in scores.items() if k.split(" ")[0] == task)
        row[f"{task} s/step"] = seconds[task]
    row["baseline"] = max(row["pixels"], row["random"])
    row["trained"] = max(row[t] for t in tasks)
    return row


def _print_sources(
    scores: dict[str, list[float]], methods: dict[str, list[str]], draws: int
) -> None:
    print(f"\n| source | accuracy on the rest (mean ± sd over {draws} draws) | predictor |")
    print("|---|---|---|")
    for key in scores:
        used = max(set(methods[key]), key=methods[key].count)
        print(f"| {key} | {np.mean(scores[key]):.3f} ± {np.std(scores[key]):.3f} | {used} |")


def print_summary(tasks: list[str]) -> None:
    """One row per family: the best free baseline, each task, and best trained − baseline."""
    print(
        "\n| family | pixels | random | " + " | ".join(tasks) + " | best trained − best baseline |"
    )
    print("|---" * (len(tasks) + 4) + "|")
    for name, row in SUMMARY.items():
        cells = " | ".join(f"{row[t]:.3f}" for t in tasks)
        print(
            f"| {name} | {row['pixels']:.3f} | {row['random']:.3f} | {cells} | "
            f"{row['trained'] - row['baseline']:+.3f} |"
        )
    means = " | ".join(f"{np.mean([r[t] for r in SUMMARY.values()]):.3f}" for t in tasks)
    print(f"| mean | | | {means} | |")
    costs = ", ".join(
        f"{t} {np.mean([r[f'{t} s/step'] for r in SUMMARY.values()]):.2f}" for t in tasks
    )
    print(f"wall seconds per step (mean over families, this machine's load): {costs}")


def thin(folder: Path, truth: dict[str, str], per_class: int) -> dict[str, str]:
    """Delete all but the first ``per_class`` images of each label under ``folder``."""
    kept: dict[str, str] = {}
    counts: dict[str, int] = {}
    for path in sorted(truth):
        label = truth[path]
        counts[label] = counts.get(label, 0) + 1
        if counts[label] <= per_class:
            kept[path] = label
        else:
            (folder / path).unlink()
    return kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of training per task")
    parser.add_argument("--epochs", type=int, help="train this many epochs instead of --budget")
    parser.add_argument("--steps", type=int, help="train this many steps (every task alike)")
    parser.add_argument("--batch-size", type=int, help="with --steps: images per step")
    parser.add_argument(
        "--images-per-class", type=int, help="keep this many images of each class (not the demo)"
    )
    parser.add_argument(
        "--no-finetune", action="store_true", help="frozen sources only, and a table per family"
    )
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=5)
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["digits", "demo"],
        choices=["digits", "demo", "shapes", "letters", "textures", "icons", "clipart"],
    )
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    parser.add_argument(
        "--only-timing", action="store_true", help="the leaderboard's times only (no draws)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "home")
        for name in args.datasets:
            if name == "digits":
                target = write_digits(Path(tmp) / "digits")
                truth = {f"{i:04d}.png": str(t) for i, t in enumerate(target)}
                if args.images_per_class:
                    truth = thin(Path(tmp) / "digits", truth, args.images_per_class)
                ingest(store, [Path(tmp) / "digits"], name="digits")
            else:  # the demo, a generated family (fewshot_sets.py) or icons: label = folder
                if name == "demo":
                    folder = DEMO_DIR
                elif name == "icons":
                    folder = write_icons(Path(tmp) / "icons", args.images_per_class or 100)
                elif name == "clipart":
                    folder = write_clipart(Path(tmp) / "clipart")
                else:
                    folder = write_family(name, Path(tmp))
                if args.images_per_class and name != "demo":
                    thin(
                        folder,
                        {str(p.relative_to(folder)): p.parent.name for p in folder.rglob("*.png")},
                        args.images_per_class,
                    )
                ingest(store, [folder], name=name)
                images = store.datasets.images(store.datasets.get_by_name(name).id)
                truth = {image.path: image.path.split("/")[0] for image in images}
            bench(store, name, truth, args)
        store.close()
    if SUMMARY:
        print_summary(args.tasks)
    print(f"load average at end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
