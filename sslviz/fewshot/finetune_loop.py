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
from dataclasses import dataclass
from pathlib import Path
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
    View,
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
    cache = open_cache(store, run.dataset_id, size)  # uint8 (N, 3, S, S)
    model = FineTuneModel(encoder, config.layer, config.grid, len(split["classes"])).to(device)
    ft = _FineTune(
        store=store,
        run=run,
        config=config,
        device=device,
        labels=labels,
        split=split,
        source=source,
        row_of=row_of,
        cache=cache,
        model=model,
        view=view,
        flip=task.augment_flip,
        ckpt_path=ckpt_path,
    )
    if checkpoint is None:
        fit_feature_scale(model, cache, view, device)
        fit_head(model, ft.train_x, ft.train_y, view, device)

    # ---- resume from the checkpoint --------------------------------------------------------------
    if checkpoint:
        ft.resume(checkpoint)
        print(f"fine-tune: resumed from step {ft.state.step}", flush=True)  # the worker's log
    trained = bool(checkpoint and checkpoint.get("trained"))

    def stop_requested() -> bool:
        if should_stop is not None and should_stop():
            return True
        return bool(store.runs.get(run.id).cancel_requested)

    # ---- train -------------------------------------------------------------------------------------
    loggers = [StoreLogger(store, run.id), *callbacks]
    for cb in loggers:
        cb.on_train_start(ft.state)
    status, fields = ("finished", {}) if trained else ft.train(loggers, stop_requested)
    if status == "failed":
        return status, fields
    ft.state.total_steps = ft.total
    for cb in loggers:
        cb.on_train_end(ft.state, status)
    if status != "finished":
        ft.save()
        return status, {}

    # ---- the chosen state: measured on the untouched labels, then refitted on every label ------
    ft.conclude()
    return "finished", {}


@dataclass(kw_only=True)
class _FineTune:
    """One fine-tune's parts and progress: the split's images, the model, the optimizer (the
    head at lr, the encoder at lr * encoder_lr_ratio), the best state so far."""

    store: Store
    run: Run
    config: FineTuneConfig
    device: torch.device
    labels: dict[str, str]  # path -> class
    split: dict[str, Any]  # classes, train, select, holdout (``split_labels``)
    source: dict[str, Any]  # what the parent's encoder is (``source_description``)
    row_of: dict[str, int]  # path -> row of the cache
    cache: np.ndarray  # uint8 (N, 3, S, S)
    model: FineTuneModel
    view: View
    flip: bool  # the parent task allows flips
    ckpt_path: Path
    best: dict[str, Any] | None = None  # {"model", "step", "loss", "accuracy"}: the chosen state

    def __post_init__(self) -> None:
        config = self.config
        self.classes: list[str] = list(self.split["classes"])
        self.class_index = {name: i for i, name in enumerate(self.classes)}
        self.train_paths = list(self.split["train"])
        self.select_paths = list(self.split.get("select", []))
        self.holdout_paths = list(self.split["holdout"])
        self.train_x, self.train_y = self.batch_of(self.train_paths)
        self.sel_x, self.sel_y = (
            self.batch_of(self.select_paths) if self.select_paths else (None, None)
        )
        self.optimizer = torch.optim.AdamW(
            [
                {"params": list(self.model.head.parameters()), "lr": config.lr},
                {
                    "params": [p for p in self.model.encoder.parameters() if p.requires_grad],
                    "lr": 0.0,
                },
            ],
            weight_decay=config.weight_decay,
        )
        self.total = config.steps  # lowered by early stopping
        steps_per_epoch = max(1, math.ceil(len(self.train_paths) / config.batch_size))
        epochs = max(1, math.ceil(self.total / steps_per_epoch))
        self.store.runs.update(self.run.id, total_steps=self.total, epochs=epochs)
        self.state = TrainState(self.run.id, "accuracy", steps_per_epoch, self.total, epochs)

    def batch_of(self, paths: list[str]) -> tuple[Tensor, Tensor]:
        """uint8 images (n, 3, S, S) and classes (n,) of ``paths``, in that order."""
        x = torch.from_numpy(np.stack([self.cache[self.row_of[p]] for p in paths]))  # (n, 3, S, S)
        return x, torch.tensor([self.class_index[self.labels[p]] for p in paths])  # (n,)

    def resume(self, checkpoint: dict[str, Any]) -> None:
        saved = tuple(checkpoint["model"]["head.weight"].shape)
        if saved != tuple(self.model.head.weight.shape):  # saved before global max pooling
            raise UserError(
                f"fine-tune {self.run.id} was interrupted under an older sslviz whose embedding "
                "had another width: delete it and fine-tune again"
            )
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.state.step = int(checkpoint["step"])
        self.state.train_seconds = float(checkpoint["train_seconds"])
        self.best = checkpoint.get("best")
        set_rng_state(checkpoint["rng"])

    def save(self, done: bool = False) -> None:
        save_checkpoint(
            self.ckpt_path,
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "step": self.state.step,
                "train_seconds": self.state.train_seconds,
                "rng": rng_state(),
                "best": self.best,
                "split": self.split,
                "source": self.source,
                "config": self.run.config,
                "trained": done,
            },
        )

    def train(
        self, loggers: Sequence[Callback], stop_requested: Callable[[], bool]
    ) -> tuple[str, dict[str, Any]]:
        """Step to the end, an early stop or a stop. Returns (status, run fields)."""
        config, state = self.config, self.state
        clock = time.perf_counter() - state.train_seconds
        last_save = time.perf_counter()
        confident: list[float] = []  # share of unlabeled images above the threshold, per step
        self.model.train()
        while state.step < self.total:
            logits, y, loss = self.step(confident)
            state.step += 1
            alive()
            state.lr = self.optimizer.param_groups[0]["lr"]
            state.train_seconds = time.perf_counter() - clock
            state.loss, state.images = loss.item(), len(y)
            state.metric = (logits.argmax(1) == y).float().mean().item()
            if not math.isfinite(state.loss):
                return "failed", {
                    "error": f"loss became {state.loss} at step {state.step}: lower the lr"
                }
            for cb in loggers:
                cb.on_step_end(state)
            boundary = state.step == config.probe_steps or state.step % config.eval_every == 0
            if self.sel_x is not None and (boundary or state.step == self.total):
                extra = {"unlabeled/confident": float(np.mean(confident))} if confident else {}
                confident.clear()
                self.consider(state.step, extra)
                self.stop_early()
            if stop_requested():
                return "cancelled", {}
            if time.perf_counter() - last_save >= config.checkpoint_seconds:
                pause = time.perf_counter()
                self.save()
                last_save = time.perf_counter()
                clock += last_save - pause
        return "finished", {}

    def step(self, confident: list[float]) -> tuple[Tensor, Tensor, Tensor]:
        """One optimizer step on a labeled batch: the probe (head only), then everything, with
        FixMatch's unlabeled loss if asked. Returns (logits (B, K), classes (B,), the loss)."""
        from sslviz.training.batches import step_generator

        config, state, model, device = self.config, self.state, self.model, self.device
        generator = step_generator(config.seed, state.step)
        pick = torch.randperm(len(self.train_x), generator=generator)[: config.batch_size]
        x = self.view(augment_labeled(self.train_x[pick], generator, flip=self.flip)).to(device)
        y = self.train_y[pick].to(device)  # (B,)
        set_learning_rates(self.optimizer, config, state.step)
        with autocast(device):
            if state.step < config.probe_steps:  # linear probe: no gradient through the encoder
                with torch.no_grad():
                    features = model.features(x)  # x: (B, C, S, S)
                logits = model.head(features).float()
                loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
            elif config.semi_supervised:
                logits, unlabeled_loss, share = _fixmatch(
                    model,
                    x,
                    cache=self.cache,
                    view=self.view,
                    flip=self.flip,
                    device=device,
                    generator=generator,
                    config=config,
                )
                loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
                loss = loss + config.unlabeled_weight * unlabeled_loss
                confident.append(share)
            else:
                logits = model(x).float()
                loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return logits, y, loss

    def consider(self, step: int, extra: dict[str, float]) -> None:
        """Early stopping on the select labels (never the untouched ones): keep the state with
        the lowest loss there."""
        assert self.sel_x is not None and self.sel_y is not None
        logits = predict_logits(self.model, self.sel_x, self.view, self.device)
        loss = F.cross_entropy(logits, self.sel_y).item()
        accuracy = (logits.argmax(1) == self.sel_y).float().mean().item()
        self.store.runs.log_metrics(
            self.run.id, step, {"select/loss": loss, "select/accuracy": accuracy, **extra}
        )
        if self.best is None or loss < self.best["loss"] - 1e-4:
            state_copy = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.best = {"model": state_copy, "step": step, "loss": loss, "accuracy": accuracy}

    def stop_early(self) -> None:
        """No better select loss for ``patience`` steps of tuning the encoder ends the run (a
        best state inside the probe must not end it before the encoder had its turn)."""
        assert self.best is not None
        step, probe = self.state.step, self.config.probe_steps
        if step > probe and step - max(self.best["step"], probe) >= self.config.patience:
            self.total = step

    def conclude(self) -> None:
        """Load the chosen state, predict the untouched labels with the head refitted on train +
        select, refit it on every label, then predict every image (``finish``)."""
        model, view, device = self.model, self.view, self.device
        if self.best is not None:
            model.load_state_dict(self.best["model"])
        self.save(done=True)
        held_out: dict[str, str] = {}
        train_x, train_y, sel_x, sel_y = self.train_x, self.train_y, self.sel_x, self.sel_y
        if self.select_paths:
            fit_head(model, torch.cat([train_x, sel_x]), torch.cat([train_y, sel_y]), view, device)
        if self.holdout_paths:
            hold_x, hold_y = self.batch_of(self.holdout_paths)
            guesses = predict_logits(model, hold_x, view, device).argmax(1)
            held_out = {
                p: self.classes[int(k)] for p, k in zip(self.holdout_paths, guesses, strict=True)
            }
            every_x, every_y = torch.cat([train_x, hold_x]), torch.cat([train_y, hold_y])
            if self.select_paths:
                every_x, every_y = torch.cat([every_x, sel_x]), torch.cat([every_y, sel_y])
            fit_head(model, every_x, every_y, view, device)
        step = self.state.step
        finish(
            self.store,
            self.run,
            model=model,
            cache=self.cache,
            view=view,
            device=device,
            labels=self.labels,
            split=self.split,
            best=self.best,
            held_out=held_out,
            step=step,
        )
        self.store.runs.update(self.run.id, step=step, total_steps=step)


def _fixmatch(
    model: FineTuneModel,
    x: Tensor,
    *,
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
