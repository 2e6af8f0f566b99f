"""Ranking the sources for a session's labels is a job (kind ``leaderboard``): a real worker
subprocess ranks a tiny dataset's labels to ``finished`` and stores the board, with the same
numbers ``sslviz leaderboard --json`` gives for the same labels; a cancel while it embeds ends it
``cancelled`` with no process left."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from job_data import make_dataset
from test_cancel_and_liveness import START_TIMEOUT, workspace_processes
from test_embedding_job_cancel import make_photos
from waiting import wait_for

from sslviz.fewshot.labels_csv import labels_csv_text
from sslviz.fewshot.leaderboard_job import latest_ranking, stored_board, submit_ranking
from sslviz.runner import jobs
from sslviz.store import Store

pytestmark = pytest.mark.timeout(300)


def two_classes(store: Store, dataset_id: int, per_class: int = 8) -> dict[str, str]:
    paths = [image.path for image in store.datasets.images(dataset_id)]
    return {p: ("a" if i % 2 else "b") for i, p in enumerate(paths[: 2 * per_class])}


def test_a_worker_ranks_the_labels_with_the_clis_numbers(store, home, sslviz, tmp_path) -> None:
    dataset = make_dataset(store, n=40)
    labels = two_classes(store, dataset.id)
    csv = tmp_path / "labels.csv"
    csv.write_text(labels_csv_text(labels))
    cli = json.loads(
        sslviz("leaderboard", "--dataset", "tiny", "--labels", str(csv), "--json").stdout
    )
    # the job computes every row afresh (not from the rows the CLI cached)
    shutil.rmtree(store.workspace.dataset_dir(dataset.id) / "leaderboard")
    session = store.sessions.create(dataset_id=dataset.id, name="s", source="pixels")

    run = submit_ranking(store, session, labels)
    assert run.kind == "leaderboard" and run.device == "cpu"
    ended = jobs.wait(store, run.id, START_TIMEOUT)
    assert ended.status == "finished", (ended.status, ended.error, ended.traceback)
    assert latest_ranking(store, session).id == run.id
    board = stored_board(store, ended)
    assert board is not None and board.computed == len(cli["rows"])

    def numbers(rows: list[dict]) -> list[tuple]:
        return [(r["source"], r["layer"], r["grid"], r["method"], r["cv_accuracy"]) for r in rows]

    assert numbers([row.to_json() for row in board.rows]) == numbers(cli["rows"])
    assert [r.cv_interval for r in board.rows] == [tuple(r["cv_interval"]) for r in cli["rows"]]
    # the Runs page and `sslviz runs` list it with its kind
    status = json.loads(sslviz("status", str(run.id), "--json").stdout)
    assert status["status"] == "finished"
    assert "rank sources" in sslviz("runs").stdout


def test_a_cancel_while_it_embeds_ends_it_cancelled_with_no_process_left(store, home) -> None:
    dataset = make_photos(store, n=3000)
    session = store.sessions.create(dataset_id=dataset.id, name="s", source="pixels")
    run = submit_ranking(store, session, two_classes(store, dataset.id))
    wait_for(lambda: (store.runs.get(run.id).stage or "").startswith("embedding"), START_TIMEOUT)
    started = time.monotonic()
    jobs.cancel(store, run.id)
    ended = jobs.wait(store, run.id, 60)
    assert ended.status == "cancelled", (ended.status, ended.error, ended.traceback)
    assert time.monotonic() - started < 60
    wait_for(lambda: not workspace_processes(home), 15)
    assert stored_board(store, ended) is None
    log = (store.workspace.run_dir(run.id) / jobs.LOG_NAME).read_text()
    assert "ended cancelled" in log and "Traceback" not in log, log
