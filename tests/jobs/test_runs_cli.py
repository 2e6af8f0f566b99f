"""`sslviz runs | status | cancel | resume | delete-run` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import time

from sslviz.store import Store

STATUS_KEYS = {"run", "status", "pid", "epoch", "epochs", "step", "progress"}


def _rows(store: Store) -> tuple[int, int]:
    dataset = store.datasets.finish(store.datasets.create("pets", "/data/pets").id)
    done = store.runs.create(
        dataset_id=dataset.id, task="rotation", encoder="small-cnn",
        config={"dataset": "pets", "task": "rotation"}, device="cpu", epochs=4, status="finished",
    )  # fmt: skip
    store.runs.update(done.id, epoch=4, step=40, total_steps=40, started_at=time.time() - 9,
                      ended_at=time.time(), train_seconds=8.5)  # fmt: skip
    failed = store.runs.create(
        dataset_id=dataset.id, task="jigsaw", encoder="small-cnn",
        config={"dataset": "pets", "task": "jigsaw"}, device="cpu", epochs=4, status="failed",
    )  # fmt: skip
    store.runs.update(failed.id, epoch=1, step=10, total_steps=40, error="ValueError: boom",
                      traceback="Traceback (most recent call last):\nValueError: boom\n")  # fmt: skip
    return done.id, failed.id


def test_runs_and_status_json_carry_the_documented_keys(store, sslviz):
    done, failed = _rows(store)
    listing = json.loads(sslviz("runs", "--json").stdout)
    assert [r["run"] for r in listing["runs"]] == [done, failed]
    first = listing["runs"][0]
    assert STATUS_KEYS | {"task", "dataset", "encoder", "device", "created_at"} <= set(first)
    assert (first["status"], first["dataset"], first["progress"]) == ("finished", "pets", 1.0)

    status = json.loads(sslviz("status", str(failed), "--json").stdout)
    assert STATUS_KEYS | {"error", "eta_seconds", "elapsed_seconds", "traceback"} <= set(status)
    assert status["status"] == "failed" and status["pid"] is None
    assert (status["epoch"], status["epochs"], status["step"]) == (1, 4, 10)
    assert status["progress"] == 0.25
    assert status["traceback"].startswith("Traceback")


def test_human_output_is_one_fact_per_line_and_errors_one_line(store, sslviz):
    done, failed = _rows(store)
    table = sslviz("runs").stdout.splitlines()
    assert table[0].split()[:3] == ["RUN", "STATUS", "TASK"]
    assert len(table) == 3 and "finished" in table[1] and "failed" in table[2]

    facts = dict(line.split(": ", 1) for line in sslviz("status", str(failed)).stdout.splitlines())
    assert facts["status"] == "failed" and facts["error"] == "ValueError: boom"

    for args, message in [
        (("status", "99"), "no run with id 99"),
        (("resume", str(done)), "already finished"),
        (("cancel", str(done)), "only queued or running"),
    ]:
        result = sslviz(*args, check=False)
        assert result.returncode == 1 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr


def test_delete_run_from_the_cli(store, sslviz):
    done, _ = _rows(store)
    assert json.loads(sslviz("delete-run", str(done), "--json").stdout) == {"deleted": done}
    assert [r.id for r in store.runs.list()] != [done] and done not in [
        r.id for r in store.runs.list()
    ]
