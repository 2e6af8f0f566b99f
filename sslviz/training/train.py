"""Pretext training: create a run, then train it with one readable loop and callbacks.

    run = create_run(store, TrainConfig(dataset="demo", task="rotation"))   # queued
    run = runner.execute.execute(store, run.id)                            # ... finished

``execute_run`` is the pretext tasks' executor (``sslviz.store.kinds``): the job runner claims the
run, keeps its heartbeat and records how it ended (``sslviz.runner.execute``); this module only
trains. The loop (``train``) reports through callbacks (minGPT-style): ``StoreLogger`` writes
metrics and progress, the CLI adds a progress bar. Cancel is answered at any moment: between
steps, while the cache is built, during evaluation.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR

from sslviz.core.devices import resolve_device
from sslviz.core.liveness import Cancelled, alive
from sslviz.models.checkpoint import checkpoint_path, remove_orphans
from sslviz.store import Run, Store
from sslviz.store.kinds import JobRequest, run_kind
from sslviz.training import distributed
from sslviz.training.batches import BatchLoader, load_rows
from sslviz.training.callbacks import Callback, StoreLogger, TrainState
from sslviz.training.config import TrainConfig
from sslviz.training.evaluate import evaluate_model
from sslviz.training.feasibility import check_run
from sslviz.training.prepare import (
    Checkpoint,
    RunData,
    build_on_device,
    lr_factor,
    make_optimizer,
    make_scheduler,
    open_data,
)

__all__ = ["Callback", "TrainState", "create_run", "execute_run", "lr_factor", "train"]

_DROPOUT_SALT = 0xD40


def job_request(store: Store, config: TrainConfig) -> JobRequest:
    """Check ``config`` (UserError with its first problem) and say what run it records."""
    check_run(store, config)  # before a run exists: also whether it fits this machine
    return JobRequest(
        kind=config.task,
        dataset_id=store.datasets.get_by_name(config.dataset).id,
        encoder=config.encoder,
        config=config.to_dict(),
        device=config.device,
        epochs=config.epochs,
    )


def create_run(store: Store, config: TrainConfig, *, claim: bool = False) -> Run:
    """Record the run of ``config`` as ``queued``, or with ``claim`` as ``running`` in this
    process (the foreground ``sslviz train``; see ``store.runs.record``). The job runner's
    ``submit`` also starts a queued run when its device has a free slot."""
    return store.runs.record(job_request(store, config), claim=claim)


def execute_run(
    store: Store,
    run: Run,
    *,
    should_stop: Callable[[], bool] | None = None,
    callbacks: Sequence[Callback] = (),
) -> tuple[str, dict[str, Any]]:
    """The pretext tasks' executor (``sslviz.store.kinds``; ``sslviz.runner.execute`` claims the
    run, keeps its heartbeat and records how it ended): train ``run`` from its last checkpoint, if
    any, to its end. Returns (``finished`` or ``cancelled``, run fields to set with it).

    Stops (checkpoint, ``cancelled``) when ``should_stop()`` is true or the store's
    ``cancel_requested`` is set, at any moment: a stop during the cache build or evaluation raises
    ``Cancelled``. Under torchrun only rank 0 writes the store; the other ranks call this directly.
    """
    main = distributed.context().is_main
    kind = run_kind(run.kind)
    logger = [StoreLogger(store, run.id)] if main else []
    if main and kind.checkpoint_monitor:  # the feature-quality curve (sslviz.fewshot.monitor)
        logger.append(kind.load("checkpoint_monitor")(store, run))
    # the result pages' per-image results are the run's last stage, written by the job runner
    return train(store, run, should_stop=should_stop, callbacks=[*logger, *callbacks])


def train(
    store: Store,
    run: Run,
    *,
    should_stop: Callable[[], bool] | None = None,
    callbacks: Sequence[Callback] = (),
) -> tuple[str, dict]:
    """The training loop. Returns (final status, run fields to set with it)."""
    config = TrainConfig.from_dict(run.config)
    ctx = distributed.context()
    ckpt_path = checkpoint_path(store.workspace.run_dir(run.id))

    # ---- device and seeds ----------------------------------------------------------------------
    device = distributed.local_device(resolve_device(config.device))
    torch.manual_seed(config.seed)  # same initial weights on every rank (DDP also broadcasts)
    if ctx.is_main:
        remove_orphans(ckpt_path)  # half-written checkpoints of a killed process

    def stop_requested() -> bool:
        if should_stop is not None and should_stop():
            return True
        return ctx.is_main and bool(store.runs.get(run.id).cancel_requested)

    # ---- data: decode-once uint8 cache, held-out split, batch plan -----------------------------
    data = open_data(store, run, config, callbacks, stop_requested)
    steps_per_epoch = data.plan.steps_per_epoch

    # ---- model: shared encoder + the task's head -----------------------------------------------
    task, model = build_on_device(config, data, device)
    # same weights everywhere, but each rank its own dropout masks (augmentation is per rank too)
    torch.manual_seed(_rank_seed(config.seed, ctx.rank))

    # ---- optimizer and schedule: linear warm-up, then cosine to zero ---------------------------
    optimizer = make_optimizer(model, config)
    total_steps = config.epochs * steps_per_epoch
    state = TrainState(
        run.id,
        task.metric_name,
        steps_per_epoch,
        total_steps,
        config.epochs,
        time_budget=config.time_budget,
    )
    scheduler = make_scheduler(optimizer, state, config, data.plan)

    # ---- resume from the last checkpoint ------------------------------------------------------
    ckpt = Checkpoint(ckpt_path, model, optimizer, scheduler, config, data.plan, state)
    if ckpt.resume(device) and not ctx.is_main:
        torch.manual_seed(_rank_seed(config.seed, ctx.rank, state.step))

    # ---- train ---------------------------------------------------------------------------------
    loop = _Loop(
        config=config,
        task=task,
        model=model,
        device=device,
        optimizer=optimizer,
        scheduler=scheduler,
        state=state,
        ckpt=ckpt,
        total_steps=total_steps,
        callbacks=callbacks,
        stop_requested=stop_requested,
    )
    loader = BatchLoader(data.cache, data.plan, task, device)
    model.train()
    for cb in callbacks:
        cb.on_train_start(state)
    loop.checkpointed(final=False)  # where the features start (untrained, or as resumed)
    status, fields = loop.run(loader)

    # ---- both ranks stepped: report each rank's share --------------------------------------
    if ctx.enabled:
        _report_shares(store, run, state, loop.my_images)

    # ---- held-out evaluation and artifacts (rank 0) --------------------------------------------
    if status == "finished" and ctx.is_main:
        _evaluate(store, run, loop, data)
    for cb in callbacks:
        cb.on_train_end(state, status)
    return status, fields


@dataclass(kw_only=True)
class _Loop:
    """The epochs and steps of ``train``: what one optimizer step does, and what ends an epoch."""

    config: TrainConfig
    task: Any  # the pretext task (sslviz.pretext)
    model: torch.nn.Module
    device: torch.device
    optimizer: torch.optim.Optimizer
    scheduler: LambdaLR
    state: TrainState
    ckpt: Checkpoint
    total_steps: int
    callbacks: Sequence[Callback]
    stop_requested: Callable[[], bool]
    my_images: int = 0  # this rank's images so far
    clock: float = 0.0  # train_seconds = now - clock (on rank 0)

    def __post_init__(self) -> None:
        on_cuda = self.device.type == "cuda"
        self.net = (  # the model, or its DDP wrapper
            DistributedDataParallel(self.model, device_ids=[self.device] if on_cuda else None)
            if distributed.context().enabled
            else self.model
        )
        self.autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda)

    def run(self, loader: BatchLoader) -> tuple[str, dict]:
        """Train to the end, a stop or the time budget. Returns (status, run fields)."""
        config, state = self.config, self.state
        steps_per_epoch = self.ckpt.plan.steps_per_epoch
        status, fields = "finished", {}
        budget_left = config.time_budget is None or state.train_seconds < config.time_budget
        self.clock = time.perf_counter() - state.train_seconds
        while status == "finished" and budget_left and state.step < self.total_steps:
            epoch = state.epoch
            for _, n_images, batch in loader.epoch(
                epoch, start=state.step - epoch * steps_per_epoch
            ):
                stop = self.step(batch, n_images)
                if not math.isfinite(state.loss):
                    error = (
                        f"loss became {state.loss} at step {state.step}: training diverged; lower "
                        f"--lr (was {config.lr:g}) or use a larger --batch-size"
                    )
                    status, fields = "failed", {"error": error}
                    break
                for cb in self.callbacks:
                    cb.on_step_end(state)
                if stop:
                    status = "cancelled"
                    break
                if config.time_budget is not None and state.train_seconds >= config.time_budget:
                    budget_left = False
                    break
            if status == "failed":
                break  # keep the last good checkpoint
            self.end_epoch(final=not budget_left or state.step >= self.total_steps, status=status)
        return status, fields

    def step(self, batch: Any, n_images: int) -> bool:
        """One optimizer step on this rank's share of a global batch, then one collective that
        agrees on loss, metric, images, stop votes and rank 0's clock. True when asked to stop."""
        ctx, state = distributed.context(), self.state
        # a rank's share of each global batch (shards differ by an image when it doesn't divide)
        weighted = ctx.enabled
        # (N, C, H, W); jigsaw's tiles are (B, 9, C, h, w); multi-task: a dict by head
        inputs = batch.inputs
        if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
            inputs = inputs.to(memory_format=torch.channels_last)
        with self.autocast:
            outputs, loss = self.net(inputs, batch.targets)
        self.optimizer.zero_grad(set_to_none=True)
        # DDP averages gradients over ranks; scaling each rank's mean loss by its share of
        # the images makes that the mean over the global batch
        global_batch = self.ckpt.plan.global_batch
        (loss * (n_images * ctx.world / global_batch) if weighted else loss).backward()
        self.optimizer.step()
        state.lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used
        state.step += 1
        self.my_images += n_images
        alive()

        # one collective per step, which every rank's schedule then follows
        stop = self.stop_requested()
        if isinstance(outputs, torch.Tensor):
            outputs = outputs.detach().float()
        metric = self.task.batch_metric(outputs, batch.targets)
        weight = n_images if weighted else 1
        sums = distributed.all_reduce_sum(
            [
                loss.item() * weight,
                metric * weight,
                n_images,
                float(stop),
                time.perf_counter() - self.clock if ctx.is_main else 0.0,
            ]
        )
        norm = sums[2] if weighted else 1
        state.loss, state.metric = sums[0] / norm, sums[1] / norm
        state.images, state.train_seconds = int(sums[2]), sums[4]
        state.parts = getattr(self.model, "last_losses", {})  # multi-task: each head's loss
        self.scheduler.step()
        return sums[3] > 0

    def end_epoch(self, *, final: bool, status: str) -> None:
        """Checkpoint (every epoch, on stop and at the end; not counted as training time)."""
        pause = time.perf_counter()
        self.ckpt.save()
        alive()
        if status == "finished":  # not on a stop: that answers at once
            self.checkpointed(final=final)
        self.clock += time.perf_counter() - pause
        if self.state.step % self.ckpt.plan.steps_per_epoch == 0:
            for cb in self.callbacks:
                cb.on_epoch_end(self.state)

    def checkpointed(self, *, final: bool) -> None:
        """Tell the callbacks that watch checkpoints (rank 0): the feature-quality curve."""
        if distributed.context().is_main:
            for cb in self.callbacks:  # duck-typed callbacks (the CLI's bar) may not have it
                hook = getattr(cb, "on_checkpoint", None)
                if hook is not None:
                    hook(self.state, self.task, self.model, final=final)


def _evaluate(store: Store, run: Run, loop: _Loop, data: RunData) -> None:
    """Calibrate (a task that does) and evaluate on the held-out images, saving each result in
    the checkpoint. Every evaluation batch is a sign of life and a chance to stop (Cancelled)."""
    task, model, ckpt = loop.task, loop.model, loop.ckpt

    def check(module: torch.nn.Module, inputs: object) -> None:
        alive()
        if loop.stop_requested():
            raise Cancelled("stopped during evaluation")

    hook = model.register_forward_pre_hook(check)
    try:
        if len(data.calibration_rows):
            task.calibrate(model, load_rows(data.cache, data.calibration_rows).to(loop.device))
            ckpt.save()  # the calibration lives in the model's buffers: keep it
        evaluate_model(store, run, task, model, data.cache, loop.config, step=loop.state.step)
        ckpt.save()  # evaluation may choose what a decode needs (colorization, cross-fitted)
    finally:
        hook.remove()


def _report_shares(store: Store, run: Run, state: TrainState, my_images: int) -> None:
    """Under DDP: each rank's images (a metric on rank 0) and a line on stderr per rank."""
    ctx = distributed.context()
    shares = distributed.all_reduce_sum(
        [my_images if r == ctx.rank else 0 for r in range(ctx.world)]
    )
    print(
        f"sslviz train: rank {ctx.rank}/{ctx.world} took {state.step} steps on "
        f"{my_images} images; last lr {state.lr!r}; seed {torch.initial_seed()}",
        file=sys.stderr,
        flush=True,
    )
    if ctx.is_main:
        store.runs.log_metrics(
            run.id, state.step, {f"ddp/images_rank{r}": v for r, v in enumerate(shares)}
        )


def _rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The torch seed of one rank's own randomness (dropout) from the run's seed."""
    return int(np.random.SeedSequence([seed, _DROPOUT_SALT, rank, step]).generate_state(1)[0])
