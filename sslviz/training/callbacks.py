"""What the training loop reports through: its state after each step and the callbacks that
watch it (minGPT-style: behaviour is added by callbacks, never by subclassing the loop).

``StoreLogger`` writes metrics and progress to the store (each write a sign of life for the job
runner's heartbeat); the CLI adds a progress bar.

What a run stores as its plan is what it will have done when it ends (``TrainState.planned``):
``epochs`` and ``total_steps`` are the configured ones, or under a time budget the ones the budget
allows at the measured pace (re-estimated at every write, so "epoch 4/~20" ends near 20), and once
it finished what it did. The configured ceiling stays in the run's config.
"""

from __future__ import annotations

import math
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from sslviz.store import Store

__all__ = ["Callback", "StoreLogger", "TrainState"]

FLUSH_SECONDS = 2.0  # how often buffered metrics and progress are written to the store
PACE_SECONDS = 2.0  # training seconds over which a time-bound run's recent pace is measured
MAX_POINTS = 5_000  # metric rows per key and run, at most (longer runs log averages)


@dataclass
class TrainState:
    """What callbacks see after each step (and at the start and end)."""

    run_id: int
    metric_name: str
    steps_per_epoch: int
    total_steps: int
    epochs: int
    step: int = 0  # optimizer steps done
    train_seconds: float = 0.0
    loss: float = math.nan  # this step's loss (mean over ranks)
    metric: float = math.nan  # this step's live pretext metric, e.g. rotation accuracy
    lr: float = 0.0
    images: int = 0  # images in this step's batch (all ranks, before the task multiplies them)
    time_budget: float | None = None
    # parts of this step's loss on this rank (a multi-task run: each head's loss / its chance)
    parts: dict[str, float] = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        """Completed epochs."""
        return self.step // self.steps_per_epoch

    def planned(self, steps_per_second: float | None = None) -> tuple[int, int] | None:
        """(epochs, steps) the run will have done when it ends: the configured ones, or under a
        time budget what the rest of the budget allows at ``steps_per_second`` (default: the
        pace so far), at most the configured ones. None while a budget's pace is unknown."""
        if not self.time_budget:
            return self.epochs, self.total_steps
        if steps_per_second is None:
            if self.step <= 0 or self.train_seconds <= 0:
                return None
            steps_per_second = self.step / self.train_seconds
        left = max(0.0, self.time_budget - self.train_seconds)
        # the loop stops at the first step that ends past the budget: round, don't floor
        steps = min(self.total_steps, self.step + round(left * steps_per_second))
        return steps // self.steps_per_epoch, steps


class Callback:
    """Hooks into training; override what you need. Called on every rank."""

    def on_cache_progress(self, done: int, total: int) -> None: ...
    def on_train_start(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState, status: str) -> None: ...

    def on_checkpoint(self, state: TrainState, task: Any, model: Any, *, final: bool) -> None:
        """The model as checkpointed (and once before the first step, as it starts); ``final``
        at the run's last checkpoint. Rank 0 only; not counted as training time."""


class StoreLogger(Callback):
    """Buffers per-step metrics and writes them, with the run's progress, every few seconds in
    one transaction (averages over ``every`` steps, so a long run stays a few thousand rows)."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store, self.run_id = store, run_id
        self.rows: list[tuple[int, dict[str, float]]] = []
        self.sums: dict[str, float] = {}
        self.count, self.images, self.every = 0, 0, 1
        self.window_start = self.last_flush = time.perf_counter()
        self.pace: float | None = None  # recent optimizer steps per training second
        self.pace_mark: tuple[float, int] | None = None  # (train_seconds, step) it counts from

    def on_train_start(self, state: TrainState) -> None:
        self.every = max(1, state.total_steps // MAX_POINTS)
        self.window_start = time.perf_counter()
        self.flush(state)

    def on_step_end(self, state: TrainState) -> None:
        parts = ((f"loss/{name}", value) for name, value in state.parts.items())
        for key, value in (("loss", state.loss), (state.metric_name, state.metric), *parts):
            self.sums[key] = self.sums.get(key, 0.0) + value
        self.count += 1
        self.images += state.images
        if state.step % self.every == 0:
            now = time.perf_counter()
            row = {k: v / self.count for k, v in self.sums.items()}
            row.update(
                lr=state.lr,
                epoch=state.step / state.steps_per_epoch,
                images_per_s=self.images / max(now - self.window_start, 1e-9),
            )
            self.rows.append((state.step, row))
            self.sums, self.count, self.images, self.window_start = {}, 0, 0, now
        if time.perf_counter() - self.last_flush >= FLUSH_SECONDS:
            self.flush(state)

    def on_epoch_end(self, state: TrainState) -> None:
        self.flush(state)

    def on_train_end(self, state: TrainState, status: str) -> None:
        self.flush(state, final=True, finished=status == "finished")

    def _measure_pace(self, state: TrainState) -> float | None:
        """Steps per training second over the last ``PACE_SECONDS`` or more (smoothed): the
        first steps (allocation, kernel warm-up) are slower than the rest of a run."""
        if self.pace_mark is None or state.step < self.pace_mark[1]:
            self.pace_mark = (state.train_seconds, state.step)
            return self.pace
        seconds, step = self.pace_mark
        if state.train_seconds - seconds >= PACE_SECONDS and state.step > step:
            recent = (state.step - step) / (state.train_seconds - seconds)
            self.pace = recent if self.pace is None else 0.5 * (self.pace + recent)
            self.pace_mark = (state.train_seconds, state.step)
        return self.pace

    def flush(self, state: TrainState, *, final: bool = False, finished: bool = False) -> None:
        """Write the buffered rows and the progress with the plan (``TrainState.planned``; what
        it did once ``finished``). A database locked for longer than the store's busy timeout
        keeps the rows for the next flush, unless this is the last one."""
        plan = (state.epoch, state.step) if finished else state.planned(self._measure_pace(state))
        planned = {} if plan is None else {"epochs": plan[0], "total": plan[1]}
        self.last_flush = time.perf_counter()
        try:
            self.store.runs.log_metrics_batch(self.run_id, self.rows)
            self.rows = []
            self.store.runs.progress(
                self.run_id,
                step=state.step,
                epoch=state.epoch,
                work_seconds=state.train_seconds,
                **planned,
            )
        except sqlite3.OperationalError as error:
            if final:
                raise
            print(f"run {self.run_id}: will write metrics later: {error}", file=sys.stderr)
