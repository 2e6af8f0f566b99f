"""Which source predicts *my* labels best? One row per candidate, measured the same way.

    board = leaderboard(store, "digits", labels)        # labels: path -> label
    board.rows[0]                                       # the best row
    board.to_json()                                     # `sslviz leaderboard --json`

Candidates: the ``pixels`` and ``random`` baselines, every finished pretext run of the dataset at
its default layer with its default pooling and with the other one (global <-> 2x2), and every
finished fine-tune twice: its own head's predictions, and its encoder as a frozen source. Frozen
rows are scored by ``estimate.choose`` (the predictor ``auto`` would use, and its
cross-validated accuracy with a Wilson interval: THE one way sslviz computes CV accuracy).

Honesty. A fine-tuned model can't be cross-validated on labels it trained on or chose its
checkpoint by, so fine-tuned rows are compared on the labels no included fine-tune used for
anything (its untouched labels; fine-tunes on the same labels share them,
``finetune_data.split_labels``). Every row, frozen or fine-tuned, gets ``holdout_accuracy``
there, and those labels choose nothing for it: frozen rows pick a predictor by CV on the other
labels (``holdout_method``), fit it there and are scored on the untouched ones. The table is then
ranked by that column, the only one all rows share. A frozen row's ``cv_accuracy`` (and its
``method``) is always its CV on all the labels, so a fine-tune joining the table changes no
other row's number. Without fine-tunes the table is ranked by the CV accuracy. With too few
labels it says "too few labels to rank" and ranks nothing.

Switching. Every frozen row keeps its per-label out-of-fold record (``correct``), all on the same
labels and folds; with fine-tunes every row also keeps its record on the untouched labels
(``holdout_correct``). Two frozen rows compare on the first, anything with a fine-tune on the
second (``leaderboard_rows.paired_records``): ``clearly_better`` (McNemar's exact test,
one-sided, 5%) is what a page needs before it recommends another source, with or without
fine-tunes. A tie is no reason to switch.

Progress. ``leaderboard(..., on_progress=stage)`` calls ``stage(name, done, total)`` before each
stage (embedding one source, cross-validating it) and once at the end (``done == total``).

Rows are cached per label set and source version (``<dataset_dir>/leaderboard/<sha>.json``):
a new run or fine-tune computes only its own rows. Embeddings come from ``sslviz.maps.embed``'s
cache; on a dataset too large to embed inline (``embedding_job.runs_inline``: a few thousand
images) a missing one is computed by a background embedding job (``pending_run``) instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sslviz.core.atomic import write_json
from sslviz.core.errors import UserError
from sslviz.fewshot.enough import too_few_to_compare
from sslviz.fewshot.finetune_data import labels_file, labels_sha, read_label_file
from sslviz.fewshot.leaderboard_rows import (
    FINETUNE_EMBEDDING,
    FINETUNE_HEAD,
    Candidate,
    Row,
    Scoring,
    clearly_better,
    fine_tuned_row,
    frozen_row,
    not_compared_row,
    row_from_json,
)

__all__ = [
    "Candidate",
    "Leaderboard",
    "Row",
    "candidates",
    "clearly_better",
    "leaderboard",
]

Progress = Callable[[str, int, int], None]  # (stage name, stages done, stages in all)

if TYPE_CHECKING:
    from sslviz.store import Dataset, Run, Store

TOO_FEW_TO_RANK = "too few labels to rank"
OTHER_POOLING = {1: 2, 2: 1}  # a run's second row: global (average and max) <-> a 2x2 grid
_CACHE_VERSION = 4  # 2: frozen rows choose without the untouched labels; per-label records
# 3: fine-tunes' encoders as frozen sources; 4: CV on all labels kept apart from the untouched


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
    """Baselines, each finished pretext run at two poolings, each finished fine-tune."""
    from sslviz.maps.embed import default_layer
    from sslviz.store.kinds import run_kind

    out = [
        Candidate("pixels", *default_layer(store, "pixels"), "pixels", "pixels"),
        Candidate("random", *default_layer(store, "random"), "random", "random init"),
    ]
    for run in _finished_runs(store, dataset):
        kind = run_kind(run.kind)
        if kind.name == "finetune":
            grid = int(run.config.get("grid") or 1)
            name = f"fine-tune #{run.id} of {_parent_name(store, run.parent_id)}"
            layer = run.config.get("layer")
            out.append(Candidate(str(run.id), layer, grid, FINETUNE_HEAD, f"{name} · head"))
            out.append(Candidate(str(run.id), layer, grid, FINETUNE_EMBEDDING, name))
        elif kind.pretext and kind.has_encoder:
            # its default, and the same layer with the other pooling: the second-best choice on
            # average and the best on digits (block3 2x2 after a rotation run, README)
            layer, grid = default_layer(store, str(run.id))
            for each in (grid, OTHER_POOLING.get(grid, 1)):
                out.append(Candidate(str(run.id), layer, each, run.kind, f"{run.kind} #{run.id}"))
    return out


def _parent_name(store: Store, parent_id: int | None) -> str:
    """ "rotation #1" (a deleted parent: "#1")."""
    if parent_id is None:
        return "?"
    try:
        return f"{store.runs.get(parent_id).kind} #{parent_id}"
    except UserError:
        return f"#{parent_id}"


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
    should_stop: Callable[[], bool] | None = None,
) -> Leaderboard:
    """Score every candidate on ``labels`` (path -> label) and rank them (module docstring).

    ``background`` (default: datasets too large to embed inline) submits embedding jobs for missing
    embeddings instead of computing them here; those rows wait with ``pending_run`` set.
    ``on_progress(stage, done, total)`` is told each stage before it starts; ``should_stop()``
    true between an embedding's batches raises Cancelled (the ranking job's cancel)."""
    started = time.perf_counter()
    report = on_progress or (lambda stage, done, total: None)
    report("finding sources", 0, 1)
    scoring, found = _scoring(store, dataset, labels, background, should_stop)
    rows, computed = _rows(scoring, found, report)
    rows, ranked_by, message = _ranked(rows, scoring)
    return Leaderboard(
        dataset=scoring.dataset.name,
        labeled=len(scoring.labels),
        rows=rows,
        ranked_by=ranked_by,
        too_few=ranked_by is None,
        message=message,
        holdout=scoring.holdout,
        fine_tunes=scoring.fine_tunes if ranked_by else [],
        seconds=time.perf_counter() - started,
        computed=computed,
    )


def _scoring(
    store: Store,
    dataset: Dataset | int | str,
    labels: Mapping[str, str],
    background: bool | None,
    should_stop: Callable[[], bool] | None,
) -> tuple[Scoring, list[Candidate]]:
    """The labels checked against the dataset, the candidates, and the fine-tunes compared."""
    dataset = store.datasets.ready(dataset)
    given = {str(p): str(v) for p, v in labels.items()}
    images = store.datasets.images(dataset.id)
    row_of = {image.path: i for i, image in enumerate(images)}
    unknown = sorted(set(given) - set(row_of))
    if unknown:
        raise UserError(f"{len(unknown)} labeled paths are not in {dataset.name!r}: {unknown[0]}")
    if len(set(given.values())) < 2:
        raise UserError("the leaderboard needs labels of at least 2 classes: label more images")
    if background is None:
        from sslviz.maps.embedding_job import runs_inline

        background = not runs_inline(dataset.n_images)
    found = candidates(store, dataset)
    fine_tunes, holdout, notes = _comparable_fine_tunes(store, found, given)
    scoring = Scoring(
        store=store,
        dataset=dataset,
        labels=given,
        holdout=holdout,
        row_of=row_of,
        image_ids={image.path: image.id for image in images},
        fine_tunes=fine_tunes,
        notes=notes,
        background=background,
        should_stop=should_stop,
    )
    return scoring, found


def _rows(scoring: Scoring, found: list[Candidate], report: Progress) -> tuple[list[Row], int]:
    """One row per candidate, in candidate order, from the cache where it holds one; and how many
    were computed now (they join the cache unless their embedding is still pending)."""
    store, dataset = scoring.store, scoring.dataset
    sha = labels_sha(scoring.labels)
    cache = _read_cache(store, dataset, sha)
    keys, cv_keys = _cache_keys(scoring, found)
    todo = sum(1 for c in found if c in keys and keys[c] not in cache)
    rows, computed = [], 0
    for candidate in found:
        key = keys.get(candidate)
        if key is not None and key in cache:
            rows.append(row_from_json(cache[key]))
            continue
        stage = _stage_reporter(report, candidate, computed, todo)
        row = _row(scoring, candidate, cache.get(cv_keys.get(candidate, "")), stage)
        if key is not None:
            computed += 1
            if row.pending_run is None:
                cache[key] = row.to_json()
                if candidate in cv_keys:
                    cache.setdefault(cv_keys[candidate], _cv_part(row).to_json())
        rows.append(row)
    if computed:
        _write_cache(store, dataset, sha, cache)
    report("done", max(1, todo), max(1, todo))
    return rows, computed


def _row(
    scoring: Scoring, candidate: Candidate, cv: dict[str, Any] | None, stage: Callable[[str], None]
) -> Row:
    """One candidate's row computed now (``cv``: a frozen row's cached CV on all labels)."""
    if candidate.kind == FINETUNE_HEAD:
        return fine_tuned_row(scoring, candidate)
    if candidate.kind == FINETUNE_EMBEDDING and int(candidate.source) not in scoring.fine_tunes:
        return not_compared_row(candidate, scoring.notes.get(int(candidate.source)))
    known = row_from_json(dict(cv)) if cv is not None else None
    return frozen_row(scoring, candidate, stage, cv=known)


def _ranked(rows: list[Row], scoring: Scoring) -> tuple[list[Row], str | None, str | None]:
    """(the rows best first, the column that ranks them, what the table says about it); with too
    few labels the rows stay in candidate order, ranked by nothing."""
    from sslviz.fewshot.enough import TOO_FEW_REASON, too_few

    if too_few(list(scoring.labels.values())):
        reason = TOO_FEW_REASON.removeprefix("too few labels to estimate: ")
        return rows, None, f"{TOO_FEW_TO_RANK}: {reason}"
    ranked_by = "holdout_accuracy" if scoring.fine_tunes else "cv_accuracy"

    def rank(row: Row) -> tuple[float, float]:
        first, second = getattr(row, ranked_by), row.cv_accuracy
        return (-(first if first is not None else -1.0), -(second or 0.0))

    message = None
    if scoring.fine_tunes:
        message = (
            f"ranked by accuracy on the {len(scoring.holdout)} labels no fine-tune used for "
            "anything: every row predicts them without having seen them (frozen rows choose and "
            "fit their predictor on the other labels). The CV accuracy of frozen rows is on all "
            "labels, as without fine-tunes; fine-tunes have none: they trained on those labels"
        )
    return sorted(rows, key=rank), ranked_by, message


def _cv_part(row: Row) -> Row:
    """A frozen row as scored by CV on all labels, without its untouched-label scores."""
    untouched = ("holdout_method", "holdout_accuracy", "holdout_interval", "holdout_correct")
    return replace(row, **dict.fromkeys(untouched))


def _stage_reporter(
    report: Progress, candidate: Candidate, done: int, total: int
) -> Callable[[str], None]:
    """``stage("embedding")`` -> ``report("embedding rotation #3 · block3 2×2", done, total)``."""
    pooling = f" {candidate.grid}×{candidate.grid}" if candidate.grid > 1 else ""
    where = f"{candidate.name} · {candidate.layer}{pooling}"
    return lambda what: report(f"{what} {where}", done, total)


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
        (c for c in found if c.kind == FINETUNE_HEAD), key=lambda c: -int(c.source)
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
        if too_few_to_compare(labels[p] for p in left):
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


# --- cache ----------------------------------------------------------------------------------------
def _cache_keys(
    scoring: Scoring, found: list[Candidate]
) -> tuple[dict[Candidate, str], dict[Candidate, str]]:
    """Each cached candidate's key (its source version and the untouched labels it is scored on),
    and each frozen row's key for its CV on all labels, kept apart: a fine-tune never changes it.
    Cached: frozen rows, and fine-tunes' encoders where compared (fine-tunes' heads never)."""
    holdout, labels = scoring.holdout, scoring.labels
    test_key = labels_sha({p: labels[p] for p in holdout}) if holdout else "-"

    def cached(c: Candidate) -> bool:
        return c.kind != FINETUNE_HEAD and (
            c.kind != FINETUNE_EMBEDDING or int(c.source) in scoring.fine_tunes
        )

    store = scoring.store
    keys = {c: f"{_version(store, c)}|{test_key}" for c in found if cached(c)}
    cv_keys = {c: f"{_version(store, c)}|-" for c in keys if c.kind != FINETUNE_EMBEDDING}
    return keys, cv_keys


def _version(store: Store, candidate: Candidate) -> str:
    from sslviz.maps.embed import source_version

    return "|".join(
        [
            str(_CACHE_VERSION),
            candidate.source,
            str(candidate.layer),
            str(candidate.grid),
            source_version(store, candidate.source),
        ]
    )


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
