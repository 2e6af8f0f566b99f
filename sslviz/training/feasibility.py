"""Whether a training config fits this machine, judged before a run exists (no images decoded, no
model trained): ``sslviz train`` and the Train page refuse what can't run, in one line that names
the largest value that fits, instead of starting a run that fails or eats all memory.

    run_problems(store, config)   # config_problems, then whether it fits: [] or one line each
    check_run(store, config)      # a UserError with the first (``sslviz train``, job requests)

What is counted, each against what this machine has free now:

- the decode cache (``sslviz.data.cache``): images x 3 x size^2 bytes on the workspace's disk;
  it is read memory-mapped, but building it holds up to three chunks of decoded images per
  decoding process in memory, and training loads a sample of up to 1,024 images (uint8 and a
  float copy) and evaluation all the held-out ones;
- one training step: the encoder's activations for every image the task makes of a batch (4
  rotations, 9 jigsaw tiles, ...), counted on the real encoder (one small image, scaled by the
  area), plus the weights, gradients and AdamW state, times ``STEP_FACTOR``
  for what backward adds (measured: ``benchmarks/train_feasibility.py``);
- the run's length: epochs x steps per epoch must stay a count the store and schedule hold.

Free memory is the smaller of the kernel's ``MemAvailable`` and what the process's cgroup still
allows; on a GPU, its free memory for the step. Each may be used up to ``HEADROOM``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sslviz.core.errors import UserError
from sslviz.training.config import SAMPLE_IMAGES, TrainConfig, config_problems, split_sizes

if TYPE_CHECKING:
    import torch

    from sslviz.store import Store

HEADROOM = 0.8  # share of the free memory / disk a run may plan to use (the rest: everyone else)
# Peak memory of one CPU training step / (the encoder's float32 forward activations for it + the
# weights' training state): measured 0.81-1.07 on small-cnn and resnet18, rotation, 32-128 px,
# batches 8-32, each besides ~20 MB of the allocator's own (benchmarks/train_feasibility.py).
# With this margin and STEP_OVERHEAD, no estimate measured came out low.
STEP_FACTOR = 1.15
STEP_OVERHEAD = 64 * 1024**2  # bytes a step takes whatever its size (allocator, oneDNN scratch)
PARAM_BYTES = 16  # per weight: itself, its gradient and AdamW's two moments, float32
PROBE_SIDE = 128  # px: activations are counted on a real forward up to this side, then scaled
MIN_BATCH = 2  # the smallest batch a run can train with (batch norm needs 2)
MAX_STEPS = 2**31 - 1  # optimizer steps a run may plan (the store's and the schedule's counters)
CHUNK_IMAGES = 256  # images per decoding task (``data.cache._CHUNK``)
MAX_DECODERS = 8  # decoding processes at most (``data.cache``)


@dataclass(frozen=True)
class Machine:
    """What this machine has free for a run (bytes)."""

    ram: int
    disk: int  # where the workspace keeps the decode cache
    device_memory: int | None = None  # free memory of the GPU the run trains on; None: the CPU
    decoders: int = 1  # processes that decode the cache in parallel


def this_machine(folder: Path, device: str = "cpu") -> Machine:
    """Free memory, disk under ``folder`` and the device's memory, now."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    device_memory = None
    if device.startswith("cuda"):
        import torch

        free, _ = torch.cuda.mem_get_info(torch.device(device))
        device_memory = int(free)
    return Machine(
        ram=free_ram(),
        disk=shutil.disk_usage(folder).free,
        device_memory=device_memory,
        decoders=min(os.cpu_count() or 1, MAX_DECODERS),
    )


def free_ram() -> int:
    """Bytes of memory a new process could use: ``MemAvailable``, capped by the cgroup's limit."""
    available = _meminfo_available()
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",  # cgroup v1
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" or a huge number: no limit
            available = min(available, max(0, int(limit) - usage))
    return available


def _meminfo_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


# --- estimates ---------------------------------------------------------------------------------
def cache_bytes(n_images: int, size: int) -> int:
    """The decode cache of ``n_images`` at ``size`` px: uint8 (N, 3, size, size)."""
    return n_images * 3 * size * size


def host_bytes(n_images: int, config: TrainConfig, machine: Machine) -> int:
    """The most memory a run holds at once outside the training step: the cache's decoding (up
    to three chunks per process: two in flight, one being filled), the task's sample of training
    images (uint8 + float32) or the held-out images evaluation loads, whichever is most."""
    image = 3 * config.image_size**2
    n_train, n_holdout = split_sizes(n_images, config.holdout)
    decoding = 3 * machine.decoders * min(CHUNK_IMAGES, n_images) * image
    sample = min(SAMPLE_IMAGES, n_train) * image * 5
    return max(decoding, sample, n_holdout * image)


def step_bytes(config: TrainConfig, batch: int) -> int:
    """Peak memory of one training step of ``batch`` images: the encoder's activations for every
    view the task makes of them and the weights' training state, times ``STEP_FACTOR``."""
    views = _views(config)
    activations = sum(
        count * batch * _activations(config.encoder, channels, side)
        for count, channels, side in views
    )
    parameters = _parameters(config.encoder, views[0][1])
    return int(STEP_FACTOR * (4 * activations + PARAM_BYTES * parameters)) + STEP_OVERHEAD


def _views(config: TrainConfig) -> list[tuple[int, int, int]]:
    """What the encoder sees per image of a batch at ``config.image_size``: (views per image,
    channels, side) for each kind of view the task makes."""
    options = tuple(sorted(config.task_options.items()))
    reference, views = _reference_views(config.task, options)
    scale = config.image_size / reference
    return [(count, channels, max(1, round(side * scale))) for count, channels, side in views]


@lru_cache(maxsize=16)
def _reference_views(
    task_name: str, options: tuple
) -> tuple[int, tuple[tuple[int, int, int], ...]]:
    """(reference size, views) read off the task's own ``make_batch`` on two blank images."""
    import torch

    from sslviz.pretext import create_task

    task = create_task(task_name, **dict(options))
    reference = max(task.min_image_size(), 48)
    inputs = task.make_batch(torch.zeros(2, 3, reference, reference, dtype=torch.uint8)).inputs
    tensors = list(inputs.values()) if isinstance(inputs, dict) else [inputs]
    views = []
    for tensor in tensors:  # (k B, C, h, w) or (B, T, C, h, w): k or T views of each image
        channels, side = tensor.shape[-3], tensor.shape[-2]
        views.append((tensor.numel() // (2 * channels * side * side), channels, side))
    return reference, tuple(views)


@lru_cache(maxsize=256)
def _activations(encoder: str, channels: int, side: int) -> int:
    """Elements of every module's output for one image of ``side`` px through ``encoder``:
    counted on a real forward pass at ``side``, or past ``PROBE_SIDE`` at ``PROBE_SIDE`` and
    scaled by the area (a conv net's maps all shrink with the image; past 128 px no pooling is
    skipped and resnet18's stem no longer changes, so the scaling is exact up to rounding).
    Not the meta device: running a model there imports torch's compiler, seconds per process."""
    import torch

    if side > PROBE_SIDE:
        return round(_activations(encoder, channels, PROBE_SIDE) * (side / PROBE_SIDE) ** 2)
    net = _encoder(encoder, channels, side).eval()  # batch norm: one image is a batch here
    total = 0

    def count(module: torch.nn.Module, inputs: object, output: object) -> None:
        nonlocal total
        if isinstance(output, torch.Tensor):
            total += output.numel()

    leaves = [m for m in net.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            net(torch.zeros(1, channels, side, side))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def _encoder(encoder: str, channels: int, side: int) -> torch.nn.Module:
    from sslviz.models.encoders import create_encoder

    return create_encoder(encoder, in_channels=channels, image_size=side)


@lru_cache(maxsize=16)
def _parameters(encoder: str, channels: int) -> int:
    return sum(p.numel() for p in _encoder(encoder, channels, 32).parameters())


# --- the check ---------------------------------------------------------------------------------
def run_problems(store: Store, config: TrainConfig) -> list[str]:
    """Every reason ``config`` can't run, one line each ([] if it can): its own problems
    (``config_problems``) and, for a config that makes sense, what this machine can't hold."""
    problems = config_problems(store, config)
    return problems or feasibility_problems(store, config)


def check_run(store: Store, config: TrainConfig) -> None:
    """Raise a UserError with the first reason ``config`` can't run, if any."""
    problems = run_problems(store, config)
    if problems:
        raise UserError(problems[0])


def feasibility_problems(
    store: Store, config: TrainConfig, machine: Machine | None = None
) -> list[str]:
    """Why ``config`` can't run on this machine (or ``machine``), one line each, with the largest
    value that fits; [] if it can. Assumes the config's own checks passed (``config_problems``)."""
    from sslviz.data.cache import cache_path

    dataset = store.datasets.get_by_name(config.dataset)
    n_images = store.datasets.count_images(dataset.id)
    if machine is None:
        from sslviz.core.devices import resolve_device

        folder = store.workspace.dataset_dir(dataset.id)
        machine = this_machine(folder, str(resolve_device(config.device)))
    n_train, _ = split_sizes(n_images, config.holdout)
    batch = min(config.batch_size, n_train)  # a batch is never more than the training images
    cached = cache_path(store, dataset.id, config.image_size).exists()
    need = _Needs(n_images, config, machine, cached)

    problems = []
    if need.short(config.image_size, batch):
        if need.short(config.image_size, MIN_BATCH):
            problems.append(_too_large_size(need, batch))
        else:
            problems.append(_too_large_batch(need, batch))
    steps_per_epoch = max(1, n_train // max(batch, 1))
    if config.epochs * steps_per_epoch > MAX_STEPS:
        problems.append(
            f"{config.epochs:,} epochs would be {config.epochs * steps_per_epoch:,} steps, more "
            f"than a run can count ({MAX_STEPS:,}): use --epochs {MAX_STEPS // steps_per_epoch:,} "
            "or fewer, or --time-budget"
        )
    return problems


@dataclass(frozen=True)
class _Needs:
    """What a run of ``config`` at a size and batch needs, against what ``machine`` has."""

    n_images: int
    config: TrainConfig
    machine: Machine
    cached: bool  # the decode cache at the config's size exists already

    def items(self, size: int, batch: int) -> list[tuple[str, int, int, str]]:
        """(what, bytes needed, bytes free, of what) at ``size`` px and ``batch`` images."""
        sized = self.config.replace(image_size=size)
        cache = 0 if self.cached and size == self.config.image_size else None
        on_gpu = self.machine.device_memory is not None
        step_free = self.machine.device_memory if on_gpu else self.machine.ram
        return [
            ("its decode cache", cache_bytes(self.n_images, size) if cache is None else 0,
             self.machine.disk, "disk"),
            ("decoding and evaluating", host_bytes(self.n_images, sized, self.machine),
             self.machine.ram, "memory"),
            ("a training step", step_bytes(sized, batch), step_free,
             "GPU memory" if on_gpu else "memory"),
        ]  # fmt: skip

    def short(self, size: int, batch: int) -> tuple[str, int, int, str] | None:
        """The first need that does not fit at ``size`` and ``batch``, or None."""
        return next((i for i in self.items(size, batch) if i[1] > HEADROOM * i[2]), None)


def _too_large_size(need: _Needs, batch: int) -> str:
    """The image size does not fit even with the smallest batch: the largest that fits with
    the batch asked for (or, if none, with the smallest)."""
    from sslviz.pretext import TASKS

    config = need.config
    what, needed, free, of = need.short(config.image_size, MIN_BATCH)
    smallest = TASKS[config.task].min_image_size()
    largest = _largest(lambda s: need.short(s, batch) is None, smallest, config.image_size)
    if largest:
        advice = f"use --image-size {largest} or less"
    else:
        largest = _largest(lambda s: need.short(s, MIN_BATCH) is None, smallest, config.image_size)
        advice = (
            f"use --image-size {largest} or less with --batch-size {MIN_BATCH}"
            if largest
            else f"not even {smallest} px fits: free some {of}"
        )
    return (
        f"image size {config.image_size} does not fit this machine: {what} needs "
        f"{_human(needed)} and {_human(free)} of {of} is free; {advice}"
    )


def _too_large_batch(need: _Needs, batch: int) -> str:
    config = need.config
    what, needed, free, of = need.short(config.image_size, batch)
    largest = _largest(lambda b: need.short(config.image_size, b) is None, MIN_BATCH, batch)
    return (
        f"batch size {config.batch_size} at {config.image_size} px does not fit this machine: "
        f"{what} needs {_human(needed)} and {_human(free)} of {of} is free; "
        f"use --batch-size {largest} or less"
    )


def _largest(fits: Callable[[int], bool], lowest: int, above: int) -> int:
    """The largest value in [``lowest``, ``above``) for which ``fits`` holds (it only gets
    harder as the value grows); 0 if none does."""
    if lowest >= above or not fits(lowest):
        return 0
    low, high = lowest, above  # fits(low), not fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            low = middle
        else:
            high = middle
    return low


def _human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:,.1f} PB"
