"""Which source predicts *my* labels best? One row per candidate, measured the same way.

    board = leaderboard(store, "digits", labels)        # labels: path -> label
    board.rows[0]                                       # the best row
    board.to_json()                                     # `sslviz leaderboard --json`

Candidates: the ``pixels`` and ``random`` baselines, every finished pretext run of the dataset at
its default layer and one more (the next deeper, else the one before), and every finished
fine-tune. Frozen rows are scored by ``estimate.choose`` (the predictor ``auto`` would use, and
its cross-validated accuracy with a Wilson interval: THE one way sslviz computes CV accuracy).

Honesty. A fine-tuned model can't be cross-validated on labels it trained on or chose its
checkpoint by, so fine-tuned rows are compared on the labels no included fine-tune used for
anything (its untouched labels; fine-tunes on the same labels share them,
``finetune_data.split_labels``). Every row, frozen or fine-tuned, gets ``holdout_accuracy``
there, and those labels choose nothing for any row: frozen rows pick their predictor by CV on
the other labels (that CV is their ``cv_accuracy`` then), fit it there, and are scored on the
untouched ones. The table is then ranked by that column, the only one all rows share. Without
fine-tunes it is ranked by the CV accuracy. With too few labels it says "too few labels to rank"
and ranks nothing.

Switching. Every row keeps its per-label right/wrong record (``correct``: out-of-fold, or on the
untouched labels), and all rows are scored on the same labels and folds, so two rows compare
pairwise: ``clearly_better`` (McNemar's exact test, one-sided, 5%) is what a page needs before it
recommends another source. A tie is no reason to switch.

Progress. ``leaderboard(..., on_progress=stage)`` calls ``stage(name, done, total)`` before each
stage (embedding one source, cross-validating it) and once at the end (``done == total``).

Rows are cached per label set and source version (``<dataset_dir>/leaderboard/<sha>.json``):
a new run or fine-tune computes only its own rows. Embeddings come from ``sslviz.maps.embed``'s
cache; on a dataset too large to embed inline (``embedding_job.runs_inline``: a few thousand
images) a missing one is computed by a background embedding job (``pending_run``) instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sslviz.core.atomic import write_json
from sslviz.core.errors import UserError
from sslviz.fewshot.finetune_data import labels_file, labels_sha, read_label_file, read_predictions

Progress = Callable[[str, int, int], None]  # (stage name, stages done, stages in all)

if TYPE_CHECKING:
    from sslviz.store import Dataset, Run, Store

MIN_COMPARE = 6  # held-out labels needed (in >= 2 classes) to compare fine-tuned rows
SWITCH_P = 0.05  # McNemar's one-sided p below which another row is "clearly better"
TOO_FEW_TO_RANK = "too few labels to rank"
_CACHE_VERSION = 2  # 2: frozen rows choose without the untouched labels; per-label records


@dataclass(frozen=True)
class Candidate:
    source: str  # "pixels", "random" or a run id
    layer: str | None
    grid: int
    kind: str  # "pixels", "random", a pretext task, or "finetune"
    name: str  # how the table names it, e.g. "rotation #3"


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
    # per-label right (1) / wrong (0) on the labels the ranking column is measured on (the
    # untouched ones, or out-of-fold on the sorted labels), the same for every row of a board;
    # None where a label was not scored: for paired comparisons
    correct: tuple[float | None, ...] | None = None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["correct"] = list(self.correct) if self.correct is not None else None
        for key in ("cv_interval", "holdout_interval"):
            out[key] = list(out[key]) if out[key] is not None else None
        return out


@dataclass(frozen=True)
class Leaderboard:
    dataset: str
    labeled: int
    rows: list[Row]  # best first (unranked, in candidate order, when ``too_few``)
    ranked_by: str | None  # "holdout_accuracy", "cv_accuracy" or None
    too_few: bool
    message: str | None
    holdout: list[str] = field(default_factory=list)  # the shared held-out paths
    fine_tunes: list[int] = field(default_factory=list)  # the fine-tunes compared
    seconds: float = 0.0  # how long it took (cached rows cost nothing)
    computed: int = 0  # rows computed now (the others came from the cache)

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "labeled": self.labeled,
            "rows": [row.to_json() for row in self.rows],
            "ranked_by": self.ranked_by,
            "too_few": self.too_few,
            "message": self.message,
            "holdout_labels": len(self.holdout),
            "fine_tunes": self.fine_tunes,
            "seconds": round(self.seconds, 3),
            "computed": self.computed,
        }


# --- candidates -----------------------------------------------------------------------------------
def candidates(store: Store, dataset: Dataset) -> list[Candidate]:
    """Baselines, each finished pretext run at two layers, each finished fine-tune."""
    from sslviz.maps.embed import available_layers, default_layer
    from sslviz.store.kinds import run_kind

    out = [
        Candidate("pixels", *default_layer(store, "pixels"), "pixels", "pixels"),
        Candidate("random", *default_layer(store, "random"), "random", "random init"),
    ]
    for run in _finished_runs(store, dataset):
        kind = run_kind(run.task)
        if kind.name == "finetune":
            grid = int(run.config.get("grid") or 1)
            name = f"fine-tune #{run.id} of #{run.parent_id}"
            out.append(Candidate(str(run.id), run.config.get("layer"), grid, "finetune", name))
        elif kind.pretext and kind.has_encoder:
            layer, grid = default_layer(store, str(run.id))
            layers = available_layers(store, str(run.id))
            at = layers.index(layer)
            other = layers[at + 1] if at + 1 < len(layers) else layers[at - 1] if at else None
            for each in (layer, other) if other else (layer,):
                out.append(Candidate(str(run.id), each, grid, run.task, f"{run.task} #{run.id}"))
    return out


def _finished_runs(store: Store, dataset: Dataset) -> list[Run]:
    return [r for r in store.runs.list(("finished",)) if r.dataset_id == dataset.id]


# --- the table ------------------------------------------------------------------------------------
def leaderboard(
    store: Store,
    dataset: Dataset | int | str,
    labels: Mapping[str, str],
    *,
    background: bool | None = None,
    on_progress: Progress | None = None,
) -> Leaderboard:
    """Score every candidate on ``labels`` (path -> label) and rank them (module docstring).

    ``background`` (default: datasets too large to embed inline) submits embedding jobs for missing
    embeddings instead of computing them here; those rows wait with ``pending_run`` set.
    ``on_progress(stage, done, total)`` is told each stage before it starts."""
    import time

    from sslviz.fewshot.estimate import TOO_FEW_REASON, too_few
    from sslviz.maps.embed import resolve_dataset

    started = time.perf_counter()
    report = on_progress or (lambda stage, done, total: None)
    report("finding sources", 0, 1)
    dataset = resolve_dataset(store, dataset)
    labels = {str(p): str(v) for p, v in labels.items()}
    images = store.datasets.images(dataset.id)
    row_of = {image.path: i for i, image in enumerate(images)}
    unknown = sorted(set(labels) - set(row_of))
    if unknown:
        raise UserError(f"{len(unknown)} labeled paths are not in {dataset.name!r}: {unknown[0]}")
    if len(set(labels.values())) < 2:
        raise UserError("the leaderboard needs labels of at least 2 classes: label more images")
    if background is None:
        from sslviz.maps.embedding_job import runs_inline

        background = not runs_inline(dataset.n_images)

    found = candidates(store, dataset)
    fine_tunes, holdout, notes = _comparable_fine_tunes(store, found, labels)
    sha = labels_sha(labels)
    cache = _read_cache(store, dataset, sha)
    test_key = labels_sha({p: labels[p] for p in holdout}) if holdout else "-"
    keys = {c: f"{_version(store, c)}|{test_key}" for c in found if c.kind != "finetune"}
    todo = [c for c in found if c.kind != "finetune" and keys[c] not in cache]
    rows, computed = [], 0
    for candidate in found:
        if candidate.kind == "finetune":
            ids = {image.path: image.id for image in images}
            row = _fine_tuned_row(store, candidate, labels, holdout, ids, fine_tunes, notes)
        elif keys[candidate] in cache:
            row = _row_from_json(cache[keys[candidate]])
        else:
            stage = f"{candidate.name} · {candidate.layer}"
            row = _frozen_row(store, dataset, candidate, labels, holdout, row_of, background,
                              lambda what, s=stage, n=computed: report(f"{what} {s}", n, len(todo)))  # fmt: skip
            computed += 1
            if row.pending_run is None:
                cache[keys[candidate]] = row.to_json()
        rows.append(row)
    if computed:
        _write_cache(store, dataset, sha, cache)
    report("done", max(1, len(todo)), max(1, len(todo)))

    def board(
        rows: list[Row], ranked_by: str | None, too: bool, message: str | None
    ) -> Leaderboard:
        return Leaderboard(dataset.name, len(labels), rows, ranked_by, too, message, holdout,
                           fine_tunes if ranked_by else [], time.perf_counter() - started,
                           computed)  # fmt: skip

    if too_few(list(labels.values())):
        message = (
            f"{TOO_FEW_TO_RANK}: {TOO_FEW_REASON.removeprefix('too few labels to estimate: ')}"
        )
        return board(rows, None, True, message)
    ranked_by = "holdout_accuracy" if fine_tunes else "cv_accuracy"

    def rank(row: Row) -> tuple[float, float]:
        first, second = getattr(row, ranked_by), row.cv_accuracy
        return (-(first if first is not None else -1.0), -(second or 0.0))

    rows.sort(key=rank)
    message = None
    if fine_tunes:
        message = (
            f"ranked by accuracy on the {len(holdout)} labels no fine-tune used for anything "
            "(frozen rows choose and fit their predictor on the other labels)"
        )
    return board(rows, ranked_by, False, message)


def clearly_better(candidate: Row, current: Row) -> tuple[bool, int, int, float]:
    """Whether ``candidate`` beats ``current`` on the same labels by more than luck:
    McNemar's exact test (one-sided, p < SWITCH_P) on the labels one gets right and the other
    wrong. Returns (clearly better, its wins, its losses, p). Rows without paired records
    (pending, too few labels) are never clearly better."""
    from scipy.stats import binomtest

    if candidate.correct is None or current.correct is None:
        return False, 0, 0, 1.0
    pairs = [
        (a, b)
        for a, b in zip(candidate.correct, current.correct, strict=False)
        if a is not None and b is not None
    ]
    wins = sum(1 for a, b in pairs if a > b)
    losses = sum(1 for a, b in pairs if a < b)
    if wins <= losses:
        return False, wins, losses, 1.0
    p = float(binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue)
    return p < SWITCH_P, wins, losses, p


def _comparable_fine_tunes(
    store: Store, found: list[Candidate], labels: dict[str, str]
) -> tuple[list[int], list[str], dict[int, str]]:
    """(fine-tunes compared, the shared untouched paths, why others are not), newest first: a
    fine-tune joins if its labels agree with ``labels`` and enough untouched labels remain."""
    from sslviz.fewshot.finetune_result import finetune_result, used_labels

    classes = set(labels.values())
    remaining = set(labels)
    chosen: list[int] = []
    notes: dict[int, str] = {}
    for candidate in sorted(
        (c for c in found if c.kind == "finetune"), key=lambda c: -int(c.source)
    ):
        run_id = int(candidate.source)
        result = finetune_result(store, run_id)
        if result is None:
            notes[run_id] = "no result yet"
            continue
        used = used_labels(result)
        dataset_id = store.runs.get(run_id).dataset_id
        given = read_label_file(labels_file(store, dataset_id, result["labels"]))
        agree = all(labels.get(p, given[p]) == given[p] for p in used)
        if set(result["classes"]) != classes or not agree:
            notes[run_id] = "trained on other label names: not comparable with these labels"
            continue
        left = remaining - used
        if len(left) < MIN_COMPARE or len({labels[p] for p in left}) < 2:
            notes[run_id] = (
                "too few labels it did not use to compare it honestly"
                if not chosen
                else "it used labels another fine-tune leaves untouched: not comparable"
            )
            continue
        chosen.append(run_id)
        remaining = left
    holdout = sorted(remaining) if chosen else []
    return chosen, holdout, notes


def _frozen_row(
    store: Store,
    dataset: Dataset,
    candidate: Candidate,
    labels: dict[str, str],
    holdout: list[str],
    row_of: dict[str, int],
    background: bool,
    stage: Callable[[str], None],
) -> Row:
    """CV with ``choose`` on the labels (all of them, or with a shared untouched set, the
    others); then the chosen predictor fitted on those and scored on the untouched labels."""
    from sslviz.fewshot.estimate import choose, wilson_interval
    from sslviz.fewshot.predictors import Features, fit_predict
    from sslviz.maps.embed import cached_embeddings, embed

    base = {"source": candidate.source, "layer": candidate.layer, "grid": candidate.grid}
    named = {**base, "kind": candidate.kind, "name": candidate.name}
    emb = cached_embeddings(store, dataset, candidate.source, layer=candidate.layer,
                            grid=candidate.grid)  # fmt: skip
    if emb is None and background:
        job = _embedding_job(store, dataset, candidate)
        note = f"embedding in the background (run {job})"
        return Row(**named, method="-", cv_accuracy=None, cv_interval=None, note=note,
                   pending_run=job)  # fmt: skip
    if emb is None:
        stage("embedding")
        emb = embed(store, dataset, candidate.source, layer=candidate.layer, grid=candidate.grid)
    stage("cross-validating")
    test = set(holdout)
    paths = sorted(p for p in labels if p not in test)  # the labels allowed to choose
    idx = np.array([row_of[p] for p in paths])
    y = [labels[p] for p in paths]
    features = Features(np.asarray(emb.vectors))
    choice = choose(features.vectors, idx, y, features=features)
    estimate = choice.estimate
    correct = _record(estimate.correct)
    held_acc = held_int = None
    if holdout:
        prediction = fit_predict(features.vectors, idx, y, choice.method, features=features)
        right = [float(prediction.labels[row_of[p]] == labels[p]) for p in holdout]
        held_acc, held_int = sum(right) / len(holdout), wilson_interval(sum(right), len(holdout))
        correct = tuple(right)
    return Row(
        **named,
        method=choice.method,
        cv_accuracy=estimate.accuracy,
        cv_interval=estimate.interval,
        holdout_accuracy=held_acc,
        holdout_interval=held_int,
        correct=correct,
    )


def _record(correct: np.ndarray | None) -> tuple[float | None, ...] | None:
    """An estimate's per-label record (NaN = not held out) as JSON-able values."""
    if correct is None:
        return None
    return tuple(None if np.isnan(v) else float(v) for v in correct)


def _fine_tuned_row(
    store: Store,
    candidate: Candidate,
    labels: dict[str, str],
    holdout: list[str],
    image_ids: dict[str, int],
    compared: list[int],
    notes: dict[int, str],
) -> Row:
    """A fine-tune's own predictions on the shared untouched labels (never on labels it used)."""
    from sslviz.fewshot.estimate import wilson_interval
    from sslviz.fewshot.finetune_result import finetune_result

    run_id = int(candidate.source)
    named = {"source": candidate.source, "layer": candidate.layer, "grid": candidate.grid,
             "kind": "finetune", "name": candidate.name}  # fmt: skip
    row = Row(**named, method="fine-tuned head", cv_accuracy=None, cv_interval=None,
              fine_tuned=True, note=notes.get(run_id))  # fmt: skip
    if run_id not in compared:
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
        p: before[p] if p in before else classes[int(probabilities[at[image_ids[p]]].argmax())]
        for p in holdout
    }
    right = [float(guesses[p] == labels[p]) for p in holdout]
    interval = wilson_interval(sum(right), len(holdout))
    return replace(row, holdout_accuracy=sum(right) / len(holdout), holdout_interval=interval,
                   correct=tuple(right))  # fmt: skip


def _embedding_job(store: Store, dataset: Dataset, candidate: Candidate) -> int:
    """The embedding (+ map) job computing ``candidate``'s embeddings: an identical queued or
    running one, else a new one."""
    from sslviz.maps.embedding_job import job_request
    from sslviz.runner import jobs

    request = job_request(
        store, dataset, candidate.source, layer=candidate.layer, grid=candidate.grid
    )
    return jobs.submit(store, request, reuse_active=True).id


# --- cache ----------------------------------------------------------------------------------------
def _version(store: Store, candidate: Candidate) -> str:
    from sslviz.maps.embed import source_version

    return "|".join(
        [str(_CACHE_VERSION), candidate.source, str(candidate.layer), str(candidate.grid),
         source_version(store, candidate.source)]
    )  # fmt: skip


def _cache_file(store: Store, dataset: Dataset, sha: str) -> Any:
    return store.workspace.dataset_dir(dataset.id) / "leaderboard" / f"{sha}.json"


def _read_cache(store: Store, dataset: Dataset, sha: str) -> dict[str, Any]:
    try:
        return dict(json.loads(_cache_file(store, dataset, sha).read_text()))
    except (FileNotFoundError, ValueError):
        return {}


def _write_cache(store: Store, dataset: Dataset, sha: str, cache: dict[str, Any]) -> None:
    path = _cache_file(store, dataset, sha)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, cache)


def _row_from_json(values: dict[str, Any]) -> Row:
    for key in ("cv_interval", "holdout_interval", "correct"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    return Row(**values)
