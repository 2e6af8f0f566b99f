"""What a fine-tune reads and writes besides its model: its settings, the labels it was given,
their stratified train/held-out split, the augmentation for tiny label sets, the predictions.

    <dataset_dir>/labels/<sha256>.json     the labels of a fine-tune, content-addressed
    <run_dir>/predictions.csv              path,label,confidence,labeled (DESIGN 3.2)
    <run_dir>/predictions.npz              image_ids (N,), probabilities (N, K), classes (K,)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from sslviz.core.atomic import write_json

if TYPE_CHECKING:
    from sslviz.store import Store

RESULT_FILE = "finetune.json"
PREDICTIONS_CSV = "predictions.csv"
PREDICTIONS_NPZ = "predictions.npz"
# A class needs this many labels before one can be held out (two stay for training).
MIN_PER_CLASS_TO_HOLD_OUT = 3
_SPLIT_SALT = 0xF17E


@dataclass(frozen=True)
class FineTuneConfig:
    """A fine-tune's settings (saved in the run's config, with ``labels``/``parent``)."""

    steps: int = 300  # optimizer steps planned (early stopping may end sooner)
    probe_steps: int = 100  # first steps: the head alone on the frozen encoder (LP-FT)
    batch_size: int = 32  # labeled images per step (all of them, if fewer)
    lr: float = 3e-3  # the head's peak learning rate (AdamW)
    encoder_lr_ratio: float = 0.1  # the encoder learns this much slower than the head
    weight_decay: float = 1e-4
    label_smoothing: float = 0.1  # few labels: don't let the head grow overconfident
    holdout: float = 0.2  # share of each class's labels held out for early stopping
    eval_every: int = 10  # steps between held-out evaluations
    patience: int = 100  # steps without a better held-out loss before stopping early
    checkpoint_seconds: float = 10.0  # training seconds between checkpoints (and at the end)
    seed: int = 0  # the split, the batches and the augmentations
    layer: str | None = None  # the encoder layer the head reads (None: the source's default)
    grid: int | None = None  # its pooling grid (None: the source's default)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> FineTuneConfig:
        """From a run's config (its other keys, e.g. ``labels``, are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


# --- labels ---------------------------------------------------------------------------------------
def labels_sha(labels: Mapping[str, str]) -> str:
    """A content hash of a label set (order-free): the same labels, the same hash."""
    text = "".join(f"{p}\t{labels[p]}\n" for p in sorted(labels))
    return hashlib.sha256(text.encode()).hexdigest()


def labels_file(store: Store, dataset_id: int, sha: str) -> Path:
    return store.workspace.dataset_dir(dataset_id) / "labels" / f"{sha}.json"


def save_labels(store: Store, dataset_id: int, labels: Mapping[str, str]) -> str:
    """Write ``labels`` (path -> label) once, named by their hash; returns the hash."""
    sha = labels_sha(labels)
    path = labels_file(store, dataset_id, sha)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, dict(sorted(labels.items())))
    return sha


def read_label_file(path: Path) -> dict[str, str]:
    return dict(json.loads(Path(path).read_text()))


def split_labels(labels: Mapping[str, str], holdout: float, seed: int) -> dict[str, Any]:
    """Stratified split of labeled paths: ``{"classes", "train", "holdout", "note"}``.

    Each class holds out ``round(holdout * n)`` (at least 1) of its ``n`` labels, if every class
    has at least MIN_PER_CLASS_TO_HOLD_OUT; otherwise nothing is held out and ``note`` says why.
    Deterministic by ``seed`` and the labels, so fine-tunes of several runs on the same labels
    share their held-out images (the leaderboard compares them there).
    """
    classes = sorted(set(labels.values()))
    by_class = {c: sorted(p for p, v in labels.items() if v == c) for c in classes}
    smallest = min(classes, key=lambda c: len(by_class[c]))
    if len(by_class[smallest]) < MIN_PER_CLASS_TO_HOLD_OUT or holdout <= 0:
        note = (
            f"too few labels per class to hold any out (class {smallest!r} has "
            f"{len(by_class[smallest])}; {MIN_PER_CLASS_TO_HOLD_OUT} are needed): trained on all "
            "labels for a fixed schedule, so there is no held-out accuracy"
        )
        return {"classes": classes, "train": sorted(labels), "holdout": [], "note": note}
    rng = np.random.default_rng([seed, _SPLIT_SALT])
    held: list[str] = []
    for c in classes:
        paths = by_class[c]
        n_out = min(len(paths) - 2, max(1, round(holdout * len(paths))))
        held += [paths[i] for i in rng.permutation(len(paths))[:n_out]]
    held_set = set(held)
    train = sorted(p for p in labels if p not in held_set)
    return {"classes": classes, "train": train, "holdout": sorted(held), "note": None}


# --- augmentation ---------------------------------------------------------------------------------
def augment_labeled(
    images: Tensor,
    generator: torch.Generator | None = None,
    *,
    flip: bool = True,
    min_scale: float = 0.5,
    jitter: float = 0.3,
) -> Tensor:
    """Augmentation for a few labeled images, whole batch at once (one affine resample):
    random resized crop (area ``min_scale``..1, aspect 3/4..4/3), a horizontal flip for half of
    them if ``flip``, and brightness / contrast / saturation jitter of +-``jitter``.

    images: uint8 (B, 3, H, W) -> uint8 (B, 3, H, W), on the same device.
    """
    b = len(images)
    u = torch.rand(b, 7, generator=generator).to(images.device)  # (B, 7) uniforms
    area = min_scale + (1 - min_scale) * u[:, 0]
    aspect = torch.exp((u[:, 1] - 0.5) * 2 * np.log(4 / 3))  # log-uniform in [3/4, 4/3]
    w = torch.sqrt(area * aspect).clamp(max=1.0)  # crop side / image side, in x
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    tx = (2 * u[:, 2] - 1) * (1 - w)  # centre, in [-1, 1] coordinates: the crop stays inside
    ty = (2 * u[:, 3] - 1) * (1 - h)
    mirror = torch.where((u[:, 4] < 0.5) & flip, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3, device=images.device)
    theta[:, 0, 0], theta[:, 0, 2] = w * mirror, tx
    theta[:, 1, 1], theta[:, 1, 2] = h, ty
    x = images.float() / 255.0  # (B, 3, H, W)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # colour: brightness scales, contrast pulls to the mean grey, saturation to each pixel's grey
    brightness = 1 + jitter * (2 * u[:, 5] - 1)
    contrast = 1 + jitter * (2 * u[:, 6] - 1)
    saturation = 1 + jitter * (2 * torch.rand(b, generator=generator).to(x.device) - 1)
    x = x * brightness.view(b, 1, 1, 1)
    grey = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)  # (B, 1, H, W)
    x = grey + (x - grey) * saturation.view(b, 1, 1, 1)
    mean = grey.mean(dim=(2, 3), keepdim=True)  # (B, 1, 1, 1)
    x = mean + (x - mean) * contrast.view(b, 1, 1, 1)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


# --- predictions ----------------------------------------------------------------------------------
def write_predictions(
    run_dir: Path,
    paths: Sequence[str],
    image_ids: Sequence[int],
    probabilities: np.ndarray,
    classes: Sequence[str],
    labels: Mapping[str, str],
) -> Path:
    """The predictions CSV (labeled rows keep their given label, confidence 1) and the class
    probabilities (N, K) as .npz; returns the CSV's path."""
    from sslviz.fewshot.labels_csv import write_predictions_csv

    run_dir = Path(run_dir)
    best = probabilities.argmax(1)  # (N,)
    predicted = [classes[k] for k in best]
    confidence = probabilities[np.arange(len(best)), best]  # (N,)
    write_predictions_csv(run_dir / PREDICTIONS_CSV, paths, predicted, confidence, labels)
    np.savez(
        run_dir / PREDICTIONS_NPZ,
        image_ids=np.asarray(image_ids, np.int64),
        probabilities=probabilities.astype(np.float32),
        classes=np.asarray(classes, dtype=str),
    )
    return run_dir / PREDICTIONS_CSV


def read_predictions(run_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
    """(image_ids (N,), probabilities (N, K), classes) a finished fine-tune wrote, or None."""
    try:
        with np.load(Path(run_dir) / PREDICTIONS_NPZ) as data:
            return data["image_ids"], data["probabilities"], [str(c) for c in data["classes"]]
    except FileNotFoundError:
        return None
