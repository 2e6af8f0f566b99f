"""Poisson learning's label-independent work saved beside an embedding and read back
(``sslviz.fewshot.poisson_kept``): its views (the graphs and each one's iteration count) and the
unit potentials of the images labeled so far. Each file is whole or not there at all, and is read
only while the embedding file is the one it was built from (its size and modification time are
saved with it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sslviz.core.atomic import replacing

RECIPE = "p2"  # bump when Poisson's views change: saved ones are then rebuilt


def load_views(
    path: Path, stamp: tuple[int, int]
) -> tuple[tuple[sp.csr_matrix, ...], tuple[int, ...]] | None:
    """(graphs, iterations per graph) saved at ``path`` if they were built from the embedding file
    as it is now (``stamp``: its size and modification time), else None."""
    saved = _load(path, stamp)
    if saved is None:
        return None
    count = int(saved["views"])
    graphs = tuple(
        sp.csr_matrix(
            (saved[f"data{i}"], saved[f"indices{i}"], saved[f"indptr{i}"]),
            shape=tuple(saved[f"shape{i}"]),
        )
        for i in range(count)
    )
    return graphs, tuple(int(v) for v in saved["iterations"])


def save_views(
    path: Path,
    stamp: tuple[int, int],
    graphs: tuple[sp.csr_matrix, ...],
    iterations: tuple[int, ...],
) -> None:
    """Save ``graphs`` (CSR) and their ``iterations`` with the embedding file's ``stamp``."""
    arrays: dict[str, np.ndarray] = {"views": np.asarray(len(graphs))}
    arrays["iterations"] = np.asarray(iterations, dtype=np.int64)
    for i, graph in enumerate(graphs):
        arrays.update(
            {
                f"data{i}": graph.data,
                f"indices{i}": graph.indices,
                f"indptr{i}": graph.indptr,
                f"shape{i}": np.asarray(graph.shape),
            }
        )
    _save(path, stamp, arrays)


def load_units(path: Path, stamp: tuple[int, int], views: int) -> dict[str, np.ndarray] | None:
    """The saved unit potentials at ``path`` for the embedding file as it is now, else None:
    ``rows`` (m,), and per view i ``units{i}`` (N, m) float32, ``sums{i}`` (m,) and ``gram{i}``
    (m, m) (``sslviz.fewshot.poisson_kept``)."""
    saved = _load(path, stamp)
    names = {"rows", *(f"{kind}{i}" for kind in ("units", "sums", "gram") for i in range(views))}
    if saved is None or int(saved["views"]) != views or not names <= set(saved):
        return None  # another view count, or a file of an earlier layout: computed again
    return saved


def save_units(path: Path, stamp: tuple[int, int], arrays: dict[str, np.ndarray]) -> None:
    """Save the unit potentials ``arrays`` (the names ``load_units`` reads) with ``stamp``."""
    _save(path, stamp, arrays)


def _load(path: Path, stamp: tuple[int, int]) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path) as saved:
            if tuple(int(v) for v in saved["stamp"]) != tuple(stamp):
                return None
            return {name: saved[name] for name in saved.files}
    except (OSError, KeyError, ValueError, EOFError):
        return None


def _save(path: Path, stamp: tuple[int, int], arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, stamp=np.asarray(stamp), **arrays)
