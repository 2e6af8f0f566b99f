"""Which images are held out: whole folders when a dataset's images come in groups.

The bundled demo is 34 crops of each of 9 photos, one folder per photo. Holding out single crops
would test the model on photos it trained on (crops overlap), and the held-out figures would
flatter it. So when a dataset's images sit in folders, ``auto`` holds out whole folders — a
folder of crops, frames or near-copies of one scene is then entirely in training or entirely
held out — provided whole folders can come close to the asked-for fraction (else it falls back
to single images, and says so through ``split_kind``).

``holdout_by`` of a TrainConfig: ``auto`` (the default for new runs), ``folder``, ``image``.
Runs stored before this option existed split by image, and keep doing so (``config.from_dict``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from sslviz.core.errors import UserError
from sslviz.training.config import TrainConfig, split_sizes

if TYPE_CHECKING:
    from sslviz.store import Store

HOLDOUT_BY = ("auto", "folder", "image")
MIN_FOLDERS = 3  # fewer folders are classes or sources, not groups of near-copies
MAX_OVERSHOOT = 2.0  # auto splits by folder only if that holds out at most 2x the asked fraction


def folder_groups(paths: Sequence[str]) -> np.ndarray:
    """(N,) group id of each image: its folder; an image at the top level is a group of its own."""
    keys = [p.rsplit("/", 1)[0] if "/" in p else f"\0{i}" for i, p in enumerate(paths)]
    _, ids = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    return ids.astype(np.int64)


def grouped_holdout(groups: np.ndarray, holdout: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted rows of whole groups, drawn in a seeded random order until at least
    ``split_sizes(n, holdout)`` images are held out."""
    _, wanted = split_sizes(len(groups), holdout)
    counts = np.bincount(groups)
    order = rng.permutation(len(counts))
    taken = order[: int(np.searchsorted(np.cumsum(counts[order]), wanted)) + 1]
    return np.sort(np.flatnonzero(np.isin(groups, taken)))


def split_groups(paths: Sequence[str], holdout: float, holdout_by: str) -> np.ndarray | None:
    """The groups to hold out whole (see ``folder_groups``), or None to hold out single images."""
    if holdout_by not in HOLDOUT_BY:
        raise UserError(
            f"unknown --holdout-by {holdout_by!r}: choose one of {', '.join(HOLDOUT_BY)}"
        )
    if holdout_by == "image" or not paths:
        return None
    groups = folder_groups(paths)
    counts = np.bincount(groups)
    # the largest folders decide how far whole folders may overshoot the asked fraction
    _, wanted = split_sizes(len(paths), holdout)
    largest = np.sort(counts)[::-1]
    worst = int(largest[: int(np.searchsorted(np.cumsum(largest), wanted)) + 1].sum())
    if holdout_by == "folder":
        if len(paths) - worst < 2:
            raise UserError(
                "too few folders to hold out whole ones and still train: use --holdout-by image"
            )
        return groups
    if int((counts > 1).sum()) < MIN_FOLDERS:
        return None
    if worst > MAX_OVERSHOOT * wanted or len(paths) - worst < 2:
        return None
    return groups


def dataset_groups(store: Store, dataset_id: int, config: TrainConfig) -> np.ndarray | None:
    """``split_groups`` of a stored dataset (its image paths, in cache-row order)."""
    paths = [image.path for image in store.datasets.images(dataset_id)]
    return split_groups(paths, config.holdout, config.holdout_by)


def split_kind(groups: np.ndarray | None) -> str:
    """How a split was made, in words for the pages and the CLI."""
    return "by image" if groups is None else "by folder (whole folders held out)"
