"""The leaderboard on data with known structure: a source that separates the classes ranks
first; too few labels rank nothing; rows are cached per label set; fine-tuned rows are compared
with frozen ones on labels no fine-tune trained on. Real store, real PNGs, real embeddings."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from finetune_helpers import first_per_class, make_labeled_dataset, train_parent
from threadpoolctl import threadpool_limits

from sslviz.fewshot import geometry
from sslviz.fewshot.estimate import RULE, choose
from sslviz.fewshot.finetune import FineTuneConfig, finetune_result, submit_finetune
from sslviz.fewshot.finetune_data import labels_sha
from sslviz.fewshot.leaderboard import TOO_FEW_TO_RANK, Row, clearly_better, leaderboard
from sslviz.fewshot.leaderboard_rows import FINETUNE_EMBEDDING, FINETUNE_HEAD, paired_records
from sslviz.fewshot.predict import prepared_features
from sslviz.fewshot.predictors import METHODS, fit_predict
from sslviz.maps.embed import embed
from sslviz.runner.execute import execute
from sslviz.store import Store

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def space(tmp_path_factory: pytest.TempPathFactory):
    """Horizontal vs vertical stripes of random period and phase (30 each): raw pixels can't
    separate them linearly, a convolution can. One short rotation run to start from."""
    with pytest.MonkeyPatch.context() as patch, threadpool_limits(1):
        home = tmp_path_factory.mktemp("leaderboard")
        patch.setenv("SSLVIZ_HOME", str(home))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # 2 shared cores: more threads only spin
        store = Store.open(home)
        truth = make_labeled_dataset(
            store, "stripes", ("horizontal", "vertical"), 30, kind="stripes", size=24
        )
        parent = train_parent(store, "stripes")
        try:
            yield SimpleNamespace(store=store, truth=truth, parent=parent, home=home)
        finally:
            store.close()
            torch.set_num_threads(threads)


def test_sources_that_separate_the_classes_rank_first(space):
    board = leaderboard(space.store, "stripes", first_per_class(space.truth, 8))
    assert not board.too_few and board.ranked_by == "cv_accuracy"
    sources = [(row.source, row.layer, row.grid) for row in board.rows]
    assert ("pixels", "16px", 1) in sources and ("random", "block2", 2) in sources
    assert {(str(space.parent), "block3", 1), (str(space.parent), "block3", 2)} <= set(sources)
    best = board.rows[0]
    # the trained run separates the stripes (pixels may too: auto's UMAP predictors use the
    # unlabeled images' geometry, which stripes have plenty of)
    trained = max(row.cv_accuracy for row in board.rows if row.source == str(space.parent))
    assert trained >= 0.9 and best.cv_accuracy >= trained
    assert best.cv_accuracy >= 0.9 and best.cv_interval[0] < best.cv_accuracy
    scores = [row.cv_accuracy for row in board.rows]
    assert scores == sorted(scores, reverse=True)  # best first
    row = board.to_json()["rows"][0]
    assert {"source", "layer", "method", "cv_accuracy", "cv_interval"} <= set(row)
    assert isinstance(row["source"], str) and row["method"] in METHODS


def test_too_few_labels_rank_nothing_and_say_so(space):
    board = leaderboard(space.store, "stripes", first_per_class(space.truth, 2))
    assert board.too_few and board.ranked_by is None
    assert board.message.startswith(TOO_FEW_TO_RANK)
    assert all(row.cv_accuracy is None for row in board.rows)


def test_rows_are_cached_per_label_set_and_read_back(space):
    labels = first_per_class(space.truth, 6)
    first = leaderboard(space.store, "stripes", labels)
    dataset = space.store.datasets.get_by_name("stripes")
    cache = (
        space.store.workspace.dataset_dir(dataset.id)
        / "leaderboard"
        / (f"{labels_sha(labels)}.json")
    )
    rows = json.loads(cache.read_text())
    assert len(rows) == len(first.rows)  # one per frozen row: nothing fine-tuned yet
    # a row in the cache is used as it is: nothing is recomputed while its source is unchanged
    key = next(k for k, v in rows.items() if v["source"] == "pixels")
    rows[key]["cv_accuracy"] = 0.123
    cache.write_text(json.dumps(rows))
    again = leaderboard(space.store, "stripes", labels)
    assert next(r for r in again.rows if r.source == "pixels").cv_accuracy == 0.123


def test_a_new_label_set_reuses_each_sources_umap(space):
    """The 10-D UMAP behind auto's UMAP predictors depends on the images, not the labels: the
    leaderboard fits it once per source and reads it for every later label set."""
    labels = first_per_class(space.truth, 7)
    leaderboard(space.store, "stripes", labels)
    dataset = space.store.datasets.get_by_name("stripes")
    emb = embed(space.store, dataset, "pixels")
    file = geometry.cache_file(space.store, emb)
    assert file.exists()
    fitted = file.stat().st_mtime_ns
    more = first_per_class(space.truth, 9)
    leaderboard(space.store, "stripes", more)
    assert file.stat().st_mtime_ns == fitted  # read, not fitted again


def test_fine_tuned_rows_are_compared_on_labels_they_never_trained_on(space):
    store = space.store
    labels = first_per_class(space.truth, 15)  # 3 of each class held out: 6 to compare on
    alone = {(r.source, r.layer, r.grid): r for r in leaderboard(store, "stripes", labels).rows}
    config = FineTuneConfig(steps=60, probe_steps=20, eval_every=10)
    run = submit_finetune(
        store, space.parent, labels, config=config, device="cpu", background=False
    )
    assert execute(store, run.id).status == "finished"
    result = finetune_result(store, run.id)

    board = leaderboard(store, "stripes", labels)
    assert board.ranked_by == "holdout_accuracy" and board.fine_tunes == [run.id]
    assert board.holdout == result["holdout"] and len(board.holdout) == 6
    assert not set(board.holdout) & set(result["train"])
    tuned = next(row for row in board.rows if row.kind == FINETUNE_HEAD)
    assert tuned.source == str(run.id) and tuned.cv_accuracy is None  # never CV on its training
    # scored by what it said of them before its head was refitted on all labels
    before = result["holdout_predictions"]
    right = sum(before[p] == labels[p] for p in board.holdout) / len(board.holdout)
    assert tuned.holdout_accuracy == pytest.approx(right)
    assert result["holdout_accuracy"] == pytest.approx(right)
    for row in board.rows:  # every row measured on the same held-out labels
        assert row.holdout_accuracy is not None and row.holdout_interval is not None
        assert row.holdout_correct is not None and len(row.holdout_correct) == len(board.holdout)
        assert sum(row.holdout_correct) / len(board.holdout) == pytest.approx(row.holdout_accuracy)
    # issue 27: a fine-tune joining the table changed the other rows' numbers (rotation 0.914 ->
    # 0.833 on the same labels); a frozen row's CV is on all labels, with or without fine-tunes
    frozen = [r for r in board.rows if not r.fine_tuned]
    for row in frozen:
        before = alone[(row.source, row.layer, row.grid)]
        assert (row.method, row.cv_accuracy, row.correct) == (
            before.method,
            before.cv_accuracy,
            before.correct,
        )
        assert len(row.correct) == len(labels)  # out-of-fold on every label: frozen rows pair
        assert paired_records(row, frozen[0]) == (row.correct, frozen[0].correct)
    # issue 14: the untouched labels choose nothing: the predictor scored on them is chosen by
    # CV on the other labels, fitted there
    others = sorted(p for p in labels if p not in set(board.holdout))
    paths = [image.path for image in store.datasets.images(run.dataset_id)]
    idx = [paths.index(p) for p in others]
    for row in frozen:
        features = prepared_features(
            store, embed(store, "stripes", row.source, layer=row.layer, grid=row.grid)
        )
        chosen = choose(features.vectors, idx, [labels[p] for p in others], features=features)
        assert row.holdout_method == chosen.method
        fitted = fit_predict(
            features.vectors, idx, [labels[p] for p in others], chosen.method, features=features
        )
        right = [fitted.labels[paths.index(p)] == labels[p] for p in board.holdout]
        assert row.holdout_accuracy == pytest.approx(sum(right) / len(right))
    # a fine-tune pairs with anything on the untouched labels only
    assert tuned.correct is None
    assert paired_records(tuned, frozen[0]) == (tuned.holdout_correct, frozen[0].holdout_correct)
    # its encoder as a frozen source: auto's rule fitted on the labels it trained on,
    # scored on the untouched ones, with no CV accuracy (it would be scored on its training)
    encoder = next(row for row in board.rows if row.kind == FINETUNE_EMBEDDING)
    assert encoder.source == str(run.id) and encoder.fine_tuned and encoder.cv_accuracy is None
    assert encoder.method == RULE  # auto's rule, not a choice by CV on its own training labels
    features = prepared_features(
        store, embed(store, "stripes", str(run.id), layer=encoder.layer, grid=encoder.grid)
    )
    fitted = fit_predict(
        features.vectors, idx, [labels[p] for p in others], encoder.method, features=features
    )
    right = [fitted.labels[paths.index(p)] == labels[p] for p in board.holdout]
    assert encoder.holdout_accuracy == pytest.approx(sum(right) / len(right))
    scores = [row.holdout_accuracy for row in board.rows]
    assert scores == sorted(scores, reverse=True)

    # fewer labels than the fine-tune trained on leave it nothing honest to be scored on
    fewer = leaderboard(store, "stripes", {p: labels[p] for p in result["train"]})
    assert fewer.ranked_by == "cv_accuracy"
    tuned_rows = [r for r in fewer.rows if r.fine_tuned]
    assert len(tuned_rows) == 2  # its head and its encoder, neither scored
    assert all("too few labels it did not use" in r.note for r in tuned_rows)
    assert all(r.holdout_accuracy is None for r in tuned_rows)


def test_a_tie_is_no_reason_to_switch_and_a_clear_gain_is():
    """Issue 15: the page offered a switch on a four-way tie at 1.000. McNemar's exact test on
    the labels the two rows disagree on decides."""

    def row(correct: list[float | None]) -> Row:
        return Row(
            "1", "block2", 1, "logreg", 1.0, (0.9, 1.0), "rotation", "r", correct=tuple(correct)
        )

    assert clearly_better(row([1.0] * 20), row([1.0] * 20))[0] is False  # a tie
    assert clearly_better(row([1.0] * 20), row([1.0] * 18 + [0.0] * 2))[0] is False  # 2-0: luck
    better, wins, losses, p = clearly_better(row([1.0] * 20), row([1.0] * 12 + [0.0] * 8))
    assert better and (wins, losses) == (8, 0) and p < 0.01
    assert clearly_better(row([1.0, None, 1.0]), row([0.0, 1.0, 0.0]))[1:3] == (2, 0)
    assert clearly_better(row([0.0] * 9), row([1.0] * 9))[0] is False  # worse is never better


def test_progress_names_each_stage_and_a_repeat_computes_nothing(space):
    labels = first_per_class(space.truth, 5)
    stages: list[tuple[str, int, int]] = []
    first = leaderboard(space.store, "stripes", labels, on_progress=lambda *a: stages.append(a))
    assert first.computed == len([r for r in first.rows if not r.fine_tuned])
    assert stages[0][0] == "finding sources" and stages[-1][1] == stages[-1][2]
    assert any(name.startswith("cross-validating random init") for name, _, _ in stages)
    done = [d for _, d, _ in stages[1:]]
    assert done == sorted(done)  # never goes back
    again = leaderboard(space.store, "stripes", labels)
    assert again.computed == 0 and [r.cv_accuracy for r in again.rows] == [
        r.cv_accuracy for r in first.rows
    ]


@pytest.mark.slow
def test_the_cli_prints_one_json_object_best_first(space, tmp_path):
    csv = tmp_path / "labels.csv"
    labels = first_per_class(space.truth, 8)
    csv.write_text("path,label\n" + "".join(f"{p},{v}\n" for p, v in labels.items()))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sslviz",
            "leaderboard",
            "--dataset",
            "stripes",
            "--labels",
            str(csv),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**__import__("os").environ, "SSLVIZ_HOME": str(space.home)},
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["rows"][0]["cv_accuracy"] >= 0.9
    assert [r["cv_accuracy"] for r in out["rows"] if not r["fine_tuned"]] == sorted(
        (r["cv_accuracy"] for r in out["rows"] if not r["fine_tuned"]), reverse=True
    )
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "sslviz",
            "leaderboard",
            "--dataset",
            "nope",
            "--labels",
            str(csv),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**__import__("os").environ, "SSLVIZ_HOME": str(space.home)},
    )
    assert bad.returncode == 1 and bad.stdout == "" and len(bad.stderr.splitlines()) == 1
