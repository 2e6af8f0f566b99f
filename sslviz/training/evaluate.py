"""Held-out evaluation of a run, kept apart from training: metrics, artifacts, and the encoder.

    <run_dir>/eval.json         {"step": N, "results": {"run", "task", ...task keys}} (cache)
    <run_dir>/artifacts/        what the task's result page shows (PNG/JSON/NPZ)

The held-out images are the same split training left out (by the run's seed), so evaluating a
run later, from its checkpoint, measures exactly what the trainer measured at its end.
"""

from __future__ import annotations

import json
from numbers import Real
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from sslviz.core.atomic import write_json
from sslviz.core.errors import UserError
from sslviz.data.cache import open_cache
from sslviz.models.checkpoint import checkpoint_path, load_checkpoint
from sslviz.training.batches import load_rows, split_indices
from sslviz.training.chance import CONTEXT_KEYS, held_out_context
from sslviz.training.config import TrainConfig
from sslviz.training.figures import EVAL_FILE
from sslviz.training.split import Grouping, dataset_groups

if TYPE_CHECKING:
    from sslviz.pretext import PretextModel, PretextTask
    from sslviz.store import Run, Store

ARTIFACT_DIR = "artifacts"
MAX_EVAL_IMAGES = 2_000  # tight enough metrics (8k rotations); keeps the end of a big run quick
MAX_ARTIFACT_IMAGES = 512
MAX_CALIBRATION_IMAGES = 256  # enough for a task's few calibration parameters
MIN_TRAIN_FOR_CALIBRATION = 20  # smaller training sets keep every image for training
TRAIN_ACCURACY_STEPS = 10  # the end of training, over a few batches (one is noisy)
_SUBSET_SALT, _ARTIFACT_SALT, _CALIBRATION_SALT = 0xE7A1, 0xA27F, 0xCA11


def holdout_rows(n_images: int, config: TrainConfig, groups: Grouping | None) -> np.ndarray:
    """Sorted cache rows of the run's held-out images: all of them, or a seeded random subset of
    MAX_EVAL_IMAGES spread over the whole dataset (cache rows follow the image paths, so a
    class-per-folder dataset is stored in blocks: the first rows would be the first classes).
    ``groups``: ``training.split.dataset_groups`` of the run's dataset (required, so no caller
    can silently hold out other images than training did)."""
    held_out = split_indices(n_images, config.holdout, config.seed, groups)[1]
    return subset(held_out, MAX_EVAL_IMAGES, (config.seed, _SUBSET_SALT))


def calibration_split(
    train_rows: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(rows to train on, rows to calibrate on) of the run's training rows, disjoint and sorted:
    ``fraction`` of them (at most MAX_CALIBRATION_IMAGES, none for a task that asks for none or
    a set under MIN_TRAIN_FOR_CALIBRATION), chosen by ``seed``. The held-out evaluation images
    are never among either, so calibration can't flatter the reported metrics."""
    n = int(min(MAX_CALIBRATION_IMAGES, np.floor(fraction * len(train_rows))))
    if fraction <= 0 or len(train_rows) < MIN_TRAIN_FOR_CALIBRATION or n < 1:
        return train_rows, train_rows[:0]
    order = np.random.default_rng([seed, _CALIBRATION_SALT]).permutation(len(train_rows))
    return np.sort(train_rows[order[n:]]), np.sort(train_rows[order[:n]])


def subset(rows: np.ndarray, k: int, seed: tuple[int, ...]) -> np.ndarray:
    """At most ``k`` of ``rows``, chosen at random by ``seed``, sorted (the memory-mapped reads
    then walk the cache forwards)."""
    if len(rows) <= k:
        return rows
    pick = np.random.default_rng(list(seed)).choice(len(rows), size=k, replace=False)
    return rows[np.sort(pick)]


def build_model(config: TrainConfig, sample: Tensor) -> tuple[PretextTask, PretextModel]:
    """The task and its untrained model (encoder + head) for ``config``; ``sample`` is uint8
    (N, 3, H, W) training images for data-dependent statistics."""
    from sslviz.models.encoders import create_encoder
    from sslviz.pretext import create_task

    task = create_task(config.task, **config.task_options)
    encoder = create_encoder(
        config.encoder,
        in_channels=task.input_channels,
        image_size=task.encoder_input_size(config.image_size),
    )
    return task, task.build_model(encoder, sample)


def load_model(
    store: Store, run_id: int, *, device: str | torch.device = "cpu"
) -> tuple[PretextTask, PretextModel, TrainConfig, dict[str, Any]]:
    """(task, model in eval mode, config, checkpoint) of a run, from its last checkpoint."""
    run = store.runs.get(run_id)
    path = checkpoint_path(store.workspace.run_dir(run.id))
    if not path.exists():
        raise UserError(
            f"run {run.id} has no checkpoint yet ({run.status}): wait for its first epoch, "
            f"or resume it with `sslviz resume {run.id}`"
        )
    checkpoint = load_checkpoint(path, map_location="cpu")
    config = TrainConfig.from_dict(checkpoint["config"])
    sample = torch.zeros(2, 3, config.image_size, config.image_size, dtype=torch.uint8)
    task, model = build_model(config, sample)
    model.load_state_dict(checkpoint["model"])
    return task, model.to(device).eval(), config, checkpoint


def evaluate_model(
    store: Store,
    run: Run,
    task: PretextTask,
    model: PretextModel,
    cache: np.ndarray,
    config: TrainConfig,
    *,
    step: int,
) -> dict[str, Any]:
    """Held-out metrics and artifacts of a trained model; stores artifacts, the scalar metrics as
    ``eval/<key>`` at ``step``, and caches the results in eval.json. Returns
    ``{"run", "task", ...task keys}``."""
    run_dir = store.workspace.run_dir(run.id)
    groups = dataset_groups(store, run.dataset_id, config)  # None: split by single images
    images = load_rows(cache, holdout_rows(len(cache), config, groups))  # (N, 3, H, W) uint8
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        metrics = task.evaluate(
            model, images.to(device), batch_size=max(64, config.batch_size), seed=config.seed
        )
        shown = subset(np.arange(len(images)), MAX_ARTIFACT_IMAGES, (config.seed, _ARTIFACT_SALT))
        artifacts = task.save_artifacts(
            model,
            images[torch.from_numpy(shown)].to(device),
            run_dir / ARTIFACT_DIR,
            seed=config.seed,
        )
    finally:
        model.train(was_training)
    for name, (kind, path) in artifacts.items():
        store.runs.add_artifact(run.id, name, kind, Path(path).relative_to(run_dir).as_posix())
    store.runs.log_metrics(run.id, step, _scalars(metrics, "eval/"))
    holdout_by = "image" if groups is None else groups.kind
    results = with_context(
        run.id,
        run.kind,
        task,
        metrics,
        len(images),
        holdout_by,
        train_accuracy=final_train_accuracy(store, run.id),
    )
    _write_json(run_dir / EVAL_FILE, {"step": step, "results": results})
    return results


def _scalars(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    """The real-valued metrics as ``<prefix><key>`` (a multi-task run's as ``eval/<head>/<key>``)."""
    scalars = {}
    for key, value in metrics.items():
        if key == "heads" and isinstance(value, dict):
            for head, head_metrics in value.items():
                scalars.update(_scalars(head_metrics, f"{prefix}{head}/"))
        elif isinstance(value, Real) and not isinstance(value, bool):
            scalars[f"{prefix}{key}"] = float(value)
    return scalars


def final_train_accuracy(
    store: Store, run_id: int, last: int = TRAIN_ACCURACY_STEPS
) -> float | None:
    """The mean accuracy of a run's last ``last`` logged training steps (None: it logs none)."""
    values = [m.value for m in store.runs.metrics(run_id, "accuracy")[-last:]]
    return sum(values) / len(values) if values else None


def with_context(
    run_id: int,
    task_name: str,
    task: PretextTask,
    metrics: dict[str, Any],
    n_images: int,
    holdout_by: str,
    *,
    train_accuracy: float | None = None,
) -> dict[str, Any]:
    """``{"run", "task", ...metrics, ...held-out context}``. A multi-task run's ``heads`` each
    get the keys a single-task run of that task has; at the top, it learned something if any
    head did."""
    if "heads" in metrics:
        heads = {
            name: with_context(run_id, name, task.heads[name], m, n_images, holdout_by)
            for name, m in metrics["heads"].items()
        }
        unlearned = [h for h in heads.values() if not h["learned"]]
        return {
            "run": run_id,
            "task": task_name,
            "heads": heads,
            "heldout_images": int(n_images),
            "chance": {},
            "learned": len(unlearned) < len(heads),
            "advice": unlearned[0]["advice"] if len(unlearned) == len(heads) else None,
            "holdout_by": holdout_by,
        }
    context = held_out_context(
        task_name,
        metrics,
        n_images,
        getattr(task, "permutations", None),
        train_accuracy=train_accuracy,
    )
    return {"run": run_id, "task": task_name, **metrics, **context, "holdout_by": holdout_by}


def evaluate_run(
    store: Store, run_id: int, *, refresh: bool = False, device: str | torch.device = "cpu"
) -> dict[str, Any]:
    """Held-out pretext metrics of a run: ``{"run", "task", ...}`` (DESIGN 3.2's ``eval`` row).

    Cached: the results the trainer wrote at the end are returned as they are, unless the run has
    stepped since (or ``refresh``); then the last checkpoint is evaluated again.
    """
    run = store.runs.get(run_id)
    cached = store.workspace.run_dir(run.id) / EVAL_FILE
    if cached.exists() and not refresh:
        saved = json.loads(cached.read_text())
        if saved.get("step") == run.step and all(k in saved["results"] for k in CONTEXT_KEYS):
            return saved["results"]
    task, model, config, checkpoint = load_model(store, run.id, device=device)
    cache = open_cache(store, run.dataset_id, config.image_size)
    return evaluate_model(store, run, task, model, cache, config, step=int(checkpoint["step"]))


def _write_json(path: Path, obj: Any) -> None:
    write_json(path, obj)
