"""A run stopped mid-epoch and resumed ends with exactly the weights of the same run trained in
one go; checkpoints and caches leave nothing half-written behind; evaluation samples the whole
held-out set, not its first folders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sslviz.data.cache import build_cache, cache_path
from sslviz.models.checkpoint import checkpoint_path, load_checkpoint
from sslviz.runner.execute import execute
from sslviz.training.config import TrainConfig
from sslviz.training.evaluate import MAX_ARTIFACT_IMAGES, MAX_EVAL_IMAGES, holdout_rows, subset
from sslviz.training.train import Callback, create_run


class StopAtStep(Callback):
    def __init__(self, step: int) -> None:
        self.step, self.stop = step, False

    def on_step_end(self, state) -> None:
        self.stop = self.stop or state.step >= self.step


@pytest.fixture
def deterministic():
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("task,size", [("rotation", 16), ("jigsaw", 24)])  # jigsaw: dropout
def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(
    store, tiny, deterministic, task, size
):
    config = TrainConfig(
        dataset="tiny",
        task=task,
        image_size=size,
        epochs=3,
        batch_size=12,
        device="cpu",
        task_options={"permutations": 30} if task == "jigsaw" else {},
    )
    whole = create_run(store, config)
    assert execute(store, whole.id).status == "finished"

    parted = create_run(store, config)
    stopper = StopAtStep(3)  # seen at the next step, 4: mid-epoch (3 steps per epoch)
    stopped = execute(store, parted.id, should_stop=lambda: stopper.stop, callbacks=[stopper])
    assert (stopped.status, stopped.step) == ("cancelled", 4)
    assert execute(store, parted.id).status == "finished"

    one, two = (
        load_checkpoint(checkpoint_path(store.workspace.run_dir(r.id))) for r in (whole, parted)
    )
    assert one["step"] == two["step"] == 9
    for key, tensor in one["model"].items():
        assert torch.equal(tensor, two["model"][key]), key
    assert torch.equal(one["rng"]["torch"], two["rng"]["torch"])


def test_checkpoints_leave_no_temporary_files_and_a_killed_writers_are_removed(store, tiny):
    run = create_run(store, TrainConfig(dataset="tiny", task="rotation", image_size=16, epochs=1))
    path = checkpoint_path(store.workspace.run_dir(run.id))
    path.parent.mkdir(parents=True)
    orphan = path.with_name(f".tmp-999999-{path.name}-x1y2")  # what a SIGKILL mid-save leaves
    orphan.write_bytes(b"half a checkpoint")
    execute(store, run.id)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def test_a_cache_build_removes_what_a_killed_build_left(store, tiny):
    path = cache_path(store, tiny.id, 16)
    path.parent.mkdir(parents=True, exist_ok=True)
    dead = path.with_name(f".{path.stem}.999999.123.npy")  # its pid is not running
    dead.write_bytes(b"half a cache")
    build_cache(store, tiny.id, 16)
    left = sorted(p.name for p in path.parent.iterdir() if p.suffix != ".lock")
    assert left == [path.name]  # the build's lock file may stay beside the cache
    assert np.load(path, mmap_mode="r").shape == (40, 3, 16, 16)


def test_evaluation_samples_every_folder_of_a_large_dataset():
    # 30 classes stored as folders of 1,000 images: cache rows come in blocks, by path
    n, per_folder = 30_000, 1_000
    config = TrainConfig(dataset="big", task="rotation", holdout=0.1, seed=3)
    rows = holdout_rows(n, config, None)
    assert len(rows) == MAX_EVAL_IMAGES and len(np.unique(rows)) == len(rows)
    assert np.all(np.diff(rows) > 0)  # sorted, for forward reads of the memory map
    per_class = np.bincount(rows // per_folder, minlength=n // per_folder)
    assert per_class.min() >= 0.5 * MAX_EVAL_IMAGES / 30  # every folder, about evenly
    assert np.array_equal(rows, holdout_rows(n, config, None))  # the same subset every time
    assert not np.array_equal(rows, holdout_rows(n, config.replace(seed=4), None))
    shown = subset(np.arange(len(rows)), MAX_ARTIFACT_IMAGES, (3, 1))
    assert len(shown) == MAX_ARTIFACT_IMAGES and shown.max() > 0.9 * len(rows)


def test_a_small_held_out_set_is_evaluated_whole():
    config = TrainConfig(dataset="small", task="rotation", holdout=0.1)
    assert len(holdout_rows(500, config, None)) == 50


def test_a_stop_during_evaluation_ends_cancelled_and_resume_evaluates(store, tiny):
    class AfterLastStep(Callback):
        done = False

        def on_step_end(self, state) -> None:
            self.done = state.step == state.total_steps

    watcher = AfterLastStep()
    run = create_run(store, TrainConfig(dataset="tiny", task="rotation", image_size=16, epochs=1))
    ended = execute(store, run.id, should_stop=lambda: watcher.done, callbacks=[watcher])
    assert (ended.status, ended.error) == ("cancelled", None)  # the stop came in evaluation
    assert not store.runs.metrics(run.id, "eval/accuracy")
    done = execute(store, run.id)  # nothing left to train: evaluates and finishes
    assert (done.status, done.step) == ("finished", ended.step)
    assert store.runs.metrics(run.id, "eval/accuracy")
