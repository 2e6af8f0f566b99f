"""How good are the predictions? Cross-validation on the labeled images, with an interval.

This is THE one way every CV accuracy in sslviz is computed (``sslviz predict``, the labeling page,
the leaderboard), so numbers shown side by side are comparable.

Scheme (decided here, documented in the README):
- Only classes with at least ``MIN_PER_CLASS`` (2) labels are held out; a class with a single
  label stays in every training fold (it can be predicted, but not tested).
- Below ``MIN_TESTED`` (10) held-out images, or fewer than 2 such classes, there is no estimate:
  ``too_few`` is True and cv_accuracy/cv_interval are None ("too few labels to estimate"; the one
  definition is ``sslviz.fewshot.enough``).
- Stratified k-fold (k = ``FOLDS``), repeated ``REPEATS`` times with different partitions (once
  with 200 or more labels, or more than ``LARGE`` images); the
  out-of-fold class probabilities of each image are averaged over repeats. Accuracy = share of
  held-out images whose averaged out-of-fold prediction is right (the confusion matrix's diagonal).
- Interval: Wilson score interval (95%) for that share over n held-out images.
- ``auto`` (``choose``) picks among several methods on the same folds, and the best of several
  noisy CV numbers is optimistic. The reported accuracy is corrected for that choice as in
  Tibshirani & Tibshirani (Ann. Appl. Stat. 2009): on every fold, the gap between the best
  method's accuracy and the chosen one's; their mean is the optimism, subtracted from the chosen
  method's CV accuracy (and its interval). Nested CV would measure the same at about five times
  the cost; the correction needs only the folds already computed.
- Beside every accuracy, ``majority_rate``: how often always answering the most common label
  would be right on the same held-out labels (90% on labels that are 90% "cat" is nothing).
- Labels the suggestions chose (TypiClust, then the least sure images) are no random sample, so
  CV on them is biased (optimistic). When most labels came from suggestions (``ACTIVE_SHARE``),
  the estimate says so (``actively_chosen``, ``ACTIVE_NOTE``).
- With too few labels to cross-validate (e.g. one per class), or too few per class to choose by
  CV (``FEW_PER_CLASS``), ``auto`` follows a rule fixed in advance (``RULE``), measured across
  five data-set families in benchmarks/fewshot_quality.py; in the second case its CV estimate is
  still reported (no choice was made, so no correction).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from sslviz.core.proportions import wilson_interval
from sslviz.fewshot import geometry
from sslviz.fewshot.enough import MIN_PER_CLASS, TOO_FEW_REASON, too_few
from sslviz.fewshot.graph import spread as _spread
from sslviz.fewshot.predictors import (
    METHODS,
    UMAP_METHODS,
    Features,
    check_method,
    encode_labels,
)
from sslviz.fewshot.predictors import predict_proba as _predict_proba

FOLDS = 5
REPEATS = 3  # fewer for many labels (see _repeats): the partition noise shrinks with n
LARGE = 20_000  # images above which CV uses one partition (see _repeats)
# What "auto" uses unless CV shows another method clearly better, and all it uses with fewer than
# FEW_PER_CLASS labels per class (median): Poisson learning on two views of the embedding. It was
# the best single method on average over five data-set families at 1, 2, 3 and 5 labels per class
# (benchmarks/fewshot_quality.py, README; 0.482 vs ensemble's 0.428 at 1 label, 0.590 vs 0.552 at
# 5), also with imbalanced classes, and needs no UMAP fit. With it as the default auto averaged
# 0.549 / 0.594 / 0.654 at 3 / 5 / 10 labels per class, with ensemble as the default 0.531 /
# 0.585 / 0.657. At 2 labels per class a choice by CV is a choice by 1-label folds of a few
# images: it picked label spreading on letters (0.377 vs Poisson's 0.487).
RULE = "poisson"
FEW_PER_CLASS = 3
# How clearly another method must beat RULE in CV for auto to leave it (``switches``).
SWITCH_SE = 1.0
SWITCH_LEAST = 0.01
ACTIVE_SHARE = 0.5  # above this share of labels from suggestions, the estimate is flagged
ACTIVE_NOTE = (
    "most labels were chosen by the suggestions, not at random: cross-validation on actively "
    "chosen labels is optimistic"
)
NOT_CANDIDATES = ("self-training", "knn", "label-spreading", "umap-spreading")  # ``candidates``


@dataclass(frozen=True)
class Estimate:
    """Cross-validated accuracy of one method on the labeled images.

    cv_accuracy / cv_interval are None when ``too_few``. confusion (K, K) counts, row = given label,
    column = out-of-fold prediction, over ``held_out`` images; out_of_fold (n,) the out-of-fold
    predicted class name of every labeled image (None where not held out); classes (K,).
    """

    method: str
    cv_accuracy: float | None  # corrected for choosing the method (see the module docstring)
    cv_interval: tuple[float, float] | None
    n_labeled: int
    too_few: bool
    confusion: np.ndarray | None
    out_of_fold: list[str | None]
    classes: list[str]
    held_out: int = 0
    correct: np.ndarray | None = None  # (n,) 1.0/0.0 per labeled image, NaN if not held out
    reason: str | None = None
    fold_correct: np.ndarray | None = None  # (R, n) per repeat: 1.0/0.0, NaN if not held out
    folds: np.ndarray | None = None  # (R, n) fold number of each labeled image per repeat
    uncorrected_cv_accuracy: float | None = (
        None  # before the selection correction (= cv_accuracy if none)
    )
    selection_correction: float = 0.0  # subtracted for choosing among methods (see docstring)
    majority_rate: float | None = None  # always the most common label, on the same labels
    suggested_share: float | None = None  # of the labels, from the suggestions (None: unknown)

    @property
    def actively_chosen(self) -> bool:
        """Most labels came from the suggestions: CV on them is optimistic (module docstring)."""
        return self.suggested_share is not None and self.suggested_share > ACTIVE_SHARE

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "cv_accuracy": self.cv_accuracy,
            "cv_interval": list(self.cv_interval) if self.cv_interval else None,
            "labeled": self.n_labeled,
            "majority_rate": self.majority_rate,
            "actively_chosen": self.actively_chosen,
            **({"reason": self.reason} if self.reason else {}),
            **(
                {
                    "uncorrected_cv_accuracy": self.uncorrected_cv_accuracy,
                    "selection_correction": round(self.selection_correction, 4),
                }
                if self.selection_correction
                else {}
            ),
        }


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
        majority = float(np.bincount(y).max() / n) if n else None
        return [
            Estimate(
                m,
                None,
                None,
                n,
                True,
                None,
                [None] * n,
                classes,
                reason=TOO_FEW_REASON,
                majority_rate=majority,
            )
            for m in methods
        ]
    features = features or Features(vectors)
    folds = _folds(
        y, seed, len(features.vectors)
    )  # (R, n) fold number per labeled image, -1 = never held out
    estimates = []
    held = folds[0] >= 0
    for method in methods:
        oof = np.zeros((n, k))
        fold_correct = np.full(folds.shape, np.nan)
        for r, repeat in enumerate(folds):
            this = _out_of_fold(features, labeled_idx, y, k, repeat, method)
            fold_correct[r, held] = (this[held].argmax(axis=1) == y[held]).astype(float)
            oof += this
        estimate = _estimate(method, oof, y, held, classes)
        estimates.append(replace(estimate, fold_correct=fold_correct, folds=folds))
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
        cv_accuracy=right / n_held,
        cv_interval=wilson_interval(right, n_held),
        n_labeled=len(y),
        too_few=False,
        confusion=confusion,
        out_of_fold=[classes[p] if h else None for p, h in zip(predicted, held, strict=True)],
        classes=classes,
        held_out=n_held,
        correct=correct,
        uncorrected_cv_accuracy=right / n_held,
        majority_rate=float(np.bincount(y[held]).max() / n_held),
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
    if method == "poisson":  # every label's unit potential in one batch, shared by the folds
        features.poisson.prepare(labeled_idx)
    for f in folds:
        test = fold_of == f
        out[test] = _predict_proba(
            features, labeled_idx[~test], y[~test], k, method, rows=labeled_idx[test]
        )
    return out


@dataclass(frozen=True)
class Choice:
    """What ``auto`` picked and why; ``estimates`` holds every candidate's estimate."""

    method: str
    estimate: Estimate
    estimates: list[Estimate]
    reason: str


def candidates(features: Features, *, umap: bool = True) -> tuple[list[str], str | None]:
    """The methods ``auto`` considers on ``features``, and why some are left out (or None).

    ``NOT_CANDIDATES`` never are. Self-training measured within 0.005 of ``umap-logreg`` (the
    model it wraps) on every family and budget, at about ten fits per CV fold. kNN, label spreading
    and umap-spreading were never the best method on a family by more than 0.001 at 2 to 10 labels
    per class, yet CV picked them by luck: without them auto (with ensemble its default then)
    averaged 0.517 / 0.567 / 0.642 at 3 / 5 / 10 labels per class instead of 0.507 / 0.567 /
    0.641, worst family -0.011 instead of -0.036 at 3. The UMAP methods need a UMAP fit on every
    image: above ``geometry.MAX_ROWS`` images they are skipped unless the coordinates are at hand
    (cached), or when the caller can't afford a fit (``umap=False``: a training run's monitor
    measures a new embedding at every checkpoint)."""
    methods = [m for m in METHODS if m not in NOT_CANDIDATES]
    if not umap and not features.has_umap:
        return [m for m in methods if m not in UMAP_METHODS], "UMAP methods skipped (no fit)"
    if len(features.vectors) > geometry.MAX_ROWS and not features.has_umap:
        note = (
            f"UMAP methods skipped: {len(features.vectors):,} images is more than "
            f"{geometry.MAX_ROWS:,} (a UMAP fit would take minutes; ask for one with --method)"
        )
        return [m for m in methods if m not in UMAP_METHODS], note
    return methods, None


def few_per_class(labels: np.ndarray | list[str]) -> bool:
    """Whether ``labels`` are too few to choose a method by CV: too few to cross-validate at all,
    or a median under ``FEW_PER_CLASS`` labels per class."""
    _, counts = np.unique(np.asarray(labels, dtype=str), return_counts=True)
    return too_few(labels) or float(np.median(counts)) < FEW_PER_CLASS


def choose(
    vectors: np.ndarray,
    labeled_idx: np.ndarray,
    labels: np.ndarray | list[str],
    seed: int = 0,
    *,
    features: Features | None = None,
    umap: bool = True,
) -> Choice:
    """Pick the method for "auto" without peeking at anything but the labels (``umap=False``:
    among the methods that need no UMAP fit, see ``candidates``).

    With too few labels to cross-validate, or few per class: ``RULE`` (fixed in advance, see the
    module docstring), with its CV estimate where there can be one.
    Otherwise every candidate is cross-validated on the same folds and ``RULE`` is kept unless
    another method's paired out-of-fold accuracy beats it by more than the standard error of the
    difference (a one-standard-error rule: the best of several noisy numbers is optimistic); the
    chosen method's estimate is then corrected for the choice (Tibshirani & Tibshirani 2009).
    """
    features = features or Features(vectors)
    methods, note = candidates(features, umap=umap)
    default = RULE
    suffix = f"; {note}" if note else ""
    if few_per_class(labels):
        # cross_validate says "too few labels" itself where there can be no estimate
        estimate = cross_validate(vectors, labeled_idx, labels, default, seed, features=features)
        why = (
            "too few labels to cross-validate"
            if estimate.too_few
            else f"under {FEW_PER_CLASS} labels per class a choice by CV is noise"
        )
        reason = (
            f"{default}: {why}, so auto follows its rule fixed in advance (the best method on "
            "average across data-set families with few labels per class)"
            + ("" if estimate.too_few else "; the estimate is its own CV accuracy")
        )
        return Choice(default, estimate, [estimate], reason)
    estimates = cross_validate_many(vectors, labeled_idx, labels, methods, seed, features=features)
    by_method = {e.method: e for e in estimates}
    base = by_method[default]
    best, reason = base, f"{default} (no other method was clearly better in CV)"
    for other in estimates:
        if other.method == default:
            continue
        gain, noise = _paired_gain(other, base)
        if switches(gain, noise) and other.cv_accuracy > best.cv_accuracy:
            best = other
            reason = (
                f"{other.method}: CV accuracy {other.cv_accuracy:.3f} vs {default} "
                f"{base.cv_accuracy:.3f} (gain {gain:+.3f} > its standard error {noise:.3f})"
            )
    corrected = corrected_for_choice(best, estimates)
    if corrected.selection_correction:
        reason += (
            f"; the estimate is lowered by {corrected.selection_correction:.3f} for choosing "
            f"among {len(estimates)} methods on the same labels"
        )
    return Choice(best.method, corrected, estimates, reason + suffix)


def switches(
    gain: float, noise: float, *, se: float | None = None, least: float | None = None
) -> bool:
    """Whether a paired CV gain over ``RULE`` (its standard error ``noise``) is clearly better:
    more than ``SWITCH_SE`` standard errors and at least ``SWITCH_LEAST``."""
    se = SWITCH_SE if se is None else se
    least = SWITCH_LEAST if least is None else least
    return gain > max(se * noise, least)


def corrected_for_choice(chosen: Estimate, estimates: list[Estimate]) -> Estimate:
    """``chosen`` with its accuracy lowered by the optimism of choosing it among ``estimates``:
    the mean over folds of (best method's fold accuracy - chosen's), Tibshirani & Tibshirani 2009.
    """
    if chosen.too_few or len(estimates) < 2 or chosen.fold_correct is None:
        return chosen
    gaps = []
    for r, fold_of in enumerate(chosen.folds):
        for f in np.unique(fold_of[fold_of >= 0]):
            test = fold_of == f
            scores = [float(np.mean(e.fold_correct[r, test])) for e in estimates]
            gaps.append(max(scores) - float(np.mean(chosen.fold_correct[r, test])))
    bias = float(np.mean(gaps)) if gaps else 0.0
    if bias <= 0:
        return chosen
    accuracy = max(0.0, chosen.cv_accuracy - bias)
    return replace(
        chosen,
        cv_accuracy=accuracy,
        cv_interval=wilson_interval(accuracy * chosen.held_out, chosen.held_out),
        selection_correction=bias,
    )


def _paired_gain(a: Estimate, b: Estimate) -> tuple[float, float]:
    """Mean and standard error of a's minus b's per-image correctness on the same held-out set."""
    held = ~np.isnan(a.correct)
    d = a.correct[held] - b.correct[held]
    return float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 1.0
