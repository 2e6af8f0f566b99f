"""``sslviz features`` (what each channel responds to) and ``sslviz upright`` (images a rotation
model is sure are stored turned): looking into a run's network, on the command line."""

from __future__ import annotations

import argparse
from pathlib import Path

from sslviz.cli.output import emit_json, output_file, say
from sslviz.core.errors import UserError
from sslviz.store import Store

DEFAULT_CHANNELS = 16
DEFAULT_TOP = 9


def register(subparsers: argparse._SubParsersAction) -> None:
    features = subparsers.add_parser(
        "features",
        help="each channel's strongest images from a dataset (most selective channels first)",
        description="One batched pass over the dataset at LAYER (cached per checkpoint) finds, "
        "for every channel, the images whose strongest spot excites it most; `box` is that "
        "spot's receptive field in the stored image's pixels.",
    )
    features.add_argument(
        "run", metavar="RUN", help="run id (see `sslviz runs`), or random for the untrained network"
    )
    features.add_argument("--dataset", required=True, help="dataset name (see `sslviz datasets`)")
    features.add_argument(
        "--layer", help="encoder layer, e.g. block1, block2, block3 (default: the deepest)"
    )
    features.add_argument(
        "--channels",
        type=int,
        default=DEFAULT_CHANNELS,
        metavar="K",
        help=f"how many channels to list, most selective first (default {DEFAULT_CHANNELS})",
    )
    features.add_argument(
        "--top",
        type=int,
        default=DEFAULT_TOP,
        metavar="N",
        help=f"images per channel, strongest first (default {DEFAULT_TOP})",
    )
    features.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    features.set_defaults(handler=features_run)

    upright = subparsers.add_parser(
        "upright",
        help="images a rotation run is confident are stored turned, with the turn that fixes them",
    )
    upright.add_argument("run", type=int, metavar="RUN", help="a rotation run's id")
    upright.add_argument("--dataset", required=True, help="dataset name (see `sslviz datasets`)")
    upright.add_argument(
        "--min-confidence",
        type=float,
        metavar="P",
        help="list an image when the model is at least this sure it is turned (default 0.8; "
        "lower finds more but lets in symmetric shapes, which have no up)",
    )
    upright.add_argument(
        "--out", metavar="FILE.csv", help="write path,rotate_by,confidence for the listed images"
    )
    upright.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    upright.set_defaults(handler=upright_run)


def features_run(args: argparse.Namespace) -> int:
    if args.channels < 1 or args.top < 1:
        raise UserError("--channels and --top count channels and images: give at least 1")
    from sslviz.api import channel_features

    store = Store.open()
    index = channel_features(store, args.dataset, args.run, layer=args.layer)
    run = int(args.run) if str(args.run).isdigit() else str(args.run)
    result = index.to_json(channels=args.channels, top=args.top, run=run)
    if args.json:
        emit_json({**result, "seconds": index.seconds, "images": len(index.images)})
        return 0
    print(
        f"{args.run} on {index.dataset}, layer {index.layer}: {index.channels} channels over "
        f"{len(index.images):,} images (receptive field {index.geometry.size} px of "
        f"{index.geometry.input_side})"
    )
    for channel in result["channels"]:
        best = channel["images"][0]
        print(
            f"channel {channel['channel']:>4}  selectivity {channel['selectivity']:6.2f}  "
            f"top: {best['path']} ({best['activation']:.3f}) box {best['box']}"
        )
    return 0


def upright_run(args: argparse.Namespace) -> int:
    if args.out and Path(args.out).suffix.lower() != ".csv":
        raise UserError(f"--out {args.out}: the list is a CSV file, name it FILE.csv")
    output_file("--out", args.out)
    from sslviz.core.atomic import write_text
    from sslviz.results.upright import DEFAULT_MIN_CONFIDENCE, upright_check

    store = Store.open()
    threshold = DEFAULT_MIN_CONFIDENCE if args.min_confidence is None else args.min_confidence
    check = upright_check(
        store, args.run, store.datasets.ready(args.dataset), min_confidence=threshold
    )
    if args.out:
        write_text(Path(args.out), check.to_csv())
    if args.json:
        emit_json({**check.to_json(), "out": args.out})
        return 0
    print(
        f"run {check.run} on {check.dataset}: {len(check.turned):,} of {check.checked:,} images "
        f"look stored turned (confidence >= {threshold:g})"
    )
    for t in check.turned:
        print(f"{t.path}\trotate {t.rotate_by}° counter-clockwise\t{t.confidence:.3f}")
    if args.out:
        say(f"wrote {args.out}")
    return 0
