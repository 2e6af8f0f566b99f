"""A background map job (kind ``embedding``) answers a cancel at any moment: while the decode
cache of 6,000 images is built (the old executor built it without ``should_stop``, so the cancel's
signal broke its decoding pool and the run ended ``failed``), or before its first batch."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from job_data import make_dataset
from PIL import Image as PILImage
from test_cancel_and_liveness import START_TIMEOUT, workspace_processes
from waiting import wait_for

from sslviz.core.liveness import Cancelled
from sslviz.data.cache import cache_path
from sslviz.maps.embed import BASELINE_SIZE, embed
from sslviz.maps.embedding_job import job_request
from sslviz.runner import jobs
from sslviz.store import Dataset, Image, Store

N_PHOTOS = 6_000


def make_photos(store: Store, n: int = N_PHOTOS, name: str = "photos") -> Dataset:
    """``n`` distinct 48 px PNGs recorded as a ready dataset (one image, unique trailing bytes:
    writing 6,000 files stays cheap, decoding each is real work)."""
    buffer = io.BytesIO()
    pixels = np.random.default_rng(0).integers(0, 255, (48, 48, 3), dtype=np.uint8)
    PILImage.fromarray(pixels).save(buffer, format="PNG")
    png = buffer.getvalue()
    dataset = store.datasets.create(name, f"/tests/{name}")
    folder = store.workspace.dataset_dir(dataset.id) / "files"
    folder.mkdir(parents=True)
    rows = []
    for i in range(n):
        data = png + i.to_bytes(4, "big")
        (folder / f"{i:05d}.png").write_bytes(data)
        rows.append(
            Image(
                id=0,
                dataset_id=dataset.id,
                path=f"p/{i:05d}.png",
                sha256=f"{i:064x}",
                file=f"files/{i:05d}.png",
                width=48,
                height=48,
                mode="RGB",
                format="PNG",
                bytes=len(data),
            )
        )
    store.datasets.add_images(rows)
    return store.datasets.finish(dataset.id)


def decoding(store: Store, dataset_id: int) -> bool:
    path = cache_path(store, dataset_id, BASELINE_SIZE)
    return path.parent.is_dir() and any(path.parent.glob(f".{path.stem}.*.npy"))


def test_embed_stops_while_decoding(store: Store) -> None:
    dataset = make_dataset(store, n=40)
    asked = []

    def stop() -> bool:
        asked.append(True)
        return True

    with pytest.raises(Cancelled):
        embed(store, dataset.id, "random", should_stop=stop)
    assert asked and not cache_path(store, dataset.id, BASELINE_SIZE).exists()


@pytest.mark.slow
def test_map_job_cancelled_while_decoding_6000_photos(store, home) -> None:
    dataset = make_photos(store)
    run = jobs.submit(store, job_request(store, dataset.name, "random"), reuse_active=True)
    wait_for(lambda: decoding(store, dataset.id), START_TIMEOUT, poll=0.02)
    started = time.monotonic()
    jobs.cancel(store, run.id)
    ended = jobs.wait(store, run.id, 30)
    assert ended.status == "cancelled", (ended.status, ended.error, ended.traceback)
    assert time.monotonic() - started < 30
    wait_for(lambda: not workspace_processes(home), 15)
    assert not decoding(store, dataset.id)
    assert not cache_path(store, dataset.id, BASELINE_SIZE).exists()
    log = (store.workspace.run_dir(run.id) / jobs.LOG_NAME).read_text()
    assert "ended cancelled" in log and "Traceback" not in log, log
