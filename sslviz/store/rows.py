"""Plain dataclasses that rows of the store become at its boundary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Dataset:
    id: int
    name: str
    source: str
    status: str
    created_at: float
    n_images: int
    n_rejected: int
    n_duplicates: int
    bytes: int
    error: str | None
    pid: int | None = None  # the ingesting process, while status is ``ingesting``
    heartbeat_at: float | None = None


@dataclass(frozen=True)
class Image:
    id: int
    dataset_id: int
    path: str  # relative to the ingested folder (or inside the zip), "/" separators
    sha256: str
    file: str  # stored file, relative to the dataset's folder in the workspace
    width: int
    height: int
    mode: str  # the original Pillow mode (before conversion to RGB)
    format: str
    bytes: int


@dataclass(frozen=True)
class Rejection:
    path: str
    reason: str


@dataclass(frozen=True)
class Duplicate:
    path: str
    duplicate_of: str


ACTIVE_STATUSES = ("queued", "running")
ENDED_STATUSES = ("finished", "failed", "cancelled", "interrupted")
RESUMABLE_STATUSES = ("failed", "cancelled", "interrupted")


@dataclass(frozen=True)
class Run:
    id: int
    dataset_id: int
    kind: str  # the job kind (store.kinds): a pretext task, "finetune", "embedding", "ingest", ...
    model_name: str  # the encoder it trains or computes with; "pixels"/"random" baselines; "none"
    config_json: str
    device: str
    status: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    pid: int | None
    heartbeat_at: float | None
    epoch: int
    epochs: int
    step: int
    total_steps: int | None
    work_seconds: float  # time spent in its work (training steps, embedding, ...), not waiting
    cancel_requested: int
    error: str | None
    traceback: str | None
    parent_id: int | None = None  # the run this one starts from (a fine-tune's pretext run)
    claimed_at: float | None = None  # when its owner (``pid``) claimed it: judged by it
    stage: str | None = None  # work outside its steps, e.g. "writing results: upright check"
    stage_progress: float | None = None  # 0-1 through ``stage``, if known
    config: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", json.loads(self.config_json))

    @property
    def progress(self) -> float:
        """Fraction of the planned work done, 0-1 (steps if known, else epochs)."""
        if self.status == "finished":
            return 1.0
        if self.total_steps:
            return min(1.0, self.step / self.total_steps)
        return min(1.0, self.epoch / self.epochs) if self.epochs else 0.0


@dataclass(frozen=True)
class Metric:
    key: str
    step: int
    value: float
    time: float


@dataclass(frozen=True)
class Artifact:
    run_id: int
    name: str
    kind: str
    path: str  # relative to the run's folder
    created_at: float


# --- labeling sessions (sslviz.store.labeling_sessions) ---------------------------------------------------
@dataclass(frozen=True)
class Session:
    """A labeling session: labels of one dataset's images, predicted from one embedding source."""

    id: int
    dataset_id: int
    name: str
    source: str  # "random", "pixels" or a run id as a string (sslviz.maps.embed's SOURCE)
    layer: str | None  # None: the source's default layer
    grid: int | None
    created_at: float


@dataclass(frozen=True)
class LabelName:
    id: int
    session_id: int
    name: str
    count: int  # images that carry this label


@dataclass(frozen=True)
class Label:
    image_id: int
    path: str
    label: str
    created_at: float
    suggested: bool = False  # given to an image the "label these next" queue suggested


@dataclass(frozen=True)
class LabelAction:
    """One entry of a session's undo log: what it did and how to take it back."""

    id: int
    session_id: int
    created_at: float
    description: str
    changes_json: str
    changes: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "changes", json.loads(self.changes_json))
