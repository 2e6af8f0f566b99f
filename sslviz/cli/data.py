"""``sslviz ingest``, ``sslviz datasets`` and ``sslviz delete-dataset``."""

from __future__ import annotations

import argparse
import sys
import time

from sslviz.cli.output import ProgressBar, emit_json, say
from sslviz.store import Dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="bring a folder, a .zip or image files in as a dataset",
        description="Validate every file by decoding it, store the images (converted on read to "
        "RGB), and list each rejected file with its reason. Identical files are stored once.",
    )
    parser.add_argument(
        "sources", nargs="+", metavar="SOURCE", help="a folder (recursive), a .zip or image files"
    )
    parser.add_argument(
        "--name", help="dataset name (default: the folder's name or the zip's stem)"
    )
    parser.add_argument("--workers", type=int, help="decoding processes (default: one per core)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run_ingest)

    parser = subparsers.add_parser("datasets", help="list datasets")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run_datasets)

    parser = subparsers.add_parser(
        "delete-dataset", help="delete a dataset with its files and its runs"
    )
    parser.add_argument("name", metavar="NAME", help="the dataset's name (see `sslviz datasets`)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run_delete)


def run_ingest(args: argparse.Namespace) -> int:
    from sslviz.data import ingest
    from sslviz.store import Store

    store = Store.open()
    bar: ProgressBar | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if not sys.stderr.isatty():  # a log file gets the summary, not hundreds of redraws
            return
        if bar is None:
            bar = ProgressBar(total, "decoding")
        bar.update(done)

    try:
        report = ingest(store, args.sources, args.name, progress=progress, workers=args.workers)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        emit_json(report.to_json())
        return 0
    dataset = report.dataset
    say(
        f"dataset {dataset.name!r}: {report.accepted} images ({dataset.bytes / 1024**2:.1f} MB), "
        f"{len(report.rejected)} rejected, {report.duplicates} duplicates, "
        f"{report.seconds:.1f} s"
    )
    for rejection in report.rejected:
        say(f"  rejected {rejection.path}: {rejection.reason}")
    for duplicate in report.duplicate_files:
        say(f"  duplicate {duplicate.path} = {duplicate.duplicate_of}")
    return 0


def run_datasets(args: argparse.Namespace) -> int:
    from sslviz.store import Store

    datasets = Store.open().datasets.list()
    if args.json:
        emit_json({"datasets": [_as_json(d) for d in datasets]})
        return 0
    if not datasets:
        say("no datasets yet: run `sslviz ingest FOLDER`")
        return 0
    print(f"{'name':24} {'images':>7} {'rejected':>8} {'dups':>5} {'MB':>8}  created")
    for d in datasets:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(d.created_at))
        status = "" if d.status == "ready" else f"  [{d.status}]"
        print(
            f"{d.name:24} {d.n_images:7d} {d.n_rejected:8d} {d.n_duplicates:5d} "
            f"{d.bytes / 1024**2:8.1f}  {created}{status}"
        )
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from sslviz.data import delete_dataset
    from sslviz.store import Store

    store = Store.open()
    dataset = store.datasets.get_by_name(args.name)
    delete_dataset(store, dataset.id)
    if args.json:
        emit_json({"deleted": dataset.name})
    else:
        say(f"deleted dataset {dataset.name!r}")
    return 0


def _as_json(d: Dataset) -> dict[str, object]:
    return {
        "name": d.name,
        "id": d.id,
        "status": d.status,
        "images": d.n_images,
        "rejected": d.n_rejected,
        "duplicates": d.n_duplicates,
        "bytes": d.bytes,
        "source": d.source,
        "created_at": d.created_at,
    }
