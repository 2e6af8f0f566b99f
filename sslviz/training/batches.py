"""From the uint8 cache to training batches: held-out split, batch plan, batched augmentation,
and a prefetch thread so loading overlaps compute.

All randomness is a pure function of ``(seed, epoch)`` for the order and ``(seed, step, rank)`` for
augmentation and the task's ``make_batch``: a run resumed from a checkpoint sees exactly the batches
it would have seen, however far the prefetch thread had run ahead.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import torch
from torch import Tensor

from sslviz.training.config import TrainConfig, split_sizes
from sslviz.training.split import (
    Grouping,
    dataset_paths,
    grouped_holdout,
    holdout_words,
    split_groups,
    tail_holdout,
)

if TYPE_CHECKING:
    from sslviz.pretext import PretextBatch, PretextTask
    from sslviz.store import Store

# Salts keep the split, the epoch order and the per-step randomness independent streams.
_SPLIT_SALT, _ORDER_SALT, _STEP_SALT = 0x5B17, 0x0DE5, 0x57E9

T = TypeVar("T")


def split_indices(
    n_images: int, holdout: float, seed: int, groups: Grouping | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) row indices of a dataset of ``n_images``, disjoint, each sorted.

    Deterministic by ``seed``; at least ``ceil(holdout * n)`` (>= 1) images are held out. With
    ``groups`` (see ``training.split``) whole folders are held out, never part of one, or the
    last images of every folder.
    """
    rng = np.random.default_rng([seed, _SPLIT_SALT])
    if groups is not None:
        if groups.whole:
            held = grouped_holdout(groups.ids, holdout, rng)
        else:
            held = tail_holdout(groups, holdout)
        return np.setdiff1d(np.arange(n_images), held), held
    _, n_holdout = split_sizes(n_images, holdout)
    order = rng.permutation(n_images)
    return np.sort(order[n_holdout:]), np.sort(order[:n_holdout])


@dataclass(frozen=True)
class SplitPreview:
    """What a config's split will be on a stored dataset, for the Train page before a run."""

    n_train: int
    n_holdout: int
    kind: str  # "image" | "folder" | "tail" (training.split)
    words: str  # what is held out, e.g. "34 images: all of folder temple"


def split_preview(store: Store, dataset_id: int, config: TrainConfig) -> SplitPreview:
    """The split ``config`` makes of a stored dataset (the one training will make)."""
    paths = dataset_paths(store, dataset_id)
    if len(paths) < 2:
        n_train, n_holdout = split_sizes(2, config.holdout)
        return SplitPreview(n_train, n_holdout, "image", f"{n_holdout} image")
    groups = split_groups(paths, config.holdout, config.holdout_by)
    train, held = split_indices(len(paths), config.holdout, config.seed, groups)
    kind = "image" if groups is None else groups.kind
    return SplitPreview(len(train), len(held), kind, holdout_words(paths, held, groups))


def step_generator(seed: int, step: int, rank: int = 0) -> torch.Generator:
    """A CPU generator seeded by (seed, step, rank): the randomness of one batch on one rank."""
    state = np.random.SeedSequence([seed, _STEP_SALT, step, rank]).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


@dataclass
class BatchPlan:
    """Which cache rows each step reads. ``batch_size`` is global: under DDP, rank r of
    ``world`` takes every world-th image of each global batch, so all ranks step in lock-step."""

    train: np.ndarray  # (N_train,) cache row indices
    batch_size: int
    seed: int
    rank: int = 0
    world: int = 1
    _order: tuple[int, np.ndarray] | None = field(default=None, repr=False)

    @property
    def steps_per_epoch(self) -> int:
        """Full batches per epoch (the ragged tail is dropped; a set smaller than one batch is
        one step of all of it)."""
        return max(1, len(self.train) // self.batch_size)

    @property
    def global_batch(self) -> int:
        return min(self.batch_size, len(self.train))

    def epoch_order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            perm = np.random.default_rng([self.seed, _ORDER_SALT, epoch]).permutation(
                len(self.train)
            )
            self._order = (epoch, self.train[perm])
        return self._order[1]

    def indices(self, epoch: int, index: int) -> np.ndarray:
        """Sorted cache rows of batch ``index`` of ``epoch`` for this rank (sorted: the memory-
        mapped reads then walk the file forwards)."""
        order = self.epoch_order(epoch)
        start = index * self.global_batch
        rows = order[start : start + self.global_batch][self.rank :: self.world]
        return np.sort(rows)


def _reflect(index: Tensor, n: int) -> Tensor:
    """Reflect out-of-range indices back into [0, n) (like reflect padding, edge not repeated)."""
    index = index.abs()
    return torch.where(index > n - 1, 2 * (n - 1) - index, index)


def augment(
    images: Tensor,
    generator: torch.Generator | None = None,
    pad: int | None = None,
    flip: bool = True,
) -> Tensor:
    """Random shift (crop of the reflect-padded image, up to ``pad`` px; default size/8; 0 for
    none) and, if ``flip``, random horizontal flip, for a whole batch at once by index arithmetic
    (one gather, no per-image Python, no padded copy).

    images: uint8 (B, 3, H, W) on any device -> uint8 (B, 3, H, W) on the same device.
    """
    b, _, h, w = images.shape
    pad = max(1, min(h, w) // 8) if pad is None else pad
    shifts = torch.randint(-pad, pad + 1, (b, 2), generator=generator)  # (B, 2)
    flips = (torch.rand(b, generator=generator) < 0.5) & flip  # (B,)
    rows = torch.arange(h) + shifts[:, :1]  # (B, H)
    cols = torch.arange(w) + shifts[:, 1:]  # (B, W)
    cols = torch.where(flips[:, None], cols.flip(1), cols)  # a flip reverses the column order
    rows, cols = _reflect(rows, h).to(images.device), _reflect(cols, w).to(images.device)
    batch = torch.arange(b, device=images.device)[:, None, None]
    out = images.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]  # (B, H, W, 3)
    return out.permute(0, 3, 1, 2).contiguous(memory_format=torch.contiguous_format)


def augment_for(task: PretextTask, images: Tensor, generator: torch.Generator | None) -> Tensor:
    """The shared augmentation as ``task`` allows it: no flips if ``augment_flip`` is false; no
    shift if ``augment_reflect_pad`` is false, since a shift fills the border with mirrored
    content (jigsaw: it tells where a border tile goes) and the task jitters by cropping itself."""
    reflect = getattr(task, "augment_reflect_pad", True)
    return augment(images, generator, pad=None if reflect else 0, flip=task.augment_flip)


def load_rows(cache: np.ndarray, rows: np.ndarray, *, pin: bool = False) -> Tensor:
    """uint8 (B, 3, H, W) tensor of cache rows (a copy out of the memory map)."""
    batch = torch.from_numpy(np.ascontiguousarray(cache[rows]))
    return batch.pin_memory() if pin else batch


class Prefetcher(Generic[T]):
    """Runs ``produce(item)`` for each item in a background thread, up to ``depth`` ahead.

    Torch and NumPy release the GIL in their kernels, so loading and augmenting the next batch
    overlaps the model's step. Exceptions in the thread are re-raised by ``__next__``.
    """

    _DONE = object()

    def __init__(self, produce: Callable[[int], T], items: range, depth: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(produce, items), name="sslviz-prefetch", daemon=True
        )
        self._thread.start()

    def _put(self, value: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, produce: Callable[[int], T], items: range) -> None:
        try:
            for item in items:
                if not self._put((item, produce(item))):
                    return
        except BaseException as error:  # handed to the consumer, who re-raises it
            self._put(error)
            return
        self._put(self._DONE)

    def __iter__(self) -> Iterator[tuple[int, T]]:
        return self

    def __next__(self) -> tuple[int, T]:
        value = self._queue.get()
        if value is self._DONE:
            raise StopIteration
        if isinstance(value, BaseException):
            raise value
        return value

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class BatchLoader:
    """Pretext batches of one epoch from the cache, prefetched.

    On CPU the thread does everything (read, augment, ``make_batch``); on a GPU it reads into
    pinned memory and the main thread copies (non_blocking) and does the tensor work on the GPU.
    """

    def __init__(
        self, cache: np.ndarray, plan: BatchPlan, task: PretextTask, device: torch.device
    ) -> None:
        self.cache, self.plan, self.task, self.device = cache, plan, task, device
        self.on_cpu = device.type == "cpu"

    def _produce(self, epoch: int) -> Callable[[int], tuple[Tensor, PretextBatch | None]]:
        def produce(index: int) -> tuple[Tensor, PretextBatch | None]:
            rows = self.plan.indices(epoch, index)
            images = load_rows(self.cache, rows, pin=self.device.type == "cuda")
            if not self.on_cpu:
                return images, None
            return images, self._make(images, epoch, index)

        return produce

    def _make(self, images: Tensor, epoch: int, index: int) -> PretextBatch:
        step = epoch * self.plan.steps_per_epoch + index
        generator = step_generator(self.plan.seed, step, self.plan.rank)
        images = augment_for(self.task, images, generator)
        return self.task.make_batch(images, generator)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[tuple[int, int, PretextBatch]]:
        """Yields ``(index in epoch, images in this rank's batch, batch on the device)`` for
        batches ``start..steps_per_epoch-1`` of ``epoch``."""
        prefetch = Prefetcher(self._produce(epoch), range(start, self.plan.steps_per_epoch))
        try:
            for index, (images, batch) in prefetch:
                if batch is None:
                    images = images.to(self.device, non_blocking=True)
                    batch = self._make(images, epoch, index)
                yield index, len(images), batch
        finally:
            prefetch.close()
