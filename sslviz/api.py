"""The handful of calls a notebook needs, re-exported lazily by ``import sslviz``:

    import sslviz
    store = sslviz.open_workspace("~/my-sslviz")            # or $SSLVIZ_HOME
    sslviz.ingest(store, ["photos/"], name="photos")
    run = sslviz.pretrain(store, "photos", "rotation", time_budget=60)
    emb = sslviz.embeddings(store, "photos", run.id)        # .vectors (N, D), .paths
    proj = sslviz.projection(store, "photos", run.id)       # .coords (N, 2), .paths
    sslviz.effective_rank(emb.vectors)

The same functions the CLI and the pages call. Names differ from the modules they live in
(``sslviz.maps.embed``, ``sslviz.maps.project``, ``sslviz.training.train``), so importing a submodule never shadows a
function on the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sslviz.data.ingest_pipeline import IngestReport
    from sslviz.maps.embed import Embeddings
    from sslviz.maps.project import Projection
    from sslviz.results.features import ChannelIndex
    from sslviz.store import Run, Store


def open_workspace(home: str | Path | None = None) -> Store:
    """The store of workspace ``home`` (default ``$SSLVIZ_HOME``, else ~/.sslviz), created if
    missing. Close it with ``store.close()``."""
    from sslviz.store import Store

    return Store.open(home)


def ingest(
    store: Store, sources: Sequence[str | Path] | str | Path, name: str | None = None
) -> IngestReport:
    """Bring folders, .zip files or image files in as a dataset (``sslviz ingest``)."""
    from sslviz.data.ingest_pipeline import ingest as _ingest

    if isinstance(sources, (str, Path)):
        sources = [sources]
    return _ingest(store, list(sources), name)


def submit_ingest(
    store: Store,
    sources: Sequence[str | Path] = (),
    name: str | None = None,
    *,
    staged: Path | None = None,
    roots: list[Path] | None = None,
    workers: int | None = None,
) -> Run:
    """Hand an ingest to the job runner (``sslviz ingest --background``, the Datasets page):
    ``sources``, or an upload ``staged`` by ``sslviz.data.stage_uploads``; the run, queued or
    running. The dataset exists (``ingesting``) from now on."""
    from sslviz.data.ingest_job import job_request
    from sslviz.runner import jobs

    request = job_request(store, sources, name, staged=staged, roots=roots, workers=workers)
    return jobs.submit(store, request)


def pretrain(
    store: Store,
    dataset: str,
    task: str = "rotation",
    *,
    background: bool = False,
    **settings: Any,
) -> Run:
    """Train an encoder on a pretext task (``sslviz train``): the dataset's default config with
    ``settings`` (epochs, time_budget, image_size, encoder, batch_size, lr, device, seed) on top.
    In the foreground returns the ended run; ``background=True`` hands it to the job runner."""
    from sslviz.runner import jobs
    from sslviz.runner.execute import execute
    from sslviz.training.config import default_config
    from sslviz.training.train import job_request

    config = default_config(store.datasets.get_by_name(dataset), task)
    if settings.get("time_budget") and "epochs" not in settings:
        settings["epochs"] = 1000  # as the CLI: the budget, not the epochs, ends training
    config = config.replace(**settings)
    request = job_request(store, config)
    if background:
        return jobs.submit(store, request)
    # recorded claimed by this process, as `sslviz train` does: no scheduler can start it too
    return execute(store, jobs.submit(store, request, claim=True).id)


def embeddings(
    store: Store,
    dataset: Any,
    source: int | str,
    *,
    layer: str | None = None,
    grid: int | None = None,
) -> Embeddings:
    """Embeddings of every image (``sslviz embed``): ``source`` is a run id, "random" or
    "pixels"; cached in the workspace."""
    from sslviz.maps.embed import embed

    return embed(store, dataset, source, layer=layer, grid=grid)


def projection(store: Store, dataset: Any, source: int | str, **options: Any) -> Projection:
    """A UMAP map of every image (``sslviz project``); options: layer, grid, neighbors,
    min_dist, metric, dims. Cached in the workspace."""
    from sslviz.maps.project import project

    return project(store, dataset, source, **options)


def channel_features(
    store: Store, dataset: Any, source: int | str, *, layer: str | None = None
) -> ChannelIndex:
    """Every channel's dataset examples at ``layer`` (``sslviz features``): one batched pass over
    the dataset, cached per checkpoint. ``source``: a run id or "random"."""
    from sslviz.results.features import channel_index, feature_source

    return channel_index(store, store.datasets.ready(dataset), feature_source(store, source), layer)
