"""How good are the predictions? Cross-validation on the labeled images, with an interval.

This is THE one way every CV accuracy in sslviz is computed (``sslviz predict``, the labeling page,
the leaderboard), so numbers shown side by side are comparable.

Scheme (decided here, documented in the README):
- Only classes with at least ``MIN_PER_CLASS`` (2) labels are held out; a class with a single
  label stays in every training fold (it can be predicted, but not tested).
- Below ``MIN_LABELED`` (10) held-out images, or fewer than 2 such classes, there is no estimate:
  ``too_few`` is True and accuracy/interval are None ("too few labels to estimate").
- Stratified k-fold (k = ``FOLDS``), repeated ``REPEATS`` times with different partitions (once
  with 200 or more labels, or more than ``LARGE`` images); the
  out-of-fold class probabilities of each image are averaged over repeats. Accuracy = share of
  held-out images whose averaged out-of-fold prediction is right (the confusion matrix's diagonal).
- Interval: Wilson score interval (95%) for that share over n held-out images. It does not include
  the optimism of choosing among methods on the same labels; ``choose`` keeps that small by
  preferring logistic regression unless another method is better by more than its noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sslviz.core.proportions import wilson_interval
from sslviz.fewshot.predictors import METHODS, Features, check_method, encode_labels
from sslviz.fewshot.predictors import predict_proba as _predict_proba
from sslviz.fewshot.predictors import spread as _spread

MIN_PER_CLASS = 2
MIN_LABELED = 10
FOLDS = 5
REPEATS = 3  # fewer for many labels (see _repeats): the partition noise shrinks with n
LARGE = 20_000  # images above which CV uses one partition (see _repeats)
DEFAULT_METHOD = "logreg"  # what "auto" uses when there is no estimate to choose by
TOO_FEW_REASON = (
    f"too few labels to estimate: give at least {MIN_LABELED} labeled images, with at least "
    f"{MIN_PER_CLASS} in each of two or more labels"
)


@dataclass(frozen=True)
class Estimate:
    """Cross-validated accuracy of one method on the labeled images.

    accuracy / interval are None when ``too_few``. confusion (K, K) counts, row = given label,
    column = out-of-fold prediction, over ``held_out`` images; out_of_fold (n,) the out-of-fold
    predicted class name of every labeled image (None where not held out); classes (K,).
    """

    method: str
    accuracy: float | None
    interval: tuple[float, float] | None
    n_labeled: int
    too_few: bool
    confusion: np.ndarray | None
    out_of_fold: list[str | None]
    classes: list[str]
    held_out: int = 0
    correct: np.ndarray | None = None  # (n,) 1.0/0.0 per labeled image, NaN if not held out
    reason: str | None = None

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "cv_accuracy": self.accuracy,
            "cv_interval": list(self.interval) if self.interval else None,
            "labeled": self.n_labeled,
            **({"reason": self.reason} if self.reason else {}),
        }


def too_few(labels: np.ndarray | list[str]) -> bool:
    """Whether ``labels`` (n,) are too few for a cross-validated estimate (module docstring)."""
    names, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    testable = counts[counts >= MIN_PER_CLASS]
    return len(testable) < 2 or testable.sum() < MIN_LABELED


def cross_validate(
    vectors: np.ndarray,
    labeled_idx: np.ndarray,
    labels: np.ndarray | list[str],
    method: str,
    seed: int = 0,
    *,
    features: Features | None = None,
) -> Estimate:
    """Stratified, repeated k-fold CV of ``method`` on the labeled rows of ``vectors`` (N, D)."""
    return cross_validate_many(vectors, labeled_idx, labels, [method], seed, features=features)[0]


def cross_validate_many(
    vectors: np.ndarray,
    labeled_idx: np.ndarray,
    labels: np.ndarray | list[str],
    methods: list[str],
    seed: int = 0,
    *,
    features: Features | None = None,
) -> list[Estimate]:
    """``cross_validate`` for several methods on the same folds (paired: compared fairly)."""
    for method in methods:
        check_method(method)
    labeled_idx = np.asarray(labeled_idx, dtype=np.int64)
    y, classes = encode_labels(labels)
    n, k = len(y), len(classes)
    if too_few(labels):
        return [
            Estimate(m, None, None, n, True, None, [None] * n, classes, reason=TOO_FEW_REASON)
            for m in methods
        ]
    features = features or Features(vectors)
    folds = _folds(
        y, seed, len(features.vectors)
    )  # (R, n) fold number per labeled image, -1 = never held out
    estimates = []
    for method in methods:
        oof = np.zeros((n, k))
        for repeat in folds:
            oof += _out_of_fold(features, labeled_idx, y, k, repeat, method)
        estimates.append(_estimate(method, oof, y, folds[0] >= 0, classes))
    return estimates


def _estimate(
    method: str, oof: np.ndarray, y: np.ndarray, held: np.ndarray, classes: list[str]
) -> Estimate:
    predicted = oof.argmax(axis=1)
    correct = np.where(held, (predicted == y).astype(float), np.nan)
    n_held = int(held.sum())
    right = int(np.nansum(correct))
    confusion = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(confusion, (y[held], predicted[held]), 1)
    return Estimate(
        method=method,
        accuracy=right / n_held,
        interval=wilson_interval(right, n_held),
        n_labeled=len(y),
        too_few=False,
        confusion=confusion,
        out_of_fold=[classes[p] if h else None for p, h in zip(predicted, held, strict=True)],
        classes=classes,
        held_out=n_held,
        correct=correct,
    )


def _repeats(n: int, n_rows: int) -> int:
    # Repeats average out the partition's luck at small n; on a large dataset each label
    # spreading fold is a propagation over every image, so one partition has to do.
    return REPEATS if n < 200 and n_rows <= LARGE else 1


def _folds(y: np.ndarray, seed: int, n_rows: int) -> np.ndarray:
    """(R, n) stratified fold numbers: each class's images dealt round-robin after a shuffle."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    out = np.full((_repeats(len(y), n_rows), len(y)), -1, dtype=np.int64)
    for r in range(len(out)):
        offset = 0
        for c in np.flatnonzero(counts >= MIN_PER_CLASS):
            members = rng.permutation(np.flatnonzero(y == c))
            out[r, members] = (offset + np.arange(len(members))) % FOLDS
            offset += len(members)  # continue the deal: small classes spread over folds
    return out


def _out_of_fold(
    features: Features,
    labeled_idx: np.ndarray,
    y: np.ndarray,
    k: int,
    fold_of: np.ndarray,
    method: str,
) -> np.ndarray:
    """(n, k) out-of-fold probabilities of the labeled images (zeros where never held out)."""
    out = np.zeros((len(y), k))
    folds = [f for f in range(FOLDS) if (fold_of == f).any()]
    if method == "label-spreading":
        # All folds in one propagation: each fold is a separate set of seed columns.
        train_idx = np.full((len(folds), len(y)), -1, dtype=np.int64)
        train_y = np.zeros((len(folds), len(y)), dtype=np.int64)
        for row, f in enumerate(folds):
            keep = fold_of != f
            train_idx[row, keep] = labeled_idx[keep]
            train_y[row] = y
        probabilities = _spread(features.graph, train_idx, train_y, k)  # (F, N, k)
        for row, f in enumerate(folds):
            test = fold_of == f
            out[test] = probabilities[row, labeled_idx[test]]
        return out
    for f in folds:
        test = fold_of == f
        out[test] = _predict_proba(
            features, labeled_idx[~test], y[~test], k, method, rows=labeled_idx[test]
        )
    return out


@dataclass(frozen=True)
class Choice:
    """What ``auto`` picked and why; ``estimates`` holds every method's estimate."""

    method: str
    estimate: Estimate
    estimates: list[Estimate]
    reason: str


def choose(
    vectors: np.ndarray,
    labeled_idx: np.ndarray,
    labels: np.ndarray | list[str],
    seed: int = 0,
    *,
    features: Features | None = None,
) -> Choice:
    """Pick the method for "auto" by CV on the labeled images, conservatively.

    Logistic regression unless another method's paired out-of-fold accuracy beats it by more than
    the standard error of the difference (a one-standard-error rule: picking the best of three
    noisy numbers is optimistic, and logistic regression is the choice that generalises across data
    sets). With too few labels there is nothing to choose by: logistic regression.
    """
    features = features or Features(vectors)
    estimates = cross_validate_many(
        vectors, labeled_idx, labels, list(METHODS), seed, features=features
    )
    by_method = {e.method: e for e in estimates}
    base = by_method[DEFAULT_METHOD]
    if base.too_few:
        return Choice(DEFAULT_METHOD, base, estimates, TOO_FEW_REASON)
    best, reason = base, "logistic regression (no other method was clearly better in CV)"
    for other in estimates:
        if other.method == DEFAULT_METHOD:
            continue
        gain, noise = _paired_gain(other, base)
        if gain > max(noise, 0.01) and other.accuracy > best.accuracy:
            best = other
            reason = (
                f"{other.method}: CV accuracy {other.accuracy:.3f} vs logistic regression "
                f"{base.accuracy:.3f} (gain {gain:+.3f} > its standard error {noise:.3f})"
            )
    return Choice(best.method, best, estimates, reason)


def _paired_gain(a: Estimate, b: Estimate) -> tuple[float, float]:
    """Mean and standard error of a's minus b's per-image correctness on the same held-out set."""
    held = ~np.isnan(a.correct)
    d = a.correct[held] - b.correct[held]
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 1.0
