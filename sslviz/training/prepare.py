"""What the training loop starts from: the decoded data and its batch plan, the model on its
device, the optimizer and its learning-rate schedule, and the checkpoint it resumes from and
saves to. Each is one named stage of ``sslviz.training.train.train``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.lr_scheduler import LambdaLR

from sslviz.core.errors import UserError
from sslviz.core.liveness import alive
from sslviz.data.cache import open_cache
from sslviz.models.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from sslviz.pretext import TASKS
from sslviz.store import Run, Store
from sslviz.training import distributed
from sslviz.training.batches import BatchPlan, load_rows, split_indices
from sslviz.training.callbacks import Callback, TrainState
from sslviz.training.config import SAMPLE_IMAGES, TrainConfig
from sslviz.training.evaluate import build_model, calibration_split
from sslviz.training.split import dataset_groups

__all__ = ["Checkpoint", "RunData", "lr_factor", "make_optimizer", "make_scheduler", "open_data"]

WARMUP_BUDGET_FRACTION = 0.1  # under a time budget, warm-up ends by this share of it at the latest


@dataclass
class RunData:
    """A run's images: the decode-once uint8 cache and which of its rows do what."""

    cache: np.ndarray  # (N, 3, H, W) uint8
    train_rows: np.ndarray  # rows trained on
    calibration_rows: np.ndarray  # rows a calibrating task (colorization) fits its outputs on
    plan: BatchPlan


def open_data(
    store: Store,
    run: Run,
    config: TrainConfig,
    callbacks: Sequence[Callback],
    stop_requested: Callable[[], bool],
) -> RunData:
    """Decode-once uint8 cache, held-out split and batch plan of ``run``.

    Rank 0 builds the cache (each chunk a sign of life; a stop raises Cancelled); the others
    wait at the barrier (its timeout covers a long first build), then map it too.
    """
    ctx = distributed.context()

    def cache_progress(done: int, total: int) -> None:
        alive()
        for cb in callbacks:
            cb.on_cache_progress(done, total)

    if ctx.is_main:
        cache = open_cache(
            store,
            run.dataset_id,
            config.image_size,
            on_progress=cache_progress,
            should_stop=stop_requested,
        )
    distributed.barrier()
    if not ctx.is_main:
        cache = open_cache(store, run.dataset_id, config.image_size)
    groups = dataset_groups(store, run.dataset_id, config)  # whole folders held out, if grouped
    train_rows, _ = split_indices(len(cache), config.holdout, config.seed, groups)  # never seen
    # a task that calibrates its outputs after training (colorization) gets images it never
    # trained on for that, apart from the held-out ones the reported metrics use
    train_rows, calibration_rows = calibration_split(
        train_rows, TASKS[config.task].calibration_fraction, config.seed
    )
    plan = BatchPlan(train_rows, config.batch_size, config.seed, ctx.rank, ctx.world)
    if plan.global_batch < 2 * ctx.world:
        raise UserError(
            f"batch size {plan.global_batch} is too small for {ctx.world} processes: "
            f"use --batch-size {2 * ctx.world} or more"
        )
    return RunData(cache, train_rows, calibration_rows, plan)


def build_on_device(
    config: TrainConfig, data: RunData, device: torch.device
) -> tuple[object, torch.nn.Module]:
    """The task and its untrained model (shared encoder + the task's head) on ``device``."""
    spread = torch.linspace(0, len(data.train_rows) - 1, min(SAMPLE_IMAGES, len(data.train_rows)))
    task, model = build_model(config, load_rows(data.cache, data.train_rows[spread.long().numpy()]))
    # channels-last on CPU too: oneDNN's convolutions are ~30% faster in NHWC than NCHW there
    return task, model.to(device, memory_format=torch.channels_last)


def make_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD (Nesterov) or AdamW; no weight decay on biases and norm scales (1-D parameters), as
    in nanoGPT."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=config.lr)


def lr_factor(
    step: int,
    seconds: float,
    *,
    warmup_steps: int,
    total_steps: int,
    time_budget: float | None = None,
) -> float:
    """Multiplier of the peak learning rate for optimizer step ``step`` (0-based), taken after
    ``seconds`` of training: a linear warm-up to 1, then a cosine from 1 to ~0 at the run's end.

    Warm-up lasts ``warmup_steps`` (at most half the steps) or, under a time budget, at most
    ``WARMUP_BUDGET_FRACTION`` of it, whichever ends first: the peak is reached even when the
    budget allows fewer steps than the warm-up. The cosine starts where warm-up ends and follows
    whichever is further along, steps or time, so the rate has annealed when the budget runs out.
    """
    warmup = max(1, min(warmup_steps, math.ceil(total_steps / 2)))
    ramp = (step + 1) / warmup
    decay = (step + 1 - warmup) / max(1, total_steps + 1 - warmup)
    if time_budget:
        warm_seconds = WARMUP_BUDGET_FRACTION * time_budget
        ramp = max(ramp, seconds / warm_seconds)
        decay = max(decay, (seconds - warm_seconds) / (time_budget - warm_seconds))
    return min(1.0, ramp) * 0.5 * (1 + math.cos(math.pi * min(max(decay, 0.0), 1.0)))


def make_scheduler(
    optimizer: torch.optim.Optimizer, state: TrainState, config: TrainConfig, plan: BatchPlan
) -> LambdaLR:
    """Linear warm-up, then cosine to zero (``lr_factor``). Every rank computes it from rank 0's
    clock (``state.train_seconds``, all-reduced each step), so replicas agree."""
    warmup_steps = max(1, round(config.warmup_epochs * plan.steps_per_epoch))
    total_steps = config.epochs * plan.steps_per_epoch
    return LambdaLR(
        optimizer,
        lambda step: lr_factor(
            step,
            state.train_seconds,
            warmup_steps=warmup_steps,
            total_steps=total_steps,
            time_budget=config.time_budget,
        ),
    )


@dataclass
class Checkpoint:
    """The run's checkpoint: everything needed to continue it exactly (model, optimizer,
    schedule, step, clock, random streams) and the config that reproduces it."""

    path: Path
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    config: TrainConfig
    plan: BatchPlan
    state: TrainState

    def resume(self, device: torch.device) -> bool:
        """Continue from the last checkpoint, if any (True when there was one)."""
        if not self.path.exists():
            return False
        ckpt = load_checkpoint(self.path, map_location=device)
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.state.step, self.state.train_seconds = int(ckpt["step"]), float(ckpt["train_seconds"])
        set_rng_state(ckpt["rng"])  # rank 0's; the others continue their own stream
        return True

    def save(self) -> None:
        """Write it (rank 0 only; atomically, see ``save_checkpoint``)."""
        if not distributed.context().is_main:
            return
        state = self.state
        save_checkpoint(
            self.path,
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "step": state.step,
                "epoch": state.epoch,
                "train_seconds": state.train_seconds,
                "config": self.config.to_dict(),
                "rng": rng_state(),
                "batch_rng": {
                    "seed": self.config.seed,
                    "epoch": state.epoch,
                    "index": state.step % self.plan.steps_per_epoch,
                },
            },
        )
