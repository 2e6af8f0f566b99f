"""`sslviz runs | status | cancel | resume | delete-run` as a user runs them: real subprocesses."""

from __future__ import annotations

import json
import time

from sslviz.cli import main
from sslviz.store import Store
from sslviz.training.callbacks import StoreLogger, TrainState

STATUS_KEYS = {"run", "status", "pid", "epoch", "epochs", "step", "progress"}


def _rows(store: Store) -> tuple[int, int]:
    dataset = store.datasets.finish(store.datasets.create("pets", "/data/pets").id)
    done = store.runs.create(
        dataset_id=dataset.id,
        kind="rotation",
        model_name="small-cnn",
        config={"dataset": "pets", "task": "rotation"},
        device="cpu",
        epochs=4,
        status="finished",
    )
    store.runs.update(
        done.id,
        epoch=4,
        step=40,
        total_steps=40,
        started_at=time.time() - 9,
        ended_at=time.time(),
        work_seconds=8.5,
    )
    failed = store.runs.create(
        dataset_id=dataset.id,
        kind="jigsaw",
        model_name="small-cnn",
        config={"dataset": "pets", "task": "jigsaw"},
        device="cpu",
        epochs=4,
        status="failed",
    )
    store.runs.update(
        failed.id,
        epoch=1,
        step=10,
        total_steps=40,
        error="ValueError: boom",
        traceback="Traceback (most recent call last):\nValueError: boom\n",
    )
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


def test_a_time_budgeted_run_reports_its_planned_epochs_not_the_ceiling(store, capsys):
    """The rows are written by the trainer's own writer (``StoreLogger``), as production does:
    10 steps an epoch, 5 steps a second, a 60 s budget -> 300 steps, 30 epochs planned."""
    dataset = store.datasets.finish(store.datasets.create("pets", "/data/pets").id)
    config = {"dataset": "pets", "task": "rotation", "time_budget": 60.0, "epochs": 1000}
    runs = {}
    for name, status, step, seconds in [
        ("cancelled", "cancelled", 50, 10.0),  # stopped 10 s in: 30 epochs at this pace
        ("unstarted", "cancelled", 0, 0.0),  # no pace yet: unknown
        ("finished", "finished", 280, 60.0),  # what it did: 28 epochs
    ]:
        run = store.runs.create(
            dataset_id=dataset.id,
            kind="rotation",
            model_name="small-cnn",
            config=config,
            device="cpu",
            epochs=1000,
            status=status,
        )
        state = TrainState(run.id, "accuracy", 10, 10_000, 1000, time_budget=60.0)
        logger = StoreLogger(store, run.id)
        logger.on_train_start(state)
        state.step, state.train_seconds = step, seconds
        logger.flush(state)
        if status == "finished":
            logger.on_train_end(state, status)
        runs[name] = run.id

    assert main(["runs", "--json"]) == 0
    listed = {r["run"]: r for r in json.loads(capsys.readouterr().out)["runs"]}
    cancelled, unstarted, finished = (listed[runs[n]] for n in runs)
    assert (cancelled["epochs"], cancelled["time_budget"], cancelled["epochs_limit"]) == (
        30,
        60.0,
        1000,
    )
    assert cancelled["progress"] == round(10 / 60, 4)  # the budget, not 50 of 10,000 steps
    assert unstarted["epochs"] is None
    assert (finished["epochs"], finished["progress"]) == (28, 1.0)

    assert main(["status", str(runs["cancelled"]), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert set(status) >= STATUS_KEYS and status["epochs"] == 30

    assert main(["status", str(runs["cancelled"])]) == 0
    facts = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert facts["progress"].startswith("17% (epoch 5/~30, 1m00s budget")
    assert main(["runs"]) == 0
    assert "5/~30" in capsys.readouterr().out


def test_fine_tunes_and_embedding_jobs_are_listed_by_their_kind(store, capsys):
    done, _ = _rows(store)
    dataset_id = store.runs.get(done).dataset_id
    tune = store.runs.create(
        dataset_id=dataset_id,
        kind="finetune",
        model_name="small-cnn",
        config={"labels": 20},
        device="cpu",
        epochs=5,
        status="finished",
        parent_id=done,
    )
    store.runs.update(tune.id, epoch=5, step=50, total_steps=50)
    mapping = store.runs.create(
        dataset_id=dataset_id,
        kind="embedding",
        model_name="small-cnn",
        config={"source": "1"},
        device="cpu",
        epochs=1,
        status="finished",
    )
    store.runs.update(mapping.id, step=306, total_steps=306)

    assert main(["runs"]) == 0
    table = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert f"fine-tune of #{done}" in table[str(tune.id)]
    assert "embedding + map" in table[str(mapping.id)]

    assert main(["status", str(tune.id)]) == 0
    facts = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert facts["task"].startswith(f"fine-tune of run {done} on dataset 'pets'")
    assert "held-out metrics" not in facts  # no pretext evaluation for a fine-tune
    assert main(["status", str(mapping.id)]) == 0
    facts = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert facts["progress"] == "100% (step 306/306)"  # no epochs for an embedding job

    assert main(["status", str(tune.id), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (status["kind"], status["parent"], status["epochs"]) == ("fine-tune", done, 5)
