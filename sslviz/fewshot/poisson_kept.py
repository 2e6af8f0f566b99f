"""Poisson learning's label-independent work for one embedding, computed once and kept: its views
(the graphs, their step matrices, components and iteration counts) and the unit potential of
every image labeled so far (``sslviz.fewshot.poisson``).

A label's unit potential depends on the graph and on where the label sits, never on the label's
name or on the other labels, and any labels' potentials are these columns weighted by their
sources. So the five CV folds and the final fit of a prediction cost one product each, and a
prediction after one more label computes one new column per view. Kept in memory (the
``Features`` that holds this lives as long as its embedding in ``sslviz.fewshot.kept``) and, for
an embedding with a file, saved beside it (``sslviz.fewshot.saved_views``) for the next process.

    kept = KeptPoisson(vectors, shared_scale=False, views_file=..., stamp=...)
    kept.prepare(labeled_idx)            # every label's column in one batch
    poisson.predict(kept.views, labeled_idx, y, k, units=kept.units)   # (N, k)
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from sslviz.fewshot import poisson, saved_views

# Unit potentials kept per view, in numbers (float32): 128 MB, e.g. 335 labels of 100,000 images.
# Labels beyond it are solved as before, one propagation per prediction, and not kept.
UNITS_BUDGET = 2**25
# Without a file to keep them in (an embedding only in memory: a run's checkpoint monitor, a
# benchmark), at most this many are computed at once: one column per label costs more than
# solving each CV fold's few classes when labels are many, and nothing later reuses them.
UNSAVED_MAX = poisson.UNIT_BATCH
# A new label's column is what a prediction after it waits for: its steps split over the cores.
THREADS = min(4, os.cpu_count() or 1)


class KeptPoisson:
    """Poisson's views of ``vectors`` (N, D) and the unit potentials of labeled rows."""

    def __init__(
        self,
        vectors: np.ndarray,
        *,
        shared_scale: bool = False,
        views_file: Path | None = None,
        stamp: tuple[int, int] = (0, 0),
    ) -> None:
        self._vectors = vectors
        self._shared_scale = shared_scale  # columns of one unit (pixels): not standardised
        self._views_file = views_file  # None: an embedding only in memory, nothing saved
        self._stamp = stamp
        self._graphs: tuple[sp.csr_matrix, ...] | None = None
        self._views: tuple[poisson.View, ...] | None = None
        self._rows = np.zeros(0, dtype=np.int64)  # (m,) rows whose unit potentials are kept
        self._kept: list[_Columns] | None = None  # per view, None until first asked for
        self._lock = threading.RLock()  # one Features serves every session of a server
        self.computed = 0  # unit potentials computed (not read) by this object, per view

    @property
    def graphs(self) -> tuple[sp.csr_matrix, ...]:
        """The weighted kNN graphs W (N, N), one per view (``poisson.views``)."""
        self._ensure_views()
        return self._graphs

    @property
    def views(self) -> tuple[poisson.View, ...]:
        self._ensure_views()
        return self._views

    def _ensure_views(self) -> None:
        with self._lock:
            if self._views is not None:
                return
            saved = None
            if self._views_file is not None:
                saved = saved_views.load_views(self._views_file, self._stamp)
            if saved is not None:
                graphs, iterations = saved
                views = tuple(
                    poisson.View.of(w, t) for w, t in zip(graphs, iterations, strict=True)
                )
            else:
                from sslviz.fewshot.geometry import prepared

                graphs = poisson.views(prepared(self._vectors, shared_scale=self._shared_scale))
                views = tuple(poisson.View.of(w) for w in graphs)
                if self._views_file is not None:
                    iterations = tuple(v.iterations for v in views)
                    saved_views.save_views(self._views_file, self._stamp, graphs, iterations)
            self._graphs, self._views = graphs, views

    def units_file(self) -> Path | None:
        """Where the unit potentials are saved (beside the views), or None."""
        if self._views_file is None:
            return None
        return self._views_file.with_name(self._views_file.stem + "-units.npz")

    def prepare(self, rows: np.ndarray) -> None:
        """Compute the unit potentials of ``rows`` not kept yet, every view in one batch, and
        save them (nothing when they would pass ``UNITS_BUDGET``: then solved per prediction)."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if len(rows) * len(self._vectors) > UNITS_BUDGET:
            return
        with self._lock:
            views = self.views
            self._load()
            missing = np.setdiff1d(rows, self._rows)
            if not len(missing) or (self._views_file is None and len(missing) > UNSAVED_MAX):
                return
            if (len(self._rows) + len(missing)) * len(self._vectors) > UNITS_BUDGET:
                self._keep(np.flatnonzero(np.isin(self._rows, rows)))  # what is asked for
            for kept, view in zip(self._kept, views, strict=True):
                kept.add(poisson.unit_potentials(view, missing, threads=THREADS))
            self.computed += len(missing)
            self._rows = np.concatenate([self._rows, missing])
            file = self.units_file()
            if file is not None:
                arrays = {"views": np.asarray(len(views)), "rows": self._rows}
                for i, kept in enumerate(self._kept):
                    arrays.update({f"units{i}": kept.columns, f"sums{i}": kept.sums})
                    arrays[f"gram{i}"] = kept.gram
                saved_views.save_units(file, self._stamp, arrays)

    def units(self, view: int, rows: np.ndarray) -> poisson.Units | None:
        """The kept unit potentials on view ``view``, with the positions of ``rows`` among them
        (computed now if missing), or None when they are not kept (past ``UNITS_BUDGET``)."""
        rows = np.asarray(rows, dtype=np.int64)
        self.prepare(rows)
        with self._lock:
            if self._kept is None:
                return None
            position = {int(r): i for i, r in enumerate(self._rows)}
            if not all(int(r) in position for r in rows):
                return None
            kept = self._kept[view]
            at = np.array([position[int(r)] for r in rows], dtype=np.int64)
            return poisson.Units(kept.columns, at, kept.sums, kept.gram)

    def _keep(self, keep: np.ndarray) -> None:
        self._rows = self._rows[keep]
        for kept in self._kept:
            kept.columns = kept.columns[:, keep]
            kept.sums, kept.gram = kept.sums[keep], kept.gram[np.ix_(keep, keep)]

    def _load(self) -> None:
        """The saved unit potentials, the first time (none saved: start empty)."""
        if self._kept is not None:
            return
        n, count = len(self._vectors), len(self._views)
        self._kept = [_Columns(n) for _ in range(count)]
        file = self.units_file()
        found = None if file is None else saved_views.load_units(file, self._stamp, count)
        if found is None or any(found[f"units{i}"].shape[0] != n for i in range(count)):
            return
        self._rows = found["rows"]
        for i, kept in enumerate(self._kept):
            kept.columns, kept.sums = found[f"units{i}"], found[f"sums{i}"]
            kept.gram = found[f"gram{i}"]


class _Columns:
    """One view's kept unit potentials (N, m) float32 with their sums (m,) and cross-products
    (m, m) over all rows in float64, updated as columns are added (``poisson.Units``)."""

    def __init__(self, n: int) -> None:
        self.columns = np.zeros((n, 0), dtype=np.float32)
        self.sums = np.zeros(0)
        self.gram = np.zeros((0, 0))

    def add(self, new: np.ndarray) -> None:
        """Append ``new`` (N, k) columns, their moments computed a block of rows at a time."""
        m, k = self.columns.shape[1], new.shape[1]
        cross, inner, sums = np.zeros((m, k)), np.zeros((k, k)), np.zeros(k)
        for start in range(0, len(new), 4096):  # summed in float64 a block of rows at a time
            old, part = self.columns[start : start + 4096], new[start : start + 4096]
            cross += old.T @ part
            inner += part.T @ part
            sums += part.sum(axis=0, dtype=np.float64)
        self.columns = np.hstack([self.columns, new])
        self.sums = np.concatenate([self.sums, sums])
        self.gram = np.block([[self.gram, cross], [cross.T, inner]])
