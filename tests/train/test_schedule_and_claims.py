"""The learning-rate schedule (warm-up reaches the peak, the cosine ends near zero, with and
without a time budget) and the rule that only the process that claimed a run trains it."""

from __future__ import annotations

import os
from functools import partial

import pytest

from sslviz.core.errors import UserError
from sslviz.runner import jobs
from sslviz.runner.execute import execute
from sslviz.training.config import TrainConfig
from sslviz.training.train import create_run, lr_factor


def rotation(**changes) -> TrainConfig:
    base = TrainConfig(dataset="tiny", task="rotation", image_size=16, epochs=2, batch_size=12)
    return base.replace(**changes)


def test_warmup_reaches_the_peak_then_the_cosine_decays_to_zero():
    schedule = partial(lr_factor, warmup_steps=100, total_steps=1_000)
    factors = [schedule(step, 0.0) for step in range(1_000)]
    assert factors[0] == pytest.approx(0.01)  # linear from 1/warm-up
    assert factors[99] == 1.0 and max(factors) == 1.0  # the peak, at the end of warm-up
    assert all(a <= b for a, b in zip(factors[:100], factors[1:100], strict=False))
    assert all(a >= b for a, b in zip(factors[99:], factors[100:], strict=False))
    assert factors[-1] < 1e-4  # annealed by the last step
    assert factors[550] == pytest.approx(0.5, abs=0.01)  # halfway through the cosine


def test_a_warmup_longer_than_the_run_still_leaves_half_of_it_to_anneal():
    factors = [lr_factor(s, 0.0, warmup_steps=500, total_steps=100) for s in range(100)]
    assert factors[49] == 1.0 and factors[-1] < 1e-3


def test_under_a_short_time_budget_the_peak_is_reached_and_annealed():
    # the budget allows ~500 steps (one per 20 ms); the warm-up asks for 1,500 steps
    budget, per_step = 10.0, 0.02
    schedule = partial(lr_factor, warmup_steps=1_500, total_steps=100_000, time_budget=budget)
    factors = [schedule(step, step * per_step) for step in range(500)]
    assert max(factors) == pytest.approx(1.0)
    peak = factors.index(max(factors))
    assert peak * per_step == pytest.approx(0.1 * budget, abs=per_step)  # 10% of the budget
    assert factors[-1] < 1e-3  # annealed when the budget runs out
    assert schedule(0, budget) == 0.0


def test_a_long_time_budget_warms_up_by_steps_and_anneals_by_time():
    schedule = partial(lr_factor, warmup_steps=10, total_steps=100_000, time_budget=3600.0)
    assert schedule(9, 1.0) == 1.0  # warm-up done after its steps, long before 10% of the time
    assert schedule(5_000, 1800.0) == pytest.approx(0.5 * (1 + 0.17364817766693033), abs=1e-6)
    assert schedule(9_000, 3600.0) == 0.0


def test_a_run_reaches_its_peak_learning_rate(store, tiny):
    run = create_run(store, rotation(epochs=4, warmup_epochs=1, lr=2e-3))
    assert execute(store, run.id).status == "finished"
    lrs = [m.value for m in store.runs.metrics(run.id, "lr")]
    assert max(lrs) == pytest.approx(2e-3) and lrs[-1] < 0.1 * 2e-3


def test_a_run_claimed_by_the_scheduler_is_not_trained_by_another_process(store, tiny):
    # The race: a foreground `sslviz train` recorded its run queued, and a scheduler (the Runs
    # page, every 2 s) claimed it for a worker before the foreground process started training.
    run = create_run(store, rotation())
    [claimed] = store.runs.claim(partial(jobs.pick_runs, per_device=1), pid=None)
    assert claimed.id == run.id and claimed.status == "running"
    with pytest.raises(UserError, match="already being carried out"):
        execute(store, run.id)
    after = store.runs.get(run.id)
    assert (after.status, after.step, after.pid) == ("running", 0, None)  # untouched


def test_a_foreground_run_is_recorded_claimed_so_no_scheduler_starts_it(store, tiny):
    run = create_run(store, rotation(), claim=True)
    assert (run.status, run.pid) == ("running", os.getpid())
    assert run.started_at and run.heartbeat_at
    assert jobs.schedule(store) == [] and jobs.reap(store) == []  # alive, not claimable
    done = execute(store, run.id)
    assert done.status == "finished" and done.pid is None


def test_a_queued_run_is_claimed_by_id_once(store, tiny):
    run = create_run(store, rotation(epochs=1))
    assert execute(store, run.id).status == "finished"  # claimed here, queued -> running
    again = create_run(store, rotation(epochs=1, seed=1))
    store.runs.update(again.id, pid=os.getpid() + 1)  # as if another process recorded itself
    store.runs.transition(again.id, "running", allowed_from=("queued",))
    with pytest.raises(UserError, match=f"process {os.getpid() + 1}"):
        execute(store, again.id)
