"""Poisson learning's views of an embedding saved beside it and read back
(``sslviz.fewshot.kept``): whole or not at all, and only while the embedding file is the one
they were built from (its size and modification time are saved with them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sslviz.core.atomic import replacing

RECIPE = "p1"  # bump when Poisson's views change: saved ones are then rebuilt


def load_views(path: Path, stamp: tuple[int, int]) -> tuple[sp.csr_matrix, ...] | None:
    """The saved views at ``path`` if they were built from the embedding file as it is now
    (``stamp``: its size and modification time), else None."""
    try:
        with np.load(path) as saved:
            if tuple(int(v) for v in saved["stamp"]) != tuple(stamp):
                return None
            return tuple(
                sp.csr_matrix(
                    (saved[f"data{i}"], saved[f"indices{i}"], saved[f"indptr{i}"]),
                    shape=tuple(saved[f"shape{i}"]),
                )
                for i in range(int(saved["views"]))
            )
    except (OSError, KeyError, ValueError):
        return None


def save_views(path: Path, stamp: tuple[int, int], graphs: tuple[sp.csr_matrix, ...]) -> None:
    """Save ``graphs`` (CSR) with the embedding file's ``stamp``, whole or not at all."""
    arrays: dict[str, np.ndarray] = {"stamp": np.asarray(stamp), "views": np.asarray(len(graphs))}
    for i, graph in enumerate(graphs):
        arrays.update(
            {
                f"data{i}": graph.data,
                f"indices{i}": graph.indices,
                f"indptr{i}": graph.indptr,
                f"shape{i}": np.asarray(graph.shape),
            }
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
