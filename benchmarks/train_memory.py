"""Peak memory of training on 10,000 and 100,000 generated 64 px images: the uint8 cache is
memory-mapped and batches are read row by row, so RSS should barely grow with the dataset.
Goal: <= 2.5 GB at 100k (the naive recipe, every rotated copy as a float tensor in a list,
needs ~20 GB at 64 px).

The dataset rows and the cache array are generated directly (ingesting 100k files would take
longer than the point needs); the training run itself is the real ``execute_run`` in a child
process, whose peak RSS the parent reads with ``os.wait4``.

    python benchmarks/train_memory.py [--sizes 10000 100000] [--budget 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SIZE = 64


def make_dataset(home: Path, n: int) -> None:
    """Store rows for ``n`` images and their (N, 3, 64, 64) uint8 cache, written in chunks."""
    from sslviz.data.cache import cache_path
    from sslviz.store import Image, Store

    store = Store.open(home)
    dataset = store.datasets.create("generated", "benchmarks/train_memory.py")
    store.datasets.add_images(
        Image(
            0,
            dataset.id,
            f"{i:06d}.png",
            f"{i:064x}",
            f"files/{i:06d}.png",
            SIZE,
            SIZE,
            "RGB",
            "PNG",
            1,
        )
        for i in range(n)
    )
    store.datasets.finish(dataset.id)
    path = cache_path(store, dataset.id, SIZE)
    path.parent.mkdir(parents=True)
    cache = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 3, SIZE, SIZE))
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, SIZE, dtype=np.float32)[None, None, :, None]  # top-to-bottom
    for start in range(0, n, 5000):
        stop = min(n, start + 5000)
        noise = rng.integers(0, 56, (stop - start, 3, SIZE, SIZE), dtype=np.uint8)
        cache[start:stop] = noise + ramp.astype(np.uint8)
    cache.flush()
    store.close()


def child(home: str, budget: float) -> int:
    """The measured process: one real rotation run on the generated dataset."""
    import torch

    from sslviz.runner.execute import execute
    from sslviz.store import Store
    from sslviz.training.config import TrainConfig
    from sslviz.training.train import create_run

    torch.set_num_threads(2)
    store = Store.open(home)
    config = TrainConfig(
        dataset="generated",
        task="rotation",
        image_size=SIZE,
        epochs=1,
        batch_size=64,
        time_budget=budget,
        device="cpu",
    )
    run = execute(store, create_run(store, config).id)
    print(f"{run.status} {run.step} {run.step * config.batch_size / run.work_seconds:.0f}")
    return 0 if run.status == "finished" else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--budget", type=float, default=10.0, help="training seconds per run")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.budget)
    print(
        f"{'images':>8} {'cache MB':>9} {'peak RSS MB':>12} {'steps':>6} {'img/s':>6} {'wall s':>7}"
    )
    rss = {}
    for n in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp) / "home"
            make_dataset(home, n)
            start = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, __file__, "--child", str(home), "--budget", str(args.budget)],
                stdout=subprocess.PIPE,
                text=True,
            )
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            out = proc.stdout.read().split()
            if proc.returncode != 0:
                print(f"{n}: child failed: {out}", file=sys.stderr)
                return 1
            rss[n] = usage.ru_maxrss / 1024  # KiB -> MiB on Linux
            cache_mb = n * 3 * SIZE * SIZE / 2**20
            print(
                f"{n:>8} {cache_mb:>9.0f} {rss[n]:>12.0f} {out[1]:>6} {out[2]:>6} "
                f"{time.perf_counter() - start:>7.1f}",
                flush=True,
            )
    if len(rss) > 1:
        small, large = min(rss), max(rss)
        print(
            f"RSS ratio {large:,} / {small:,} images: {rss[large] / rss[small]:.2f} "
            f"(dataset ratio {large / small:.0f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
