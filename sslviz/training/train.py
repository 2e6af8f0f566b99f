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
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR

from sslviz.core.devices import resolve_device
from sslviz.core.errors import UserError
from sslviz.core.liveness import Cancelled, alive
from sslviz.data.cache import open_cache
from sslviz.models.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    remove_orphans,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from sslviz.pretext import TASKS
from sslviz.store import Run, Store
from sslviz.store.kinds import JobRequest, run_kind
from sslviz.training import distributed
from sslviz.training.batches import BatchLoader, BatchPlan, load_rows, split_indices
from sslviz.training.callbacks import Callback, StoreLogger, TrainState
from sslviz.training.config import SAMPLE_IMAGES, TrainConfig
from sslviz.training.evaluate import build_model, calibration_split, evaluate_model
from sslviz.training.feasibility import check_run
from sslviz.training.split import dataset_groups

__all__ = ["Callback", "TrainState", "create_run", "execute_run", "lr_factor", "train"]

WARMUP_BUDGET_FRACTION = 0.1  # under a time budget, warm-up ends by this share of it at the latest
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
    kind = run_kind(run.task)
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
    run_dir = store.workspace.run_dir(run.id)
    ckpt_path = checkpoint_path(run_dir)

    # ---- device and seeds ----------------------------------------------------------------------
    device = distributed.local_device(resolve_device(config.device))
    on_cuda = device.type == "cuda"
    torch.manual_seed(config.seed)  # same initial weights on every rank (DDP also broadcasts)
    if ctx.is_main:
        remove_orphans(ckpt_path)  # half-written checkpoints of a killed process

    def stop_requested() -> bool:
        if should_stop is not None and should_stop():
            return True
        return ctx.is_main and bool(store.runs.get(run.id).cancel_requested)

    # ---- data: decode-once uint8 cache, held-out split, batch plan -----------------------------
    # rank 0 builds the cache (each chunk a sign of life; a stop raises Cancelled); the others
    # wait at the barrier (its timeout covers a long first build), then map it too
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
    total_steps = config.epochs * plan.steps_per_epoch

    # ---- model: shared encoder + the task's head -----------------------------------------------
    spread = torch.linspace(0, len(train_rows) - 1, min(SAMPLE_IMAGES, len(train_rows))).long()
    task, model = build_model(config, load_rows(cache, train_rows[spread.numpy()]))
    # channels-last on CPU too: oneDNN's convolutions are ~30% faster in NHWC than NCHW there
    model = model.to(device, memory_format=torch.channels_last)
    # same weights everywhere, but each rank its own dropout masks (augmentation is per rank too)
    torch.manual_seed(_rank_seed(config.seed, ctx.rank))

    # ---- optimizer and schedule: linear warm-up, then cosine to zero ---------------------------
    # no weight decay on biases and norm scales (1-D parameters), as in nanoGPT
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=0.9, nesterov=True)
    else:
        optimizer = torch.optim.AdamW(groups, lr=config.lr)
    warmup_steps = max(1, round(config.warmup_epochs * plan.steps_per_epoch))
    state = TrainState(
        run.id,
        task.metric_name,
        plan.steps_per_epoch,
        total_steps,
        config.epochs,
        time_budget=config.time_budget,
    )

    # every rank computes it from rank 0's clock (all-reduced each step), so replicas agree
    scheduler = LambdaLR(
        optimizer,
        lambda step: lr_factor(
            step,
            state.train_seconds,
            warmup_steps=warmup_steps,
            total_steps=total_steps,
            time_budget=config.time_budget,
        ),
    )

    # ---- resume from the last checkpoint ------------------------------------------------------
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, map_location=device)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state.step, state.train_seconds = int(ckpt["step"]), float(ckpt["train_seconds"])
        set_rng_state(ckpt["rng"])  # rank 0's; the others continue their own stream
        if not ctx.is_main:
            torch.manual_seed(_rank_seed(config.seed, ctx.rank, state.step))

    def save() -> None:
        if ctx.is_main:
            save_checkpoint(
                ckpt_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "step": state.step,
                    "epoch": state.epoch,
                    "train_seconds": state.train_seconds,
                    "config": config.to_dict(),
                    "rng": rng_state(),
                    "batch_rng": {
                        "seed": config.seed,
                        "epoch": state.epoch,
                        "index": state.step % plan.steps_per_epoch,
                    },
                },
            )

    # ---- train ---------------------------------------------------------------------------------
    net = (
        DistributedDataParallel(model, device_ids=[device] if on_cuda else None)
        if ctx.enabled
        else model
    )
    loader = BatchLoader(cache, plan, task, device)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=on_cuda)
    model.train()
    for cb in callbacks:
        cb.on_train_start(state)

    def checkpointed(final: bool) -> None:
        if ctx.is_main:
            for cb in callbacks:  # duck-typed callbacks (the CLI's bar) may not have it
                hook = getattr(cb, "on_checkpoint", None)
                if hook is not None:
                    hook(state, task, model, final=final)

    checkpointed(final=False)  # where the features start (untrained, or as resumed)
    status, fields, my_images = "finished", {}, 0
    # a rank's share of each global batch (shards differ by an image when it doesn't divide)
    weighted = ctx.enabled
    budget_left = config.time_budget is None or state.train_seconds < config.time_budget
    clock = time.perf_counter() - state.train_seconds  # train_seconds = now - clock
    while status == "finished" and budget_left and state.step < total_steps:
        epoch = state.epoch
        for _, n_images, batch in loader.epoch(
            epoch, start=state.step - epoch * plan.steps_per_epoch
        ):
            # (N, C, H, W); jigsaw's tiles are (B, 9, C, h, w); multi-task: a dict by head
            inputs = batch.inputs
            if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
                inputs = inputs.to(memory_format=torch.channels_last)
            with autocast:
                outputs, loss = net(inputs, batch.targets)
            optimizer.zero_grad(set_to_none=True)
            # DDP averages gradients over ranks; scaling each rank's mean loss by its share of
            # the images makes that the mean over the global batch
            (loss * (n_images * ctx.world / plan.global_batch) if weighted else loss).backward()
            optimizer.step()
            state.lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            state.step += 1
            my_images += n_images
            alive()

            # one collective per step: image-weighted loss and metric, images, stop votes and
            # rank 0's clock, which every rank's schedule then follows
            stop = stop_requested()
            if isinstance(outputs, torch.Tensor):
                outputs = outputs.detach().float()
            metric = task.batch_metric(outputs, batch.targets)
            weight = n_images if weighted else 1
            sums = distributed.all_reduce_sum(
                [
                    loss.item() * weight,
                    metric * weight,
                    n_images,
                    float(stop),
                    time.perf_counter() - clock if ctx.is_main else 0.0,
                ]
            )
            norm = sums[2] if weighted else 1
            state.loss, state.metric = sums[0] / norm, sums[1] / norm
            state.images, state.train_seconds = int(sums[2]), sums[4]
            state.parts = getattr(model, "last_losses", {})  # multi-task: each head's loss
            scheduler.step()
            if not math.isfinite(state.loss):
                status, fields = (
                    "failed",
                    {
                        "error": (
                            f"loss became {state.loss} at step {state.step}: training diverged; lower "
                            f"--lr (was {config.lr:g}) or use a larger --batch-size"
                        )
                    },
                )
                break
            for cb in callbacks:
                cb.on_step_end(state)
            if sums[3] > 0:
                status = "cancelled"
                break
            if config.time_budget is not None and state.train_seconds >= config.time_budget:
                budget_left = False
                break
        if status == "failed":
            break  # keep the last good checkpoint
        pause = time.perf_counter()
        save()  # every epoch, on stop and at the end; not counted as training time
        alive()
        if status == "finished":  # not on a stop: that answers at once
            checkpointed(final=not budget_left or state.step >= total_steps)
        clock += time.perf_counter() - pause
        if state.step % plan.steps_per_epoch == 0:
            for cb in callbacks:
                cb.on_epoch_end(state)

    # ---- both ranks stepped: report each rank's share --------------------------------------
    if ctx.enabled:
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

    # ---- held-out evaluation and artifacts (rank 0) --------------------------------------------
    if status == "finished" and ctx.is_main:
        # every evaluation batch is a sign of life and a chance to stop (Cancelled)
        def check(module: torch.nn.Module, inputs: object) -> None:
            alive()
            if stop_requested():
                raise Cancelled("stopped during evaluation")

        hook = model.register_forward_pre_hook(check)
        try:
            if len(calibration_rows):
                task.calibrate(model, load_rows(cache, calibration_rows).to(device))
                save()  # the calibration lives in the model's buffers: keep it
            evaluate_model(store, run, task, model, cache, config, step=state.step)
            save()  # evaluation may choose what a decode needs (colorization, cross-fitted)
        finally:
            hook.remove()
    for cb in callbacks:
        cb.on_train_end(state, status)
    return status, fields


def _rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The torch seed of one rank's own randomness (dropout) from the run's seed."""
    return int(np.random.SeedSequence([seed, _DROPOUT_SALT, rank, step]).generate_state(1)[0])
