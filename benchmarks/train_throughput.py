"""Training throughput per task: end to end (cache -> batches -> augmentation -> step, the real
``execute_run``) against compute only (the same model and batch size stepping on pre-made tensors),
measured side by side in one run. Goal: ratio >= 0.9 on CPU.

    python benchmarks/train_throughput.py [--images 512] [--steps 40] [--threads 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sslviz.data import ingest
from sslviz.data.cache import open_cache
from sslviz.runner.execute import execute
from sslviz.store import Store
from sslviz.training.batches import augment, load_rows, step_generator
from sslviz.training.config import TrainConfig
from sslviz.training.evaluate import build_model
from sslviz.training.train import create_run

SIZES = {"rotation": 32, "colorization": 32, "jigsaw": 64}


def write_pngs(folder: Path, n: int, size: int = 72) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(n):
        a = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        a[: size // 3] //= 2  # some upright structure
        Image.fromarray(a).save(folder / f"{i:05d}.png")


def compute_only(config: TrainConfig, cache: np.ndarray, steps: int) -> float:
    """Images/s of forward + backward + optimizer step on batches made once, up front."""
    torch.manual_seed(0)
    task, model = build_model(config, torch.from_numpy(np.array(cache[:256])))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    images = load_rows(cache, np.arange(config.batch_size))
    batches = [
        task.make_batch(augment(images, step_generator(0, s)), step_generator(0, s))
        for s in range(4)
    ]
    model.train()
    for batch in batches[:2]:  # warm-up
        _, loss = model(batch.inputs, batch.targets)
        loss.backward()
    start = time.perf_counter()
    for s in range(steps):
        batch = batches[s % len(batches)]
        outputs, loss = model(batch.inputs, batch.targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss.item()
        task.batch_metric(outputs.detach().float(), batch.targets)
    return steps * config.batch_size / (time.perf_counter() - start)


def end_to_end(store: Store, config: TrainConfig) -> float:
    """Images/s of a real run in steady state: from the run's per-step ``images_per_s`` metric,
    skipping the first 2 steps like the compute-only loop's warm-up (no cache build, no eval)."""
    run = execute(store, create_run(store, config).id)
    assert run.status == "finished", run.error
    rates = [m.value for m in store.runs.metrics(run.id, "images_per_s")][2:]
    return len(rates) / sum(1 / r for r in rates)  # images/s over equal-sized steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tasks", nargs="+", default=list(SIZES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "home")
        write_pngs(Path(tmp) / "images", args.images)
        ingest(store, [Path(tmp) / "images"], name="bench")
        n_train = int(args.images * 0.9)
        epochs = max(1, -(-args.steps // (n_train // args.batch_size)))
        print(f"{'task':<13} {'end-to-end img/s':>17} {'compute-only img/s':>19} {'ratio':>6}")
        for task in args.tasks:
            config = TrainConfig(
                dataset="bench",
                task=task,
                image_size=SIZES[task],
                epochs=epochs,
                batch_size=args.batch_size,
                device="cpu",
            )
            cache = open_cache(store, 1, config.image_size)
            steps = epochs * (n_train // args.batch_size)
            # interleaved, twice each, best of two: the machine is shared and noisy
            e2e, raw = 0.0, 0.0
            for _ in range(2):
                e2e = max(e2e, end_to_end(store, config))
                raw = max(raw, compute_only(config, cache, steps))
            print(f"{task:<13} {e2e:>17.1f} {raw:>19.1f} {e2e / raw:>6.2f}", flush=True)
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
