"""The fine-tuning loop: the executor of job kind ``finetune`` (``sslviz.store.kinds``).

The recipe for tiny label sets is LP-FT (Kumar et al., ICLR 2022): a linear probe with the encoder
frozen first, then everything with the encoder at a 10x lower learning rate than the head.
Augmentation (``finetune_data``): random resized crop, flips where the parent task allows them,
colour jitter. With ``semi_supervised`` every step after the probe adds FixMatch's loss (Sohn et
al., NeurIPS 2020): the model's prediction on a weak view of each unlabeled image, where it is
confident enough, is the target for a strong view of the same image.

Honest numbers. The labels are split three ways (``finetune_data.split_labels``): ``train``
(learned from), ``select`` (early stopping keeps the state with the lowest loss on them: the
inner split) and ``holdout`` (untouched). Once the state is chosen, the head is refitted on
train + select and the untouched labels are predicted: that is ``holdout_accuracy``, the run's
only reported accuracy. Only then is the head refitted on every label (leaving a fifth of 5
labels a class out of the final model costs more than it tells) and every image predicted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sslviz.core.errors import UserError
from sslviz.core.liveness import alive
from sslviz.fewshot.finetune_data import (
    FineTuneConfig,
    augment_labeled,
    augment_strong,
    augment_weak,
    labels_file,
    read_label_file,
    split_labels,
)
from sslviz.fewshot.finetune_model import (
    FineTuneModel,
    autocast,
    blank_encoder,
    fit_feature_scale,
    fit_head,
    predict_logits,
    source_description,
)
from sslviz.fewshot.finetune_result import finish
from sslviz.models.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from sslviz.store import Run, Store
from sslviz.training.callbacks import Callback, StoreLogger, TrainState


def execute_run(
    store: Store,
    run: Run,
    *,
    should_stop: Callable[[], bool] | None = None,
    callbacks: Sequence[Callback] = (),
) -> tuple[str, dict[str, Any]]:
    """Fine-tune ``run`` (``sslviz.runner.execute`` claims it, keeps its heartbeat and records how
    it ended). A resumed run continues from its checkpoint (same split, same step).
    Returns (final status, run fields to set with it)."""
    from sslviz.core.devices import resolve_device
    from sslviz.data.cache import open_cache
    from sslviz.pretext import create_task
    from sslviz.training.batches import step_generator

    config = FineTuneConfig.from_dict(run.config)
    ckpt_path = checkpoint_path(store.workspace.run_dir(run.id))
    device = resolve_device(run.device)  # the run's device; "auto" = the best one here
    checkpoint = load_checkpoint(ckpt_path) if ckpt_path.exists() else None

    # ---- labels, split, images ------------------------------------------------------------------
    labels = read_label_file(labels_file(store, run.dataset_id, run.config["labels"]))
    images = store.datasets.images(run.dataset_id)  # the cache's row order
    row_of = {image.path: row for row, image in enumerate(images)}
    missing = sorted(set(labels) - set(row_of))
    if missing:
        raise UserError(f"{len(missing)} labeled paths are not in the dataset, e.g. {missing[0]}")
    split = (
        checkpoint["split"]
        if checkpoint
        else split_labels(labels, config.holdout, config.seed, config.select)
    )
    classes: list[str] = list(split["classes"])
    train_paths, select_paths = list(split["train"]), list(split.get("select", []))
    holdout_paths = list(split["holdout"])

    # ---- the parent's encoder, the head ----------------------------------------------------------
    if checkpoint:
        source = dict(checkpoint["source"])
        encoder, view, size = blank_encoder(source)
    else:
        from sslviz.maps.embed import encoder_for_source

        parent = store.runs.get(int(run.config["parent"]))
        source = source_description(store, parent)
        encoder, view, size, _ = encoder_for_source(store, str(parent.id))
    task = create_task(source["task"], **dict(source.get("task_options") or {}))
    flip = task.augment_flip
    cache = open_cache(store, run.dataset_id, size)  # uint8 (N, 3, S, S)
    model = FineTuneModel(encoder, config.layer, config.grid, len(classes)).to(device)
    class_index = {name: i for i, name in enumerate(classes)}

    def batch_of(paths: list[str]) -> tuple[Tensor, Tensor]:
        """uint8 images (n, 3, S, S) and classes (n,) of ``paths``, in that order."""
        x = torch.from_numpy(np.stack([cache[row_of[p]] for p in paths]))  # (n, 3, S, S)
        return x, torch.tensor([class_index[labels[p]] for p in paths])  # (n,)

    train_x, train_y = batch_of(train_paths)
    sel_x, sel_y = batch_of(select_paths) if select_paths else (None, None)
    if checkpoint is None:
        fit_feature_scale(model, cache, view, device)
        fit_head(model, train_x, train_y, view, device)

    # ---- optimizer: the head at lr, the encoder at lr * encoder_lr_ratio -------------------------
    optimizer = torch.optim.AdamW(
        [
            {"params": list(model.head.parameters()), "lr": config.lr},
            {"params": [p for p in model.encoder.parameters() if p.requires_grad], "lr": 0.0},
        ],
        weight_decay=config.weight_decay,
    )
    total = config.steps
    steps_per_epoch = max(1, math.ceil(len(train_paths) / config.batch_size))
    epochs = max(1, math.ceil(total / steps_per_epoch))
    store.runs.update(run.id, total_steps=total, epochs=epochs)
    state = TrainState(run.id, "accuracy", steps_per_epoch, total, epochs)
    best: dict[str, Any] | None = None  # {"model", "step", "loss", "accuracy"}: the chosen state
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        state.step = int(checkpoint["step"])
        state.train_seconds = float(checkpoint["train_seconds"])
        best = checkpoint.get("best")
        set_rng_state(checkpoint["rng"])
        print(f"fine-tune: resumed from step {state.step}", flush=True)  # the worker's log
    trained = bool(checkpoint and checkpoint.get("trained"))

    def save(done: bool = False) -> None:
        save_checkpoint(
            ckpt_path,
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": state.step,
                "train_seconds": state.train_seconds,
                "rng": rng_state(),
                "best": best,
                "split": split,
                "source": source,
                "config": run.config,
                "trained": done,
            },
        )

    def stop_requested() -> bool:
        if should_stop is not None and should_stop():
            return True
        return bool(store.runs.get(run.id).cancel_requested)

    def consider(step: int, extra: dict[str, float]) -> None:
        """Early stopping on the select labels (never the untouched ones): keep the state with
        the lowest loss there."""
        nonlocal best
        assert sel_x is not None and sel_y is not None
        logits = predict_logits(model, sel_x, view, device)
        loss = F.cross_entropy(logits, sel_y).item()
        accuracy = (logits.argmax(1) == sel_y).float().mean().item()
        store.runs.log_metrics(
            run.id, step, {"select/loss": loss, "select/accuracy": accuracy, **extra}
        )
        if best is None or loss < best["loss"] - 1e-4:
            state_copy = {k: v.detach().clone() for k, v in model.state_dict().items()}
            best = {"model": state_copy, "step": step, "loss": loss, "accuracy": accuracy}

    # ---- train -------------------------------------------------------------------------------------
    loggers = [StoreLogger(store, run.id), *callbacks]
    for cb in loggers:
        cb.on_train_start(state)
    status = "finished"
    clock = time.perf_counter() - state.train_seconds
    last_save = time.perf_counter()
    confident: list[float] = []  # share of unlabeled images above the threshold, per step
    model.train()
    while not trained and state.step < total:
        probing = state.step < config.probe_steps
        generator = step_generator(config.seed, state.step)
        pick = torch.randperm(len(train_x), generator=generator)[: config.batch_size]
        x = view(augment_labeled(train_x[pick], generator, flip=flip)).to(device)  # (B, C, S, S)
        y = train_y[pick].to(device)  # (B,)
        set_learning_rates(optimizer, config, state.step)
        with autocast(device):
            if probing:  # linear probe: no gradient through the encoder
                with torch.no_grad():
                    features = model.features(x)
                logits = model.head(features).float()
                loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
            elif config.semi_supervised:
                logits, unlabeled_loss, share = _fixmatch(
                    model, x, cache, view, flip, device, generator, config
                )
                loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
                loss = loss + config.unlabeled_weight * unlabeled_loss
                confident.append(share)
            else:
                logits = model(x).float()
                loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state.step += 1
        alive()
        state.lr = optimizer.param_groups[0]["lr"]
        state.train_seconds = time.perf_counter() - clock
        state.loss, state.images = loss.item(), len(x)
        state.metric = (logits.argmax(1) == y).float().mean().item()
        if not math.isfinite(state.loss):
            return "failed", {
                "error": f"loss became {state.loss} at step {state.step}: lower the lr"
            }
        for cb in loggers:
            cb.on_step_end(state)
        boundary = state.step == config.probe_steps or state.step % config.eval_every == 0
        if sel_x is not None and (boundary or state.step == total):
            extra = {"unlabeled/confident": float(np.mean(confident))} if confident else {}
            confident.clear()
            consider(state.step, extra)
            assert best is not None
            # early stop: no better select loss for `patience` steps of tuning the encoder (a
            # best state inside the probe must not end the run before the encoder had its turn)
            since = state.step - max(best["step"], config.probe_steps)
            if state.step > config.probe_steps and since >= config.patience:
                total = state.step
        if stop_requested():
            status = "cancelled"
            break
        if time.perf_counter() - last_save >= config.checkpoint_seconds:
            pause = time.perf_counter()
            save()
            last_save = time.perf_counter()
            clock += last_save - pause
    state.total_steps = total
    for cb in loggers:
        cb.on_train_end(state, status)
    if status != "finished":
        save()
        return status, {}

    # ---- the chosen state: measured on the untouched labels, then refitted on every label ------
    if best is not None:
        model.load_state_dict(best["model"])
    save(done=True)
    held_out: dict[str, str] = {}
    if select_paths:
        fit_head(model, torch.cat([train_x, sel_x]), torch.cat([train_y, sel_y]), view, device)
    if holdout_paths:
        hold_x, hold_y = batch_of(holdout_paths)
        guesses = predict_logits(model, hold_x, view, device).argmax(1)
        held_out = {p: classes[int(k)] for p, k in zip(holdout_paths, guesses, strict=True)}
        every_x, every_y = torch.cat([train_x, hold_x]), torch.cat([train_y, hold_y])
        if select_paths:
            every_x, every_y = torch.cat([every_x, sel_x]), torch.cat([every_y, sel_y])
        fit_head(model, every_x, every_y, view, device)
    finish(store, run, model, cache, view, device, labels, split, best, held_out, step=state.step)
    store.runs.update(run.id, step=state.step, total_steps=state.step)
    return "finished", {}


def _fixmatch(
    model: FineTuneModel,
    x: Tensor,
    cache: np.ndarray,
    view: Callable[[Tensor], Tensor],
    flip: bool,
    device: torch.device,
    generator: torch.Generator,
    config: FineTuneConfig,
) -> tuple[Tensor, Tensor, float]:
    """FixMatch on ``config.unlabeled_batch`` images drawn from the whole dataset: the weak
    view's prediction (no gradient) is a hard pseudo-label where its confidence reaches
    ``config.threshold``; the strong view is trained towards it. Returns (logits of the labeled
    batch (B, K), the unlabeled loss, the share of unlabeled images above the threshold)."""
    n = len(cache)
    rows = torch.randint(n, (min(config.unlabeled_batch, n),), generator=generator)
    rows = np.sort(rows.numpy())
    u = torch.from_numpy(np.ascontiguousarray(cache[rows]))  # (U, 3, S, S) uint8
    weak = view(augment_weak(u, generator, flip=flip)).to(device)
    strong = view(augment_strong(u, generator, flip=flip)).to(device)
    with torch.no_grad():
        probabilities = torch.softmax(model(weak).float(), 1)  # (U, K)
    confidence, pseudo = probabilities.max(1)  # (U,), (U,)
    mask = (confidence >= config.threshold).float()  # (U,)
    logits = model(torch.cat([x, strong])).float()  # (B + U, K): one pass
    labeled, unlabeled = logits[: len(x)], logits[len(x) :]
    loss = (F.cross_entropy(unlabeled, pseudo, reduction="none") * mask).mean()
    return labeled, loss, float(mask.mean().item())


def set_learning_rates(optimizer: torch.optim.Optimizer, config: FineTuneConfig, step: int) -> None:
    """Probe: the head alone at lr. Then cosine to 0 over the rest, the encoder at lr * ratio,
    warmed up over the first fifth (Adam's first updates of a still encoder are large)."""
    if step < config.probe_steps:
        optimizer.param_groups[0]["lr"], optimizer.param_groups[1]["lr"] = config.lr, 0.0
        return
    tuning = max(1, config.steps - config.probe_steps)
    since = step - config.probe_steps
    factor = 0.5 * (1 + math.cos(math.pi * min(1.0, since / tuning)))
    warm = min(1.0, (since + 1) / max(1, tuning // 5))
    optimizer.param_groups[0]["lr"] = config.lr * factor
    optimizer.param_groups[1]["lr"] = config.lr * config.encoder_lr_ratio * factor * warm
