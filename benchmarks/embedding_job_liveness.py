"""A background map job (kind ``embedding``) on a cold numba cache, counted as hung after 1 s
without a sign of life: does it still finish, and how long was its heartbeat ever silent?

    python benchmarks/embedding_job_liveness.py [--images 2000] [--stale-after 15]

What it measures: a real worker (``jobs.submit``) embeds and maps generated photos with
``SSLVIZ_PROGRESS_DEADLINE=1`` and ``NUMBA_CACHE_DIR`` pointing at an empty folder, so the UMAP
child compiles every numba kernel (a minute or more without printing anything). While it runs,
this script polls the run every 0.2 s and reaps with ``--stale-after`` seconds (the real reaper
waits ``jobs.HEARTBEAT_TIMEOUT`` = 60 s: this is stricter). It prints the end status, the wall
time, the longest heartbeat silence while the run worked (after its first progress: before that
the worker imports torch) and the ratio silence / stale-after (< 1: never close to being reaped).
Before signs of life came from the UMAP child (its CPU use and verbose output), the silence was the
whole fit and the job was reaped as hung, then restarted from scratch on resume.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image as PILImage


def make_photos(store, n: int):
    """``n`` distinct 64 px PNG photos (smooth colour fields plus noise) as a ready dataset."""
    from sslviz.store import Image

    rng = np.random.default_rng(0)
    dataset = store.datasets.create("photos", "/benchmarks/photos")
    folder = store.workspace.dataset_dir(dataset.id) / "files"
    folder.mkdir(parents=True)
    rows = []
    ramp = np.linspace(0, 1, 64, dtype=np.float32)
    for i in range(n):
        colour = rng.uniform(0, 255, 3)
        pixels = colour * ramp[None, :, None] + rng.normal(0, 25, (64, 64, 3))
        buffer = io.BytesIO()
        PILImage.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, format="PNG")
        data = buffer.getvalue()
        (folder / f"{i:05d}.png").write_bytes(data)
        rows.append(
            Image(
                id=0,
                dataset_id=dataset.id,
                path=f"p/{i:05d}.png",
                sha256=f"{i:064x}",
                file=f"files/{i:05d}.png",
                width=64,
                height=64,
                mode="RGB",
                format="PNG",
                bytes=len(data),
            )
        )
    store.datasets.add_images(rows)
    return store.datasets.finish(dataset.id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--stale-after", type=float, default=15.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sslviz-liveness-"))
    os.environ["SSLVIZ_HOME"] = str(root / "home")
    os.environ["NUMBA_CACHE_DIR"] = str(root / "empty-numba-cache")  # cold: nothing compiled
    os.environ["SSLVIZ_PROGRESS_DEADLINE"] = "1"
    os.environ.setdefault("SSLVIZ_WORKER_THREADS", "1")
    from sslviz.maps.embedding_job import job_request
    from sslviz.runner import jobs
    from sslviz.store import Store

    store = Store.open()
    dataset = make_photos(store, args.images)
    started = time.monotonic()
    run = jobs.submit(store, job_request(store, dataset.name, "random"))
    silence = 0.0
    while (run := store.runs.get(run.id)).status in ("queued", "running"):
        if run.status == "running" and run.step > 0 and run.heartbeat_at:
            silence = max(silence, time.time() - run.heartbeat_at)
        jobs.reap(store, stale_after=args.stale_after)
        time.sleep(0.2)
    seconds = time.monotonic() - started
    load = os.getloadavg()[0]
    print(f"images {args.images}, cold numba cache, progress deadline 1 s, load avg {load:.1f}")
    print(f"status {run.status} after {seconds:.0f} s (error: {run.error})")
    print(f"longest heartbeat silence while working: {silence:.1f} s")
    print(f"silence / stale-after ({args.stale_after:.0f} s): {silence / args.stale_after:.2f}")
    store.close()


if __name__ == "__main__":
    main()
