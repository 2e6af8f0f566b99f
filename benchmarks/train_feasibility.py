"""How honest ``sslviz.training.feasibility.step_bytes`` is: the estimated peak memory of one
training step against the real one, for small-cnn and resnet18 at a few sizes and batches.

Each case runs in a fresh child process: the real task model (``training.evaluate.build_model``),
channels-last as training has it, AdamW, and real batches from ``training.batches.BatchLoader``
over a generated uint8 cache. The peak RSS is reset (``/proc/self/clear_refs``) once everything
is built, then two steps run (the first creates AdamW's state); the step's memory is the new peak
minus the resident memory before them. The ratio real / estimate must stay <= 1 (the estimate
may refuse too much, never too little); ``STEP_FACTOR`` is set from the largest activations ratio.

    python benchmarks/train_feasibility.py [--sizes 32 64 128] [--batches 8 32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys
from pathlib import Path
import numpy as np
import torch

torch.set_num_threads(1)
from sslviz.training.batches import BatchLoader, BatchPlan
from sslviz.training.config import TrainConfig
from sslviz.training.evaluate import build_model
from sslviz.training.feasibility import step_bytes

encoder, task_name, size, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
config = TrainConfig(dataset="x", task=task_name, encoder=encoder, image_size=size, batch_size=batch)
rng = np.random.default_rng(0)
cache = rng.integers(0, 256, (batch * 3, 3, size, size), dtype=np.uint8)
task, model = build_model(config, torch.from_numpy(cache[:16]))
model = model.to(memory_format=torch.channels_last)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
loader = BatchLoader(cache, BatchPlan(np.arange(len(cache)), batch, 0), task, torch.device("cpu"))
batches = [b for _, _, b in loader.epoch(0)][:2]


def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024


before = status("VmRSS:")
Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from here
for b in batches:
    inputs = b.inputs
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 4:
        inputs = inputs.to(memory_format=torch.channels_last)
    outputs, loss = model(inputs, b.targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    del outputs, loss
peak = status("VmHWM:")
print(json.dumps({"real": peak - before, "estimate": step_bytes(config, batch)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoders", nargs="+", default=["small-cnn", "resnet18"])
    parser.add_argument("--tasks", nargs="+", default=["rotation", "jigsaw"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[32, 64, 128])
    parser.add_argument("--batches", nargs="+", type=int, default=[8, 32])
    args = parser.parse_args()
    print("encoder    task          size  batch   real MB  estimate MB  real/estimate")
    worst = 0.0
    for encoder in args.encoders:
        for task in args.tasks:
            for size in args.sizes:
                for batch in args.batches:
                    out = subprocess.run(
                        [sys.executable, "-c", CHILD, encoder, task, str(size), str(batch)],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    row = json.loads(out.stdout.strip().splitlines()[-1])
                    ratio = row["real"] / row["estimate"]
                    worst = max(worst, ratio)
                    print(
                        f"{encoder:10} {task:12} {size:5} {batch:6} {row['real'] / 2**20:9.0f} "
                        f"{row['estimate'] / 2**20:12.0f} {ratio:14.2f}",
                        flush=True,
                    )
    print(f"largest real/estimate: {worst:.2f} (must be <= 1)")


if __name__ == "__main__":
    main()
