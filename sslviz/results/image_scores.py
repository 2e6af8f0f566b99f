"""Per-image pretext scores of a run over a whole dataset: the pretext model as a data check.

    scores = image_scores(store, 3, "photos")      # one batched pass, cached per checkpoint
    scores.columns["upright"]                      # (N,) float32, rows in the dataset's order
    scores.to_json()                               # what ``sslviz scores --json`` prints

What each task says about each *stored* image (not a held-out split: every image of the dataset):

- rotation: ``upright`` is the model's probability that the stored image is not turned (the
  0° class), ``sureness`` its highest probability of any angle, ``seen_turn`` the angle it names
  (0/90/180/270). Low ``upright`` with high ``sureness``: probably stored the wrong way up; low
  ``sureness``: an image without an "up" (symmetric shape, texture).
- colorization: ``psnr`` of the model's colours against the truth, ``psnr_grey`` of the grey
  image (ab = 0), ``gain`` = ``psnr - psnr_grey`` in dB. Negative gain: the model's colours are
  worse than none (unusual colours, a tinted or grey photo).
- jigsaw: ``misplaced`` tiles (Hamming distance between the predicted and the true order) of one
  puzzle per image, cut with the run's seed as evaluation cuts them; ``confidence`` the model's
  probability of its answer. Many misplaced tiles: an image without parts that say where they go.

The pass runs on the run's device (its configured one if it is here, else the CPU) in batches
from the decoded uint8 cache at the run's training size, and its result is kept in the workspace
(``<run_dir>/image_scores/d<dataset>-n<images>-c<checkpoint version>.npz``): a new checkpoint or a
changed dataset is a new file, older ones of the same dataset are removed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sslviz.core.atomic import replacing
from sslviz.core.errors import UserError
from sslviz.core.liveness import Cancelled
from sslviz.data.cache import open_cache
from sslviz.models.checkpoint import checkpoint_path
from sslviz.pretext import TASKS
from sslviz.pretext.base import PretextModel, PretextTask, normalize
from sslviz.pretext.colorization import psnr
from sslviz.pretext.permutations import hamming
from sslviz.pretext.rotation import ANGLES
from sslviz.store import Dataset, Run, Store

ProgressCallback = Callable[[int, int], None]  # (images done, total)
BATCH = 256  # images per forward pass
SCORES_DIR = "image_scores"

# task -> (columns in the order a table shows them, the headline column a map is coloured by)
COLUMNS: dict[str, tuple[tuple[str, ...], str]] = {
    "rotation": (("upright", "sureness", "seen_turn"), "upright"),
    "colorization": (("gain", "psnr", "psnr_grey"), "gain"),
    "jigsaw": (("misplaced", "confidence"), "misplaced"),
}
COLUMNS["multi"] = COLUMNS["rotation"]  # a multi-task run scores with its rotation head
# How a page or a table names each column, and what it means
DESCRIPTIONS: dict[str, str] = {
    "upright": "rotation model's probability that the stored image is upright (0°)",
    "sureness": "rotation model's highest probability for the stored image, any angle",
    "seen_turn": "the turn (degrees) the rotation model sees in the stored image",
    "gain": "colorization PSNR minus the grey image's PSNR (dB): what the colours add",
    "psnr": "PSNR (dB) of the model's colours against the true colours",
    "psnr_grey": "PSNR (dB) of the grey image (no colour) against the true colours",
    "misplaced": "jigsaw tiles out of place in the model's answer to one puzzle (0-9)",
    "confidence": "jigsaw model's probability of its answer",
}


@dataclass(frozen=True)
class ImageScores:
    """A run's scores of every image of a dataset; rows in the dataset's image order."""

    run: int
    task: str
    dataset: str
    step: int  # training step of the checkpoint that scored
    image_ids: np.ndarray  # (N,) int64 store image ids
    paths: list[str]  # (N,)
    columns: dict[str, np.ndarray]  # name -> (N,) float32, in COLUMNS order
    seconds: float  # how long the pass took (when it was computed)
    device: str  # where it ran

    @property
    def headline(self) -> str:
        """The column a map is coloured by for this task."""
        return COLUMNS[self.task][1]

    def __len__(self) -> int:
        return len(self.paths)

    def to_json(self) -> dict[str, Any]:
        """``{"run", "task", "dataset", "step", "images", "columns", "scores": [{"path", ...}]}``
        (the CLI's ``scores --json``); numbers rounded to 4 decimals."""
        names = list(self.columns)
        values = np.column_stack([self.columns[n] for n in names]).round(4).tolist()
        return {
            "run": self.run,
            "task": self.task,
            "dataset": self.dataset,
            "step": self.step,
            "images": len(self.paths),
            "columns": names,
            "scores": [
                {"path": p, **dict(zip(names, row, strict=True))}
                for p, row in zip(self.paths, values, strict=True)
            ],
        }


# --- the run and the dataset ---------------------------------------------------------------------
def pretext_run(store: Store, run_id: int) -> Run:
    """The run if it is a pretext run (its model answers a pretext task), else a UserError."""
    run = store.runs.get(int(run_id))
    if run.kind not in TASKS:
        raise UserError(
            f"run {run.id} is a {run.kind} run: scores come from a pretext model, choose a "
            f"{', '.join(TASKS)} run (see `sslviz runs`)"
        )
    return run


def checkpoint_version(store: Store, run: Run) -> str:
    """Changes with every new checkpoint (its file's modification time)."""
    try:
        return f"c{checkpoint_path(store.workspace.run_dir(run.id)).stat().st_mtime_ns}"
    except FileNotFoundError:
        raise UserError(
            f"run {run.id} has no checkpoint yet ({run.status}): wait for its first epoch"
        ) from None


def scores_file(store: Store, run: Run, dataset: Dataset) -> Path:
    folder = store.workspace.run_dir(run.id) / SCORES_DIR
    return folder / f"d{dataset.id}-n{dataset.n_images}-{checkpoint_version(store, run)}.npz"


def run_device(run: Run) -> torch.device:
    """The device the run trained on if this machine has it, else the CPU."""
    from sslviz.core.devices import resolve_device

    try:
        return resolve_device(run.device)
    except UserError:
        return torch.device("cpu")


# --- the pass ------------------------------------------------------------------------------------
def cached_image_scores(
    store: Store, run_id: int, dataset: Dataset | int | str
) -> ImageScores | None:
    """The stored scores of the run's current checkpoint on ``dataset``, or None; never computes."""
    run = pretext_run(store, run_id)
    dataset = store.datasets.ready(dataset)
    return _load(store, run, dataset, scores_file(store, run, dataset))


def image_scores(
    store: Store,
    run_id: int,
    dataset: Dataset | int | str | None = None,
    *,
    device: str | torch.device | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ImageScores:
    """Scores of every image of ``dataset`` (default: the run's own) by the run's pretext model:
    read from the workspace if this checkpoint scored them before, else one batched pass.
    ``should_stop()`` true between batches raises Cancelled (nothing is stored)."""
    from sslviz.training.evaluate import load_model

    run = pretext_run(store, run_id)
    dataset = store.datasets.ready(run.dataset_id if dataset is None else dataset)
    file = scores_file(store, run, dataset)
    found = _load(store, run, dataset, file)
    if found is not None:
        return found
    started = time.perf_counter()
    where = torch.device(device) if device is not None else run_device(run)
    task, model, config, checkpoint = load_model(store, run.id, device=where)
    if run.kind == "multi":
        task, model = task.head(model, "rotation")
    cache = open_cache(store, dataset.id, config.image_size)  # uint8 (N, 3, S, S), mmapped
    columns = _score_all(
        task, model, cache, seed=config.seed, on_progress=on_progress, should_stop=should_stop
    )
    meta = {
        "step": int(checkpoint["step"]),
        "seconds": round(time.perf_counter() - started, 3),
        "device": str(where),
        "task": run.kind,
    }
    file.parent.mkdir(parents=True, exist_ok=True)
    with replacing(file, suffix=".npz") as tmp:
        np.savez(tmp, meta=np.array(json.dumps(meta)), **columns)
    for other in file.parent.glob(f"d{dataset.id}-*.npz"):  # older checkpoints, older datasets
        if other != file:
            other.unlink(missing_ok=True)
    found = _load(store, run, dataset, file)
    assert found is not None
    return found


def _load(store: Store, run: Run, dataset: Dataset, file: Path) -> ImageScores | None:
    try:
        with np.load(file) as saved:
            meta = json.loads(str(saved["meta"]))
            columns = {name: saved[name] for name in COLUMNS[run.kind][0]}
    except (FileNotFoundError, KeyError, ValueError, OSError):
        return None
    images = store.datasets.images(dataset.id)
    if any(len(v) != len(images) for v in columns.values()):
        return None
    return ImageScores(
        run=run.id,
        task=run.kind,
        dataset=dataset.name,
        step=int(meta["step"]),
        image_ids=np.fromiter((i.id for i in images), np.int64, len(images)),
        paths=[i.path for i in images],
        columns=columns,
        seconds=float(meta["seconds"]),
        device=str(meta["device"]),
    )


@torch.inference_mode()
def _score_all(
    task: PretextTask,
    model: PretextModel,
    cache: np.ndarray,
    *,
    seed: int,
    on_progress: ProgressCallback | None,
    should_stop: Callable[[], bool] | None,
) -> dict[str, np.ndarray]:
    """Every row of the uint8 cache (N, 3, S, S) through the task's scorer, in batches."""
    total, size = len(cache), cache.shape[-1]
    device = next(model.parameters()).device
    model.eval()
    layout = None
    if task.name == "jigsaw":  # all puzzles drawn at once: the same whatever the batch size
        generator = torch.Generator().manual_seed(seed)
        layout = task.sample_layout(total, size, generator, torch.device("cpu"))
    parts: dict[str, list[Tensor]] = {}
    for start in range(0, total, BATCH):
        if should_stop is not None and should_stop():
            raise Cancelled(f"stopped after scoring {start} of {total} images")
        images = torch.from_numpy(np.array(cache[start : start + BATCH])).to(device)
        rows = slice(start, start + len(images))
        for name, value in _score_batch(task, model, images, layout, rows).items():
            parts.setdefault(name, []).append(value.float().cpu())
        if on_progress is not None:
            on_progress(start + len(images), total)
    names = COLUMNS[task.name][0]
    if not parts:
        return {name: np.zeros(0, np.float32) for name in names}
    return {name: torch.cat(parts[name]).numpy().astype(np.float32) for name in names}


def _score_batch(
    task: PretextTask, model: PretextModel, images: Tensor, layout: Any, rows: slice
) -> dict[str, Tensor]:
    """One batch of uint8 images (B, 3, S, S) on the model's device -> each column (B,)."""
    if task.name == "rotation":
        logits, _ = model(normalize(images))  # (B, 4): the stored image, not turned
        probabilities = logits.float().softmax(dim=1)
        top = probabilities.max(dim=1)
        return {
            "upright": probabilities[:, 0],
            "sureness": top.values,
            "seen_turn": images.new_tensor(ANGLES, dtype=torch.float32)[top.indices],
        }
    if task.name == "colorization":
        from sslviz.pretext.colorization import without_colour

        colour = task.colorize(model, images, batch_size=len(images))  # (B, 3, S, S) uint8
        truth = images.cpu()
        ours, none = psnr(colour, truth), psnr(without_colour(truth), truth)
        return {"gain": ours - none, "psnr": ours, "psnr_grey": none}
    if task.name == "jigsaw":
        from sslviz.pretext.jigsaw import JigsawLayout

        chunk = JigsawLayout(layout.offsets[rows], layout.labels[rows], layout.grey[rows])
        logits, _ = model(task.assemble(images, chunk).inputs)  # (B, n_permutations)
        probabilities = logits.float().softmax(dim=1).cpu()
        top = probabilities.max(dim=1)
        permutations = task.permutations.cpu()
        misplaced = hamming(permutations[top.indices], permutations[chunk.labels.cpu()])
        return {"misplaced": misplaced.float(), "confidence": top.values}
    raise UserError(f"no per-image scores for task {task.name!r}")  # pretext_run() checks first
