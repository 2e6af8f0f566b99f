"""The feature-quality monitor of a pretext run: at its checkpoints, is it still learning useful
features? Measured without labels (and with a labeling session's labels where there is one),
on a fixed sample of the dataset; the curve and its advice are ``sslviz.training.feature_quality``.

A training callback, reached by the trainer only through the kinds table (``checkpoint_monitor``),
so training never imports the few-shot code its third figure needs. Cheap by design: one forward
pass over at most ``SAMPLE`` images, an SVD and a k-NN of a 512-row matrix, at most ``POINTS``
times a run (and the few-shot estimate only with a session). Each batch is a sign of life.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from sslviz.core.liveness import alive
from sslviz.data.cache import open_cache
from sslviz.maps.quality import effective_rank
from sslviz.store import Run, Store
from sslviz.training.batches import load_rows
from sslviz.training.callbacks import Callback, TrainState
from sslviz.training.config import TrainConfig
from sslviz.training.feature_quality import KEYS

SAMPLE = 512  # images the figures are measured on, at most (the same ones at every checkpoint)
POINTS = 10  # measured checkpoints per run, at most (plus the start and the end)
NEIGHBOURS = 10  # k of the k-NN agreement
BATCH = 256  # images per forward pass (and per batch-norm statistics)
_SAMPLE_SALT = 0xFEA7
_log = logging.getLogger(__name__)


def neighbours(vectors: np.ndarray, k: int = NEIGHBOURS) -> np.ndarray:
    """(N, D) -> (N, k) indices of each row's k nearest other rows by cosine similarity."""
    x = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    similarity = x @ x.T  # (N, N)
    np.fill_diagonal(similarity, -np.inf)
    k = min(k, len(x) - 1)
    return np.argpartition(-similarity, k - 1, axis=1)[:, :k]


def neighbour_agreement(before: np.ndarray, after: np.ndarray) -> float:
    """Mean share of each row's k nearest neighbours (N, k) two embeddings have in common."""
    shared = [len(np.intersect1d(a, b)) for a, b in zip(before, after, strict=True)]
    return float(np.mean(shared) / before.shape[1])


class FeatureQuality(Callback):
    """Measures the run's embedding at its checkpoints and logs ``training.feature_quality.KEYS``."""

    def __init__(self, store: Store, run: Run) -> None:
        self.store, self.run = store, run
        self.config = TrainConfig.from_dict(run.config)
        self.rows: np.ndarray | None = None  # cache rows of the sample (+ labeled images)
        self.sample = 0  # the first ``sample`` of ``rows`` are the fixed sample
        self.labels: list[str] = []  # the session's labels, of rows[label_index]
        self.label_index = np.zeros(0, dtype=np.int64)
        self.previous: np.ndarray | None = None  # neighbours at the last measured checkpoint
        self.last_progress = -1.0

    # --- when -----------------------------------------------------------------------------------
    def on_checkpoint(self, state: TrainState, task: Any, model: Any, *, final: bool) -> None:
        progress = state.step / max(state.total_steps, 1)
        if state.time_budget:
            progress = max(progress, state.train_seconds / state.time_budget)
        first = self.previous is None
        if not (first or final or progress - self.last_progress >= 1 / POINTS):
            return
        try:
            # small matrices: one BLAS thread is faster than several waiting for each other
            with threadpool_limits(1):
                self.measure(state.step, task, model)
        except Exception:  # a monitor never fails the run it watches
            _log.warning("run %s: feature quality not measured", self.run.id, exc_info=True)
            return
        self.last_progress = progress

    # --- what -----------------------------------------------------------------------------------
    def _choose_rows(self, n_images: int) -> None:
        """The fixed sample, then the labeled images of the dataset's best-labeled session."""
        rng = np.random.default_rng([self.config.seed, _SAMPLE_SALT])
        sample = np.sort(rng.choice(n_images, size=min(SAMPLE, n_images), replace=False))
        labeled, self.labels = self._session_rows(n_images)
        extra = [r for r in labeled if r not in set(sample.tolist())]
        in_sample = {int(r): i for i, r in enumerate(sample)}
        self.label_index = np.array(
            [in_sample[r] if r in in_sample else len(sample) + extra.index(r) for r in labeled],
            dtype=np.int64,
        )
        self.rows, self.sample = np.concatenate([sample, extra]).astype(np.int64), len(sample)

    def _session_rows(self, n_images: int) -> tuple[list[int], list[str]]:
        sessions = self.store.sessions.list(self.run.dataset_id)
        labelled = [(len(self.store.sessions.label_of(s.id)), s.id) for s in sessions]
        if not labelled or max(labelled)[0] == 0:
            return [], []
        label_of = self.store.sessions.label_of(max(labelled)[1])  # {image id: label}
        ids = [image.id for image in self.store.datasets.images(self.run.dataset_id)]
        if len(ids) != n_images:
            return [], []
        pairs = sorted((row, label_of[i]) for row, i in enumerate(ids) if i in label_of)
        return [r for r, _ in pairs], [label for _, label in pairs]

    @torch.no_grad()
    def _embed(self, task: Any, model: Any) -> np.ndarray:
        cache = open_cache(self.store, self.run.dataset_id, self.config.image_size)
        if self.rows is None:
            self._choose_rows(len(cache))
        # Batch norm normalises by each (fixed) batch's own statistics, on a copy whose running
        # averages nobody reads: what moves the curve is then the weights alone, not the
        # running averages catching up with the data (with the learning rate at 0 they kept
        # changing the eval-mode embedding for dozens of steps).
        probe = copy.deepcopy(model.encoder).train()
        device = next(probe.parameters()).device
        parts = []
        for rows in np.array_split(self.rows, -(-len(self.rows) // BATCH)):  # even batches
            images = load_rows(cache, rows).to(device)
            view = task.encoder_view(images).float()
            parts.append(probe.embed(view, grid=probe.default_grid).float().cpu())
            alive()
        return torch.cat(parts).numpy()

    def measure(self, step: int, task: Any, model: Any) -> dict[str, float]:
        """Measure the model's encoder now and log the figures at ``step``."""
        vectors = self._embed(task, model)  # (sample + extra labeled, D)
        sample = vectors[: self.sample]
        figures = {KEYS["effective_rank"]: effective_rank(sample)}
        near = neighbours(sample)
        if self.previous is not None:
            figures[KEYS["knn_agreement"]] = neighbour_agreement(self.previous, near)
        self.previous = near
        accuracy = self._fewshot(vectors)
        if accuracy is not None:
            figures[KEYS["fewshot_accuracy"]] = accuracy
        alive()
        self.store.runs.log_metrics(self.run.id, step, figures)
        return figures

    def _fewshot(self, vectors: np.ndarray) -> float | None:
        """``auto``'s cross-validated accuracy on the session's labels (None: too few)."""
        if len(self.labels) < 2 or len(set(self.labels)) < 2:
            return None
        from sslviz.fewshot.estimate import choose

        # auto among the methods that need no UMAP fit: a fit per checkpoint would cost more
        # than the checkpoint's training
        choice = choose(vectors, self.label_index, self.labels, seed=self.config.seed, umap=False)
        accuracy = choice.estimate.cv_accuracy
        return None if accuracy is None else float(accuracy)


def monitor(store: Store, run: Run) -> FeatureQuality:
    """The kinds table's ``checkpoint_monitor`` of the pretext kinds."""
    return FeatureQuality(store, run)
