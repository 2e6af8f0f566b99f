"""Fine-tuning a run's encoder on a few labels: the executor of job kind ``finetune``.

    run = submit_finetune(store, parent_id, labels)     # queued; a worker runs execute_run
    result = finetune_result(store, run.id)             # holdout_accuracy, labeled, predicted
    encoder = finetuned_encoder(store, store.runs.get(run.id))   # as an embedding source

The recipe for tiny label sets is LP-FT (Kumar et al., ICLR 2022, "Fine-Tuning can Distort
Pretrained Features"): a linear probe with the encoder frozen first, then everything with the
encoder at a 10x lower learning rate than the head, so a random head's first gradients don't wreck
the pretrained features. BatchNorm keeps its pretext statistics (batches of a few dozen labeled
images would make them noise). Augmentation (``finetune_data``): random resized crop, flips where
the parent task allows them, colour jitter.

The head starts at the exact logistic regression of the frozen features. A stratified share of
the labels is held out: early stopping keeps the state with the lowest held-out loss (the probe's
end is a candidate too), and the run reports that state's accuracy on them, measured before they
are used: the chosen state's head is then refitted on all labels (a fifth of 5 labels a class is
too much to leave out of the final model) and that model predicts every image. No accuracy is
ever reported on images the model trained on. When a class has too few labels to spare one, the
run says so, holds nothing out and trains on all of them for a fixed schedule.

Files: ``<run_dir>/checkpoints/last.pt`` (model, optimizer, step, RNG, best state, the label
split), ``<run_dir>/predictions.csv`` (path,label,confidence,labeled) and ``predictions.npz``
(image ids, class probabilities), ``<run_dir>/finetune.json`` (the result).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslviz.core.atomic import write_json
from sslviz.core.errors import UserError
from sslviz.core.liveness import alive
from sslviz.fewshot.finetune_data import (
    RESULT_FILE,
    FineTuneConfig,
    augment_labeled,
    labels_file,
    read_label_file,
    save_labels,
    split_labels,
    write_predictions,
)
from sslviz.models.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from sslviz.store import Run, Store
from sslviz.store.kinds import JobRequest
from sslviz.training.callbacks import Callback, StoreLogger, TrainState

if TYPE_CHECKING:
    from sslviz.maps.embed import SourceEncoder

__all__ = [
    "FineTuneConfig",
    "execute_run",
    "finetune_result",
    "finetuned_encoder",
    "submit_finetune",
]

PREDICT_BATCH = 256  # images per forward pass when predicting the whole dataset


# --- submit ---------------------------------------------------------------------------------------
def submit_finetune(
    store: Store,
    parent_id: int,
    labels: Mapping[str, str],
    *,
    config: FineTuneConfig | None = None,
    device: str = "auto",
    background: bool = True,
) -> Run:
    """Record a fine-tune of run ``parent_id``'s encoder on ``labels`` (path -> label, as
    ``read_labels_csv`` returns them) and, with ``background``, hand it to the job runner.

    UserError if the parent has no encoder or checkpoint, or the labels have fewer than 2 classes.
    """
    from sslviz.maps.embed import default_layer, source_run, source_version
    from sslviz.runner import jobs

    parent = source_run(store, str(parent_id))
    source_version(store, str(parent.id))  # UserError if it has no checkpoint yet
    labels = {str(p): str(v) for p, v in labels.items()}
    if len(set(labels.values())) < 2:
        raise UserError("fine-tuning needs labels of at least 2 classes: label more images")
    config = config or FineTuneConfig()
    layer, grid = (config.layer, config.grid)
    if layer is None or grid is None:
        default, default_grid = default_layer(store, str(parent.id))
        layer, grid = layer or default, default_grid if grid is None else grid
    # the labels go to a content-addressed file first: the worker may start the moment the run
    # is recorded, and a big label set doesn't belong in the runs table's config column
    sha = save_labels(store, parent.dataset_id, labels)
    settings = {**config.to_dict(), "layer": layer, "grid": int(grid)}
    settings.update(labels=sha, n_labels=len(labels), parent=parent.id)
    request = JobRequest(
        kind="finetune",
        dataset_id=parent.dataset_id,
        encoder=parent.encoder,
        config=settings,
        device=device,
        parent_id=parent.id,
    )
    # in the foreground it is recorded claimed by this process, as `sslviz train` does
    return jobs.submit(store, request, claim=not background)


# --- the model ------------------------------------------------------------------------------------
class FineTuneModel(nn.Module):
    """The parent's encoder, features of one layer pooled over a grid, standardized with fixed
    statistics, and a linear head. ``forward(x (B, C, S, S)) -> logits (B, K)``."""

    def __init__(self, encoder: nn.Module, layer: str, grid: int, n_classes: int) -> None:
        super().__init__()
        self.encoder, self.layer, self.grid = encoder, layer, grid
        dim = encoder.layer_dims[layer] * grid * grid
        self.register_buffer("mean", torch.zeros(dim))  # (D,)
        self.register_buffer("std", torch.ones(dim))  # (D,)
        self.head = nn.Linear(dim, n_classes)

    def features(self, x: Tensor) -> Tensor:
        """x (B, C, S, S) float -> standardized features (B, D)."""
        return (self.encoder.embed(x, self.layer, self.grid) - self.mean) / self.std

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))

    def train(self, mode: bool = True) -> FineTuneModel:
        super().train(mode)
        for module in self.encoder.modules():  # keep the pretext BatchNorm statistics
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.eval()
        return self


# --- sources: the parent's encoder and a fine-tune's ------------------------------------------------
def finetuned_encoder(store: Store, run: Run) -> SourceEncoder:
    """A fine-tune's encoder (its best state) as an embedding source (``sslviz.maps.embed``)."""
    from sslviz.maps.embed import SourceEncoder

    path = checkpoint_path(store.workspace.run_dir(run.id))
    if not path.exists():
        raise UserError(f"fine-tune {run.id} has no checkpoint yet ({run.status}): wait for it")
    checkpoint = load_checkpoint(path)
    encoder, view, size = _blank_encoder(checkpoint["source"])
    state = checkpoint["best"]["model"] if checkpoint.get("best") else checkpoint["model"]
    encoder.load_state_dict({k[8:]: v for k, v in state.items() if k.startswith("encoder.")})
    return SourceEncoder(encoder.eval(), view, size, int(checkpoint["step"]))


def _blank_encoder(source: Mapping[str, Any]) -> tuple[Any, Callable[[Tensor], Tensor], int]:
    """An untrained encoder shaped like the one described by ``source`` (the parent pretext
    run's task, task options, encoder name and image size), its view, its image size."""
    from sslviz.models.encoders import create_encoder
    from sslviz.pretext import create_task

    task = create_task(source["task"], **dict(source.get("task_options") or {}))
    size = int(source["image_size"])
    encoder = create_encoder(
        source["encoder"],
        in_channels=task.input_channels,
        image_size=task.encoder_input_size(size),
    )
    return encoder, task.encoder_view, size


def _source_description(store: Store, parent: Run) -> dict[str, Any]:
    """What the parent's encoder is (a pretext run's config, or a parent fine-tune's own)."""
    if parent.task == "finetune":
        path = checkpoint_path(store.workspace.run_dir(parent.id))
        return dict(load_checkpoint(path)["source"])
    from sslviz.training.config import TrainConfig

    config = TrainConfig.from_dict(parent.config)
    keys = ("task", "task_options", "encoder", "image_size")
    return {key: getattr(config, key) for key in keys}


# --- execute ---------------------------------------------------------------------------------------
def execute_run(
    store: Store,
    run: Run,
    *,
    should_stop: Callable[[], bool] | None = None,
    callbacks: Sequence[Callback] = (),
) -> tuple[str, dict[str, Any]]:
    """The executor of kind ``finetune`` (``sslviz.store.kinds``; ``sslviz.runner.execute``
    claims the run, keeps its heartbeat and records how it ended). A resumed run continues from
    its checkpoint (same split, same step)."""
    return fine_tune(store, run, should_stop=should_stop, callbacks=callbacks)


def fine_tune(
    store: Store,
    run: Run,
    *,
    should_stop: Callable[[], bool] | None = None,
    callbacks: Sequence[Callback] = (),
) -> tuple[str, dict[str, Any]]:
    """The fine-tuning loop. Returns (final status, run fields to set with it)."""
    from sslviz.core.devices import resolve_device
    from sslviz.data.cache import open_cache
    from sslviz.pretext import create_task
    from sslviz.training.batches import step_generator

    config = FineTuneConfig.from_dict(run.config)
    ckpt_path = checkpoint_path(store.workspace.run_dir(run.id))
    device = resolve_device(run.device)
    checkpoint = load_checkpoint(ckpt_path) if ckpt_path.exists() else None

    # ---- labels, split, images ------------------------------------------------------------------
    labels = read_label_file(labels_file(store, run.dataset_id, run.config["labels"]))
    images = store.datasets.images(run.dataset_id)  # the cache's row order
    row_of = {image.path: row for row, image in enumerate(images)}
    missing = sorted(set(labels) - set(row_of))
    if missing:
        raise UserError(f"{len(missing)} labeled paths are not in the dataset, e.g. {missing[0]}")
    split = checkpoint["split"] if checkpoint else split_labels(labels, config.holdout, config.seed)
    classes: list[str] = list(split["classes"])
    train_paths, holdout_paths = list(split["train"]), list(split["holdout"])

    # ---- the parent's encoder, the head ----------------------------------------------------------
    if checkpoint:
        source = dict(checkpoint["source"])
        encoder, view, size = _blank_encoder(source)
    else:
        from sslviz.maps.embed import encoder_for_source

        parent = store.runs.get(int(run.config["parent"]))
        source = _source_description(store, parent)
        encoder, view, size, _ = encoder_for_source(store, str(parent.id))
    augment_flip = create_task(source["task"], **dict(source.get("task_options") or {}))
    augment_flip = augment_flip.augment_flip
    cache = open_cache(store, run.dataset_id, size)  # uint8 (N, 3, S, S)
    model = FineTuneModel(encoder, config.layer, config.grid, len(classes)).to(device)
    class_index = {name: i for i, name in enumerate(classes)}

    def batch_of(paths: list[str]) -> tuple[Tensor, Tensor]:
        """uint8 images (n, 3, S, S) and classes (n,) of ``paths``, in that order."""
        rows = np.array([row_of[p] for p in paths])
        x = torch.from_numpy(np.stack([cache[r] for r in rows]))  # (n, 3, S, S) uint8
        return x, torch.tensor([class_index[labels[p]] for p in paths])  # (n,)

    train_x, train_y = batch_of(train_paths)
    hold_x, hold_y = batch_of(holdout_paths) if holdout_paths else (None, None)
    if checkpoint is None:
        _fit_feature_scale(model, cache, view, device)
        _init_head(model, train_x, train_y, view, device)

    # ---- optimizer: the head at lr, the encoder at lr * encoder_lr_ratio -------------------------
    head_params = list(model.head.parameters())
    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": head_params, "lr": config.lr},
            {"params": encoder_params, "lr": 0.0},
        ],
        weight_decay=config.weight_decay,
    )
    total = config.steps
    steps_per_epoch = max(1, math.ceil(len(train_paths) / config.batch_size))
    store.runs.update(run.id, total_steps=total, epochs=max(1, math.ceil(total / steps_per_epoch)))
    state = TrainState(
        run.id, "accuracy", steps_per_epoch, total, max(1, math.ceil(total / steps_per_epoch))
    )
    best: dict[str, Any] | None = None  # {"model", "step", "loss", "accuracy"} of the best state
    if checkpoint:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        state.step, state.train_seconds = (
            int(checkpoint["step"]),
            float(checkpoint["train_seconds"]),
        )
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

    def evaluate() -> tuple[float, float]:
        """(loss, accuracy) on the held-out labels."""
        assert hold_x is not None and hold_y is not None
        logits = _predict_logits(model, hold_x, view, device)
        return F.cross_entropy(logits, hold_y).item(), (
            logits.argmax(1) == hold_y
        ).float().mean().item()

    def consider(step: int) -> None:
        """Early stopping: keep the state with the lowest held-out loss."""
        nonlocal best
        loss, accuracy = evaluate()
        store.runs.log_metrics(run.id, step, {"holdout/loss": loss, "holdout/accuracy": accuracy})
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
    model.train()
    while not trained and state.step < total:
        probing = state.step < config.probe_steps
        generator = step_generator(config.seed, state.step)
        pick = torch.randperm(len(train_x), generator=generator)[: config.batch_size]
        x = view(augment_labeled(train_x[pick], generator, flip=augment_flip)).to(device)
        y = train_y[pick].to(device)
        _set_lrs(optimizer, config, state.step)
        if probing:  # linear probe: no gradient through the encoder
            with torch.no_grad():
                features = model.features(x)
            logits = model.head(features)
        else:
            logits = model(x)
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
        if hold_x is not None and (boundary or state.step == total):
            consider(state.step)
            assert best is not None
            if state.step > config.probe_steps and state.step - best["step"] >= config.patience:
                total = state.step  # early stop: no better held-out loss for `patience` steps
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

    # ---- the best state, its head refitted on every label, predicts every image -----------------
    if best is not None:
        model.load_state_dict(best["model"])
    save(done=True)
    held_out: dict[str, str] = {}
    if hold_x is not None and hold_y is not None:
        # what the chosen model says of the held-out labels *before* it sees them: the honest
        # score (the leaderboard's too); then the head is refitted on all labels, because at
        # 5 labels a class, leaving a fifth of them out of the final model costs more than the
        # early stopping they paid for
        guesses = _predict_logits(model, hold_x, view, device).argmax(1)
        held_out = {p: classes[int(k)] for p, k in zip(holdout_paths, guesses, strict=True)}
        _init_head(model, torch.cat([train_x, hold_x]), torch.cat([train_y, hold_y]), view, device)
    _finish(store, run, model, cache, view, device, labels, split, best, held_out, step=state.step)
    store.runs.update(run.id, step=state.step, total_steps=state.step)
    return "finished", {}


def _fit_feature_scale(
    model: FineTuneModel, cache: np.ndarray, view: Callable[[Tensor], Tensor], device: torch.device
) -> None:
    """Per-feature mean and std of the untouched encoder over (up to) 1,024 images spread over
    the dataset, so the head starts on standardized features (like a standardized logreg)."""
    rows = np.unique(np.linspace(0, len(cache) - 1, min(1024, len(cache))).astype(int))
    x = torch.from_numpy(np.ascontiguousarray(cache[rows]))  # (n, 3, S, S)
    model.eval()
    with torch.inference_mode():
        features = torch.cat(
            [model.encoder.embed(view(x[i : i + PREDICT_BATCH]).to(device), model.layer, model.grid)
             for i in range(0, len(x), PREDICT_BATCH)]
        )  # fmt: skip
    model.mean.copy_(features.mean(0))
    model.std.copy_(features.std(0, unbiased=False).clamp_min(1e-4))


def _init_head(
    model: FineTuneModel,
    images: Tensor,
    y: Tensor,
    view: Callable[[Tensor], Tensor],
    device: torch.device,
) -> None:
    """Start the head at the logistic regression of the frozen, un-augmented features of the
    training labels (the "LP" of LP-FT, solved exactly): fine-tuning then starts from the best
    linear probe rather than from a random head."""
    from sklearn.linear_model import LogisticRegression

    model.eval()
    with torch.inference_mode():
        features = torch.cat(
            [model.features(view(images[i : i + PREDICT_BATCH]).to(device)).cpu()
             for i in range(0, len(images), PREDICT_BATCH)]
        ).numpy()  # (n, D)  # fmt: skip
    probe = LogisticRegression(C=1.0, max_iter=2000).fit(features, y.numpy())
    coef = torch.as_tensor(probe.coef_, dtype=torch.float32)  # (K, D), or (1, D) for 2 classes
    bias = torch.as_tensor(probe.intercept_, dtype=torch.float32)
    if coef.shape[0] == 1:  # binary: sklearn keeps one row; softmax over (-z/2, z/2) is the same
        coef, bias = torch.cat([-coef / 2, coef / 2]), torch.cat([-bias / 2, bias / 2])
    with torch.no_grad():
        model.head.weight.copy_(coef.to(device))
        model.head.bias.copy_(bias.to(device))


def _set_lrs(optimizer: torch.optim.Optimizer, config: FineTuneConfig, step: int) -> None:
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


def _predict_logits(
    model: FineTuneModel, images: Tensor, view: Callable[[Tensor], Tensor], device: torch.device
) -> Tensor:
    """uint8 images (N, 3, S, S) -> logits (N, K) on the CPU, in eval mode, batched."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = [
                model(view(images[i : i + PREDICT_BATCH]).to(device)).float().cpu()
                for i in range(0, len(images), PREDICT_BATCH)
            ]
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, model.head.out_features)


def _finish(
    store: Store,
    run: Run,
    model: FineTuneModel,
    cache: np.ndarray,
    view: Callable[[Tensor], Tensor],
    device: torch.device,
    labels: dict[str, str],
    split: Mapping[str, Any],
    best: Mapping[str, Any] | None,
    held_out: dict[str, str],
    *,
    step: int,
) -> dict[str, Any]:
    """Predict every image, write the predictions and the result, log the final metrics."""
    run_dir = store.workspace.run_dir(run.id)
    images = store.datasets.images(run.dataset_id)
    chunks = []
    for start in range(0, len(cache), 4096):  # a big dataset never sits in memory at once
        rows = torch.from_numpy(np.array(cache[start : start + 4096]))  # (n, 3, S, S) uint8
        chunks.append(torch.softmax(_predict_logits(model, rows, view, device), 1).numpy())
        alive()
    probabilities = np.concatenate(chunks)  # (N, K)
    paths, classes = [image.path for image in images], list(split["classes"])
    write_predictions(run_dir, paths, [i.id for i in images], probabilities, classes, labels)
    holdout = list(split["holdout"])
    result = {
        "run": run.id,
        "parent": int(run.config["parent"]),
        "holdout_accuracy": None if best is None else float(best["accuracy"]),
        "holdout_loss": None if best is None else float(best["loss"]),
        "best_step": None if best is None else int(best["step"]),
        "labeled": len(labels),
        "predicted": len(paths),
        "holdout_labels": len(holdout),
        "classes": classes,
        "train": list(split["train"]),
        "holdout": holdout,
        "holdout_predictions": held_out,  # before the head was refitted on them
        "labels": run.config["labels"],
        "note": split.get("note"),
        "predictions": str(run_dir / "predictions.csv"),
    }
    write_json(run_dir / RESULT_FILE, result)
    finals = {"eval/labeled": len(labels), "eval/predicted": len(paths)}
    finals["eval/holdout_labels"] = len(holdout)
    if best is not None:
        finals["eval/holdout_accuracy"] = float(best["accuracy"])
    store.runs.log_metrics(run.id, step, finals)
    return result


def finetune_result(store: Store, run_id: int) -> dict[str, Any] | None:
    """The result a finished fine-tune wrote (``finetune.json``), or None before it ends."""
    path = store.workspace.run_dir(run_id) / RESULT_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
