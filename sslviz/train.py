"""Pretext training: create a run, then execute it with one readable loop and callbacks.

    run = create_run(store, TrainConfig(dataset="demo", task="rotation"))   # queued
    run = execute_run(store, run.id)                                        # ... finished

``execute_run`` is what the CLI (foreground), the background worker and torchrun's ranks call.
The run's state lives in the store; the loop (``train``) reports through callbacks (minGPT-style):
``StoreLogger`` writes metrics and progress, the CLI adds a progress bar.
"""

from __future__ import annotations

import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.lr_scheduler import LambdaLR

from sslviz import distributed
from sslviz.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from sslviz.config import TrainConfig, check_config
from sslviz.data.batches import BatchLoader, BatchPlan, load_rows, split_indices
from sslviz.data.cache import open_cache
from sslviz.devices import resolve_device
from sslviz.errors import UserError
from sslviz.evaluate import build_model, evaluate_model
from sslviz.store import Run, Store
from sslviz.store.rows import RESUMABLE_STATUSES
from sslviz.train_callbacks import Callback, Heartbeat, StoreLogger, TrainState

__all__ = ["Callback", "TrainState", "create_run", "execute_run", "train"]

SAMPLE_IMAGES = 1_024  # training images the task sees for data-dependent statistics


def create_run(store: Store, config: TrainConfig) -> Run:
    """Check ``config`` (UserError with its first problem) and record the run as ``queued``."""
    check_config(store, config)
    dataset = store.datasets.get_by_name(config.dataset)
    return store.runs.create(
        dataset_id=dataset.id,
        task=config.task,
        encoder=config.encoder,
        config=config.to_dict(),
        device=config.device,
        epochs=config.epochs,
    )


def execute_run(
    store: Store,
    run_id: int,
    *,
    should_stop: Callable[[], bool] | None = None,
    callbacks: Sequence[Callback] = (),
) -> Run:
    """Train a queued/claimed run (or continue a cancelled/failed/interrupted one from its last
    checkpoint) to its end; returns the run as it ended: finished, failed or cancelled.

    Stops (checkpoint, ``cancelled``) when ``should_stop()`` is true or the store's
    ``cancel_requested`` is set. Any exception marks the run ``failed`` with the traceback stored
    and is re-raised. Under torchrun only rank 0 writes the store.
    """
    ctx = distributed.context()
    run = store.runs.get(run_id)
    heartbeat = None
    if ctx.is_main:
        _mark_running(store, run)
        heartbeat = Heartbeat(store, run.id)
    logger = [StoreLogger(store, run.id)] if ctx.is_main else []
    try:
        status, fields = train(store, run, should_stop=should_stop, callbacks=[*logger, *callbacks])
    except BaseException as error:
        if ctx.is_main:
            cancelled = isinstance(error, KeyboardInterrupt)
            store.runs.transition(
                run.id,
                "cancelled" if cancelled else "failed",
                allowed_from=("running",),
                ended_at=time.time(),
                pid=None,
                error=None if cancelled else _one_line(error),
                traceback=None if cancelled else traceback.format_exc(),
            )
        raise
    finally:
        if heartbeat:
            heartbeat.stop()
    if ctx.is_main:
        store.runs.transition(
            run.id, status, allowed_from=("running",), ended_at=time.time(), pid=None, **fields
        )
    return store.runs.get(run.id)


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

    # ---- data: decode-once uint8 cache, held-out split, batch plan -----------------------------
    # rank 0 builds the cache (heartbeating via callbacks); the others wait, then map it too
    def cache_progress(done: int, total: int) -> None:
        for cb in callbacks:
            cb.on_cache_progress(done, total)

    if ctx.is_main:
        cache = open_cache(store, run.dataset_id, config.image_size, on_progress=cache_progress)
    distributed.barrier()
    if not ctx.is_main:
        cache = open_cache(store, run.dataset_id, config.image_size)
    train_rows, _ = split_indices(len(cache), config.holdout, config.seed)  # held-out never seen
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

    def lr_factor(step: int) -> float:
        # with a time budget, the cosine follows whichever is further along, steps or time, so
        # the learning rate has annealed when the budget runs out
        done = step / total_steps
        if config.time_budget:
            done = max(done, state.train_seconds / config.time_budget)
        return min(1.0, (step + 1) / warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))

    scheduler = LambdaLR(optimizer, lr_factor)

    # ---- resume from the last checkpoint ------------------------------------------------------
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path, map_location=device)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state.step, state.train_seconds = int(ckpt["step"]), float(ckpt["train_seconds"])
        set_rng_state(ckpt["rng"])

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

    def stop_requested() -> bool:
        if should_stop is not None and should_stop():
            return True
        return ctx.is_main and bool(store.runs.get(run.id).cancel_requested)

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
    status, fields, my_images = "finished", {}, 0
    budget_left = config.time_budget is None or state.train_seconds < config.time_budget
    clock = time.perf_counter() - state.train_seconds  # train_seconds = now - clock
    while status == "finished" and budget_left and state.step < total_steps:
        epoch = state.epoch
        for _, n_images, batch in loader.epoch(
            epoch, start=state.step - epoch * plan.steps_per_epoch
        ):
            inputs = batch.inputs  # (N, C, H, W); jigsaw's tiles are (B, 9, C, h, w)
            if inputs.dim() == 4:
                inputs = inputs.to(memory_format=torch.channels_last)
            with autocast:
                outputs, loss = net(inputs, batch.targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            state.lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            state.step += 1
            state.train_seconds = time.perf_counter() - clock
            scheduler.step()
            my_images += n_images

            # one collective per step: mean loss and metric, images, stop votes, rank 0's clock
            stop = stop_requested()
            metric = task.batch_metric(outputs.detach().float(), batch.targets)
            sums = distributed.all_reduce_sum(
                [
                    loss.item(),
                    metric,
                    n_images,
                    float(stop),
                    state.train_seconds if ctx.is_main else 0.0,
                ]
            )
            state.loss, state.metric = sums[0] / ctx.world, sums[1] / ctx.world
            state.images, state.train_seconds = int(sums[2]), sums[4]
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
            f"{my_images} images",
            file=sys.stderr,
            flush=True,
        )
        if ctx.is_main:
            store.runs.log_metrics(
                run.id, state.step, {f"ddp/images_rank{r}": v for r, v in enumerate(shares)}
            )

    # ---- held-out evaluation and artifacts (rank 0) --------------------------------------------
    if status == "finished" and ctx.is_main:
        evaluate_model(store, run, task, model, cache, config, step=state.step)
    for cb in callbacks:
        cb.on_train_end(state, status)
    return status, fields


def _mark_running(store: Store, run: Run) -> None:
    """queued/claimed -> running with this process's pid; an ended run restarts from its
    checkpoint with its cancel flag cleared."""
    now = time.time()
    common = {"pid": os.getpid(), "heartbeat_at": now, "started_at": run.started_at or now}
    if run.status in RESUMABLE_STATUSES:
        ok = store.runs.transition(
            run.id,
            "running",
            allowed_from=RESUMABLE_STATUSES,
            cancel_requested=0,
            error=None,
            traceback=None,
            ended_at=None,
            **common,
        )
    else:
        ok = store.runs.transition(run.id, "running", allowed_from=("queued", "running"), **common)
    if not ok:
        raise UserError(
            f"run {run.id} is {store.runs.get(run.id).status}: only queued, running, "
            f"{', '.join(RESUMABLE_STATUSES)} runs can be trained"
        )


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:500]
