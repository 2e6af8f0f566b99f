"""Which source predicts *my* labels best? One row per candidate, measured the same way.

    board = leaderboard(store, "digits", labels)        # labels: path -> label
    board.rows[0]                                       # the best row
    board.to_json()                                     # `sslviz leaderboard --json`

Candidates: the ``pixels`` and ``random`` baselines, every finished pretext run of the dataset at
its default layer and one more (the next deeper, else the one before), and every finished
fine-tune. Frozen rows are scored by ``estimate.choose`` (the predictor ``auto`` would use, and
its cross-validated accuracy with a Wilson interval: THE one way sslviz computes CV accuracy).

Honesty. A fine-tuned model can't be cross-validated on labels it trained on, so fine-tuned rows
are compared on the labels no included fine-tune trained on (its held-out labels; fine-tunes on
the same labels share them, ``finetune_data.split_labels``): every row, frozen or fine-tuned, gets
``holdout_accuracy`` there — frozen rows fit their predictor on the other labels — and the table
is then ranked by that column, the only one all rows share. Without fine-tunes it is ranked by
the CV accuracy. With too few labels it says "too few labels to rank" and ranks nothing.

Rows are cached per label set and source version (``<dataset_dir>/leaderboard/<sha>.json``):
a new run or fine-tune computes only its own rows. Embeddings come from ``sslviz.maps.embed``'s
cache; on a dataset too large to embed inline (``embedding_job.runs_inline``: a few thousand
images) a missing one is computed by a background embedding job (``pending_run``) instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from sslviz.core.atomic import write_json
from sslviz.core.errors import UserError
from sslviz.fewshot.finetune_data import labels_file, labels_sha, read_label_file, read_predictions

if TYPE_CHECKING:
    from sslviz.store import Dataset, Run, Store

MIN_COMPARE = 6  # held-out labels needed (in >= 2 classes) to compare fine-tuned rows
TOO_FEW_TO_RANK = "too few labels to rank"
_CACHE_VERSION = 1


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

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
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
) -> Leaderboard:
    """Score every candidate on ``labels`` (path -> label) and rank them (module docstring).

    ``background`` (default: datasets too large to embed inline) submits embedding jobs for missing
    embeddings instead of computing them here; those rows wait with ``pending_run`` set."""
    from sslviz.fewshot.estimate import TOO_FEW_REASON, too_few
    from sslviz.maps.embed import resolve_dataset

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
    rows = []
    for candidate in found:
        key = f"{_version(store, candidate)}|{test_key}"
        if candidate.kind == "finetune":
            ids = {image.path: image.id for image in images}
            row = _fine_tuned_row(store, candidate, labels, holdout, ids, fine_tunes, notes)
        elif key in cache:
            row = _row_from_json(cache[key])
        else:
            row = _frozen_row(store, dataset, candidate, labels, holdout, row_of, background)
            if row.pending_run is None:
                cache[key] = row.to_json()
        rows.append(row)
    _write_cache(store, dataset, sha, cache)

    if too_few(list(labels.values())):
        message = (
            f"{TOO_FEW_TO_RANK}: {TOO_FEW_REASON.removeprefix('too few labels to estimate: ')}"
        )
        return Leaderboard(dataset.name, len(labels), rows, None, True, message, holdout)
    ranked_by = "holdout_accuracy" if fine_tunes else "cv_accuracy"

    def rank(row: Row) -> tuple[float, float]:
        first, second = getattr(row, ranked_by), row.cv_accuracy
        return (-(first if first is not None else -1.0), -(second or 0.0))

    rows.sort(key=rank)
    message = None
    if fine_tunes:
        message = (
            f"ranked by accuracy on the {len(holdout)} labels no fine-tune trained on "
            "(frozen rows fit their predictor on the other labels)"
        )
    return Leaderboard(
        dataset.name, len(labels), rows, ranked_by, False, message, holdout, fine_tunes
    )


def _comparable_fine_tunes(
    store: Store, found: list[Candidate], labels: dict[str, str]
) -> tuple[list[int], list[str], dict[int, str]]:
    """(fine-tunes compared, the shared held-out paths, why others are not), newest first: a
    fine-tune joins if its labels agree with ``labels`` and enough held-out labels remain."""
    from sslviz.fewshot.finetune import finetune_result

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
        trained = set(result["train"])
        dataset_id = store.runs.get(run_id).dataset_id
        given = read_label_file(labels_file(store, dataset_id, result["labels"]))
        agree = all(labels.get(p, given[p]) == given[p] for p in trained)
        if set(result["classes"]) != classes or not agree:
            notes[run_id] = "trained on other label names: not comparable with these labels"
            continue
        left = remaining - trained
        if len(left) < MIN_COMPARE or len({labels[p] for p in left}) < 2:
            notes[run_id] = (
                "too few labels it did not train on to compare it honestly"
                if not chosen
                else "it trained on labels another fine-tune holds out: not comparable"
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
) -> Row:
    """CV with ``choose`` on all labels; with a shared held-out set, the chosen predictor fitted
    on the other labels and scored there."""
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
        emb = embed(store, dataset, candidate.source, layer=candidate.layer, grid=candidate.grid)
    paths = sorted(labels)
    idx = np.array([row_of[p] for p in paths])
    y = [labels[p] for p in paths]
    features = Features(np.asarray(emb.vectors))
    choice = choose(features.vectors, idx, y, features=features)
    estimate = choice.estimate
    held_acc = held_int = None
    if holdout:
        test = set(holdout)
        train = [p for p in paths if p not in test]
        prediction = fit_predict(
            features.vectors,
            np.array([row_of[p] for p in train]),
            [labels[p] for p in train],
            choice.method,
            features=features,
        )
        right = sum(prediction.labels[row_of[p]] == labels[p] for p in holdout)
        held_acc, held_int = right / len(holdout), wilson_interval(right, len(holdout))
    return Row(
        **named,
        method=choice.method,
        cv_accuracy=estimate.accuracy,
        cv_interval=estimate.interval,
        holdout_accuracy=held_acc,
        holdout_interval=held_int,
    )


def _fine_tuned_row(
    store: Store,
    candidate: Candidate,
    labels: dict[str, str],
    holdout: list[str],
    image_ids: dict[str, int],
    compared: list[int],
    notes: dict[int, str],
) -> Row:
    """A fine-tune's own predictions on the shared held-out labels (never on its training set)."""
    from sslviz.fewshot.estimate import wilson_interval

    run_id = int(candidate.source)
    named = {"source": candidate.source, "layer": candidate.layer, "grid": candidate.grid,
             "kind": "finetune", "name": candidate.name}  # fmt: skip
    row = Row(**named, method="fine-tuned head", cv_accuracy=None, cv_interval=None,
              fine_tuned=True, note=notes.get(run_id))  # fmt: skip
    if run_id not in compared:
        return row
    from sslviz.fewshot.finetune import finetune_result

    saved = read_predictions(store.workspace.run_dir(run_id))
    result = finetune_result(store, run_id)
    if saved is None or result is None:
        return replace(row, note="its predictions are missing")
    ids, probabilities, classes = saved
    at = {int(image_id): k for k, image_id in enumerate(ids)}  # image id -> prediction row
    # its own held-out labels: what it said before its head was refitted on them; labels it
    # never had: its final predictions
    before = result.get("holdout_predictions") or {}
    guesses = {
        p: before[p] if p in before else classes[int(probabilities[at[image_ids[p]]].argmax())]
        for p in holdout
    }
    right = sum(guesses[p] == labels[p] for p in holdout)
    interval = wilson_interval(right, len(holdout))
    return replace(row, holdout_accuracy=right / len(holdout), holdout_interval=interval)


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
    for key in ("cv_interval", "holdout_interval"):
        if values.get(key) is not None:
            values[key] = tuple(values[key])
    return Row(**values)
