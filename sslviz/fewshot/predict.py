"""A predicted label, with confidence, for every image of a dataset from a few labeled ones.

    result = predict(store, "digits", "pixels", {"0001.png": "one", ...})       # method "auto"
    result.method, result.estimate.cv_accuracy, result.estimate.cv_interval
    result.prediction.labels            # (N,) in result.paths order
    result.to_json()                    # what `sslviz predict --json` prints

Used by the CLI, the labeling page and the leaderboard. ``predict_vectors`` is the same on an
embedding already in memory (benchmarks, tests).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sslviz.core.errors import UserError
from sslviz.fewshot.coverage import Coverage, coverage
from sslviz.fewshot.estimate import (
    ACTIVE_NOTE,
    Estimate,
    choose,
    cross_validate,
    few_per_class,
)
from sslviz.fewshot.predictors import (
    METHODS,
    UMAP_METHODS,
    Features,
    Prediction,
    check_method,
    fit_predict,
)

if TYPE_CHECKING:
    from sslviz.maps.embed import Embeddings
    from sslviz.store import Dataset, Store

METHOD_CHOICES = ("auto", *METHODS)


@dataclass(frozen=True)
class PredictResult:
    """Predictions for all N images (``paths`` order) and how good they are estimated to be.

    estimate: CV estimate of the method used (with "auto", corrected for the choice); estimates:
    of every method scored; labeled (N,) bool: the image carries a given label; coverage: which
    images look like any labeled group (the estimate speaks for those).
    """

    method: str
    requested: str
    reason: str
    estimate: Estimate
    estimates: list[Estimate]
    prediction: Prediction
    paths: list[str]
    image_ids: np.ndarray
    labeled: np.ndarray
    labels: dict[str, str]
    coverage: Coverage
    source: str = ""
    layer: str = ""
    grid: int = 1

    @property
    def final_labels(self) -> np.ndarray:
        """(N,) the given label where there is one, else the predicted one."""
        out = self.prediction.labels.copy()
        for i in np.flatnonzero(self.labeled):
            out[i] = self.labels[self.paths[i]]
        return out

    @property
    def final_confidence(self) -> np.ndarray:
        """(N,) confidence, 1 for the labeled images (the same in every export)."""
        return np.where(self.labeled, 1.0, self.prediction.confidence).astype(np.float32)

    @property
    def covered(self) -> np.ndarray:
        """(N,) bool: the image looks like some labeled group (``sslviz.fewshot.coverage``)."""
        return self.coverage.covered

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "cv_accuracy": self.estimate.cv_accuracy,
            "cv_interval": list(self.estimate.cv_interval) if self.estimate.cv_interval else None,
            "labeled": int(self.labeled.sum()),
            "predicted": int((~self.labeled).sum()),
            **({"reason": self.estimate.reason} if self.estimate.too_few else {}),
            "choice": self.reason,
            "classes": self.prediction.classes,
            "source": self.source,
            "layer": self.layer,
            "grid": self.grid,
            "estimates": [e.to_json() for e in self.estimates],
            "covered_fraction": round(self.coverage.fraction, 4),
            "uncovered": self.coverage.uncovered,
            "groups_labeled": self.coverage.groups_labeled,
            "groups_estimated": self.coverage.groups_estimated,
            "groups_sure": self.coverage.sure,  # False: one label per class, count not guessed
            "coverage_warning": self.coverage.warning(),
            # beside the accuracy: always the most common label, on the same held-out labels
            "majority_rate": self.estimate.majority_rate,
            "suggested_share": self.estimate.suggested_share,
            "actively_chosen": self.estimate.actively_chosen,
            "estimate_note": ACTIVE_NOTE if self.estimate.actively_chosen else None,
            # the CV estimate is measured on labeled images, i.e. it speaks for covered ones only
            "estimate_for": "covered images",
        }


def check_labels(labels: Mapping[str, str], paths: Sequence[str]) -> dict[str, str]:
    """The labels with clean names; UserError for unknown paths, empty names or one class."""
    known = set(paths)
    unknown = [p for p in labels if p not in known]
    if unknown:
        shown = ", ".join(map(repr, unknown[:5]))
        raise UserError(f"{len(unknown)} labeled paths are not images of the dataset: {shown}")
    clean = {str(p): str(v).strip() for p, v in labels.items()}
    empty = [p for p, v in clean.items() if not v]
    if empty:
        raise UserError(f"empty labels for: {', '.join(map(repr, empty[:5]))}")
    if len(set(clean.values())) < 2:
        raise UserError("give at least two different labels: there is nothing to tell apart yet")
    return clean


def predict_vectors(
    vectors: np.ndarray,
    paths: Sequence[str],
    labels: Mapping[str, str],
    method: str = "auto",
    *,
    seed: int = 0,
    features: Features | None = None,
    suggested: Collection[str] | None = None,
    umap: bool = True,
) -> PredictResult:
    """``predict`` on an embedding in memory: vectors (N, D), paths (N,), labels path -> label;
    ``suggested``: the labeled paths the suggestions chose (None: not known); ``umap=False``:
    ``auto`` chooses among the methods that need no UMAP fit unless it is at hand."""
    if method not in METHOD_CHOICES:
        raise UserError(f"unknown method {method!r}: use one of {', '.join(METHOD_CHOICES)}")
    paths = list(paths)
    labels = check_labels(labels, paths)
    position = {p: i for i, p in enumerate(paths)}
    labeled_idx = np.array(sorted(position[p] for p in labels), dtype=np.int64)
    given = [labels[paths[i]] for i in labeled_idx]
    features = features or Features(vectors)
    if method == "auto":
        choice = choose(vectors, labeled_idx, given, seed, features=features, umap=umap)
        used, estimate, estimates, reason = (
            choice.method,
            choice.estimate,
            choice.estimates,
            choice.reason,
        )
    else:
        used = check_method(method)
        estimate = cross_validate(vectors, labeled_idx, given, used, seed, features=features)
        estimates, reason = [estimate], f"{used} (asked for)"
    if suggested is not None:
        share = len(set(suggested) & set(labels)) / len(labels)
        estimate = replace(estimate, suggested_share=share)
    prediction = fit_predict(vectors, labeled_idx, given, used, features=features)
    covered = coverage(features, labeled_idx, given, in_umap=used in UMAP_METHODS)
    labeled = np.zeros(len(paths), dtype=bool)
    labeled[labeled_idx] = True
    return PredictResult(
        method=used,
        requested=method,
        reason=reason,
        estimate=estimate,
        estimates=estimates,
        prediction=prediction,
        paths=paths,
        image_ids=np.arange(len(paths), dtype=np.int64),
        labeled=labeled,
        labels=labels,
        coverage=covered,
    )


def predict(
    store: Store,
    dataset: Dataset | str | int,
    source: str | int,
    labels: Mapping[str, str],
    method: str = "auto",
    layer: str | None = None,
    grid: int | None = None,
    *,
    embeddings: Embeddings | None = None,
    seed: int = 0,
    suggested: Collection[str] | None = None,
    umap: bool = True,
) -> PredictResult:
    """Predict every image of ``dataset`` from ``labels`` (path -> label) on ``source``'s
    embedding (computed and cached on first use; pass ``embeddings`` to reuse loaded ones);
    ``suggested``: the labeled paths the suggestions chose (``sessions.suggested_paths``);
    ``umap=False``: no UMAP fit here (a page while its fit runs in the background)."""
    from sslviz.maps.embed import embed

    if method not in METHOD_CHOICES:  # before the (possibly slow) embedding
        raise UserError(f"unknown method {method!r}: use one of {', '.join(METHOD_CHOICES)}")
    emb = embeddings or embed(store, dataset, source, layer=layer, grid=grid)
    features = prepared_features(store, emb, method)
    result = predict_vectors(
        emb.vectors,
        emb.paths,
        labels,
        method,
        seed=seed,
        features=features,
        suggested=suggested,
        umap=umap,
    )
    return replace(
        result,
        image_ids=np.asarray(emb.image_ids, dtype=np.int64),
        source=emb.source,
        layer=emb.layer,
        grid=emb.grid,
    )


def prepared_features(store: Store, emb: Embeddings, method: str = "auto") -> Features:
    """The embedding prepared for the predictors, kept for the embedding's life
    (``sslviz.fewshot.kept``: what depends on the embedding alone is computed once), with its
    10-D UMAP cached beside it: read from the cache when there, else fitted (and cached) the
    first time a predictor needs it — never for a prediction whose method needs none (``auto``
    on its rule), so the first prediction pays no UMAP compile then. ``auto`` above
    ``geometry.MAX_ROWS`` images leaves the UMAP methods out unless the coordinates are cached
    (``estimate.candidates``). ``method`` is accepted for callers that name it."""
    from sslviz.fewshot.kept import kept_features

    return kept_features(store, emb)


def umap_needed(method: str, labels: Mapping[str, str], n_images: int) -> bool:
    """Whether predicting with ``method`` on these labels may fit the embedding's 10-D UMAP
    (``geometry``): a UMAP method asked for by name, or ``auto`` once there are enough labels
    per class to choose by CV among candidates that include the UMAP ones (up to
    ``geometry.MAX_ROWS`` images). A page fits it in the background first (never in its script)."""
    from sslviz.fewshot import geometry

    if method in UMAP_METHODS:
        return True
    if method != "auto" or n_images > geometry.MAX_ROWS:
        return False
    return not few_per_class(list(labels.values()))
