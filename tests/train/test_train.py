"""The training loop on real tiny datasets: stop and resume, failure, time budget, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sslviz.core.errors import UserError
from sslviz.models.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint
from sslviz.runner.execute import execute
from sslviz.training.config import TrainConfig, config_problems, default_config
from sslviz.training.evaluate import (
    MAX_CALIBRATION_IMAGES,
    calibration_split,
    evaluate_run,
    load_model,
)
from sslviz.training.train import Callback, create_run


def rotation(**changes) -> TrainConfig:
    base = TrainConfig(dataset="tiny", task="rotation", image_size=16, epochs=2, batch_size=12)
    return base.replace(**changes)


class StopAfterEpochs(Callback):
    def __init__(self, epochs: int) -> None:
        self.epochs, self.stop = epochs, False

    def on_epoch_end(self, state) -> None:
        self.stop = state.epoch >= self.epochs


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 3, 5, 5)).sum().backward()
    optimizer.step()
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": 7,
        "config": rotation(task_options={"flip": False}).to_dict(),
        "rng": torch.get_rng_state(),
    }
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(path, state)
    loaded = load_checkpoint(path)  # weights_only=True inside
    assert loaded["step"] == 7 and loaded["config"] == state["config"]
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded["model"][key], tensor)
    fresh = torch.optim.AdamW(model.parameters())
    fresh.load_state_dict(loaded["optimizer"])
    assert TrainConfig.from_dict(loaded["config"]) == rotation(task_options={"flip": False})
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_stop_then_resume_continues_to_the_planned_end(store, tiny):
    run = create_run(store, rotation(epochs=3))
    assert run.status == "queued" and run.epochs == 3
    stopper = StopAfterEpochs(1)
    stopped = execute(store, run.id, should_stop=lambda: stopper.stop, callbacks=[stopper])
    steps_per_epoch = 36 // 12
    assert stopped.status == "cancelled"
    # the stop is seen at the first step after epoch 1 ended
    assert stopped.step == steps_per_epoch + 1 and stopped.epoch == 1
    ckpt = load_checkpoint(checkpoint_path(store.workspace.run_dir(run.id)))
    assert ckpt["step"] == stopped.step and ckpt["config"] == run.config

    steps_seen = []

    class Steps(Callback):
        def on_step_end(self, state) -> None:
            steps_seen.append(state.step)

    done = execute(store, run.id, callbacks=[Steps()])
    assert done.status == "finished" and done.error is None
    assert steps_seen[0] == stopped.step + 1  # continued, not restarted
    assert done.step == 3 * steps_per_epoch and done.epoch == 3
    assert done.started_at == stopped.started_at and done.pid is None
    keys = {m.key for m in store.runs.metrics(run.id)}
    assert {"loss", "lr", "images_per_s", "accuracy", "epoch", "eval/accuracy"} <= keys
    losses = store.runs.metrics(run.id, "loss")
    assert [m.step for m in losses] == list(range(1, done.step + 1))
    result = evaluate_run(store, run.id)
    assert result["run"] == run.id and result["task"] == "rotation"
    assert sum(map(sum, result["confusion"])) == 4 * 4  # 4 held-out images x 4 rotations
    assert {a.name for a in store.runs.artifacts(run.id)} >= {"confusion"}


def test_cancel_requested_in_the_store_stops_the_run(store, tiny):
    run = create_run(store, rotation())
    store.runs.request_cancel(run.id)
    ended = execute(store, run.id)
    # seen while the cache is built, before any step
    assert ended.status == "cancelled" and ended.step == 0 and ended.error is None


def test_non_finite_loss_fails_the_run_with_the_reason(store, tiny):
    run = create_run(store, rotation(lr=1e30, epochs=3, warmup_epochs=0))
    ended = execute(store, run.id)
    assert ended.status == "failed"
    assert "loss became" in ended.error and "--lr" in ended.error
    assert ended.step < 9


def test_exception_marks_failed_with_traceback_and_reraises(store, tiny):
    run = create_run(store, rotation())

    class Boom(Callback):
        def on_step_end(self, state) -> None:
            raise RuntimeError("boom at step 1")

    with pytest.raises(RuntimeError):
        execute(store, run.id, callbacks=[Boom()])
    failed = store.runs.get(run.id)
    assert failed.status == "failed" and "boom at step 1" in failed.error
    assert "Traceback" in failed.traceback


def test_time_budget_ends_the_run_as_finished(store, tiny):
    run = create_run(store, rotation(epochs=500, time_budget=1.5))
    ended = execute(store, run.id)
    assert ended.status == "finished"
    assert 1.5 <= ended.work_seconds < 30 and ended.step < 500 * 3
    assert math.isfinite(store.runs.metrics(run.id, "eval/accuracy")[0].value)
    lrs = [m.value for m in store.runs.metrics(run.id, "lr")]
    assert lrs[-1] < 0.5 * max(lrs)  # the cosine follows the budget, so it has annealed


@pytest.mark.parametrize("task,size", [("colorization", 16), ("jigsaw", 24)])
def test_other_tasks_train_and_load_their_encoder(store, tiny, task, size):
    run = create_run(store, rotation(task=task, image_size=size, epochs=1))
    ended = execute(store, run.id)
    assert ended.status == "finished", ended.error
    encoder = load_model(store, run.id)[1].encoder
    assert not encoder.training
    channels = 1 if task == "colorization" else 3
    with torch.no_grad():
        assert encoder.embed(torch.zeros(2, channels, size, size)).shape == (2, encoder.embed_dim)


def test_config_problems_are_one_line_each(store, make_dataset):
    make_dataset("tiny", n=40)
    make_dataset("two", n=2, seed=1)
    assert config_problems(store, rotation()) == []
    bad = {
        "batch_size": rotation(batch_size=1),
        "jigsaw image": rotation(task="jigsaw", image_size=16),
        "encoder": rotation(encoder="vgg"),
        "task": rotation(task="inpainting"),
        "device": rotation(device="cuda:7"),
        "few images": rotation(dataset="two"),
        "dataset": rotation(dataset="nope"),
        "option": rotation(task_options={"permutations": 100}),
    }
    for name, config in bad.items():
        problems = config_problems(store, config)
        assert len(problems) == 1, (name, problems)
        assert "\n" not in problems[0]
    with pytest.raises(UserError, match="--batch-size"):
        create_run(store, rotation(batch_size=1))
    assert store.runs.list() == []  # nothing recorded for a bad config


def test_default_config_is_valid_for_every_task(store, tiny):
    for task in ("rotation", "colorization", "jigsaw"):
        config = default_config(tiny, task)
        assert config_problems(store, config) == [], task
        assert config.batch_size <= 36


def test_calibration_split_is_disjoint_capped_and_only_when_asked() -> None:
    rows = np.arange(5_000) * 2
    train, calibrate = calibration_split(rows, 0.1, seed=1)
    assert len(calibrate) == MAX_CALIBRATION_IMAGES  # a tenth, capped
    assert not set(train) & set(calibrate) and sorted({*train, *calibrate}) == list(rows)
    assert np.array_equal(calibration_split(rows, 0.1, seed=1)[1], calibrate)  # by seed
    assert len(calibration_split(rows, 0.0, seed=1)[1]) == 0  # tasks that don't calibrate
    assert len(calibration_split(rows[:10], 0.1, seed=1)[1]) == 0  # too few to spare any


def test_colorization_run_calibrates_its_faithful_decode(store, tiny):
    run = execute(store, create_run(store, rotation(task="colorization", epochs=1)).id)
    assert run.status == "finished", run.error
    results = evaluate_run(store, run.id)
    assert results["faithful_calibrated"] is True  # saved in the checkpoint, not just in memory
    assert {"psnr", "psnr_faithful", "psnr_grey"} <= set(results)
    state = load_checkpoint(checkpoint_path(store.workspace.run_dir(run.id)))["model"]
    assert float(state["calib_temperature"]) > 0
