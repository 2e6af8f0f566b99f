"""Datasets: ingest (validate by decoding, dedupe, store by hash, record), and reading them back.

    from sslviz.data import ingest, load_rgb, thumbnail_path
    report = ingest(store, ["~/photos"])
    reap_ingests(store)             # ingests killed midway -> ``interrupted``; reingest(store, name)
    rgb = load_rgb(image_path(store, store.datasets.images(report.dataset.id)[0]))

ingest_pipeline  the pipeline behind ``ingest``: list sources, decode in a pool, record rows
sources          folders, zips, loose files, uploads -> light work items
decode           open, validate and convert one image: what counts as an image
decoding_pool    decode an ingest's items in worker processes, in order, bounded, cancellable
storage          where an image's bytes and thumbnail live in its dataset's folder
uploads          browser uploads, staged in the workspace before they are ingested
ingest_job       an ingest as a background run (kind ``ingest``) of the job runner
recovery         ingests that died: find, show, retry or delete them; clean what they left
demo             the bundled demo dataset (``assets/demo``)
cache            a dataset's images decoded once, as one uint8 array at a training resolution
"""

from sslviz.data.decode import MIN_SIDE, load_rgb, to_rgb
from sslviz.data.demo import DEMO_DIR, DEMO_NAME, ensure_demo
from sslviz.data.ingest_pipeline import (
    IngestReport,
    check_server_path,
    delete_dataset,
    ingest,
    ingest_server_folder,
    ingest_uploads,
    reingest,
)
from sslviz.data.recovery import (
    app_retry_problem,
    ingest_run,
    ingester,
    is_live_ingest,
    reap_ingests,
    recorded_sources,
    retry_hint,
)
from sslviz.data.storage import THUMB_SIZE, image_path, thumbnail_path
from sslviz.data.uploads import stage_uploads, upload_limits

__all__ = [
    "DEMO_DIR",
    "DEMO_NAME",
    "MIN_SIDE",
    "THUMB_SIZE",
    "IngestReport",
    "app_retry_problem",
    "check_server_path",
    "delete_dataset",
    "ensure_demo",
    "image_path",
    "ingest",
    "ingest_run",
    "ingest_server_folder",
    "ingest_uploads",
    "ingester",
    "is_live_ingest",
    "load_rgb",
    "reap_ingests",
    "recorded_sources",
    "reingest",
    "retry_hint",
    "stage_uploads",
    "thumbnail_path",
    "to_rgb",
    "upload_limits",
]
