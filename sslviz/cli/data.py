"""``sslviz ingest``, ``sslviz datasets``, ``sslviz reingest`` and ``sslviz delete-dataset``.

``sslviz ingest --background`` hands the ingest to the job runner (kind ``ingest``) and returns at
once; ``sslviz status/cancel/resume RUN`` work on it. An ingest that was killed (SIGKILL, a crash)
or cancelled shows as ``interrupted`` in ``sslviz datasets`` and keeps what it recorded;
``sslviz reingest NAME`` (or ``sslviz resume RUN`` for a job) finishes it from its recorded source,
and ``sslviz ingest SOURCE --name NAME`` under the same name starts over, replacing it.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sslviz.cli.output import ProgressBar, emit_json, say
from sslviz.store import Dataset


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ingest",
        help="bring a folder, a .zip or image files in as a dataset",
        description="Validate every file by decoding it, store the images (converted on read to "
        "RGB), and list each rejected file with its reason. Identical files are stored once. "
        "An interrupted dataset of the same name (see `sslviz datasets`) is replaced.",
    )
    parser.add_argument(
        "sources", nargs="+", metavar="SOURCE", help="a folder (recursive), a .zip or image files"
    )
    parser.add_argument(
        "--name", help="dataset name (default: the folder's name or the zip's stem)"
    )
    parser.add_argument("--workers", type=int, help="decoding processes (default: one per core)")
    parser.add_argument(
        "--background",
        action="store_true",
        help="hand it to the job runner and return at once (follow it with `sslviz status RUN`)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run_ingest)

    parser = subparsers.add_parser("datasets", help="list datasets")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run_datasets)

    parser = subparsers.add_parser(
        "reingest",
        help="finish an interrupted ingest from its recorded source",
        description="Finish a dataset whose ingest was interrupted (killed, crashed, cancelled): "
        "the files it has not recorded yet are read from the folder, zip or files it was read "
        "from (or from its staged upload). An upload whose staged copy is gone can't be re-read: "
        "upload it again under the same name.",
    )
    parser.add_argument("name", metavar="NAME", help="the dataset's name (see `sslviz datasets`)")
    parser.add_argument("--workers", type=int, help="decoding processes (default: one per core)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run_reingest)

    parser = subparsers.add_parser(
        "delete-dataset", help="delete a dataset with its files and its runs"
    )
    parser.add_argument("name", metavar="NAME", help="the dataset's name (see `sslviz datasets`)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.set_defaults(handler=run_delete)


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None]]:
    """An ingest's ``progress(done, total)`` drawing a bar on stderr (if it is a terminal)."""
    bar: ProgressBar | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = ProgressBar(total, "decoding", unit="file")
        bar.update(done)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()


def run_ingest(args: argparse.Namespace) -> int:
    from sslviz.data import ingest
    from sslviz.store import Store

    store = Store.open()
    if args.background:
        return _submit(store, args)
    with _progress() as progress:
        report = ingest(store, args.sources, args.name, progress=progress, workers=args.workers)
    return _report(report, args)


def _submit(store: Any, args: argparse.Namespace) -> int:
    from sslviz.api import submit_ingest

    run = submit_ingest(store, args.sources, args.name, workers=args.workers)
    dataset = store.datasets.get(run.dataset_id).name
    if args.json:
        emit_json({"dataset": dataset, "run": run.id, "status": run.status})
    else:
        print(run.id)
        say(f"ingest of {dataset!r} is run {run.id} ({run.status}): `sslviz status {run.id}`")
    return 0


def run_reingest(args: argparse.Namespace) -> int:
    from sslviz.data import reingest
    from sslviz.store import Store

    store = Store.open()
    with _progress() as progress:
        report = reingest(store, args.name, progress=progress, workers=args.workers)
    return _report(report, args)


def _report(report: Any, args: argparse.Namespace) -> int:
    if args.json:
        emit_json(report.to_json())
        return 0
    dataset = report.dataset
    if report.replaced is not None:
        say(f"replaced the interrupted dataset {dataset.name!r}")
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
    from sslviz.data import reap_ingests
    from sslviz.runner import jobs
    from sslviz.store import Store

    store = Store.open()
    jobs.reap(store)  # an ingest job whose worker was killed: its run ends interrupted first
    reap_ingests(store)  # an ingest killed midway shows as interrupted, not as ingesting forever
    datasets = store.datasets.list()
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
    _explain_unfinished(store, datasets)
    return 0


def _explain_unfinished(store: Any, datasets: list[Dataset]) -> None:
    """Under the table, on stderr: what happened to each unfinished dataset and what to do."""
    from sslviz.data import ingester, retry_hint

    for d in datasets:
        if d.status in ("interrupted", "failed"):
            say(f"{d.name}: {d.status}: {d.error or 'the ingest did not finish'}; {retry_hint(d)}")
        elif d.status == "ingesting":
            age = (
                f", last progress {time.time() - d.heartbeat_at:.0f} s ago"
                if d.heartbeat_at
                else ""
            )
            say(f"{d.name}: being ingested by {ingester(store, d)}{age}")


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
        "error": d.error,
        "pid": d.pid if d.status == "ingesting" else None,
        "heartbeat_at": d.heartbeat_at,
    }
