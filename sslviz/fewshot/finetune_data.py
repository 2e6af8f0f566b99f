"""What a fine-tune reads and writes besides its model: its settings, the labels it was given,
their stratified three-way split (train / select / untouched), the augmentations (for a few
labeled images, and FixMatch's weak and strong views of the unlabeled ones), the predictions.

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
from sslviz.fewshot.enough import MIN_PER_CLASS_TO_HOLD_OUT

if TYPE_CHECKING:
    from sslviz.store import Store

RESULT_FILE = "finetune.json"
PREDICTIONS_CSV = "predictions.csv"
PREDICTIONS_NPZ = "predictions.npz"
# MIN_PER_CLASS_TO_HOLD_OUT (fewshot.enough): labels a class needs before one is held out (two
# stay for training); the inner split for early stopping takes one more from what is left on the
# same terms.
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
    holdout: float = 0.2  # share of each class's labels left untouched: the reported accuracy
    select: float = 0.2  # share of each class's labels that choose the checkpoint (inner split)
    eval_every: int = 10  # steps between evaluations on the select labels
    patience: int = 100  # steps without a better select loss before stopping early
    # FixMatch (Sohn et al. 2020): a consistency loss on unlabeled images on top of the labeled one
    semi_supervised: bool = False
    unlabeled_batch: int = 64  # unlabeled images per step (weak and strong view of each)
    threshold: float = 0.8  # pseudo-label confidence needed (the paper's 0.95 is out of reach
    # for a head trained with label smoothing 0.1: its confidence tops out near 0.9)
    unlabeled_weight: float = 1.0  # lambda_u: the unlabeled loss's weight
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


def split_labels(
    labels: Mapping[str, str], holdout: float, seed: int, select: float = 0.2
) -> dict[str, Any]:
    """Stratified three-way split of labeled paths:
    ``{"classes", "train", "select", "holdout", "note"}``.

    ``holdout`` labels are untouched: they choose nothing (no checkpoint, no head, no threshold)
    and only measure the finished model. ``select`` labels choose the checkpoint (early stopping).
    Each class gives ``round(share * n)`` (at least 1) of its ``n`` labels to each, keeping 2 to
    train on: with fewer than MIN_PER_CLASS_TO_HOLD_OUT labels in some class nothing is held out,
    with one label fewer than an inner split needs there is no early stopping (a fixed schedule);
    ``note`` says which. Deterministic by ``seed`` and the labels, so fine-tunes of several runs on
    the same labels share their untouched images (the leaderboard compares them there).
    """
    classes = sorted(set(labels.values()))
    by_class = {c: sorted(p for p, v in labels.items() if v == c) for c in classes}
    smallest = min(classes, key=lambda c: len(by_class[c]))
    fewest = len(by_class[smallest])
    if fewest < MIN_PER_CLASS_TO_HOLD_OUT or holdout <= 0:
        note = (
            f"too few labels per class to hold any out (class {smallest!r} has {fewest}; "
            f"{MIN_PER_CLASS_TO_HOLD_OUT} are needed): trained on all labels for a fixed "
            "schedule, so there is no held-out accuracy"
        )
        return {
            "classes": classes,
            "train": sorted(labels),
            "select": [],
            "holdout": [],
            "note": note,
        }
    rng = np.random.default_rng([seed, _SPLIT_SALT])
    held: list[str] = []
    chosen: list[str] = []
    inner = select > 0 and all(
        len(paths) - _share(holdout, len(paths)) >= MIN_PER_CLASS_TO_HOLD_OUT
        for paths in by_class.values()
    )
    for c in classes:
        paths = [by_class[c][i] for i in rng.permutation(len(by_class[c]))]
        n_out = _share(holdout, len(paths))
        held += paths[:n_out]
        if inner:
            chosen += paths[n_out : n_out + _share(select, len(paths) - n_out, of=len(paths))]
    note = None
    if not inner:
        note = (
            f"too few labels per class for an inner split (class {smallest!r} has {fewest}; "
            f"{MIN_PER_CLASS_TO_HOLD_OUT + 1} are needed): trained for the full schedule "
            "without early stopping"
        )
    used = set(held) | set(chosen)
    train = sorted(p for p in labels if p not in used)
    return {
        "classes": classes,
        "train": train,
        "select": sorted(chosen),
        "holdout": sorted(held),
        "note": note,
    }


def _share(fraction: float, n: int, *, of: int | None = None) -> int:
    """round(fraction * of) labels (at least 1) out of ``n``, keeping 2 for training."""
    return min(n - 2, max(1, round(fraction * (of if of is not None else n))))


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


def augment_weak(
    images: Tensor, generator: torch.Generator | None = None, *, flip: bool = True
) -> Tensor:
    """FixMatch's weak view: a flip and a small shift/scale, colours untouched (uint8 in, out)."""
    return augment_labeled(images, generator, flip=flip, min_scale=0.8, jitter=0.0)


def augment_strong(
    images: Tensor, generator: torch.Generator | None = None, *, flip: bool = True
) -> Tensor:
    """FixMatch's strong view (Sohn et al. 2020 use RandAugment + Cutout): a hard crop, strong
    colour jitter, then a grey square over a quarter of the area at a random place (Cutout,
    DeVries & Taylor 2017). uint8 (B, 3, H, W) -> uint8 (B, 3, H, W)."""
    x = augment_labeled(images, generator, flip=flip, min_scale=0.3, jitter=0.6)
    b, _, h, w = x.shape
    u = torch.rand(b, 2, generator=generator)  # (B, 2) where each square's corner goes
    side_h, side_w = max(1, h // 2), max(1, w // 2)
    top = (u[:, 0] * (h - side_h + 1)).long().clamp(max=h - side_h).to(x.device)
    left = (u[:, 1] * (w - side_w + 1)).long().clamp(max=w - side_w).to(x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= top.view(b, 1, 1)) & (rows < (top + side_h).view(b, 1, 1))
    inside = inside & (cols >= left.view(b, 1, 1)) & (cols < (left + side_w).view(b, 1, 1))
    return torch.where(inside.unsqueeze(1), torch.full_like(x, 127), x)  # (B, 3, H, W)


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
