"""What the training loop reports through: its state after each step and the callbacks that
watch it (minGPT-style: behaviour is added by callbacks, never by subclassing the loop).

``StoreLogger`` writes metrics and progress to the store (each write a sign of life for the job
runner's heartbeat); the CLI adds a progress bar.
"""

from __future__ import annotations

import math
import sqlite3
import sys
import time
from dataclasses import dataclass, field

from sslviz.store import Store

__all__ = ["Callback", "StoreLogger", "TrainState"]

FLUSH_SECONDS = 2.0  # how often buffered metrics and progress are written to the store
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


class Callback:
    """Hooks into training; override what you need. Called on every rank."""

    def on_cache_progress(self, done: int, total: int) -> None: ...
    def on_train_start(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_epoch_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState, status: str) -> None: ...


class StoreLogger(Callback):
    """Buffers per-step metrics and writes them, with the run's progress, every few seconds in
    one transaction (averages over ``every`` steps, so a long run stays a few thousand rows)."""

    def __init__(self, store: Store, run_id: int) -> None:
        self.store, self.run_id = store, run_id
        self.rows: list[tuple[int, dict[str, float]]] = []
        self.sums: dict[str, float] = {}
        self.count, self.images, self.every = 0, 0, 1
        self.window_start = self.last_flush = time.perf_counter()

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
        self.flush(state, final=True)

    def flush(self, state: TrainState, *, final: bool = False) -> None:
        """Write the buffered rows and the progress. A database locked for longer than the
        store's busy timeout keeps the rows for the next flush, unless this is the last one."""
        total = state.total_steps
        if state.time_budget and state.train_seconds > 0 and state.step:
            # time-bound: estimate the steps the budget allows, so progress and ETA make sense
            total = min(
                total, max(state.step, round(state.step * state.time_budget / state.train_seconds))
            )
        self.last_flush = time.perf_counter()
        try:
            self.store.runs.log_metrics_batch(self.run_id, self.rows)
            self.rows = []
            self.store.runs.progress(
                self.run_id,
                step=state.step,
                epoch=state.epoch,
                total=total,
                train_seconds=state.train_seconds,
            )
        except sqlite3.OperationalError as error:
            if final:
                raise
            print(f"run {self.run_id}: will write metrics later: {error}", file=sys.stderr)
