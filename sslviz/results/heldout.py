"""The held-out images of a run, as evaluation sees them: decoded cache rows of its split."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from sslviz.data.cache import open_cache
from sslviz.store import Run, Store
from sslviz.training.batches import load_rows
from sslviz.training.config import TrainConfig
from sslviz.training.evaluate import holdout_rows
from sslviz.training.split import dataset_groups


@dataclass(frozen=True)
class HeldOut:
    """A run's held-out images (at most ``evaluate.MAX_EVAL_IMAGES``), in cache-row order."""

    rows: list[int]  # rows of the dataset's decoded cache (= its image order)
    paths: list[str]  # each image's path inside the dataset
    images: Tensor  # uint8 (N, 3, S, S) at the run's training size S

    def __len__(self) -> int:
        return len(self.rows)


def held_out(
    store: Store, run: Run, config: TrainConfig, *, image_size: int | None = None
) -> HeldOut:
    """The held-out images of ``run`` (the split its ``config`` defines), at the training size or
    at ``image_size`` (another run's size, to compare two runs on the same images)."""
    size = image_size or config.image_size
    cache = open_cache(store, run.dataset_id, size)
    rows = holdout_rows(len(cache), config, dataset_groups(store, run.dataset_id, config))
    paths = [image.path for image in store.datasets.images(run.dataset_id)]
    return HeldOut(
        rows=[int(r) for r in rows],
        paths=[paths[r] for r in rows] if len(paths) == len(cache) else [str(r) for r in rows],
        images=load_rows(cache, rows),
    )
