"""One leaderboard row: how a frozen source or a fine-tune is scored on the labels, and how two
rows are compared (``sslviz.fewshot.leaderboard`` builds the table from these).

Frozen rows: ``estimate.choose`` (the predictor ``auto`` would use, and its cross-validated
accuracy with a Wilson interval) on all the labels; with untouched labels, also a predictor
chosen by CV on the others, fitted there and scored on the untouched ones. Each fine-tune has two rows: its own
head's predictions on the untouched labels (what it said before it saw them), and its encoder
used as a frozen source (``FINETUNE_EMBEDDING``): the predictor ``auto`` uses without CV
(``estimate.RULE``) on its embedding, fitted on the labels it trained on, scored on the
untouched ones. The second is what fine-tuning is for here: the head alone scored 0.92-0.96x
the frozen run it started from (digits and demo, 5 labels per class), its encoder read this way
1.00-1.01x (benchmarks/leaderboard.py). Rows keep per-label records (``correct`` out-of-fold,
``holdout_correct`` on the untouched labels) so two rows compare pairwise (``clearly_better``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sslviz.fewshot.finetune_data import read_predictions

if TYPE_CHECKING:
    from sslviz.store import Dataset, Store

SWITCH_P = 0.05  # McNemar's one-sided p below which another row is "clearly better"
FINETUNE_HEAD = "finetune"  # Candidate.kind of a fine-tune's own predictions
FINETUNE_EMBEDDING = "finetune-embedding"  # Candidate.kind of a fine-tune as a frozen source


@dataclass(frozen=True)
class Candidate:
    source: str  # "pixels", "random" or a run id
    layer: str | None
    grid: int
    kind: str  # "pixels", "random", a pretext task, FINETUNE_HEAD or FINETUNE_EMBEDDING
    name: str  # how the table names it, e.g. "rotation #3"


@dataclass(frozen=True)
class Scoring:
    """What every row of one board is scored on, and where each labeled image is."""

    store: Store
    dataset: Dataset
    labels: dict[str, str]  # path -> label, checked against the dataset
    holdout: list[str]  # the labels no compared fine-tune used (empty without fine-tunes)
    row_of: dict[str, int]  # path -> the image's row in an embedding
    image_ids: dict[str, int]  # path -> image id
    fine_tunes: list[int]  # the fine-tunes compared, newest first
    notes: dict[int, str]  # why each other fine-tune is not compared
    background: bool  # missing embeddings: a background job instead of computing them here
    should_stop: Callable[[], bool] | None = None  # an embedding's cancel (``maps.embed.embed``)


@dataclass(frozen=True)
class Row:
    """One candidate's scores. ``cv_*``: cross-validated on all labels (frozen rows only);
    ``holdout_*``: on the shared held-out labels (when a fine-tune is compared)."""

    source: str
    layer: str | None
    grid: int
    method: str  # the predictor ("logreg", ...), or "fine-tuned head"
    cv_accuracy: float | None
    cv_interval: tuple[float, float] | None
    kind: str
    name: str
    fine_tuned: bool = False
    holdout_accuracy: float | None = None
    holdout_interval: tuple[float, float] | None = None
    note: str | None = None
    pending_run: int | None = None  # the embedding job computing its embeddings
    # per-label right (1) / wrong (0) out-of-fold on all labels (sorted by path), the same labels
    # and folds for every frozen row of a board; None where a label was not held out
    correct: tuple[float | None, ...] | None = None
    # with fine-tunes: the predictor chosen without the untouched labels, and its per-label
    # record on them (the same labels for every row: fine-tunes compare through these)
    holdout_method: str | None = None
    holdout_correct: tuple[float, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("correct", "holdout_correct"):
            out[key] = list(out[key]) if out[key] is not None else None
        for key in ("cv_interval", "holdout_interval"):
            out[key] = list(out[key]) if out[key] is not None else None
        return out


def paired_records(
    candidate: Row, current: Row
) -> tuple[tuple[float | None, ...], tuple[float | None, ...]] | None:
    """The two rows' per-label records on the same labels: out-of-fold on every label where both
    have one (frozen rows: the comparison fine-tunes don't change), else on the untouched labels
    (a fine-tune against anything), else None."""
    if candidate.correct is not None and current.correct is not None:
        return candidate.correct, current.correct
    if candidate.holdout_correct is not None and current.holdout_correct is not None:
        return candidate.holdout_correct, current.holdout_correct
    return None


def clearly_better(candidate: Row, current: Row) -> tuple[bool, int, int, float]:
    """Whether ``candidate`` beats ``current`` on the same labels by more than luck:
    McNemar's exact test (one-sided, p < SWITCH_P) on the labels one gets right and the other
    wrong (``paired_records``). Returns (clearly better, its wins, its losses, p). Rows without
    paired records (pending, too few labels) are never clearly better."""
    from scipy.stats import binomtest

    records = paired_records(candidate, current)
    if records is None:
        return False, 0, 0, 1.0
    pairs = [(a, b) for a, b in zip(*records, strict=False) if a is not None and b is not None]
    wins = sum(1 for a, b in pairs if a > b)
    losses = sum(1 for a, b in pairs if a < b)
    if wins <= losses:
        return False, wins, losses, 1.0
    p = float(binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue)
    return p < SWITCH_P, wins, losses, p


def frozen_row(
    scoring: Scoring, candidate: Candidate, stage: Callable[[str], None], *, cv: Row | None = None
) -> Row:
    """CV with ``choose`` on all the labels (``cv``: that row already computed, e.g. cached from
    a ranking without fine-tunes: a fine-tune never changes it). With a shared untouched set,
    also: the predictor chosen by CV on the other labels, fitted there and scored on the
    untouched ones. A fine-tune's encoder (``FINETUNE_EMBEDDING``) gets ``auto``'s rule instead,
    scored on the untouched labels only (a CV on labels it trained on would flatter it)."""
    from sslviz.fewshot.estimate import RULE, choose
    from sslviz.fewshot.predict import prepared_features
    from sslviz.maps.embed import cached_embeddings, embed

    store, dataset, labels, row_of = scoring.store, scoring.dataset, scoring.labels, scoring.row_of
    named = {**_identity(candidate), "fine_tuned": candidate.kind == FINETUNE_EMBEDDING}
    emb = cached_embeddings(
        store, dataset, candidate.source, layer=candidate.layer, grid=candidate.grid
    )
    if emb is None and scoring.background:
        job = _embedding_job(store, dataset, candidate)
        note = f"embedding in the background (run {job})"
        return Row(
            **named, method="-", cv_accuracy=None, cv_interval=None, note=note, pending_run=job
        )
    if emb is None:
        stage("embedding")
        emb = embed(
            store,
            dataset,
            candidate.source,
            layer=candidate.layer,
            grid=candidate.grid,
            should_stop=scoring.should_stop,
        )
    features = prepared_features(store, emb)  # the UMAP read from its cache after the first time
    if named["fine_tuned"]:
        row = Row(**named, method=RULE, cv_accuracy=None, cv_interval=None)
    elif cv is not None:
        row = cv
    else:
        stage("cross-validating")
        paths = sorted(labels)
        idx = np.array([row_of[p] for p in paths])
        choice = choose(features.vectors, idx, [labels[p] for p in paths], features=features)
        row = Row(
            **named,
            method=choice.method,
            cv_accuracy=choice.estimate.cv_accuracy,
            cv_interval=choice.estimate.cv_interval,
            correct=_record(choice.estimate.correct),
        )
    if not scoring.holdout:
        return row
    stage("scoring")
    return _scored_on_untouched(row, features, scoring)


def _scored_on_untouched(row: Row, features: Any, scoring: Scoring) -> Row:
    """``row`` with its accuracy on the untouched labels: a predictor chosen by CV on the other
    labels (a fine-tune's encoder: ``auto``'s rule), fitted on them, scored on the untouched."""
    from sslviz.fewshot.estimate import choose, wilson_interval
    from sslviz.fewshot.predictors import fit_predict

    labels, holdout, row_of = scoring.labels, scoring.holdout, scoring.row_of
    test = set(holdout)
    paths = sorted(p for p in labels if p not in test)  # the labels allowed to choose and fit
    idx = np.array([row_of[p] for p in paths])
    y = [labels[p] for p in paths]
    method = row.method
    if not row.fine_tuned:
        method = choose(features.vectors, idx, y, features=features).method
    prediction = fit_predict(features.vectors, idx, y, method, features=features)
    right = tuple(float(prediction.labels[row_of[p]] == labels[p]) for p in holdout)
    return replace(
        row,
        holdout_method=method,
        holdout_accuracy=sum(right) / len(holdout),
        holdout_interval=wilson_interval(int(sum(right)), len(holdout)),
        holdout_correct=right,
    )


def _identity(candidate: Candidate) -> dict[str, Any]:
    """The fields of a row that say which candidate it is."""
    return {
        "source": candidate.source,
        "layer": candidate.layer,
        "grid": candidate.grid,
        "kind": candidate.kind,
        "name": candidate.name,
    }


def _record(correct: np.ndarray | None) -> tuple[float | None, ...] | None:
    """An estimate's per-label record (NaN = not held out) as JSON-able values."""
    if correct is None:
        return None
    return tuple(None if np.isnan(v) else float(v) for v in correct)


def not_compared_row(candidate: Candidate, note: str | None) -> Row:
    """A fine-tune's row with nothing honest to score it on, and why."""
    return Row(
        **_identity(candidate),
        method="-",
        cv_accuracy=None,
        cv_interval=None,
        fine_tuned=True,
        note=note,
    )


def fine_tuned_row(scoring: Scoring, candidate: Candidate) -> Row:
    """A fine-tune's own predictions on the shared untouched labels (never on labels it used)."""
    from sslviz.fewshot.estimate import wilson_interval
    from sslviz.fewshot.finetune_result import finetune_result

    store, labels, holdout = scoring.store, scoring.labels, scoring.holdout
    run_id = int(candidate.source)
    row = Row(
        **_identity(candidate),
        method="fine-tuned head",
        cv_accuracy=None,
        cv_interval=None,
        fine_tuned=True,
        note=scoring.notes.get(run_id),
    )
    if run_id not in scoring.fine_tunes:
        return row
    saved = read_predictions(store.workspace.run_dir(run_id))
    result = finetune_result(store, run_id)
    if saved is None or result is None:
        return replace(row, note="its predictions are missing")
    if result.get("semi_supervised"):
        row = replace(row, method="fine-tuned (FixMatch)")
    ids, probabilities, classes = saved
    at = {int(image_id): k for k, image_id in enumerate(ids)}  # image id -> prediction row
    # its own untouched labels: what it said before it saw them; labels it never had: its
    # final predictions
    before = result.get("holdout_predictions") or {}
    guesses = {
        p: before[p]
        if p in before
        else classes[int(probabilities[at[scoring.image_ids[p]]].argmax())]
        for p in holdout
    }
    right = [float(guesses[p] == labels[p]) for p in holdout]
    interval = wilson_interval(int(sum(right)), len(holdout))
    return replace(
        row,
        holdout_accuracy=sum(right) / len(holdout),
        holdout_interval=interval,
        holdout_correct=tuple(right),
    )


def _embedding_job(store: Store, dataset: Dataset, candidate: Candidate) -> int:
    """The embedding (+ map) job computing ``candidate``'s embeddings: an identical queued or
    running one, else a new one."""
    from sslviz.maps.embedding_job import job_request
    from sslviz.runner import jobs

    request = job_request(
        store, dataset, candidate.source, layer=candidate.layer, grid=candidate.grid
    )
    return jobs.submit(store, request, reuse_active=True).id


def row_from_json(values: dict[str, Any]) -> Row:
    for key in ("cv_interval", "holdout_interval", "correct", "holdout_correct"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    return Row(**values)
