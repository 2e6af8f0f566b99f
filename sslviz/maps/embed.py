"""Embeddings of every image of a dataset: from a run's encoder, or from a baseline, cached.

    emb = embed(store, "digits", 3)                 # run 3's encoder at its default layer/pooling
    emb = embed(store, "digits", "random")          # the same architecture, untrained (seed 0)
    emb = embed(store, "digits", "pixels")          # downscaled raw pixels in [0, 1]
    emb.vectors                                     # float32 (N, D), memory-mapped, rows by path

A SOURCE is ``"random"``, ``"pixels"`` or the id of a run whose kind has an encoder (pretext runs,
fine-tunes). Images come batched from the decoded uint8 cache (``sslviz.data.cache``), never one
by one, to the run's device (or the best available: a GPU when there is one), in bf16 autocast on
CUDA as training runs (``sslviz.core.devices``); a CPU-only machine computes exactly as before. Each result is stored once in the workspace,

    <dataset_dir>/embeddings/<source>/<layer>-g<grid>-n<images>-<version>.npy    float32 (N, D)
    <dataset_dir>/embeddings/<source>/<same>.json                                what it holds

where ``version`` is the run's checkpoint version (a new checkpoint, a new file; its training step
is in the .json) or the baseline's seed. It is written under a lock to a partial file that a
later call continues (an embedding job that was cancelled resumes where it stopped) and renamed
into place when complete, so a reader never sees half an array.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from sslviz.core.atomic import write_text
from sslviz.core.errors import UserError
from sslviz.core.liveness import Cancelled, alive
from sslviz.maps.cached_arrays import load_cached, publish

if TYPE_CHECKING:
    import torch

    from sslviz.models.encoders import Encoder
    from sslviz.store import Dataset, Run, Store

ProgressCallback = Callable[[int, int], None]  # (images done, total)
BASELINES = ("random", "pixels")
BASELINE_SIZE = 32  # px of the images the random encoder and the pixel baseline see
RANDOM_ENCODER = "small-cnn"  # the default architecture, so `random` is a fair comparison
RANDOM_SEED = 0
# in a network source's version: "pool2" since global pooling gives each channel's average and
# maximum (before: the average only), so embeddings and maps cached before are not read
POOLING_VERSION = "pool2"
PIXEL_LAYERS = {"8px": 8, "16px": 16, "32px": 32}  # downscaled side of the pixel baseline
DEFAULT_PIXEL_LAYER = "16px"
BATCH = 256  # images per forward pass: big enough for BLAS, small enough for progress
SAVE_EVERY = 8  # batches between flushes of the partial file (what a resume continues from)


class SourceEncoder(NamedTuple):
    """What embeds a source: an encoder (eval mode, on the CPU until ``embed`` moves it), how it sees uint8 images, their size."""

    encoder: Encoder
    view: Callable[[torch.Tensor], torch.Tensor]  # uint8 (B, 3, S, S) -> float (B, C, S, S)
    image_size: int  # side of the cached images it is fed
    step: int | None = None  # training step of the checkpoint (None for the random encoder)


@dataclass(frozen=True)
class Embeddings:
    vectors: np.ndarray  # float32 (N, D), memory-mapped read-only
    image_ids: np.ndarray  # int64 (N,), store image ids
    paths: list[str]  # (N,) image paths, the dataset's order
    source: str  # "random", "pixels" or a run id as a string
    layer: str
    grid: int
    dim: int
    step: int | None = None  # the checkpoint's training step, for a run
    file: Path | None = None  # where the array lives in the workspace


# --- sources -------------------------------------------------------------------------------------
def parse_source(source: int | str) -> str:
    """``"random"``, ``"pixels"`` or a run id as a digit string; UserError otherwise."""
    text = str(source).strip().lower()
    if text in BASELINES or text.isdigit():
        return str(int(text)) if text.isdigit() else text
    raise UserError(
        f"unknown source {source!r}: use a run id (see `sslviz runs`), random or pixels"
    )


def source_run(store: Store, source: str) -> Run:
    """The run behind a run-id source; UserError if it is unknown or its kind has no encoder."""
    from sslviz.store.kinds import run_kind

    run = store.runs.get(int(source))
    kind = run_kind(run.kind)
    if not kind.has_encoder:
        raise UserError(
            f"run {run.id} is a {kind.label} run, which has no encoder: choose a pretext or "
            "fine-tune run (see `sslviz runs`), random or pixels"
        )
    return run


def encoder_for_source(store: Store, source: int | str) -> SourceEncoder:
    """The encoder that embeds ``source`` (a run id or ``"random"``); pixels have none."""
    source = parse_source(source)
    if source == "pixels":
        raise UserError("the pixels baseline has no encoder: its embedding is the pixels")
    if source == "random":
        return random_encoder()
    run = source_run(store, source)
    from sslviz.store.kinds import run_kind

    # the kind names its loader (a fine-tune's lives with the fine-tuning code, above maps)
    return run_kind(run.kind).load("encoder_loader")(store, run)


def pretext_encoder(store: Store, run: Run) -> SourceEncoder:
    """A pretext run's trained encoder, fed whole images at its training size the way its task
    shows them (colorization: the L channel; jigsaw: per-image standardized)."""
    from sslviz.training.evaluate import load_model

    task, model, config, checkpoint = load_model(store, run.id)
    return SourceEncoder(
        model.encoder.eval(), task.encoder_view, config.image_size, int(checkpoint["step"])
    )


def random_encoder() -> SourceEncoder:
    """The default architecture, untrained, with a fixed seed (the global RNG is left alone)."""
    import torch

    from sslviz.models.encoders import create_encoder
    from sslviz.pretext.base import normalize

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_SEED)
        encoder = create_encoder(RANDOM_ENCODER, image_size=BASELINE_SIZE)
    return SourceEncoder(encoder.eval(), normalize, BASELINE_SIZE, None)


def source_device(store: Store, source: str) -> torch.device:
    """Where ``source`` is embedded: a run's own device if this machine has it, else the best
    one available (a GPU when there is one); the pixel baseline stays on the CPU (no model)."""
    import torch

    from sslviz.core.devices import inference_device

    if source == "pixels":
        return torch.device("cpu")
    if source == "random":
        return inference_device()
    return inference_device(source_run(store, source).device)


def source_version(store: Store, source: str) -> str:
    """Changes whenever what ``source`` embeds changes: a run's checkpoint version (its file's
    modification time, a cheap stat: a new checkpoint, a new embedding), a baseline's seed."""
    if source == "random":
        return f"seed{RANDOM_SEED}_{POOLING_VERSION}"
    if source == "pixels":
        return "v2"  # v1 was standardised per pixel
    from sslviz.models.checkpoint import checkpoint_path

    path = checkpoint_path(store.workspace.run_dir(int(source)))
    try:
        return f"c{path.stat().st_mtime_ns}_{POOLING_VERSION}"
    except FileNotFoundError:
        run = store.runs.get(int(source))
        raise UserError(
            f"run {run.id} has no checkpoint yet ({run.status}): wait for its first epoch"
        ) from None


# --- layers --------------------------------------------------------------------------------------
def _architecture(store: Store, source: str) -> Encoder:
    """An untrained encoder of the source's architecture: names and defaults, no checkpoint."""

    name = RANDOM_ENCODER if source == "random" else source_run(store, source).model_name
    return _untrained(name)


_ARCHITECTURES: dict[str, Encoder] = {}


def _untrained(name: str) -> Encoder:
    from sslviz.models.encoders import create_encoder

    if name not in _ARCHITECTURES:
        _ARCHITECTURES[name] = create_encoder(name)
    return _ARCHITECTURES[name]


def available_layers(store: Store, source: int | str) -> list[str]:
    """Layer names ``source`` can embed at, shallow -> deep (pixels: downscaled sides)."""
    source = parse_source(source)
    if source == "pixels":
        return list(PIXEL_LAYERS)
    return list(_architecture(store, source).layer_names)


def default_layer(store: Store, source: int | str) -> tuple[str, int]:
    """(layer, grid) that measured best for ``source``'s architecture (DESIGN 3.5)."""
    source = parse_source(source)
    if source == "pixels":
        return DEFAULT_PIXEL_LAYER, 1
    encoder = _architecture(store, source)
    if source == "random":
        return (
            encoder.untrained_layer or encoder.default_layer,
            encoder.untrained_grid or encoder.default_grid,
        )
    return encoder.default_layer, encoder.default_grid


def resolve_layer(
    store: Store, source: str, layer: str | None, grid: int | None
) -> tuple[str, int]:
    """The (layer, grid) to use: defaults filled in, names checked (UserError lists valid ones)."""
    default, default_grid = default_layer(store, source)
    layer = layer or default
    grid = default_grid if grid is None else int(grid)
    if layer not in available_layers(store, source):
        valid = ", ".join(available_layers(store, source))
        raise UserError(f"unknown layer {layer!r} for source {source}; choose one of: {valid}")
    if source == "pixels" and grid != 1:
        raise UserError("the pixels baseline has no pooling grid: leave --grid out (or use 1)")
    if not 1 <= grid <= 8:
        raise UserError(f"grid {grid} is out of range: pool over 1 (global) to 8 cells a side")
    return layer, grid


# --- the cache -----------------------------------------------------------------------------------
def embedding_file(
    store: Store, dataset: Dataset, source: str, layer: str, grid: int, version: str
) -> Path:
    folder = store.workspace.dataset_dir(dataset.id) / "embeddings" / source
    return folder / f"{layer}-g{grid}-n{dataset.n_images}-{version}.npy"


def _load(store: Store, dataset: Dataset, file: Path) -> Embeddings | None:
    found = load_cached(store, dataset, file, mmap=True)
    if found is None:
        return None
    vectors, meta, images = found
    return Embeddings(
        vectors=vectors,
        image_ids=np.fromiter((i.id for i in images), np.int64, len(images)),
        paths=[i.path for i in images],
        source=meta["source"],
        layer=meta["layer"],
        grid=int(meta["grid"]),
        dim=int(vectors.shape[1]),
        step=meta.get("step"),
        file=file,
    )


def cached_embeddings(
    store: Store,
    dataset: Dataset | int | str,
    source: int | str,
    *,
    layer: str | None = None,
    grid: int | None = None,
) -> Embeddings | None:
    """The stored embeddings if they exist and are current, else None; never computes."""
    dataset = store.datasets.ready(dataset)
    source = parse_source(source)
    layer, grid = resolve_layer(store, source, layer, grid)
    version = source_version(store, source)
    return _load(store, dataset, embedding_file(store, dataset, source, layer, grid, version))


def embed(
    store: Store,
    dataset: Dataset | int | str,
    source: int | str,
    *,
    layer: str | None = None,
    grid: int | None = None,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Embeddings:
    """Embeddings of every image of ``dataset`` from ``source`` at ``layer`` pooled over a
    ``grid`` x ``grid`` grid (defaults: :func:`default_layer`); computed once, then read from
    the workspace. ``on_progress(done, total)`` follows the images; ``should_stop()`` true
    while the images are decoded or between batches raises Cancelled (the rows done so far are
    kept). Every decoded chunk and embedded batch is a sign of life (``core.liveness``)."""
    dataset = store.datasets.ready(dataset)
    source = parse_source(source)
    layer, grid = resolve_layer(store, source, layer, grid)
    file = embedding_file(store, dataset, source, layer, grid, source_version(store, source))
    found = _load(store, dataset, file)
    if found is not None:
        return found
    file.parent.mkdir(parents=True, exist_ok=True)
    with locked(file.with_suffix(".lock")):
        found = _load(store, dataset, file)  # another process may have finished it meanwhile
        if found is None:
            _compute(store, dataset, source, layer, grid, file, on_progress, should_stop)
            found = _load(store, dataset, file)
    assert found is not None
    return found


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (released by the OS if the process dies)."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _compute(
    store: Store,
    dataset: Dataset,
    source: str,
    layer: str,
    grid: int,
    file: Path,
    on_progress: ProgressCallback | None,
    should_stop: Callable[[], bool] | None,
) -> None:
    import torch

    from sslviz.core import devices
    from sslviz.data.cache import open_cache

    started = time.perf_counter()
    device = source_device(store, source)
    batch_size = devices.inference_batch(device, BATCH)
    if source == "pixels":
        side = PIXEL_LAYERS[layer]
        size, step = BASELINE_SIZE, None
        dim = 3 * side * side

        def features(x: torch.Tensor) -> torch.Tensor:
            x = x.float() / 255.0  # (B, 3, S, S)
            if side != size:
                x = torch.nn.functional.adaptive_avg_pool2d(x, side)  # area-average downscale
            return x.flatten(1)  # (B, 3 * side * side)

    else:
        encoder, view, size, step = encoder_for_source(store, source)
        alive()  # the encoder is loaded (a checkpoint read, on a busy machine seconds)
        dim = encoder.pooled_dim(layer, grid)
        encoder = encoder.to(device)

        def features(x: torch.Tensor) -> torch.Tensor:
            with devices.autocast(device):
                return encoder.embed(view(x.to(device)), layer, grid).float()  # (B, dim)

    # uint8 (N, 3, S, S), memory-mapped; decoding signs life and stops when asked (Cancelled)
    cache = open_cache(store, dataset.id, size, should_stop=should_stop)
    total = len(cache)
    partial = file.with_name(f"{file.stem}.partial.npy")
    done_file = file.with_name(f"{file.stem}.partial.done")
    out, done = _open_partial(partial, done_file, (total, dim))
    if on_progress:
        on_progress(done, total)
    with torch.inference_mode():
        for batch, start in enumerate(range(done, total, batch_size)):
            if should_stop is not None and should_stop():
                _save_partial(out, done_file, start)
                raise Cancelled(f"stopped after {start} of {total} images")
            rows = torch.from_numpy(np.array(cache[start : start + batch_size]))  # writable copy
            out[start : start + len(rows)] = features(rows).cpu().numpy()
            alive()
            if (batch + 1) % SAVE_EVERY == 0:
                _save_partial(out, done_file, start + len(rows))
            if on_progress:
                on_progress(start + len(rows), total)
    out.flush()
    del out
    meta = {
        "source": source,
        "layer": layer,
        "grid": grid,
        "dim": dim,
        "images": total,
        "step": step,
        "dataset": dataset.name,
        "seconds": round(time.perf_counter() - started, 3),
        "created_at": time.time(),
    }
    publish(file, meta, partial)
    done_file.unlink(missing_ok=True)


def _open_partial(partial: Path, done_file: Path, shape: tuple[int, int]) -> tuple[Any, int]:
    """The partial array and how many rows of it are done (0 for a fresh one)."""
    if partial.exists() and done_file.exists():
        try:
            out = np.load(partial, mmap_mode="r+")
            done = int(done_file.read_text().strip() or 0)
            if out.shape == shape and out.dtype == np.float32 and 0 <= done <= shape[0]:
                return out, done
        except (ValueError, OSError):
            pass
    done_file.unlink(missing_ok=True)
    return np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=shape), 0


def _save_partial(out: Any, done_file: Path, done: int) -> None:
    out.flush()  # the rows reach the file before the count that vouches for them
    write_text(done_file, str(done))
