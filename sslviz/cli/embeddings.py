"""``sslviz embed`` and ``sslviz project``: embeddings of a dataset and their UMAP map, as files.

With ``--background`` either submits the embedding job of the map (kind ``embedding``, the one
job runner: ``sslviz status/cancel/resume`` follow it) and returns; the result stays in the
workspace, so the same command with ``--out`` afterwards only writes the file.

Rows are in the dataset's image order (by path); .csv and .parquet files carry a ``path`` column.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sslviz.cli.output import ProgressBar, emit_json, output_file, say
from sslviz.core.atomic import replacing
from sslviz.core.errors import UserError

EMBED_FORMATS = (".npy", ".csv", ".parquet")
SOURCE_HELP = "a run id (see `sslviz runs`), random (untrained encoder) or pixels (raw pixels)"


def register(subparsers: argparse._SubParsersAction) -> None:
    embed = subparsers.add_parser(
        "embed",
        help="embeddings of every image of a dataset, from a run's encoder or a baseline",
        description="Embeddings of every image of a dataset, rows in the dataset's path order. "
        "Computed once and kept in the workspace; later calls only write the file.",
    )
    embed.add_argument("source", metavar="{RUN|random|pixels}", help=SOURCE_HELP)
    _common(embed)
    embed.add_argument(
        "--grid",
        type=int,
        metavar="N",
        help="average the layer's map over N x N cells (1 = global pooling: each channel's "
        "average and maximum; default: the layer and pooling that measured best)",
    )
    embed.add_argument(
        "--out",
        metavar="FILE",
        help="FILE.npy, FILE.csv or FILE.parquet (optional with --background)",
    )
    _background(embed, "the embeddings (and their default map)")
    embed.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    embed.set_defaults(handler=run_embed)

    project = subparsers.add_parser(
        "project",
        help="a UMAP map of a dataset's embeddings: path,x,y per image",
        description="A UMAP map (PCA to 50 dims, then UMAP, seed 0) of every image's embedding, "
        "rows in the dataset's path order. Computed once and kept in the workspace.",
    )
    project.add_argument("source", metavar="{RUN|random|pixels}", help=SOURCE_HELP)
    _common(project)
    project.add_argument(
        "--grid", type=int, metavar="N", help="pooling grid of the embedding (as for embed)"
    )
    project.add_argument(
        "--neighbors",
        type=int,
        default=15,
        metavar="N",
        help="UMAP n_neighbors (default 15): larger keeps more global structure",
    )
    project.add_argument(
        "--min-dist",
        type=float,
        default=0.1,
        metavar="X",
        help="UMAP min_dist in [0, 1] (default 0.1): lower packs clusters tighter",
    )
    project.add_argument(
        "--metric",
        default="cosine",
        metavar="M",
        help="distance between embeddings: cosine (default), euclidean, manhattan, correlation",
    )
    project.add_argument(
        "--dims", type=int, default=2, choices=(2, 3), help="2 (default) or 3 (adds a z column)"
    )
    project.add_argument(
        "--out", metavar="FILE.csv", help="path,x,y[,z] per image (optional with --background)"
    )
    _background(project, "the embeddings and this map")
    project.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    project.set_defaults(handler=run_project)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, help="dataset name (see `sslviz datasets`)")
    parser.add_argument(
        "--layer",
        help="encoder layer, e.g. block2 or block3 (pixels: 8px, 16px, 32px); "
        "default: the one that measured best",
    )


def _background(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--background",
        action="store_true",
        help=f"compute {what} as a background job and return at once; follow it with "
        "`sslviz status RUN`, then run the same command with --out to write the file at once",
    )


def _submit(args: argparse.Namespace, **map_options: object) -> int:
    """Submit (or find, if one is active) the embedding job of this map; print its run."""
    from sslviz.maps.embedding_job import job_request
    from sslviz.runner import jobs
    from sslviz.store import Store

    store = Store.open()
    try:
        request = job_request(store, args.dataset, args.source, **map_options)
        run = jobs.submit(store, request, reuse_active=True)
    finally:
        store.close()
    if args.json:
        emit_json({"run": run.id, "status": run.status, "task": run.kind})
    else:
        print(run.id)
        say(f"run {run.id} {run.status}: follow it with `sslviz status {run.id}`")
    return 0


def _out(args: argparse.Namespace, suffixes: tuple[str, ...], hint: str) -> Path:
    if not args.out:
        raise UserError(f"--out is needed: name it {hint} (or use --background)")
    out = output_file("--out", args.out)
    if out.suffix.lower() not in suffixes:
        raise UserError(f"--out {args.out}: name it {hint}")
    return out


def _progress(label: str):
    """An on_progress callback drawing a bar on stderr when it is a terminal."""
    bar: ProgressBar | None = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if not sys.stderr.isatty():
            return
        if bar is None:
            bar = ProgressBar(total, label)
        bar.update(done)
        if done >= total:
            bar.close()

    return update


def run_embed(args: argparse.Namespace) -> int:
    from sslviz.maps.embed import embed
    from sslviz.store import Store

    if args.background:
        return _submit(args, layer=args.layer, grid=args.grid)
    out = _out(args, EMBED_FORMATS, "FILE.npy, FILE.csv or FILE.parquet")
    store = Store.open()
    emb = embed(
        store,
        args.dataset,
        args.source,
        layer=args.layer,
        grid=args.grid,
        on_progress=_progress("embedding"),
    )
    columns = [f"e{i}" for i in range(emb.dim)]
    write_rows(out, emb.paths, emb.vectors, columns)
    facts = {
        "source": emb.source,
        "layer": emb.layer,
        "grid": emb.grid,
        "dim": emb.dim,
        "images": len(emb.paths),
        "step": emb.step,
        "out": str(out),
    }
    if args.json:
        emit_json(facts)
    else:
        say(
            f"{facts['images']} embeddings of {emb.dim} dims from {emb.source} "
            f"({emb.layer}, grid {emb.grid}) -> {out}"
        )
    return 0


def run_project(args: argparse.Namespace) -> int:
    from sslviz.maps.project import project
    from sslviz.store import Store

    options = {
        "layer": args.layer,
        "grid": args.grid,
        "neighbors": args.neighbors,
        "min_dist": args.min_dist,
        "metric": args.metric,
        "dims": args.dims,
    }
    if args.background:
        return _submit(args, **options)
    out = _out(args, (".csv",), "FILE.csv (the map is a CSV)")
    store = Store.open()
    proj = project(store, args.dataset, args.source, on_progress=_progress("embedding"), **options)
    write_rows(out, proj.paths, proj.coords, ["x", "y", "z"][: args.dims])
    params = proj.params
    facts = {
        "source": params["source"],
        "layer": params["layer"],
        "grid": params["grid"],
        "images": len(proj.paths),
        "dims": args.dims,
        "neighbors": params["neighbors"],
        "min_dist": params["min_dist"],
        "metric": params["metric"],
        "seconds": params.get("seconds"),
        "out": str(out),
    }
    if args.json:
        emit_json(facts)
    else:
        say(f"map of {facts['images']} images from {facts['source']} ({facts['layer']}) -> {out}")
    return 0


def write_rows(out: Path, paths: Sequence[str], values: np.ndarray, columns: list[str]) -> None:
    """Write ``values`` (N, D) as .npy (values only), or .csv/.parquet with a ``path`` column
    first; atomically (a temporary file renamed into place), in chunks for large N."""
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    with replacing(out, suffix=suffix) as tmp:
        if suffix == ".npy":
            np.save(tmp, np.asarray(values, dtype=np.float32))
        elif suffix == ".csv":
            _write_csv(tmp, paths, values, columns)
        else:
            _write_parquet(tmp, paths, values, columns)


def _write_csv(path: Path, paths: Sequence[str], values: np.ndarray, columns: list[str]) -> None:
    chunk = 4096
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", *columns])
        for start in range(0, len(paths), chunk):
            block = np.asarray(values[start : start + chunk], dtype=np.float32)
            writer.writerows(
                [p, *(f"{v:.6g}" for v in row)]
                for p, row in zip(paths[start : start + chunk], block.tolist(), strict=True)
            )


def _write_parquet(
    path: Path, paths: Sequence[str], values: np.ndarray, columns: list[str]
) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UserError(
            "writing .parquet needs pyarrow: `pip install pyarrow`, or use .csv"
        ) from None
    array = np.asarray(values, dtype=np.float32)
    table = pa.table(
        {"path": pa.array(list(paths), pa.string())}
        | {name: pa.array(array[:, i]) for i, name in enumerate(columns)}
    )
    pq.write_table(table, path)
