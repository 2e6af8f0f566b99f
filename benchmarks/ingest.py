"""Ingest throughput, serial (1 process) vs parallel (a pool of 2), on the same generated folder.

    python benchmarks/ingest.py [--images 2000] [--size 256]

Generates distinct 256x256 JPEGs (smooth colour fields with shapes and grain, like photos, so
decoding costs what it costs on real images), ingests them into two fresh temporary workspaces
with workers=1 and workers=2, and prints images/s for each and their ratio (goal >= 1.7 on 2
cores). Both runs are in this one process, side by side, so the ratio is what to compare.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from sslviz.data import ingest
from sslviz.store import Store


def make_images(folder: Path, count: int, size: int) -> int:
    """``count`` distinct JPEGs of ``size`` px; returns their total bytes."""
    # Imported here, not at the top: the pool's spawned workers re-import this module.
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:size, 0:size] / size
    total = 0
    for index in range(count):
        a, b, c = rng.uniform(0, 255, 3), rng.uniform(-200, 200, 3), rng.uniform(-200, 200, 3)
        field = a + b * xx[..., None] + c * yy[..., None] + rng.normal(0, 12, (size, size, 3))
        image = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rng.integers(0, size, 2)
            r = int(rng.integers(8, size // 4))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        path = folder / f"{index // 100:02d}" / f"img_{index:05d}.jpg"
        path.parent.mkdir(exist_ok=True)
        image.save(path, quality=90)
        total += path.stat().st_size
    return total


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the pool's workers, once shut down)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_ingest(folder: Path, workers: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, images accepted) of one ingest into a fresh workspace."""
    with tempfile.TemporaryDirectory(prefix=f"sslviz-bench-w{workers}-") as home:
        store = Store.open(home)
        try:
            cpu, start = cpu_seconds(), time.perf_counter()
            report = ingest(store, [folder], "bench", workers=workers)
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        finally:
            store.close()
    return seconds, cpu, report.accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5, help="serial/parallel pairs, alternated")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sslviz-bench-src-") as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        start = time.perf_counter()
        total = make_images(folder, args.images, args.size)
        print(
            f"generated {args.images} {args.size}x{args.size} JPEGs "
            f"({total / 1024**2:.1f} MB) in {time.perf_counter() - start:.1f} s"
        )
        # Each ingest of 2,000 small files takes ~1-2 s, so one pair is at the mercy of whatever
        # else the machine does: alternate serial and parallel and compare medians.
        walls: dict[int, list[float]] = {1: [], 2: []}
        cpus: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(args.repeat):
            for workers in (1, 2):
                wall, cpu, accepted = timed_ingest(folder, workers)
                assert accepted == args.images, f"only {accepted} of {args.images} accepted"
                walls[workers].append(wall)
                cpus[workers].append(cpu)
        for label, workers in (("serial  ", 1), ("parallel", 2)):
            wall, cpu = statistics.median(walls[workers]), statistics.median(cpus[workers])
            print(
                f"{label} (workers={workers}): {wall:6.2f} s  {args.images / wall:7.1f} images/s"
                f"  ({1000 * cpu / args.images:.2f} ms CPU per image, all processes;"
                f" median of {args.repeat})"
            )
        ratio = statistics.median(walls[1]) / statistics.median(walls[2])
        print(f"speed-up parallel/serial: {ratio:.2f}x (goal >= 1.7 on 2 idle cores)")


if __name__ == "__main__":
    main()
