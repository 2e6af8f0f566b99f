"""Embedding + UMAP time and peak memory at 10k / 50k / 100k generated 32 px images, cold and warm.

Each case runs in its own process (so peak RSS is that case's alone, from getrusage):

    cold   a fresh process and an empty numba cache: imports, numba compiling UMAP, embedding, map
    warm   a fresh process whose numba cache is filled and which ran ``warm_up()`` first (what the
           app does in a background thread at start-up): embedding + map only

The embeddings are never cached between cases (each case gets its own dataset copy), so both
embed and project do their full work. The source is ``random`` at the default layer: the same
network and cost as a trained small-cnn run. Images are generated straight into a dataset's
decoded cache (ingest has its own benchmark). CPU seconds (user + sys) are printed next to wall
time: on a shared machine wall time depends on the neighbours, CPU time much less.

    python benchmarks/embed_project.py [--sizes 10000 50000 100000] [--modes cold warm]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

GOALS = {10_000: ("warm", 30.0), 100_000: ("any", 300.0)}  # seconds
RSS_GOAL_MB = 4096


def make_dataset(home: Path, n: int, size: int = 32, seed: int = 0) -> None:
    """A ready dataset of ``n`` images whose decoded cache is written directly: blobs of colour
    on noise, in 20 families so the map has structure."""
    from sslviz.data.cache import cache_path
    from sslviz.store import Image, Store

    store = Store.open(home)
    dataset = store.datasets.create("gen", "/generated")
    rows = [
        Image(
            0,
            dataset.id,
            f"{i // 1000:03d}/{i:07d}.png",
            hashlib.sha256(str(i).encode()).hexdigest(),
            f"files/{i}.png",
            size,
            size,
            "RGB",
            "PNG",
            1,
        )
        for i in range(n)
    ]
    store.datasets.add_images(rows)
    store.datasets.finish(dataset.id)
    path = cache_path(store, dataset.id, size)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(n, 3, size, size))
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 255, (20, 3))
    yy, xx = np.mgrid[:size, :size]
    for start in range(0, n, 5_000):
        b = min(5_000, n - start)
        family = rng.integers(0, 20, b)
        cy, cx = rng.integers(4, size - 4, (2, b))
        r = 4 + family % 5  # (b,)
        mask = (yy[None] - cy[:, None, None]) ** 2 + (xx[None] - cx[:, None, None]) ** 2 < (r**2)[
            :, None, None
        ]
        images = rng.integers(0, 60, (b, size, size, 3))
        images[mask] = colours[np.repeat(family, mask.sum((1, 2)))]
        out[start : start + b] = images.transpose(0, 3, 1, 2)
    out.flush()
    store.close()


def child(home: Path, warm: bool) -> dict:
    """One case, in this process: returns times and peak RSS."""
    started = time.perf_counter()
    from sslviz.maps.embed import embed, source_device
    from sslviz.maps.project import pca_coords, project, warm_up
    from sslviz.store import Store

    if warm:
        warm_up(home)
    store = Store.open(home)
    t0 = time.perf_counter()
    cpu0 = time.process_time()
    emb = embed(store, "gen", "random")
    t1, cpu1 = time.perf_counter(), time.process_time()
    pca_coords(emb.vectors)  # the PCA map pages draw while UMAP is fitted
    pca_s = time.perf_counter() - t1
    t1 = time.perf_counter()
    proj = project(store, "gen", "random")
    t2 = time.perf_counter()
    assert np.isfinite(proj.coords).all() and len(proj.coords) == len(emb.paths)
    return {
        "embed_s": t1 - t0 - pca_s,
        "pca_s": pca_s,
        "device": str(source_device(store, "random")),
        "project_s": t2 - t1,
        "total_s": t2 - t0 - pca_s,
        "process_s": t2 - started,
        "cpu_s": time.process_time() - cpu0,
        "embed_cpu_s": cpu1 - cpu0,
        "dim": emb.dim,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_case(root: Path, n: int, mode: str, template: Path) -> dict:
    home = root / f"{mode}-{n}"
    shutil.copytree(template, home)
    env = {**os.environ, "SSLVIZ_HOME": str(home)}
    if mode == "cold":
        env["NUMBA_CACHE_DIR"] = str(root / f"numba-cold-{n}")  # empty: compile from scratch
    else:
        env["NUMBA_CACHE_DIR"] = str(root / "numba-warm")
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(home), *(["--warm"] if mode == "warm" else [])],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    shutil.rmtree(home, ignore_errors=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000, 100_000])
    parser.add_argument("--modes", nargs="+", default=["cold", "warm"])
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--warm", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.warm)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # fill the warm numba cache once (a tiny fit in its own process)
        env = {**os.environ, "NUMBA_CACHE_DIR": str(root / "numba-warm")}
        subprocess.run(
            [sys.executable, "-c", "from sslviz.maps.project import warm_up; warm_up()"],
            env={**env, "SSLVIZ_HOME": str(root / "scratch")},
            check=True,
        )
        print(
            f"{'images':>8} {'mode':>5} {'embed s':>8} {'PCA s':>6} {'map s':>7} {'total s':>8} "
            f"{'process s':>9} {'cpu s':>7} {'embed cpu s':>11} {'peak RSS MB':>11} device"
        )
        for n in args.sizes:
            template = root / f"template-{n}"
            make_dataset(template, n)
            for mode in args.modes:
                r = run_case(root, n, mode, template)
                print(
                    f"{n:>8} {mode:>5} {r['embed_s']:>8.1f} {r['pca_s']:>6.2f} {r['project_s']:>7.1f} "
                    f"{r['total_s']:>8.1f} {r['process_s']:>9.1f} {r['cpu_s']:>7.1f} {r['embed_cpu_s']:>11.1f} "
                    f"{r['peak_rss_mb']:>11.0f} {r['device']}",
                    flush=True,
                )
            shutil.rmtree(template, ignore_errors=True)
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device here: every case ran on the CPU (a GPU run embeds on it, bf16)")
    print(
        f"goals: 10k warm total <= 30 s; 100k <= 300 s with peak RSS <= {RSS_GOAL_MB} MB "
        "(2 cores; this machine may be shared: compare cpu s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
