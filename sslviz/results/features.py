"""What each channel of a layer responds to: its dataset examples (OpenAI Microscope's "dataset
examples"), found in one batched pass over the dataset per layer and cached per checkpoint.

    index = channel_index(store, dataset, source)   # source: FeatureSource of a run or `random`
    index.ranked_channels()[:8]                     # most selective first
    index.top_images(channel, 9)                    # dataset rows, strongest first
    index.box(row, channel)                         # [x0, y0, x1, y1] in the stored image's pixels

For every image and channel the pass keeps two numbers: the strongest activation anywhere in the
map (``peak``) and where it is (``where``, a flat index into the map). That is all the channel
grid needs, (N, C) floats instead of (N, C, h, w) maps, so 10,000 images cost a few MB.
Activation maps of a few images (a channel's top 50, one uploaded image) are recomputed on demand.

    <dataset_dir>/features/<source>/<layer>-n<images>-<version>.npz     peak, where, map_side

``version`` changes with the checkpoint (or is the baseline's seed), as for embeddings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from sslviz.core.atomic import replacing
from sslviz.core.devices import resolve_device
from sslviz.data.cache import open_cache
from sslviz.models.encoders import Encoder
from sslviz.results.receptive_field import Geometry, layer_geometry, to_stored
from sslviz.store import Dataset, Image, Store

BATCH = 256  # images per forward pass
TOP_FRACTION = 0.01  # selectivity compares a channel's top 1% (at least MIN_TOP images) ...
MIN_TOP = 5  # ... with its typical image


@dataclass(frozen=True)
class FeatureSource:
    """An encoder to look into and how it is fed: a run's trained one or the untrained baseline."""

    name: str  # "random" or a run id as a string
    version: str  # changes when the weights change (checkpoint mtime, baseline seed)
    encoder: Encoder  # eval mode
    view: Callable[[Tensor], Tensor]  # uint8 (B, 3, S, S) -> float (B, C_in, S, S)
    image_size: int  # side S of the cached images it is fed
    device: str = "auto"  # where the pass runs (the run's device)


@dataclass(frozen=True)
class ChannelIndex:
    """Every channel's strongest response on every image of a dataset, at one layer."""

    source: str
    dataset: str
    layer: str
    images: list[Image]  # (N,) the dataset's rows, cache order
    peak: np.ndarray  # float32 (N, C): strongest activation of channel c on image n
    where: np.ndarray  # int32 (N, C): flat index (row * side + col) of that spot
    geometry: Geometry
    seconds: float  # of the pass (0 when read from the cache)

    @property
    def channels(self) -> int:
        return self.peak.shape[1]

    @property
    def paths(self) -> list[str]:
        return [image.path for image in self.images]

    def selectivity(self) -> np.ndarray:
        """(C,) how far a channel's best images stand out from its typical one: the mean peak of
        its top 1% (at least 5 images) minus the median peak, in standard deviations of the
        peaks. A channel that fires on everything (or on nothing) scores near 0."""
        k = max(MIN_TOP, int(len(self.peak) * TOP_FRACTION))
        k = min(k, len(self.peak))
        top = -np.sort(-self.peak, axis=0)[:k].mean(axis=0)  # (C,)
        spread = self.peak.std(axis=0)
        score = (top - np.median(self.peak, axis=0)) / np.where(spread > 1e-6, spread, np.inf)
        return score.astype(np.float32)

    def channel_max(self) -> np.ndarray:
        """(C,) each channel's highest activation on any image: the scale its maps are read on
        (1 = this), so networks whose raw activations differ by orders of magnitude compare."""
        return self.peak.max(axis=0) if len(self.peak) else np.zeros(self.channels, np.float32)

    def typical_share(self) -> np.ndarray:
        """(C,) the median image's peak as a share of the channel's maximum (0-1)."""
        top = self.channel_max()
        return np.median(self.peak, axis=0) / np.where(top > 1e-12, top, np.inf)

    def ranked_channels(self) -> list[int]:
        """Channels, most selective first (ties by channel number)."""
        return [int(c) for c in np.argsort(-self.selectivity(), kind="stable")]

    def top_images(self, channel: int, n: int) -> list[int]:
        """Rows of the ``n`` images whose strongest spot excites ``channel`` most, strongest first."""
        column = self.peak[:, channel]
        n = min(n, len(column))
        rows = np.argpartition(-column, n - 1)[:n] if n < len(column) else np.arange(len(column))
        return [int(r) for r in rows[np.argsort(-column[rows], kind="stable")]]

    def spot(self, row: int, channel: int) -> tuple[int, int]:
        """(row, col) in the layer's map of the channel's strongest spot on image ``row``."""
        return divmod(int(self.where[row, channel]), self.geometry.map_side)

    def input_box(self, row: int, channel: int) -> tuple[float, float, float, float]:
        """The spot's receptive field in the model's input pixels (side ``geometry.input_side``)."""
        return self.geometry.box(*self.spot(row, channel))

    def box(self, row: int, channel: int) -> list[int]:
        """The spot's receptive field as [x0, y0, x1, y1] in the stored image's pixels."""
        image = self.images[row]
        return to_stored(
            self.input_box(row, channel), self.geometry.input_side, image.width, image.height
        )

    def to_json(self, *, channels: int, top: int, run: int | str) -> dict:
        """``sslviz features --json`` (DESIGN 3.2): the ``channels`` most selective channels with
        their ``top`` images each, strongest first."""
        chosen = self.ranked_channels()[:channels]
        selectivity = self.selectivity()
        return {
            "run": run,
            "dataset": self.dataset,
            "layer": self.layer,
            "channels": [
                {
                    "channel": c,
                    "selectivity": round(float(selectivity[c]), 4),
                    "images": [
                        {
                            "path": self.images[r].path,
                            "activation": round(float(self.peak[r, c]), 6),
                            "box": self.box(r, c),
                        }
                        for r in self.top_images(c, top)
                    ],
                }
                for c in chosen
            ],
        }


def index_file(store: Store, dataset: Dataset, source: FeatureSource, layer: str) -> Path:
    folder = store.workspace.dataset_dir(dataset.id) / "features" / source.name
    return folder / f"{layer}-n{dataset.n_images}-{source.version}.npz"


def channel_index(
    store: Store, dataset: Dataset, source: FeatureSource, layer: str | None = None
) -> ChannelIndex:
    """Every channel's peak on every image of ``dataset`` at ``layer`` (default: the encoder's
    deepest): one batched pass, then read from the workspace until the weights change."""
    layer = source.encoder.check_layer(layer or source.encoder.layer_names[-1])
    geometry = layer_geometry(source.encoder, layer, source.image_size)
    images = store.datasets.images(dataset.id)
    file = index_file(store, dataset, source, layer)
    seconds = 0.0
    try:
        with np.load(file) as saved:
            peak, where = saved["peak"], saved["where"]
    except (FileNotFoundError, ValueError, KeyError):
        started = time.perf_counter()
        peak, where = _pass(store, dataset, source, layer)
        seconds = time.perf_counter() - started
        file.parent.mkdir(parents=True, exist_ok=True)
        with replacing(file, suffix=".npz") as tmp:
            np.savez(tmp, peak=peak, where=where)
        _remove_older(file)
    return ChannelIndex(
        source.name, dataset.name, layer, images, peak, where, geometry, round(seconds, 3)
    )


def _pass(
    store: Store, dataset: Dataset, source: FeatureSource, layer: str
) -> tuple[np.ndarray, np.ndarray]:
    """One pass over the decoded cache: (N, C) peaks and their flat positions."""
    device = resolve_device(source.device)
    encoder = source.encoder.to(device)
    cache = open_cache(store, dataset.id, source.image_size)  # uint8 (N, 3, S, S), mmap
    n, c = len(cache), encoder.layer_dims[layer]
    peak = np.empty((n, c), np.float32)
    where = np.empty((n, c), np.int32)
    with torch.inference_mode():
        for start in range(0, n, BATCH):
            rows = torch.from_numpy(np.array(cache[start : start + BATCH])).to(device)
            fmap = encoder.feature_maps(source.view(rows), [layer])[layer]  # (B, C, h, w)
            best, spot = fmap.flatten(2).max(dim=2)  # (B, C) each
            peak[start : start + len(rows)] = best.float().cpu().numpy()
            where[start : start + len(rows)] = spot.cpu().numpy()
    encoder.to("cpu")
    return peak, where


def _remove_older(file: Path) -> None:
    """Drop the indexes of older checkpoints of the same source and layer."""
    prefix = file.name.rsplit("-", 1)[0] + "-"
    for other in file.parent.glob(f"{prefix}*.npz"):
        if other != file:
            other.unlink(missing_ok=True)


def activation_maps(source: FeatureSource, images: Tensor, layer: str) -> Tensor:
    """uint8 (B, 3, S, S) -> float (B, C, h, w): every channel's map at ``layer`` (on the CPU:
    a few images are too little work to move)."""
    with torch.inference_mode():
        return source.encoder.feature_maps(source.view(images), [layer])[layer].float()


def first_layer_filters(encoder: Encoder) -> Tensor:
    """The first conv's weights as pictures: uint8 (C_out, 3, k, k), each filter scaled on its own
    to [0, 255] around grey 128 (zero weight = grey). One-channel filters (colorization's L) are
    repeated into grey RGB."""
    conv = next(m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d))
    w = conv.weight.detach().float().cpu()  # (C_out, C_in, k, k)
    scale = w.abs().flatten(1).amax(dim=1).clamp_min(1e-8).view(-1, 1, 1, 1)
    pictures = (128 + 127 * w / scale).round().clamp(0, 255).to(torch.uint8)
    if pictures.shape[1] == 1:
        pictures = pictures.expand(-1, 3, -1, -1)
    return pictures[:, :3].contiguous()


def feature_source(store: Store, source: int | str) -> FeatureSource:
    """The encoder of a run (its latest checkpoint) or of ``"random"`` (the untrained baseline
    architecture) to look into, with the device its passes run on (the run's, if present)."""
    from sslviz.core.devices import device_or_cpu
    from sslviz.maps.embed import encoder_for_source, parse_source, source_version

    name = parse_source(source)
    if name == "pixels":
        from sslviz.core.errors import UserError

        raise UserError("the pixels baseline has no channels: use a run id or random")
    encoder, view, image_size, _ = encoder_for_source(store, name)
    device = "cpu" if name == "random" else str(device_or_cpu(store.runs.get(int(name)).device))
    return FeatureSource(name, source_version(store, name), encoder, view, image_size, device)
