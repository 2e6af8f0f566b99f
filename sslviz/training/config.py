"""The training configuration: one frozen dataclass, saved in the store and in every checkpoint.

``default_config`` picks sensible values for a dataset and task; ``config_problems`` lists every
reason a config can't run (cheap checks only), and ``training.feasibility.run_problems`` adds
whether it fits this machine, so the CLI and the Train page refuse a bad config before any work
starts and before a run exists.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from sslviz.core.errors import UserError

if TYPE_CHECKING:
    from sslviz.store import Dataset, Store

OPTIMIZERS = ("adamw", "sgd")
MIN_HOLDOUT = 0.1
# Default image side per task: jigsaw cuts 3x3 tiles, so it needs larger images than the others.
DEFAULT_IMAGE_SIZE = {"rotation": 32, "colorization": 32, "jigsaw": 64}
# Default training length, in optimizer steps; epochs follow from the dataset's size.
TARGET_STEPS = 1500
MAX_DEFAULT_EPOCHS = 100
SAMPLE_IMAGES = 1_024  # training images the task sees for data-dependent statistics


@dataclass(frozen=True)
class TrainConfig:
    dataset: str  # dataset name
    task: str  # "rotation" | "colorization" | "jigsaw"
    encoder: str = "small-cnn"  # sslviz.models.encoders registry name
    image_size: int = 32  # side of the square training images
    epochs: int = 10
    batch_size: int = 64  # images per step (before the task multiplies them, e.g. 4 rotations)
    lr: float = 1e-3  # peak learning rate, after warm-up
    optimizer: str = "adamw"  # "adamw" | "sgd"
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0  # linear warm-up, then cosine decay to zero
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    seed: int = 0
    time_budget: float | None = None  # seconds of training, then end cleanly as finished
    holdout: float = MIN_HOLDOUT  # held-out fraction, deterministic by seed, never trained on
    holdout_by: str = "auto"  # "auto" | "folder" | "image": what is held out whole (training.split)
    task_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict``; keys this version doesn't know are ignored (older stores)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["task_options"] = dict(values.get("task_options") or {})
        values.setdefault("holdout_by", "image")  # runs stored before the option split by image
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        return replace(self, **changes)


def split_sizes(n_images: int, holdout: float) -> tuple[int, int]:
    """(n_train, n_holdout) for a dataset of ``n_images``: at least one held-out image."""
    n_holdout = max(1, math.ceil(n_images * holdout))
    return n_images - n_holdout, n_holdout


def default_config(dataset: Dataset, task: str) -> TrainConfig:
    """Sensible defaults for ``dataset``'s size: ~1,500 steps of 64 images (fewer on tiny sets)."""
    n_train, _ = split_sizes(max(dataset.n_images, 2), MIN_HOLDOUT)
    # small sets get smaller batches, so an epoch is still several steps
    batch_size = max(2, min(64, n_train, max(8, n_train // 4)))
    steps_per_epoch = max(1, n_train // batch_size)
    epochs = max(1, min(MAX_DEFAULT_EPOCHS, round(TARGET_STEPS / steps_per_epoch)))
    return TrainConfig(
        dataset=dataset.name,
        task=task,
        image_size=DEFAULT_IMAGE_SIZE.get(task, 32),
        epochs=epochs,
        batch_size=batch_size,
        warmup_epochs=min(1.0, epochs / 10),
    )


def config_problems(store: Store, config: TrainConfig) -> list[str]:
    """Every reason ``config`` can't run, one line each, saying what to do ([] means it can).

    Cheap: reads the store and the registries, never decodes images or builds a model.
    """
    from sslviz.core.devices import resolve_device
    from sslviz.models.encoders import ENCODERS
    from sslviz.pretext import TASKS

    problems: list[str] = []
    task_cls = TASKS.get(config.task)
    if task_cls is None:
        problems.append(f"unknown task {config.task!r}: choose one of {', '.join(TASKS)}")
    else:
        unknown = sorted(set(config.task_options) - set(task_cls.defaults))
        if unknown:
            valid = ", ".join(task_cls.defaults) or "none"
            problems.append(
                f"unknown option(s) {', '.join(unknown)} for task {config.task!r}; valid: {valid}"
            )
        else:
            try:
                task_cls(**config.task_options)
            except (UserError, ValueError) as error:
                problems.append(str(error))
        if config.image_size < task_cls.min_image_size():
            problems.append(
                f"image size {config.image_size} is too small for {config.task} (needs >= "
                f"{task_cls.min_image_size()} px): use --image-size {task_cls.min_image_size()} "
                "or more"
            )
    if config.encoder not in ENCODERS:
        problems.append(f"unknown encoder {config.encoder!r}: choose one of {', '.join(ENCODERS)}")
    if config.batch_size < 2:
        problems.append(
            f"batch size {config.batch_size} is too small: use --batch-size 2 or more "
            "(batch norm needs at least 2 images)"
        )
    if config.epochs < 1:
        problems.append(f"epochs must be at least 1 (got {config.epochs})")
    if not (math.isfinite(config.lr) and config.lr > 0):
        problems.append(f"learning rate must be a positive number (got {config.lr})")
    if config.optimizer not in OPTIMIZERS:
        problems.append(
            f"unknown optimizer {config.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}"
        )
    if config.weight_decay < 0 or config.warmup_epochs < 0:
        problems.append("weight decay and warm-up epochs must not be negative")
    if config.time_budget is not None and not 0 < config.time_budget < math.inf:
        problems.append(
            f"time budget must be a positive number of seconds (got {config.time_budget})"
        )
    if not MIN_HOLDOUT <= config.holdout < 1:
        problems.append(f"held-out fraction must be in [{MIN_HOLDOUT}, 1) (got {config.holdout})")
    if config.holdout_by not in ("auto", "folder", "image"):
        problems.append(
            f"unknown held-out split {config.holdout_by!r}: choose auto, folder or image"
        )
    try:
        resolve_device(config.device)
    except UserError as error:
        problems.append(str(error))

    try:
        dataset = store.datasets.get_by_name(config.dataset)
    except UserError as error:
        problems.append(str(error))
        return problems
    if dataset.status != "ready":
        problems.append(f"dataset {dataset.name!r} is {dataset.status}, not ready: ingest it again")
    n_images = store.datasets.count_images(dataset.id)
    n_train, _ = split_sizes(n_images, min(max(config.holdout, MIN_HOLDOUT), 0.99))
    if n_train < 2:
        problems.append(
            f"dataset {dataset.name!r} has {n_images} image(s): too few to hold out "
            f"{config.holdout:.0%} for evaluation and train on 2 or more; add images"
        )
    return problems
