"""``sslviz apply`` on scikit-learn's digits: a rotation run trained for a time budget (default
30 s, the product's default config), then ``sslviz apply RUN IMAGE --json`` as a real command on
ten held-out digit PNGs: how many of their 40 turned copies the argmax names right, and the
``seconds`` each reports (inference, model loaded). Side by side in this process: the same
inference on one torch thread (what ``apply`` uses) vs torch's default thread count, alternated.
Goals: >= 80% of the 40 copies right, median ``seconds`` < 0.5.

    python benchmarks/apply_latency.py [--budget 30] [--repeats 30]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from digits_rotation import write_digits  # noqa: E402

from sslviz.data import image_path, ingest  # noqa: E402
from sslviz.results import held_out  # noqa: E402
from sslviz.results.apply import cached_run_model, one_thread, read_image, square  # noqa: E402
from sslviz.results.rotation_answers import rotation_probabilities  # noqa: E402
from sslviz.runner.execute import execute
from sslviz.store import Store  # noqa: E402
from sslviz.training.config import default_config  # noqa: E402
from sslviz.training.train import create_run  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=30.0, help="training seconds")
    parser.add_argument(
        "--epochs",
        type=int,
        help="train this many epochs instead of a time budget (on a busy machine a 30 s budget "
        "buys far fewer steps; 5 epochs are about what 30 s buy on 2 idle cores)",
    )
    parser.add_argument("--repeats", type=int, default=30, help="timed repeats per variant")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        os.environ["SSLVIZ_HOME"] = str(home)
        store = Store.open(home)
        write_digits(Path(tmp) / "digits")
        dataset = ingest(store, [Path(tmp) / "digits"], name="digits").dataset
        config = default_config(dataset, "rotation")
        if args.epochs:
            config = config.replace(epochs=args.epochs, warmup_epochs=min(1.0, args.epochs / 10))
        else:
            config = config.replace(time_budget=args.budget)
        start = time.perf_counter()
        run = execute(store, create_run(store, config).id)
        print(
            f"trained run {run.id}: {run.status}, {run.step} steps in {time.perf_counter() - start:.0f} s"
        )

        # ---- ten held-out digits through the real command ---------------------------------------
        loaded = cached_run_model(store, run.id)
        held = held_out(store, loaded.run, loaded.config)
        images = store.datasets.images(dataset.id)
        files = [image_path(store, images[r]) for r in held.rows[:10]]
        right, seconds = 0, []
        for file in files:
            done = subprocess.run(
                [sys.executable, "-m", "sslviz", "apply", str(run.id), str(file), "--json"],
                capture_output=True,
                text=True,
                check=True,
            )
            out = json.loads(done.stdout)
            table = torch.tensor(out["rotation_probabilities"])  # (4, 4), row = applied turn
            assert table.shape == (4, 4) and torch.allclose(table.sum(1), torch.ones(4), atol=1e-3)
            right += int((table.argmax(dim=1) == torch.arange(4)).sum())
            seconds.append(out["seconds"])
        print(
            f"sslviz apply, 10 held-out digits: {right}/40 turned copies right ({right / 40:.0%})"
        )
        print(
            f"  seconds reported: median {statistics.median(seconds) * 1000:.1f} ms, max {max(seconds) * 1000:.1f} ms"
        )

        # ---- one thread vs torch's default, alternated -----------------------------------------
        x = square(read_image(files[0]), loaded.config.image_size)
        threads = torch.get_num_threads()
        one, default = [], []
        for _ in range(args.repeats):
            with one_thread():
                t = time.perf_counter()
                rotation_probabilities(loaded.model, x)
                one.append(time.perf_counter() - t)
            t = time.perf_counter()
            rotation_probabilities(loaded.model, x)
            default.append(time.perf_counter() - t)
        a, b = statistics.median(one), statistics.median(default)
        print(
            f"inference of one 32 px image x 4 turns, median of {args.repeats}: 1 thread "
            f"{a * 1000:.2f} ms vs {threads} threads {b * 1000:.2f} ms: ratio {b / a:.2f}"
        )
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
