"""``sslviz predict`` and ``sslviz suggest``: few-shot labels -> a label for every image, and
which images to label next."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sslviz.cli.output import emit_json, output_file, say
from sslviz.core.errors import UserError
from sslviz.fewshot.predictors import METHODS
from sslviz.store import Store

METHOD_CHOICES = ("auto", *METHODS)
SOURCE_HELP = "a run id (see `sslviz runs`), random (untrained encoder) or pixels"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict a label, with confidence, for every image from a few labeled ones",
        description="Fit a predictor on the labeled images' embeddings and predict all others. "
        "--method auto uses Poisson learning on neighbour graphs of all images unless "
        "cross-validation on the labels shows another method clearly better (logistic "
        "regression, the same in a UMAP of all images, or their mean), and reports that "
        "estimate, corrected for the choice, with a 95% interval; with fewer than 3 labeled "
        "images per label (median) it uses Poisson learning without choosing and reports its "
        "estimate, or says there are too few labels for one (under 10, or under 2 per label). "
        "The column covered says whether an image looks like any labeled group at all.",
    )
    parser.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
    parser.add_argument("--dataset", required=True, help="dataset name (see `sslviz datasets`)")
    parser.add_argument(
        "--labels",
        required=True,
        metavar="LABELS.csv",
        help="CSV with the header path,label (optional column suggested: true where the image "
        "came from `sslviz suggest`; the estimate then says when labels were chosen actively)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="PREDICTIONS.csv",
        help="written as path,label,confidence,labeled,covered, one row per image",
    )
    parser.add_argument("--layer", help="embedding layer (default: the one that measured best)")
    parser.add_argument("--grid", type=int, help="pooling grid of the layer (default: its own)")
    parser.add_argument(
        "--method",
        default="auto",
        choices=METHOD_CHOICES,
        help="predictor (default auto: chosen by cross-validation on the labels; the umap-* "
        "methods, self-training and ensemble fit a UMAP of all images first, cached)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run_predict)

    parser = subparsers.add_parser(
        "suggest",
        help="which images to label next",
        description="First, typical images of groups no label covers (images that look like "
        "none of the labeled groups). Then, at cold start (few labels): the most typical image "
        "of each cluster no label covers yet (TypiClust); later: the least certain images, "
        "spread over the embedding.",
    )
    parser.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
    parser.add_argument("--dataset", required=True, help="dataset name (see `sslviz datasets`)")
    parser.add_argument(
        "--labels", metavar="LABELS.csv", help="labels given so far (header path,label)"
    )
    parser.add_argument("--n", type=int, default=10, help="how many images (default 10)")
    parser.add_argument("--layer", help="embedding layer (default: the one that measured best)")
    parser.add_argument("--grid", type=int, help="pooling grid of the layer (default: its own)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run_suggest)


def run_predict(args: argparse.Namespace) -> int:
    from sslviz.fewshot.labels_csv import (
        normalise_path,
        read_labels_csv,
        suggested_in_labels_csv,
        write_predictions_csv,
    )
    from sslviz.fewshot.predict import predict
    from sslviz.maps.embed import embed, parse_source

    out = output_file("--out", args.out)
    if not out.parent.is_dir():
        raise UserError(f"--out {args.out}: the folder {out.parent} does not exist")
    store = Store.open()
    source = parse_source(args.source)
    labels = read_labels_csv(store, args.dataset, args.labels)  # all checks before any work
    marked = suggested_in_labels_csv(Path(args.labels).read_bytes(), args.labels)
    suggested = None if marked is None else {p for p in labels if normalise_path(p) in marked}
    emb = embed(store, args.dataset, source, layer=args.layer, grid=args.grid)
    result = predict(
        store, args.dataset, source, labels, args.method, embeddings=emb, suggested=suggested
    )
    write_predictions_csv(
        out,
        result.paths,
        result.prediction.labels,
        result.prediction.confidence,
        result.labels,
        result.covered,
    )
    if args.json:
        emit_json({**result.to_json(), "out": str(out)})
        return 0
    estimate = result.estimate
    if estimate.too_few:
        say(f"{estimate.reason}")
        quality = "no estimate"
    else:
        low, high = estimate.cv_interval
        quality = (
            f"CV accuracy {estimate.cv_accuracy:.3f} [{low:.3f}, {high:.3f}] "
            f"(always the most common label: {estimate.majority_rate:.3f})"
        )
    covered = result.coverage
    print(
        f"{result.method}: {quality} on {int(result.labeled.sum())} labeled images "
        f"(it speaks for the {int(covered.covered.sum()):,} covered images); "
        f"{int((~result.labeled).sum())} predicted -> {out}"
    )
    if estimate.actively_chosen:
        say(f"note: {result.to_json()['estimate_note']}")
    if covered.warning():
        say(f"warning: {covered.warning()}")
    return 0


def run_suggest(args: argparse.Namespace) -> int:
    from sslviz.fewshot.labels_csv import read_labels_csv
    from sslviz.fewshot.suggest import suggest
    from sslviz.maps.embed import embed, parse_source

    if args.n < 1:
        raise UserError(f"--n {args.n}: ask for at least 1 image")
    store = Store.open()
    source = parse_source(args.source)
    labels = read_labels_csv(store, args.dataset, args.labels, min_classes=1) if args.labels else {}
    emb = embed(store, args.dataset, source, layer=args.layer, grid=args.grid)
    position = {p: i for i, p in enumerate(emb.paths)}
    labeled_idx = np.array([position[p] for p in labels], dtype=np.int64)
    picked = suggest(emb.vectors, labeled_idx, list(labels.values()), n=args.n)
    images = [emb.paths[i] for i in picked.indices]
    if args.json:
        emit_json(
            {
                "images": images,
                "strategy": picked.strategy,
                "labeled": len(labels),
                "uncovered_first": picked.uncovered_first,
            }
        )
        return 0
    say(f"{picked.strategy}: label these next")
    for path in images:
        print(path)
    return 0
