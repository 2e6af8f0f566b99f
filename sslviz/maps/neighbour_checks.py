"""Data checks from any embedding: near-duplicates, outliers, and what training changed — all
read off one k-nearest-neighbour graph per embedding.

    graph = neighbour_graph(store, emb)                  # k = 10, cached next to the embedding
    duplicate_pairs(graph, threshold=0.98)               # near-copies: close, and apart from the rest
    outlier_scores(graph)                                # (N,) mean cosine distance to the k nearest
    neighbourhood_overlap(graph_run, graph_random)       # (N,) share of the k nearest kept

What we chose, and why:

- **Cosine of centred vectors.** Pooled ReLU features all point into the positive orthant, so
  their plain cosines crowd near 1 (an untrained network's do even more), and a fixed threshold
  would call unrelated images duplicates in one embedding and miss re-encoded copies in another.
  Subtracting the dataset's mean embedding first puts every embedding on one scale: unrelated
  images near 0, copies near 1 (the pixel baseline's raw pixels too). (The Explorer's "nearest
  neighbours" panel shows plain cosines; these are "centred".)
- **One exact kNN graph** (scikit-learn ``NearestNeighbors``, cosine, brute force in chunks) of
  k = 10 per image: duplicates are the pairs above a threshold that stand apart from the image's
  other neighbours (a jump in distance after them; a group of copies is joined through its
  members, so groups larger than k + 1 are still found whole), outliers are
  the images far from even their nearest neighbours (the kNN-distance score of Ramaswamy et al.,
  SIGMOD 2000, averaged over k), and "what training changed" compares two graphs of the same
  images. Computed once per embedding and stored in the workspace,
  ``<dataset_dir>/neighbours/<source>/<embedding file stem>-k<k>.npz``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sslviz.core.atomic import replacing
from sslviz.core.errors import UserError

if TYPE_CHECKING:
    from sslviz.maps.embed import Embeddings
    from sslviz.store import Store

K = 10  # neighbours per image in the graph (and in "what training changed")
# Near-duplicates: a centred cosine of at least DEFAULT_THRESHOLD *and* a gap: the pair is much
# closer than the image's next neighbour (distance ratio <= DEFAULT_GAP), or at least SAME.
# Measured (benchmarks/duplicate_threshold.py): the demo's 306 crops (9 photos, overlapping crops:
# NOT copies) plus 36 planted near-copies (JPEG 50, resized to 70%, 4% cropped, shifted and
# brightened). Crops flagged / copies found: the old rule (0.95, nearest only) flagged 202 / 35
# (rotation run), 158 / 36 (random), 85 / 35 (pixels); 0.98 with the gap flags 10 / 30, 14 / 32,
# 2 / 29. A learned embedding puts overlapping crops of one photo close, a threshold alone can't
# tell them from copies (0.995 still flagged 72 with the run); the gap can. On the six-photo demo
# (51 crops each, denser): 8 / 13 of 24, 17 / 16, 0 / 12 (pixels, random, run): every re-encode and
# resize, few 4% crops or 2 px shifts (they look like the other overlapping crops of that photo).
DEFAULT_THRESHOLD = 0.98  # centred cosine a near-duplicate pair has at least
DEFAULT_GAP = 0.3  # its distance is at most this share of the image's next neighbour's
SAME = 0.9995  # this close, a pair is a copy whatever its neighbours (groups larger than k)
CHUNK = 8_192  # rows centred at once (bounded memory for a memory-mapped embedding)


@dataclass(frozen=True, eq=False)
class NeighbourGraph:
    """Each image's k nearest other images in one embedding, most similar first."""

    indices: np.ndarray  # (N, k) int32 rows of the neighbours
    similarity: np.ndarray  # (N, k) float32 centred cosine similarity
    paths: list[str]  # (N,) the images, the dataset's order
    image_ids: np.ndarray  # (N,) int64 store image ids
    seconds: float = 0.0  # how long the search took (when it was computed)

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    def __len__(self) -> int:
        return len(self.paths)


# --- the graph -----------------------------------------------------------------------------------
def centred_unit(vectors: np.ndarray) -> np.ndarray:
    """(N, D) -> float32 (N, D): minus the mean row, scaled to unit length (zero rows stay 0)."""
    total = np.zeros(vectors.shape[1], np.float64)
    for start in range(0, len(vectors), CHUNK):
        total += np.asarray(vectors[start : start + CHUNK], dtype=np.float64).sum(0)
    mean = (total / max(len(vectors), 1)).astype(np.float32)
    out = np.empty(vectors.shape, np.float32)
    for start in range(0, len(vectors), CHUNK):
        block = np.asarray(vectors[start : start + CHUNK], dtype=np.float32) - mean
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + CHUNK] = block / np.maximum(norms, 1e-12)
    return out


def knn(vectors: np.ndarray, k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours by centred cosine, each row itself excluded:
    (indices (N, k) int32, similarities (N, k) float32), most similar first."""
    from sklearn.neighbors import NearestNeighbors

    n = len(vectors)
    k = min(k, n - 1)
    if k < 1:
        return np.zeros((n, 0), np.int32), np.zeros((n, 0), np.float32)
    unit = centred_unit(vectors)
    index = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(unit)
    distance, found = index.kneighbors(unit)  # (N, k + 1): usually itself first
    # Drop each row's own entry (not always first: an exact copy ties with it), else the last.
    own = found == np.arange(n)[:, None]
    keep = np.where(own.any(1)[:, None], ~own, np.arange(k + 1)[None, :] < k)
    indices = found[keep].reshape(n, k).astype(np.int32)
    similarity = (1.0 - distance[keep].reshape(n, k)).astype(np.float32)
    return indices, similarity


def graph_of(vectors: np.ndarray, paths: list[str], image_ids: Any, k: int = K) -> NeighbourGraph:
    """The kNN graph of ``vectors`` (N, D), uncached."""
    started = time.perf_counter()
    indices, similarity = knn(vectors, k)
    return NeighbourGraph(
        indices,
        similarity,
        list(paths),
        np.asarray(image_ids, np.int64),
        time.perf_counter() - started,
    )


def graph_file(store: Store, emb: Embeddings, k: int) -> Path:
    if emb.file is None:
        raise UserError("these embeddings are not stored in the workspace: embed them first")
    dataset_dir = emb.file.parents[2]  # <dataset_dir>/embeddings/<source>/<file>
    return dataset_dir / "neighbours" / emb.source / f"{emb.file.stem}-k{k}.npz"


def cached_graph(store: Store, emb: Embeddings, k: int = K) -> NeighbourGraph | None:
    """The stored graph of ``emb`` if there is one, else None (never computes)."""
    try:
        with np.load(graph_file(store, emb, k)) as saved:
            indices, similarity = saved["indices"], saved["similarity"]
            seconds = float(saved["seconds"])
    except (FileNotFoundError, KeyError, ValueError, OSError):
        return None
    if len(indices) != len(emb.paths):
        return None
    return NeighbourGraph(indices, similarity, list(emb.paths), emb.image_ids, seconds)


def neighbour_graph(store: Store, emb: Embeddings, k: int = K) -> NeighbourGraph:
    """The kNN graph of a stored embedding: read from the workspace, or computed and stored.
    Graphs of the same source and layer with an older checkpoint are removed."""
    found = cached_graph(store, emb, k)
    if found is not None:
        return found
    graph = graph_of(emb.vectors, emb.paths, emb.image_ids, k)
    file = graph_file(store, emb, k)
    file.parent.mkdir(parents=True, exist_ok=True)
    with replacing(file, suffix=".npz") as tmp:
        np.savez(
            tmp,
            indices=graph.indices,
            similarity=graph.similarity,
            seconds=np.float64(graph.seconds),
        )
    prefix = emb.file.stem.rsplit("-", 1)[0] + "-"  # <layer>-g<grid>-n<N>-: same embedding
    for other in file.parent.glob(f"{prefix}*-k{k}.npz"):
        if other != file:
            other.unlink(missing_ok=True)
    return graph


# --- near-duplicates ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DuplicatePair:
    a: int  # rows, a < b
    b: int
    similarity: float


def duplicate_pairs(
    graph: NeighbourGraph, threshold: float = DEFAULT_THRESHOLD, gap: float = DEFAULT_GAP
) -> list[DuplicatePair]:
    """Pairs of images that are near-copies, most similar first: their centred cosine is at
    least ``threshold``, and they stand apart from the rest: in one image's neighbour list, the
    pair's distance (1 - cosine) is at most ``gap`` times the next neighbour's after the copies
    (a copy, or a group of copies, then a jump), or the pair is at least ``SAME`` similar.

    Overlapping crops of one photo are close too, but their distances grow smoothly with no
    jump, so the gap tells them from copies (measured: see ``DEFAULT_THRESHOLD``). A third copy
    of a pair sits before the jump with it, so :func:`duplicate_groups` finds the whole group."""
    if not -1.0 <= threshold <= 1.0:
        raise UserError(f"threshold {threshold} is not a cosine: use a value in [-1, 1], e.g. 0.98")
    if graph.k == 0:
        return []
    sim = graph.similarity.astype(np.float64)  # (N, k)
    distance = np.maximum(1.0 - sim, 1e-9)
    jump = np.zeros_like(sim, dtype=bool)  # (N, k): a jump right after slot j
    jump[:, :-1] = distance[:, :-1] <= gap * distance[:, 1:]
    # the copies of row i: slots up to its last jump among the pairs above the threshold
    cut = jump & (sim >= threshold)
    last = np.where(cut.any(axis=1), graph.k - 1 - np.argmax(cut[:, ::-1], axis=1), -1)  # (N,)
    keep = (np.arange(graph.k)[None, :] <= last[:, None]) | (sim >= max(SAME, threshold))
    rows, slots = np.nonzero(keep & (sim >= threshold))
    best: dict[tuple[int, int], float] = {}
    for i, j, s in zip(
        rows.tolist(),
        graph.indices[rows, slots].astype(np.int64).tolist(),
        sim[rows, slots].tolist(),
        strict=True,
    ):
        key = (min(i, j), max(i, j))
        best[key] = max(s, best.get(key, -2.0))
    pairs = [DuplicatePair(i, j, s) for (i, j), s in best.items()]
    return sorted(pairs, key=lambda p: (-p.similarity, p.a, p.b))


def duplicate_groups(n: int, pairs: list[DuplicatePair]) -> list[list[int]]:
    """Connected groups of rows joined by ``pairs`` (2 or more each), largest first, rows sorted."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not pairs:
        return []
    a = np.fromiter((p.a for p in pairs), np.int64, len(pairs))
    b = np.fromiter((p.b for p in pairs), np.int64, len(pairs))
    adjacency = coo_matrix((np.ones(len(pairs)), (a, b)), shape=(n, n))
    _, label = connected_components(adjacency, directed=False)
    members = np.union1d(a, b)
    groups: dict[int, list[int]] = {}
    for row in members.tolist():
        groups.setdefault(int(label[row]), []).append(row)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


def duplicate_of(n: int, groups: list[list[int]]) -> np.ndarray:
    """(N,) int32: each row's group number (1 = the largest group), 0 for rows in none."""
    out = np.zeros(n, np.int32)
    for number, group in enumerate(groups, start=1):
        out[group] = number
    return out


# --- outliers ------------------------------------------------------------------------------------
def outlier_scores(graph: NeighbourGraph) -> np.ndarray:
    """(N,) float32: mean centred cosine distance (1 - similarity) to the k nearest neighbours;
    high = far from every other image in this embedding."""
    if graph.k == 0:
        return np.zeros(len(graph), np.float32)
    return (1.0 - graph.similarity.mean(axis=1)).astype(np.float32)


def top_rows(scores: np.ndarray, n: int, *, largest: bool = True) -> np.ndarray:
    """The rows of the ``n`` largest (or smallest) scores, in that order (ties by row)."""
    order = np.lexsort((np.arange(len(scores)), -scores if largest else scores))
    return order[: max(int(n), 0)]


# --- what training changed ------------------------------------------------------------------------
def neighbourhood_overlap(run: NeighbourGraph, baseline: NeighbourGraph) -> np.ndarray:
    """(N,) float32 in [0, 1]: the share of each image's k nearest neighbours in ``run`` that are
    also among its k nearest in ``baseline`` (e.g. the untrained network). 1 = training left the
    image's neighbourhood as it was; 0 = entirely new neighbours. Both graphs over the same
    images in the same order, with the same k."""
    if run.paths != baseline.paths:
        raise UserError("the two embeddings are of different images: embed the same dataset")
    if run.k != baseline.k:
        raise UserError(f"the two graphs have different k ({run.k}, {baseline.k})")
    if run.k == 0:
        return np.ones(len(run), np.float32)
    # (N, k, k) comparisons: 100 bytes an image, no Python loop over images
    shared = (run.indices[:, :, None] == baseline.indices[:, None, :]).any(axis=2).sum(axis=1)
    return (shared / run.k).astype(np.float32)


# --- what the CLI and the Explorer ask --------------------------------------------------------------
def embedding_graph(
    store: Store,
    dataset: Any,
    source: Any,
    *,
    layer: str | None = None,
    grid: int | None = None,
    on_progress: Any = None,
) -> tuple[Embeddings, NeighbourGraph]:
    """The embedding of ``source`` (computed if needed) and its kNN graph."""
    from sslviz.maps.embed import embed

    emb = embed(store, dataset, source, layer=layer, grid=grid, on_progress=on_progress)
    return emb, neighbour_graph(store, emb)


def _described(emb: Embeddings, graph: NeighbourGraph, dataset: Any) -> dict[str, Any]:
    name = dataset if isinstance(dataset, str) else getattr(dataset, "name", str(dataset))
    return {
        "source": emb.source,
        "dataset": name,
        "layer": emb.layer,
        "grid": emb.grid,
        "k": graph.k,
        "images": len(graph),
    }


def duplicates_report(
    emb: Embeddings, graph: NeighbourGraph, dataset: Any, *, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, Any]:
    """``sslviz duplicates --json``: pairs (most similar first) and groups (largest first)."""
    pairs = duplicate_pairs(graph, threshold)
    groups = duplicate_groups(len(graph), pairs)
    paths = graph.paths
    return {
        **_described(emb, graph, dataset),
        "threshold": threshold,
        "pairs": [
            {"a": paths[p.a], "b": paths[p.b], "cosine": round(p.similarity, 4)} for p in pairs
        ],
        "groups": [{"size": len(g), "paths": [paths[r] for r in g]} for g in groups],
    }


def outliers_report(
    emb: Embeddings, graph: NeighbourGraph, dataset: Any, *, n: int = 20
) -> dict[str, Any]:
    """``sslviz outliers --json``: the ``n`` images farthest from their k nearest, farthest first."""
    scores = outlier_scores(graph)
    return {
        **_described(emb, graph, dataset),
        "outliers": [
            {"path": graph.paths[r], "distance": round(float(scores[r]), 4)}
            for r in top_rows(scores, n)
        ],
    }


def changed_graphs(
    store: Store,
    dataset: Any,
    run: Any,
    *,
    layer: str | None = None,
    grid: int | None = None,
    on_progress: Any = None,
) -> tuple[Embeddings, NeighbourGraph, Embeddings, NeighbourGraph]:
    """The run's embedding and graph, and the untrained network's at the same layer and pooling
    (its default ones if the run's architecture names layers ``random`` lacks)."""
    from sslviz.maps.embed import available_layers, default_layer, parse_source

    source = parse_source(run)
    if source in ("random", "pixels"):
        raise UserError("compare a trained run with random: give a run id (see `sslviz runs`)")
    emb, graph = embedding_graph(
        store, dataset, source, layer=layer, grid=grid, on_progress=on_progress
    )
    base_layer, base_grid = emb.layer, emb.grid
    if base_layer not in available_layers(store, "random"):
        base_layer, base_grid = default_layer(store, "random")
    base, base_graph = embedding_graph(store, dataset, "random", layer=base_layer, grid=base_grid)
    return emb, graph, base, base_graph


def changed_report(
    emb: Embeddings,
    graph: NeighbourGraph,
    base: Embeddings,
    base_graph: NeighbourGraph,
    dataset: Any,
    *,
    n: int = 20,
) -> dict[str, Any]:
    """``sslviz changed --json``: the ``n`` images whose k nearest neighbours changed most between
    ``random`` and the run, least overlap first, with both neighbourhoods."""
    overlap = neighbourhood_overlap(graph, base_graph)
    paths = graph.paths
    rows = top_rows(overlap, n, largest=False)
    return {
        **_described(emb, graph, dataset),
        "run": emb.source,
        "baseline": {"source": base.source, "layer": base.layer, "grid": base.grid},
        "mean_overlap": round(float(overlap.mean()), 4) if len(overlap) else None,
        "changed": [
            {
                "path": paths[r],
                "overlap": round(float(overlap[r]), 4),
                "neighbours": [paths[i] for i in graph.indices[r]],
                "baseline_neighbours": [paths[i] for i in base_graph.indices[r]],
            }
            for r in rows
        ],
    }
