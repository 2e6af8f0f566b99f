"""Deleting a dataset is atomic with respect to submitting a run on it: a run recorded by another
process while the delete looks is never deleted with the dataset. Real processes: one records a
run and holds its transaction open until told to commit, while this one deletes the dataset.
A run a live foreground ``sslviz train`` carries out is never deleted under it."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from job_data import SSLVIZ, make_dataset
from waiting import wait_for

from sslviz.core.errors import UserError
from sslviz.data import delete_dataset
from sslviz.store import Store

pytestmark = pytest.mark.timeout(120)
SUBMIT = """
import sys, time
from sslviz.store import Store
store = Store.open()
with store.connection.transaction() as conn:   # the submit's write, held open
    cursor = conn.execute(
        "INSERT INTO runs (dataset_id, task, encoder, config, device, status, created_at, epochs) "
        "VALUES (?, 'rotation', 'small-cnn', '{}', 'cpu', 'queued', ?, 1)",
        (int(sys.argv[1]), time.time()),
    )
    print(cursor.lastrowid, flush=True)
    sys.stdin.readline()                         # commit when told
print("committed", flush=True)
"""


def test_a_run_submitted_while_its_dataset_is_deleted_is_never_deleted_with_it(store, tiny_dataset):
    other = Store.open()  # the deleting process's store, open before the submit holds the lock
    submitter = subprocess.Popen(
        [sys.executable, "-c", SUBMIT, str(tiny_dataset.id)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        run_id = int(submitter.stdout.readline())  # recorded, not committed yet
        outcome: list[object] = []

        def delete() -> None:
            try:
                delete_dataset(other, tiny_dataset.id)
                outcome.append("deleted")
            except UserError as error:
                outcome.append(error)

        deleting = threading.Thread(target=delete)
        deleting.start()
        # the delete looks, then waits for the submitter's lock: given a second, it can't finish
        # (a negative has no state to wait for)
        deleting.join(1.0)
        assert deleting.is_alive() and not outcome
        submitter.stdin.write("\n")
        submitter.stdin.flush()
        assert submitter.stdout.readline().strip() == "committed"
        deleting.join(60)
    finally:
        submitter.kill()
        submitter.wait()
        other.close()
    assert len(outcome) == 1 and isinstance(outcome[0], UserError), outcome
    assert f"active runs [{run_id}]" in str(outcome[0])
    assert store.runs.get(run_id).status == "queued"  # the submitted run is still there
    assert store.datasets.get(tiny_dataset.id).status == "ready"


def test_a_run_submitted_after_its_dataset_was_deleted_is_one_clear_error(store, tiny_dataset):
    delete_dataset(store, tiny_dataset.id)
    with pytest.raises(UserError, match="no longer exists"):
        store.runs.create(
            dataset_id=tiny_dataset.id,
            kind="rotation",
            model_name="small-cnn",
            config={},
            device="cpu",
            epochs=1,
        )


@pytest.mark.timeout(300)
def test_a_foreground_run_is_not_deleted_under_its_process(store, home, sslviz) -> None:
    """issue 25: deleting a run a live `sslviz train` carries out in the foreground is refused
    in one line (cancel it first): it was deleted while that process went on writing into the
    deleted folder. Once it is cancelled, the delete goes through."""

    from sslviz.runner import jobs

    make_dataset(store, n=40)
    train = subprocess.Popen(
        [SSLVIZ, "train", "--dataset", "tiny", "--task", "rotation", "--time-budget", "600"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: [r for r in store.runs.list(("running",)) if r.step > 0], 180)
        (run,) = store.runs.list(("running",))
        refused = sslviz("delete-run", str(run.id), check=False)
        assert refused.returncode != 0
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        line = lines[0]
        assert "running in the foreground" in line and "cancel it first" in line
        assert "Traceback" not in refused.stderr
        step = store.runs.get(run.id).step
        wait_for(lambda: store.runs.get(run.id).step > step, 60)  # it goes on, its row kept
        assert store.workspace.run_dir(run.id).is_dir()
        jobs.cancel(store, run.id)
        assert train.wait(120) == 0 or store.runs.get(run.id).status == "cancelled"
        assert store.runs.get(run.id).status == "cancelled"
        sslviz("delete-run", str(run.id))
        assert not store.workspace.run_dir(run.id).exists()
    finally:
        if train.poll() is None:
            train.kill()
            train.wait()
