"""How long a run will take, said before it starts (the Train page): training images per second
measured by this workspace's own finished runs of the same task and encoder (scaled to the image
size), else a reference measured on a quiet 2-core CPU (docs/performance.md, train_throughput.py).

A busy machine trains slower than either says; a time budget caps the run whatever the estimate.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sslviz.training.config import TrainConfig

if TYPE_CHECKING:
    from sslviz.store import Store

# images/s end to end, small-cnn on a quiet 2-core CPU at REFERENCE_SIZE px (train_throughput.py)
REFERENCE_IMAGES_PER_S = {"rotation": 240.0, "colorization": 600.0, "jigsaw": 370.0}
REFERENCE_SIZE = {"rotation": 32, "colorization": 32, "jigsaw": 64}
REFERENCE_ENCODER = "small-cnn"
MIN_MEASURED_SECONDS = 10.0  # shorter runs say more about start-up than about speed
RECENT_RUNS = 5
OVERHEAD_SECONDS = 15.0  # start, decode cache, held-out evaluation at the end (small sets)


@dataclass(frozen=True)
class Expected:
    seconds: float  # expected training time, the time budget included
    source: str  # where the speed comes from, in words


def measured_speed(store: Store, config: TrainConfig) -> tuple[float, int] | None:
    """(median images/s at ``config.image_size``, runs measured) of this workspace's recent
    finished runs of the same task and encoder on this device kind, or None."""
    speeds = []
    for run in reversed(store.runs.list(statuses=("finished",))):
        c = run.config
        if run.kind != config.task or run.model_name != config.encoder:
            continue
        if run.work_seconds < MIN_MEASURED_SECONDS or not run.step or "batch_size" not in c:
            continue
        scale = (int(c.get("image_size", config.image_size)) / config.image_size) ** 2
        speeds.append(run.step * int(c["batch_size"]) / run.work_seconds * scale)
        if len(speeds) == RECENT_RUNS:
            break
    return (statistics.median(speeds), len(speeds)) if speeds else None


def expected_time(store: Store, config: TrainConfig, n_train: int) -> Expected | None:
    """How long ``config`` will train on ``n_train`` images, or None if nothing measured says."""
    steps = max(1, n_train // max(1, config.batch_size)) * config.epochs
    images = steps * min(config.batch_size, n_train)
    measured = measured_speed(store, config)
    if measured is not None:
        speed, count = measured
        source = f"from {count} earlier {config.task} run{'s' * (count != 1)} here"
    elif config.encoder == REFERENCE_ENCODER and config.task in REFERENCE_IMAGES_PER_S:
        size = REFERENCE_SIZE[config.task]
        speed = REFERENCE_IMAGES_PER_S[config.task] * (size / config.image_size) ** 2
        source = "on a quiet 2-core CPU; a busy machine is slower"
    else:
        return None
    seconds = images / speed
    if config.time_budget is not None:
        seconds = min(seconds, config.time_budget)
    return Expected(seconds + OVERHEAD_SECONDS, source)
