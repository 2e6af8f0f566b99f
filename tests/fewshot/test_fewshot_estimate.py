"""The cross-validated estimate: its interval, "too few labels", the confusion matrix and
out-of-fold labels, and the conservative choice of method for "auto"."""

from __future__ import annotations

import numpy as np
import pytest
from test_fewshot_predictors import blobs, chains, first

from sslviz.fewshot.enough import MIN_TESTED as MIN_LABELED
from sslviz.fewshot.enough import too_few
from sslviz.fewshot.estimate import (
    NOT_CANDIDATES,
    RULE,
    choose,
    cross_validate,
    wilson_interval,
)
from sslviz.fewshot.predictors import METHODS


def test_wilson_interval_known_values_and_properties() -> None:
    low, high = wilson_interval(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)  # textbook value
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(10, 10)[0] < 1.0
    narrow = wilson_interval(80, 100)
    assert narrow[0] > low and narrow[1] < high  # more images, tighter
    for k, n in [(0, 5), (3, 7), (50, 50)]:
        lo, hi = wilson_interval(k, n)
        assert 0 <= lo <= k / n <= hi <= 1


def test_too_few_labels_gives_no_number() -> None:
    x, y = blobs()
    one_each = first(y, 1)
    assert too_few(y[one_each])
    estimate = cross_validate(x, one_each, y[one_each], "logreg")
    assert estimate.too_few and estimate.cv_accuracy is None and estimate.cv_interval is None
    assert "too few labels" in estimate.reason
    assert estimate.to_json()["cv_accuracy"] is None
    nine = first(y, 3)  # 9 images in 3 classes: under MIN_LABELED
    assert MIN_LABELED == 10 and too_few(y[nine])
    assert not too_few(y[first(y, 4)])


def test_separable_data_estimates_high_and_interval_reflects_n() -> None:
    x, y = blobs()
    idx = first(y, 5)
    e = cross_validate(x, idx, y[idx], "logreg")
    assert not e.too_few and e.cv_accuracy == 1.0
    assert e.cv_interval[1] == 1.0 and 0.7 < e.cv_interval[0] < 1.0  # 15 images can't prove 99 %
    assert e.confusion.sum() == e.held_out == 15
    assert np.trace(e.confusion) / e.held_out == e.cv_accuracy
    assert e.out_of_fold == list(y[idx])


def test_random_labels_estimate_chance_and_flag_disagreements() -> None:
    x, _ = blobs(n=300, classes=1)
    rng = np.random.default_rng(0)
    idx = rng.choice(300, 60, replace=False)
    noise = rng.choice(["a", "b", "c"], 60)
    e = cross_validate(x, idx, noise, "logreg")
    lo, hi = e.cv_interval
    assert lo < 1 / 3 < hi  # nothing to learn: the interval covers chance
    wrong = [o != g for o, g in zip(e.out_of_fold, noise, strict=True)]
    assert sum(wrong) == e.held_out - np.trace(e.confusion)


def test_a_class_with_one_label_trains_but_is_not_tested() -> None:
    x, y = blobs()
    idx = np.concatenate([first(y[y != "c2"], 6), np.flatnonzero(y == "c2")[:1]])
    idx = np.concatenate(
        [
            np.flatnonzero(y == "c0")[:6],
            np.flatnonzero(y == "c1")[:6],
            np.flatnonzero(y == "c2")[:1],
        ]
    )
    e = cross_validate(x, idx, y[idx], "knn")
    assert e.held_out == 12 and e.out_of_fold[-1] is None


@pytest.mark.slow  # two UMAP fits and four methods cross-validated
def test_choose_keeps_its_rule_unless_another_is_clearly_better() -> None:
    x, y = blobs()
    idx = first(y, 5)
    choice = choose(x, idx, y[idx])
    assert choice.method == RULE  # all (nearly) perfect: no reason to leave the default
    assert {e.method for e in choice.estimates} == set(METHODS) - set(NOT_CANDIDATES)
    assert {"logreg", "umap-logreg", "ensemble", "poisson"} <= set(METHODS) - set(NOT_CANDIDATES)
    # Poisson's whitened view weighs the 18 noise directions of these blobs like the 2 that
    # separate them: one slip in one fold of one repeat, and a correction of that size
    assert choice.estimate.selection_correction <= 0.1
    assert choice.estimate.cv_accuracy >= 0.9

    cx, cy = chains()
    rng = np.random.default_rng(0)
    cidx = np.concatenate([rng.choice(np.flatnonzero(cy == c), 8, replace=False) for c in "ab"])
    chained = choose(cx, cidx, cy[cidx])
    logreg = next(e for e in chained.estimates if e.method == "logreg")
    assert chained.method != "logreg", chained.reason  # the XOR defeats any linear model
    assert chained.estimate.cv_accuracy > logreg.cv_accuracy


@pytest.mark.slow  # a UMAP fit and four methods cross-validated
def test_the_chosen_estimate_is_corrected_for_the_choice() -> None:
    """Picking the best of several noisy CV scores is optimistic: the reported accuracy is the
    chosen method's CV accuracy minus the mean per-fold gap to the best (never above it)."""
    x, y = blobs(classes=4, dim=40)
    x = x + np.random.default_rng(1).normal(0, 8, x.shape).astype(np.float32)  # overlapping
    idx = first(y, 4)
    choice = choose(x, idx, y[idx])
    e = choice.estimate
    # the optimism, computed here from every candidate's per-fold results (Tibshirani &
    # Tibshirani 2009): on these overlapping blobs no method is best on every fold, so it is > 0
    chosen = next(c for c in choice.estimates if c.method == choice.method)
    gaps = []
    for r, fold_of in enumerate(chosen.folds):
        for f in np.unique(fold_of[fold_of >= 0]):
            test = fold_of == f
            best = max(np.mean(c.fold_correct[r, test]) for c in choice.estimates)
            gaps.append(best - np.mean(chosen.fold_correct[r, test]))
    assert np.mean(gaps) > 0.01  # the test means something only where there is optimism
    assert e.selection_correction == pytest.approx(np.mean(gaps))
    assert e.cv_accuracy == pytest.approx(
        chosen.cv_accuracy - np.mean(gaps)
    )  # applied, not just said
    assert (
        e.uncorrected_cv_accuracy == chosen.cv_accuracy
        and e.cv_accuracy < e.uncorrected_cv_accuracy
    )
    assert e.cv_interval[0] <= e.cv_accuracy <= e.cv_interval[1]
    assert "lowered by" in choice.reason


def test_the_correction_is_the_mean_per_fold_gap_to_the_best() -> None:
    """``corrected_for_choice`` by hand: the chosen method wins fold 0 and loses fold 1 by half
    its images, so the optimism is (0 + 0.5) / 2 and the reported accuracy drops by 0.25."""
    from sslviz.fewshot.estimate import Estimate, corrected_for_choice

    folds = np.array([[0, 0, 1, 1]])

    def estimate(method: str, right: list[float]) -> Estimate:
        correct = np.array(right)
        return Estimate(
            method,
            correct.mean(),
            (0.0, 1.0),
            4,
            False,
            None,
            [None] * 4,
            ["a", "b"],
            held_out=4,
            correct=correct,
            fold_correct=correct[None, :],
            folds=folds,
            uncorrected_cv_accuracy=correct.mean(),
        )

    chosen = estimate("poisson", [1, 1, 1, 0])  # folds: 1.0, 0.5
    other = estimate("logreg", [1, 0, 1, 1])  # folds: 0.5, 1.0
    e = corrected_for_choice(chosen, [chosen, other])
    assert e.selection_correction == pytest.approx(0.25)
    assert e.cv_accuracy == pytest.approx(0.75 - 0.25) and e.uncorrected_cv_accuracy == 0.75
    assert corrected_for_choice(chosen, [chosen]).cv_accuracy == 0.75  # no choice, no correction


def test_with_one_label_per_class_auto_follows_its_rule_and_says_so() -> None:
    x, y = blobs()
    idx = first(y, 1)
    choice = choose(x, idx, y[idx])
    assert choice.method == RULE == "poisson" and choice.estimate.too_few
    assert choice.estimate.cv_accuracy is None and "rule fixed in advance" in choice.reason
    # with enough labels to cross-validate, the rule is only the default CV has to beat
    assert choose(x, first(y, 4), y[first(y, 4)]).method == RULE


def test_with_two_labels_per_class_auto_keeps_its_rule_but_still_estimates() -> None:
    x, y = blobs(classes=6)
    idx = first(y, 2)  # 12 labels: enough to cross-validate, too few to choose by it
    choice = choose(x, idx, y[idx])
    assert choice.method == RULE and len(choice.estimates) == 1
    e = choice.estimate
    assert not e.too_few and e.cv_accuracy is not None and e.selection_correction == 0.0
    assert (
        e.cv_interval[0] <= e.cv_accuracy <= e.cv_interval[1]
        and "rule fixed in advance" in choice.reason
    )


def test_the_estimate_is_reproducible() -> None:
    x, y = blobs(classes=4)
    idx = first(y, 4)
    a = cross_validate(x, idx, y[idx], "label-spreading", seed=3)
    b = cross_validate(x, idx, y[idx], "label-spreading", seed=3)
    assert a.cv_accuracy == b.cv_accuracy and a.out_of_fold == b.out_of_fold
    with pytest.raises(Exception, match="unknown method"):
        cross_validate(x, idx, y[idx], "forest")
