"""Data checks on the command line: ``sslviz scores``, ``duplicates``, ``outliers``, ``changed``.

The same numbers the Explorer's "Data checks" section shows: per-image pretext scores of a run,
near-duplicates and outliers of any embedding, and how a run's neighbourhoods differ from those of
the untrained network.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import TYPE_CHECKING

from sslviz.cli.embeddings import SOURCE_HELP, _progress
from sslviz.cli.output import emit_json, output_file, say
from sslviz.core.atomic import replacing
from sslviz.core.errors import UserError

if TYPE_CHECKING:
    from sslviz.results.image_scores import ImageScores
    from sslviz.store import Store


def register(subparsers: argparse._SubParsersAction) -> None:
    scores = subparsers.add_parser(
        "scores",
        help="per-image pretext scores of a run on every image of a dataset",
        description="What a run's pretext model says about every stored image: rotation "
        "(upright, sureness, seen_turn), colorization (gain over grey in dB, psnr, psnr_grey), "
        "jigsaw (misplaced tiles of one puzzle, confidence). One batched pass on the run's "
        "device, kept in the workspace per checkpoint.",
    )
    scores.add_argument("run", type=int, metavar="RUN", help="a pretext run id (see `sslviz runs`)")
    scores.add_argument("--dataset", help="dataset name (default: the run's own)")
    scores.add_argument(
        "--sort", metavar="COLUMN", help="list the images by this column, lowest first"
    )
    scores.add_argument("--n", type=int, metavar="N", help="only the first N images (after --sort)")
    scores.add_argument("--out", metavar="FILE.csv", help="write path + every column, all images")
    scores.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    scores.set_defaults(handler=run_scores)

    duplicates = subparsers.add_parser(
        "duplicates",
        help="near-duplicate images of a dataset in an embedding (cosine above a threshold)",
        description="Pairs of images whose embeddings have a centred cosine of at least "
        "--threshold (each among the other's 10 nearest), and the groups they join into.",
    )
    duplicates.add_argument("source", metavar="{RUN|random|pixels}", help=SOURCE_HELP)
    _embedding_options(duplicates)
    duplicates.add_argument(
        "--threshold",
        type=float,
        default=None,
        metavar="T",
        help="centred cosine in [-1, 1] (default 0.98; a pair must also stand apart from the "
        "image's other neighbours); raise it to list only closer copies",
    )
    duplicates.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    duplicates.set_defaults(handler=run_duplicates)

    outliers = subparsers.add_parser(
        "outliers",
        help="the images farthest from their nearest neighbours in an embedding",
        description="Images ranked by their mean centred cosine distance to their 10 nearest "
        "neighbours, farthest first.",
    )
    outliers.add_argument("source", metavar="{RUN|random|pixels}", help=SOURCE_HELP)
    _embedding_options(outliers)
    outliers.add_argument("--n", type=int, default=20, metavar="N", help="how many (default 20)")
    outliers.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    outliers.set_defaults(handler=run_outliers)

    changed = subparsers.add_parser(
        "changed",
        help="what training changed: images whose nearest neighbours differ most from random's",
        description="Per image, the share of its 10 nearest neighbours in the run's embedding "
        "that are also among its 10 nearest in the untrained network's (same layer and "
        "pooling); lists the images with the least overlap first.",
    )
    changed.add_argument("run", metavar="RUN", help="a run id with an encoder (see `sslviz runs`)")
    changed.add_argument("--dataset", help="dataset name (default: the run's own)")
    changed.add_argument("--layer", help="encoder layer (default: the one that measured best)")
    changed.add_argument("--grid", type=int, metavar="N", help="pooling grid (as for embed)")
    changed.add_argument("--n", type=int, default=20, metavar="N", help="how many (default 20)")
    changed.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    changed.set_defaults(handler=run_changed)


def _embedding_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (see `sslviz datasets`)")
    parser.add_argument(
        "--layer",
        help="encoder layer, e.g. block2 (pixels: 8px, 16px, 32px); default: the one that "
        "measured best",
    )
    parser.add_argument("--grid", type=int, metavar="N", help="pooling grid (as for embed)")


def _dataset_of_run(store: Store, run: int | str, dataset: str | None) -> str:
    if dataset:
        return dataset
    if not str(run).isdigit():
        raise UserError("give --dataset NAME (see `sslviz datasets`)")
    return store.datasets.get(store.runs.get(int(run)).dataset_id).name


def run_scores(args: argparse.Namespace) -> int:
    from sslviz.results.image_scores import image_scores
    from sslviz.store import Store

    store = Store.open()
    out = output_file("--out", args.out, (".csv",))  # before the work, not after it
    dataset = _dataset_of_run(store, args.run, args.dataset)
    scores = image_scores(store, args.run, dataset, on_progress=_progress("scoring"))
    if args.sort and args.sort not in scores.columns:
        raise UserError(f"--sort {args.sort}: choose one of {', '.join(scores.columns)}")
    if args.n is not None and args.n < 0:
        raise UserError(f"--n {args.n}: give a count of 0 or more")
    if out:
        _write_scores_csv(out, scores)
    facts = scores.to_json()
    rows = facts["scores"]
    if args.sort:
        rows.sort(key=lambda row: row[args.sort])
    facts["scores"] = rows[: args.n] if args.n is not None else rows
    facts["means"] = {
        name: round(float(v.mean()), 4) if len(v) else None for name, v in scores.columns.items()
    }
    facts["out"] = args.out
    if args.json:
        emit_json(facts)
        return 0
    say(
        f"run {scores.run} ({scores.task}, step {scores.step}) on {scores.dataset}: "
        f"{len(scores)} images scored on {scores.device}"
    )
    names = list(scores.columns)
    print("\t".join(["path", *names]))
    for row in facts["scores"]:
        print("\t".join([row["path"], *(f"{row[n]:.4g}" for n in names)]))
    return 0


def _write_scores_csv(out: Path, scores: ImageScores) -> None:
    if out.suffix.lower() != ".csv":
        raise UserError(f"--out {out}: the table is a CSV, name it FILE.csv")
    out.parent.mkdir(parents=True, exist_ok=True)
    names = list(scores.columns)
    with replacing(out, suffix=".csv") as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", *names])
        columns = [scores.columns[n].tolist() for n in names]
        writer.writerows([p, *(f"{c[i]:.6g}" for c in columns)] for i, p in enumerate(scores.paths))


def run_duplicates(args: argparse.Namespace) -> int:
    from sslviz.maps.neighbour_checks import DEFAULT_THRESHOLD, duplicates_report, embedding_graph
    from sslviz.store import Store

    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not -1.0 <= threshold <= 1.0:
        raise UserError(f"--threshold {threshold}: a cosine is in [-1, 1], e.g. 0.95")
    store = Store.open()
    emb, graph = embedding_graph(
        store,
        args.dataset,
        args.source,
        layer=args.layer,
        grid=args.grid,
        on_progress=_progress("embedding"),
    )
    report = duplicates_report(emb, graph, args.dataset, threshold=threshold)
    if args.json:
        emit_json(report)
        return 0
    say(
        f"{len(report['pairs'])} near-duplicate pair(s) in {len(report['groups'])} group(s) "
        f"at centred cosine >= {threshold} ({report['source']}, {report['layer']})"
    )
    for number, group in enumerate(report["groups"], start=1):
        print(f"group {number}: " + "  ".join(group["paths"]))
    return 0


def run_outliers(args: argparse.Namespace) -> int:
    from sslviz.maps.neighbour_checks import embedding_graph, outliers_report
    from sslviz.store import Store

    if args.n < 0:
        raise UserError(f"--n {args.n}: give a count of 0 or more")
    store = Store.open()
    emb, graph = embedding_graph(
        store,
        args.dataset,
        args.source,
        layer=args.layer,
        grid=args.grid,
        on_progress=_progress("embedding"),
    )
    report = outliers_report(emb, graph, args.dataset, n=args.n)
    if args.json:
        emit_json(report)
        return 0
    say(
        f"the {len(report['outliers'])} image(s) farthest from their {report['k']} nearest "
        f"({report['source']}, {report['layer']}), mean centred cosine distance:"
    )
    for row in report["outliers"]:
        print(f"{row['distance']:.4f}\t{row['path']}")
    return 0


def run_changed(args: argparse.Namespace) -> int:
    from sslviz.maps.neighbour_checks import changed_graphs, changed_report
    from sslviz.store import Store

    if args.n < 0:
        raise UserError(f"--n {args.n}: give a count of 0 or more")
    store = Store.open()
    dataset = _dataset_of_run(store, args.run, args.dataset)
    graphs = changed_graphs(
        store,
        dataset,
        args.run,
        layer=args.layer,
        grid=args.grid,
        on_progress=_progress("embedding"),
    )
    report = changed_report(*graphs, dataset, n=args.n)
    if args.json:
        emit_json(report)
        return 0
    say(
        f"run {report['run']} vs random ({report['layer']}): on average "
        f"{report['mean_overlap']:.0%} of an image's {report['k']} nearest neighbours are kept; "
        "the images whose neighbourhoods changed most:"
    )
    for row in report["changed"]:
        print(f"{row['overlap']:.2f}\t{row['path']}")
    return 0
