"""Which images are held out, so the held-out figures judge images the model never saw.

Three ways, ``holdout_by`` of a TrainConfig:

- ``image``: single images drawn at random (a flat folder, or images that are all different).
- ``folder``: whole folders, drawn at random: a folder of crops, frames or near-copies of one
  scene is then entirely in training or entirely held out.
- ``auto`` (the default for new runs) picks:
  - whole folders when the held-out share spans at least ``MIN_HELDOUT_FOLDERS`` of them (so no
    single scene decides the verdict) without overshooting the asked fraction by much;
  - else, with 2 or more folders, the *last images of every folder* in name order (``tail``):
    every folder is judged, and numbered crops or frames are held out as a block, away from the
    ones trained on, rather than interleaved with them. The bundled demo (6 folders of 51 crops
    of one photo each) is built for this: each photo's last 6 crops come from its right half,
    which no other crop touches (assets/make_demo.py);
  - else single images.

Runs stored before the option existed split by image, and keep doing so (``config.from_dict``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sslviz.core.errors import UserError
from sslviz.training.config import TrainConfig, split_sizes

if TYPE_CHECKING:
    from sslviz.store import Store

HOLDOUT_BY = ("auto", "folder", "image")
MIN_HELDOUT_FOLDERS = 3  # auto holds out whole folders only if that takes at least 3 of them
MAX_OVERSHOOT = 2.0  # auto splits by folder only if that holds out at most 2x the asked fraction


@dataclass(frozen=True)
class Grouping:
    """The folders of a dataset's images and how the split uses them."""

    ids: np.ndarray  # (N,) int64 folder of each image
    rank: np.ndarray  # (N,) int64 position of each image in its folder, in name order
    whole: bool  # True: whole folders held out; False: the last images of every folder

    @property
    def kind(self) -> str:
        return "folder" if self.whole else "tail"


def folder_groups(paths: Sequence[str]) -> np.ndarray:
    """(N,) group id of each image: its folder; an image at the top level is a group of its own."""
    keys = [p.rsplit("/", 1)[0] if "/" in p else f"\0{i}" for i, p in enumerate(paths)]
    _, ids = np.unique(np.asarray(keys, dtype=object).astype(str), return_inverse=True)
    return ids.astype(np.int64)


def _folders(paths: Sequence[str]) -> Grouping:
    """Every image's folder (the top level is one folder) and its rank there in name order."""
    keys = np.asarray([p.rsplit("/", 1)[0] if "/" in p else "" for p in paths], dtype=object)
    _, ids = np.unique(keys.astype(str), return_inverse=True)
    order = np.lexsort((np.asarray(paths, dtype=object).astype(str), ids))
    rank = np.empty(len(paths), dtype=np.int64)
    starts = np.searchsorted(ids[order], ids[order])  # first position of each one's folder
    rank[order] = np.arange(len(paths)) - starts
    return Grouping(ids.astype(np.int64), rank, whole=False)


def grouped_holdout(groups: np.ndarray, holdout: float, rng: np.random.Generator) -> np.ndarray:
    """Sorted rows of whole groups, drawn in a seeded random order until at least
    ``split_sizes(n, holdout)`` images are held out."""
    _, wanted = split_sizes(len(groups), holdout)
    counts = np.bincount(groups)
    order = rng.permutation(len(counts))
    taken = order[: int(np.searchsorted(np.cumsum(counts[order]), wanted)) + 1]
    return np.sort(np.flatnonzero(np.isin(groups, taken)))


def tail_holdout(grouping: Grouping, holdout: float) -> np.ndarray:
    """Sorted rows of the last ``ceil(holdout * n_f)`` images (name order) of every folder f,
    keeping at least one image of each folder for training."""
    counts = np.bincount(grouping.ids)
    take = np.minimum(np.ceil(holdout * counts - 1e-9).astype(np.int64), counts - 1)
    return np.flatnonzero(grouping.rank >= (counts - take)[grouping.ids])


def _folder_holdout_size(counts: np.ndarray, wanted: int) -> tuple[int, int]:
    """(images, folders) whole folders hold out at worst: the largest ones first."""
    largest = np.sort(counts)[::-1]
    n = int(np.searchsorted(np.cumsum(largest), wanted)) + 1
    return int(largest[:n].sum()), n


def split_groups(paths: Sequence[str], holdout: float, holdout_by: str) -> Grouping | None:
    """How to hold out ``holdout`` of ``paths`` (module docstring); None: single images."""
    if holdout_by not in HOLDOUT_BY:
        raise UserError(
            f"unknown --holdout-by {holdout_by!r}: choose one of {', '.join(HOLDOUT_BY)}"
        )
    if holdout_by == "image" or not paths:
        return None
    groups = folder_groups(paths)
    counts = np.bincount(groups)
    _, wanted = split_sizes(len(paths), holdout)
    worst, n_folders = _folder_holdout_size(counts, wanted)
    if holdout_by == "folder":
        if len(paths) - worst < 2:
            raise UserError(
                "too few folders to hold out whole ones and still train: hold out by image "
                "(--holdout-by image)"
            )
        return Grouping(groups, np.zeros(len(paths), dtype=np.int64), whole=True)
    folders = _folders(paths)
    if int((np.bincount(folders.ids) > 1).sum()) < 2:
        return None  # a flat folder (or one folder): single images
    if (
        n_folders >= MIN_HELDOUT_FOLDERS
        and worst <= MAX_OVERSHOOT * wanted
        and len(paths) - worst >= 2
    ):
        return Grouping(groups, folders.rank, whole=True)
    return folders


def dataset_groups(store: Store, dataset_id: int, config: TrainConfig) -> Grouping | None:
    """``split_groups`` of a stored dataset (its image paths, in cache-row order)."""
    return split_groups(dataset_paths(store, dataset_id), config.holdout, config.holdout_by)


def dataset_paths(store: Store, dataset_id: int) -> list[str]:
    """A stored dataset's image paths, in cache-row order."""
    return [image.path for image in store.datasets.images(dataset_id)]


def split_kind(groups: Grouping | None) -> str:
    """How a split was made, in words for the pages and the CLI."""
    if groups is None:
        return "by image"
    if groups.whole:
        return "by folder (whole folders held out)"
    return "by image within folders (the last images of each folder)"


def holdout_words(paths: Sequence[str], held: np.ndarray, groups: Grouping | None) -> str:
    """What will be held out, in words: "34 images of folder temple", "4 images of each of 9
    folders" or "31 images"."""
    n = len(held)
    if groups is None:
        return f"{n:,} single image{'s' * (n != 1)} drawn at random"
    folders = sorted({paths[i].rsplit("/", 1)[0] if "/" in paths[i] else "." for i in held})
    if groups.whole:
        named = ", ".join(folders[:3]) + (
            f" and {len(folders) - 3} more" if len(folders) > 3 else ""
        )
        return f"{n:,} images: all of folder{'s' * (len(folders) != 1)} {named}"
    per = math.ceil(n / max(1, len(folders)))
    return f"{n:,} images: the last ~{per} (by name) of each of {len(folders)} folders"
