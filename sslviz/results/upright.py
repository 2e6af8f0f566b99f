"""A data check from a rotation model: images stored the wrong way up.

A rotation model names how far an image was turned from upright. Run on a dataset's images as
stored, an image it is sure was turned by 90°, 180° or 270° was probably stored turned (a phone
photo without its EXIF orientation, a scan fed in sideways).

One view is noisy, so every image is looked at in its four turned copies (test-time
augmentation): if the stored image sits at turn ``t``, its copy turned by a further ``j`` should
be named ``t + j``. The four answers are averaged into one probability per ``t``,

    q[t] = mean_j p_j[(t + j) mod 4]

and an image is listed when the likeliest ``t`` is not 0 and ``q[t] >= min_confidence``.
Symmetric shapes (an O, a plate seen from above) spread ``q`` over several turns and stay below
the threshold, which is what keeps precision high.

``rotate_by`` is the counter-clockwise turn (PIL ``Image.rotate(rotate_by, expand=True)``) that
makes the stored image upright: turn class t is t*90° counter-clockwise, so it is 360 - 90 t.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from sslviz.core.devices import device_or_cpu, resolve_device
from sslviz.core.errors import UserError
from sslviz.data.cache import open_cache
from sslviz.pretext.base import PretextModel
from sslviz.results import stored
from sslviz.results.apply import LoadedModel, cached_run_model
from sslviz.results.rotation_answers import rotation_probabilities
from sslviz.store import Dataset, Store

# Measured (benchmarks/upright_quality.py, README): digits, 8 epochs of rotation on 1,000 of
# them, 797 held out with 28% turned: 0.5 -> precision 0.75 / recall 0.91; 0.7 -> 0.90 / 0.82;
# 0.8 -> 0.94 / 0.72; 0.9 -> 0.96 / 0.61. 0.8 keeps precision well above 0.9 with recall to
# spare; lower lets symmetric digits (0, 1, 8 turned 180 degrees) in.
DEFAULT_MIN_CONFIDENCE = 0.8
CHUNK = 1024  # images read from the cache at a time


@dataclass(frozen=True)
class TurnedImage:
    path: str
    row: int  # the image's row in the dataset (cache order)
    rotate_by: int  # 90, 180 or 270: counter-clockwise turn that makes it upright
    confidence: float  # q[t] of the turn the model names


@dataclass(frozen=True)
class UprightCheck:
    run: int
    dataset: str
    checked: int
    min_confidence: float
    turned: list[TurnedImage]  # most confident first

    def to_json(self) -> dict:
        """``sslviz upright --json`` (DESIGN 3.2)."""
        return {
            "run": self.run,
            "dataset": self.dataset,
            "checked": self.checked,
            "min_confidence": self.min_confidence,
            "turned": [
                {"path": t.path, "rotate_by": t.rotate_by, "confidence": round(t.confidence, 6)}
                for t in self.turned
            ],
        }

    def to_csv(self) -> str:
        """``path,rotate_by,confidence``, one row per listed image, most confident first."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["path", "rotate_by", "confidence"])
        for t in self.turned:
            writer.writerow([t.path, t.rotate_by, f"{t.confidence:.6f}"])
        return out.getvalue()


def stored_turn_probabilities(model: PretextModel, images: Tensor) -> Tensor:
    """uint8 (N, 3, S, S) as stored -> (N, 4): q[t], the probability that each image sits turned
    by t * 90° counter-clockwise, averaged over its four turned copies."""
    return aligned_turns(rotation_probabilities(model, images))


def aligned_turns(p: Tensor) -> Tensor:
    """(N, 4 copies j, 4 angles) rotation probabilities -> (N, 4): q[t] = mean_j p_j[(t+j) % 4]."""
    j = torch.arange(4)
    t = torch.arange(4)
    named = (t[:, None] + j[None, :]) % 4  # (4 t, 4 j): the angle copy j should be named
    return p[:, j[None, :].expand(4, 4), named].mean(dim=2)  # (N, 4)


def rotate_by(turn: int) -> int:
    """Counter-clockwise degrees that undo a turn of ``turn`` quarter turns counter-clockwise."""
    return (4 - turn) % 4 * 90


def find_turned(
    paths: list[str],
    probabilities: Tensor,
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> list[TurnedImage]:
    """Images whose likeliest stored turn is not 0 with q >= ``min_confidence``, most confident
    first, from (N, 4) ``stored_turn_probabilities``."""
    confidence, turn = probabilities.max(dim=1)
    keep = ((turn != 0) & (confidence >= min_confidence)).nonzero().flatten().tolist()
    found = [TurnedImage(paths[i], i, rotate_by(int(turn[i])), float(confidence[i])) for i in keep]
    return sorted(found, key=lambda t: (-t.confidence, t.path))


def dataset_turn_probabilities(
    store: Store, model: PretextModel, image_size: int, dataset: Dataset, device: str = "auto"
) -> Tensor:
    """(N, 4) ``stored_turn_probabilities`` of every image of ``dataset`` (cache order), batched
    from the decoded cache at the run's training size, on ``device``."""
    model = model.to(resolve_device(device))
    cache = open_cache(store, dataset.id, image_size)  # uint8 (N, 3, S, S), mmap
    parts = [
        stored_turn_probabilities(model, torch.from_numpy(np.array(cache[s : s + CHUNK])))
        for s in range(0, len(cache), CHUNK)
    ]
    model.to("cpu")
    return torch.cat(parts) if parts else torch.empty(0, 4)


def results_name(dataset: Dataset) -> str:
    """The stored results' name of one dataset's check (``sslviz.results.stored``)."""
    return f"upright-d{dataset.id}-n{dataset.n_images}"


def is_stored(store: Store, run_id: int, dataset: Dataset) -> bool:
    """True when the check of ``dataset`` by the run's current checkpoint is stored (reading it
    costs milliseconds; computing it is a pass over the whole dataset)."""
    return stored.is_stored(store, run_id, results_name(dataset))


def turn_probabilities(
    store: Store, run_id: int, dataset: Dataset, load: Callable[[], LoadedModel]
) -> Tensor:
    """(N, 4) turn probabilities of every image of ``dataset`` by the run's current checkpoint:
    stored once per checkpoint and dataset (the run's own dataset when the run ends), so the
    page and the CLI read them."""

    def compute() -> dict[str, np.ndarray]:
        loaded = load()
        device = str(device_or_cpu(loaded.run.device))
        q = dataset_turn_probabilities(
            store, loaded.model, loaded.config.image_size, dataset, device
        )
        return {"q": q.float().numpy()}

    return torch.from_numpy(stored.stored(store, run_id, results_name(dataset), compute)["q"])


def upright_check(
    store: Store,
    run_id: int,
    dataset: Dataset,
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
) -> UprightCheck:
    """``sslviz upright``: rotation run ``run_id`` (its latest checkpoint) on every image of
    ``dataset``. UserError unless it is a rotation run with a checkpoint."""
    run = store.runs.get(run_id)
    if run.kind not in ("rotation", "multi"):
        raise UserError(
            f"run {run_id} is a {run.kind} run: the upright check needs a rotation run "
            "(see `sslviz runs`)"
        )
    if not 0 < min_confidence <= 1:
        raise UserError(f"min confidence {min_confidence}: use a value in (0, 1], e.g. 0.8")
    q = turn_probabilities(  # a multi-task run: its rotation head
        store, run_id, dataset, lambda: cached_run_model(store, run_id).head("rotation")
    )
    paths = [image.path for image in store.datasets.images(dataset.id)]
    found = find_turned(paths, q, min_confidence=min_confidence)
    return UprightCheck(run_id, dataset.name, len(paths), min_confidence, found)
