"""The fine-tune's "Start from run" default is the best run, never merely the newest: the
best-ranked run on the leaderboard of the session's labels, else the session's own run, else the
run that trained longest. Real store rows and sessions."""

from __future__ import annotations

from sslviz.fewshot.leaderboard import Leaderboard, Row
from sslviz.store import Store
from sslviz.ui.leaderboard_view import best_parent


def _row(source: str, accuracy: float) -> Row:
    return Row(source, "block3", 1, "logreg", accuracy, (0.0, 1.0), "run", f"#{source}")


def test_start_from_the_best_run_not_the_newest(store: Store) -> None:
    dataset = store.datasets.finish(store.datasets.create("pets", "/data/pets").id)
    common = {"dataset_id": dataset.id, "model_name": "small-cnn", "config": {}, "device": "cpu"}
    long = store.runs.create(kind="rotation", epochs=60, status="finished", **common)
    store.runs.update(long.id, work_seconds=600.0, epoch=60)
    short = store.runs.create(kind="jigsaw", epochs=2, status="finished", **common)
    store.runs.update(short.id, work_seconds=20.0, epoch=2)
    runs = [store.runs.get(long.id), store.runs.get(short.id)]

    def session(source: str):
        name = f"on {source}"
        return store.sessions.create(
            dataset_id=dataset.id, name=name, source=source, layer=None, grid=None
        )

    on_pixels = session("pixels")
    assert best_parent(runs, on_pixels, None)[0] == long.id  # trained longest, not newest
    on_short = session(str(short.id))
    assert best_parent(runs, on_short, None)[0] == short.id  # the run the map shows
    board = Leaderboard(
        "pets", 12, [_row("pixels", 0.9), _row(str(long.id), 0.8), _row(str(short.id), 0.5)],
        "cv_accuracy", False, None,
    )  # fmt: skip
    chosen, why = best_parent(runs, on_short, ("sha", board))
    assert chosen == long.id and "best-ranked" in why
