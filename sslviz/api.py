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

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sslviz.data.ingest_pipeline import IngestReport
    from sslviz.maps.embed import Embeddings
    from sslviz.maps.project import Projection
    from sslviz.results.features import ChannelIndex, FeatureSource
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


def feature_source(store: Store, source: int | str) -> FeatureSource:
    """The encoder of a run (its latest checkpoint) or of ``"random"`` (the untrained baseline
    architecture) to look into, with the device its passes run on (the run's, if present)."""
    from sslviz.core.devices import device_or_cpu
    from sslviz.maps.embed import encoder_for_source, parse_source, source_version
    from sslviz.results.features import FeatureSource

    name = parse_source(source)
    if name == "pixels":
        from sslviz.core.errors import UserError

        raise UserError("the pixels baseline has no channels: use a run id or random")
    encoder, view, image_size, _ = encoder_for_source(store, name)
    device = "cpu" if name == "random" else str(device_or_cpu(store.runs.get(int(name)).device))
    return FeatureSource(name, source_version(store, name), encoder, view, image_size, device)


def channel_features(
    store: Store, dataset: Any, source: int | str, *, layer: str | None = None
) -> ChannelIndex:
    """Every channel's dataset examples at ``layer`` (``sslviz features``): one batched pass over
    the dataset, cached per checkpoint. ``source``: a run id or "random"."""
    from sslviz.results.features import channel_index

    return channel_index(store, store.datasets.ready(dataset), feature_source(store, source), layer)


def write_run_results(
    store: Store, run: Run, *, should_stop: Callable[[], bool] | None = None
) -> None:
    """What a pretext run computes when it ends (the kinds table's results writer, called by
    the job runner as the run's last stage), so its pages only read files: the per-image
    held-out results and the upright check (``sslviz.results.at_run_end``), then the Features
    page's first view — every channel's dataset examples at the deepest layer, for the run and
    for ``random`` beside it. Each step shows its progress; ``should_stop()`` ends it with
    ``Cancelled``. A failure here never fails the run: a page then computes what is missing on
    its first visit."""
    import logging

    from sslviz.core.liveness import Cancelled
    from sslviz.results.at_run_end import ResultsPhase, write_results
    from sslviz.results.features import channel_index

    phase = ResultsPhase(store, run.id, should_stop)
    write_results(store, run, phase)
    try:
        dataset = store.datasets.get(run.dataset_id)
        for source, title in ((run.id, "channels of the run"), ("random", "channels of random")):
            looked_into = feature_source(store, source)
            with phase.step(title, looked_into.encoder, dataset.n_images):
                channel_index(store, dataset, looked_into)
    except Cancelled:
        raise
    except Exception:  # noqa: BLE001 (the run's own results are already saved)
        logging.getLogger(__name__).warning(
            "could not store run %s's channel index", run.id, exc_info=True
        )


def execute_checks_run(
    store: Store, run: Run, *, should_stop: Callable[[], bool] | None = None
) -> tuple[str, dict[str, Any]]:
    """The executor of kind ``checks`` (``sslviz.maps.checks_job``): the map's embedding and its
    kNN graph, random's beside it, a pretext run's scores; each stored for the Explorer to read.
    It joins maps and results, which don't import each other, so it lives here."""
    import time

    from sslviz.core.liveness import Cancelled
    from sslviz.maps import neighbour_checks
    from sslviz.maps.checks_job import ChecksSettings
    from sslviz.maps.embed import embed
    from sslviz.results.image_scores import image_scores

    settings = ChecksSettings.from_dict(run.config)
    n = store.datasets.get(run.dataset_id).n_images
    total = n * settings.stages() + 1
    started = time.perf_counter()
    stage = [0]

    def progress(done: int, images: int) -> None:
        store.runs.progress(
            run.id,
            step=stage[0] * n + done,
            total=total,
            work_seconds=time.perf_counter() - started,
        )

    def stop() -> bool:
        return bool(should_stop and should_stop()) or bool(store.runs.get(run.id).cancel_requested)

    where = {"layer": settings.layer, "grid": settings.grid}
    if settings.graph:
        emb = embed(
            store, run.dataset_id, settings.source, **where, on_progress=progress, should_stop=stop
        )
        stage[0] += 1
        if stop():
            raise Cancelled("stopped before the neighbour search")
        neighbour_checks.neighbour_graph(store, emb)
    if settings.changed:
        neighbour_checks.changed_graphs(
            store, run.dataset_id, settings.source, **where, on_progress=progress
        )
        stage[0] += 1
    if settings.score_run is not None:
        image_scores(
            store, settings.score_run, run.dataset_id, on_progress=progress, should_stop=stop
        )
    return "finished", {"step": total, "epoch": 1, "work_seconds": time.perf_counter() - started}
