"""UMAP maps of a dataset's embeddings: one fit on all images, cached in the workspace.

    proj = project(store, "digits", "pixels")          # coords float32 (N, 2), rows by path
    proj = project(store, "digits", 3, dims=3, neighbors=30)
    jobs.submit(store, embedding_job.job_request(store, "big", 3))   # as a job (the page or CLI)
    warm_up()                                          # compile numba's code once, in the background
    quick = preview_projection(store, "digits", 3)     # PCA of the same embedding: no UMAP wait

What we chose, and why (umap-learn 0.5):

- **PCA to 50 dimensions first** (randomized, float32): nearest-neighbour search is then cheap and
  less noisy; UMAP's result barely changes (embeddings of a few hundred dims are low-rank anyway).
- **init="pca"**: the default spectral init solves an eigenproblem on the kNN graph, which is slow
  or stalls on disconnected or duplicate-heavy graphs (lmcinnes/umap #771, #895; uwot #16) and cost
  2.6x the whole fit here; PCA init can't hang and gave the same 10-NN label agreement on digits.
- **random_state fixed (0)**: the same embeddings give the same map, on every machine and after a
  cache loss. umap-learn then runs single-threaded (it ignores n_jobs with a seed: its parallel
  SGD has no locks); on 2 shared cores the parallel fit measured no faster, and maps are cached,
  so each one is paid for once.
- **numba's cache in the workspace**: umap compiles its kernels on first use (10-30 s per
  process). ``NUMBA_CACHE_DIR`` is set to ``<workspace>/numba_cache`` (unless already set) before
  umap is imported, so later processes (CLI, workers, app restarts) load the compiled code;
  :func:`warm_up` runs a tiny fit so the app pays the compile in a background process at start-up.
- **one fit on all images**: ``transform`` of new points depends on the batch they come in, so a
  map is never a sample plus transformed rest; it is fitted on every image and cached.

Stored as ``<dataset_dir>/maps/<source>/<layer>-g<grid>-n<N>-<params>-<version>.npy`` (float32
(N, dims)) with a .json of its parameters, written atomically under a lock like embeddings.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sslviz.core.liveness import Cancelled, ChildWatch, alive
from sslviz.core.processes import background_priority
from sslviz.maps.cached_arrays import load_cached, publish
from sslviz.maps.embed import (
    ProgressCallback,
    embed,
    locked,
    parse_source,
    resolve_layer,
    source_version,
)
from sslviz.maps.settings import MapSettings

if TYPE_CHECKING:
    from sslviz.store import Dataset, Store

ALGORITHM = "umap1"  # bump when the recipe below changes: old maps are then recomputed
PCA_DIMS = 50
SEED = 0
INIT = "pca"

NUMBA_CACHE_ENV = "NUMBA_CACHE_DIR"
CHILD_POLL_SECONDS = 0.5  # how often a fit in a child is checked for a stop and for progress


@dataclass(frozen=True)
class Projection:
    coords: np.ndarray  # float32 (N, dims)
    image_ids: np.ndarray  # int64 (N,), store image ids
    paths: list[str]  # (N,) the dataset's order
    params: dict[str, Any] = field(default_factory=dict)  # source, layer, grid, neighbors, ...
    file: Path | None = None


# --- umap, imported once with numba's cache in the workspace -----------------------------------
def numba_cache_dir(root: Path | None = None) -> Path:
    """``<workspace>/numba_cache`` (the workspace of ``$SSLVIZ_HOME`` if ``root`` is None)."""
    if root is None:
        from sslviz.core.workspace import Workspace

        root = Workspace.from_env().root
    return Path(root) / "numba_cache"


def configure_numba(root: Path | None = None) -> None:
    """Point numba's on-disk cache at the workspace, unless the user chose a folder already.
    Must run before umap (or pynndescent) is imported: numba reads it when a kernel is defined."""
    if os.environ.get(NUMBA_CACHE_ENV):
        return
    folder = numba_cache_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[NUMBA_CACHE_ENV] = str(folder)
    if "numba" in sys.modules:  # imported already (not yet umap): make it read the variable again
        from numba.core import config

        config.reload_config()


_import_lock = threading.Lock()


def _umap(root: Path | None = None) -> Any:
    # one thread imports umap at a time: the app's warm-up thread and a page may both get here
    with _import_lock:
        if "umap" not in sys.modules:
            configure_numba(root)
        import umap

    return umap


_warm = threading.Event()


def warm_up(root: Path | None = None) -> None:
    """Import umap and fit a tiny map so numba compiles (or loads from its cache) the kernels a
    real fit uses; later fits in this process start at once. Call it from a background thread."""
    if _warm.is_set():
        return
    rng = np.random.default_rng(0)
    points = rng.normal(size=(300, 16)).astype(np.float32)
    options = {"n_neighbors": 15, "min_dist": 0.1, "metric": "cosine", "n_components": 2}
    # Small inputs take umap's exact-neighbours path; force the approximate one (pynndescent),
    # which every map above 4,096 images uses, so its kernels are compiled too.
    _fit(points, {**options, "force_approximation_algorithm": True}, root)
    _warm.set()


def fit_umap(
    vectors: np.ndarray,
    *,
    neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "cosine",
    dims: int = 2,
    root: Path | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """vectors (N, D) -> float32 (N, dims): PCA to 50 dims, then UMAP (init pca, seed 0).

    With ``should_stop`` (a job), PCA and UMAP run in a child process that is ended as soon as it
    returns true (numba code can't be interrupted from Python): a cancelled job stops within a
    second and leaves no process behind; Cancelled is raised. Meanwhile the child's CPU use and
    its verbose output (neighbour search, every UMAP epoch) are this process's signs of life, so a
    long fit, or numba compiling on a cold cache, is not reaped as hung.
    """
    options = {"n_neighbors": int(neighbors), "min_dist": float(min_dist)}
    options |= {"metric": metric, "n_components": dims}
    if should_stop is None:
        return _reduce_and_fit(np.asarray(vectors), options, root)
    return _fit_in_child(np.asarray(vectors), options, root, should_stop)


def _reduce_and_fit(
    vectors: np.ndarray, options: dict[str, Any], root: Path | None, *, verbose: bool = False
) -> np.ndarray:
    """PCA to PCA_DIMS, then UMAP with ``options`` (n_neighbors capped to the points)."""
    from sklearn.decomposition import PCA

    n, dims = len(vectors), int(options["n_components"])
    x = np.asarray(vectors, dtype=np.float32)
    if x.shape[1] > PCA_DIMS and n > PCA_DIMS:
        x = PCA(PCA_DIMS, svd_solver="randomized", random_state=SEED).fit_transform(x)
    x = np.ascontiguousarray(x, dtype=np.float32)  # (N, <= 50)
    if n <= dims + 2:  # too few points for a neighbour graph: the first principal axes
        out = np.zeros((n, dims), np.float32)
        if n > 1:
            k = min(dims, x.shape[1], n)
            out[:, :k] = PCA(k).fit_transform(x)
        return out
    options = {**options, "n_neighbors": max(2, min(int(options["n_neighbors"]), n - 1))}
    return _fit(x, {**options, "verbose": True} if verbose else options, root)


def _fit(x: np.ndarray, options: dict[str, Any], root: Path | None) -> np.ndarray:
    umap = _umap(root)
    with warnings.catch_warnings():
        # "n_jobs value 1 overridden to 1 by setting random_state": chosen, see the docstring
        warnings.filterwarnings("ignore", message=".*overridden to 1.*", category=UserWarning)
        reducer = umap.UMAP(init=INIT, random_state=SEED, **options)
        return np.asarray(reducer.fit_transform(x), dtype=np.float32)


def _child_fit(
    source: str, target: str, log: str, options: dict[str, Any], root: str | None
) -> None:
    """In the child: output (UMAP's verbose lines, one per stage and per tenth of the epochs)
    to ``log``, which the parent watches; the map to ``target``. At background priority: a
    server's first prediction fits here, and the server's pages come first."""
    background_priority()
    with open(log, "ab", buffering=0) as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - for the process
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    coords = _reduce_and_fit(np.load(source), options, Path(root) if root else None, verbose=True)
    np.save(target, coords)


def _fit_in_child(
    x: np.ndarray, options: dict[str, Any], root: Path | None, should_stop: Callable[[], bool]
) -> np.ndarray:
    context = multiprocessing.get_context("forkserver")  # the caller has threads (heartbeat)
    with tempfile.TemporaryDirectory(prefix="sslviz-umap-") as folder:
        source, target = Path(folder) / "x.npy", Path(folder) / "coords.npy"
        log = Path(folder) / "umap.log"
        np.save(source, x)
        alive()
        watch = ChildWatch(output=log)
        process = context.Process(
            target=_child_fit,
            args=(str(source), str(target), str(log), options, str(root) if root else None),
            daemon=True,
            name="sslviz-umap",
        )
        process.start()
        try:
            while process.is_alive():
                process.join(CHILD_POLL_SECONDS)
                if process.pid is not None:
                    watch.check([process.pid])
                if process.is_alive() and should_stop():
                    raise Cancelled("stopped while fitting the map")
        finally:
            if process.is_alive():
                process.terminate()
                process.join(5)
                if process.is_alive():
                    process.kill()
                    process.join()
        if process.exitcode != 0 or not target.exists():
            tail = _tail(log)
            raise RuntimeError(
                f"the UMAP fit failed (process exit code {process.exitcode})"
                + (f": {tail}" if tail else "")
            )
        return np.load(target)


def _tail(log: Path) -> str:
    """The last line the fit printed (its error, when it crashed)."""
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:300] if lines else ""


# --- the quick map: PCA, while UMAP is computed -----------------------------------------------------
PREVIEW_FIT_ROWS = 20_000  # rows the principal axes are estimated on (all rows are projected)


def pca_coords(vectors: np.ndarray, dims: int = 2) -> np.ndarray:
    """(N, D) -> float32 (N, dims): the first principal axes, in numpy alone (no sklearn, no
    numba: nothing to import or compile), so a map can be drawn the moment the embedding exists.
    The axes come from at most PREVIEW_FIT_ROWS rows spread over the set (the eigenproblem is
    D x D); every row is projected. Signs are fixed (largest coordinate positive) so the same
    embedding always gives the same picture."""
    x = np.asarray(vectors, dtype=np.float32)  # (N, D)
    n = len(x)
    out = np.zeros((n, dims), np.float32)
    if n < 2:
        return out
    from scipy.linalg import eigh
    from threadpoolctl import threadpool_limits

    step = max(1, n // PREVIEW_FIT_ROWS)
    k = min(dims, x.shape[1])
    # One BLAS thread: OpenBLAS's threaded eigensolver measured 26x slower (9.5 vs 0.36 s for
    # D = 512) on a busy 2-core machine, where its threads spin waiting for each other.
    with threadpool_limits(limits=1):
        sample = np.asarray(x[::step], dtype=np.float64)  # (<= ~20k, D)
        mean = sample.mean(axis=0)
        centred = sample - mean
        covariance = centred.T @ centred / max(1, len(sample) - 1)  # (D, D)
        d = covariance.shape[0]
        _, top = eigh(covariance, subset_by_index=[d - k, d - 1])  # (D, k), ascending
        axes = top[:, ::-1]  # largest variance first
    flip = np.sign(axes[np.abs(axes).argmax(axis=0), np.arange(k)])
    axes = (axes * np.where(flip == 0, 1.0, flip)).astype(np.float32)
    with threadpool_limits(limits=1):
        for start in range(0, n, 65_536):  # in chunks: no (N, D) float64 copy at 100k
            block = np.asarray(x[start : start + 65_536], np.float32) - mean.astype(np.float32)
            out[start : start + len(block), :k] = block @ axes
    return out


def preview_projection(
    store: Store,
    dataset: Any,
    source: int | str,
    *,
    on_progress: ProgressCallback | None = None,
    **options: Any,
) -> Projection:
    """A PCA map of the same embedding a UMAP map would use (computed first if needed): drawn
    at once while the UMAP map is fitted elsewhere. Not cached on disk (it costs milliseconds
    once the embedding exists); ``params["method"]`` is ``"pca"``."""
    request = map_request(store, dataset, source, **options)
    settings = request.settings
    emb = embed(
        store,
        request.dataset,
        settings.source,
        layer=settings.layer,
        grid=settings.grid,
        on_progress=on_progress,
    )
    coords = pca_coords(emb.vectors, settings.dims)
    params = {**settings.to_dict(), "method": "pca", "step": emb.step}
    return Projection(coords, emb.image_ids, emb.paths, params, None)


# --- cached maps ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class MapRequest:
    """A map asked for, resolved: the dataset row, the settings with the source's layer and grid
    filled in, the source's checkpoint version and the map's file (its cache key)."""

    dataset: Dataset
    settings: MapSettings
    version: str
    file: Path

    def job_config(self) -> dict[str, Any]:
        """What a background job of this map records: it matches this exact file (a source that
        checkpointed again, or another layer, is another map)."""
        return {**self.settings.to_dict(), "version": self.version}


def map_request(store: Store, dataset: Any, source: Any, **options: Any) -> MapRequest:
    """Resolve a map: dataset, source, layer and grid defaults, parameters checked (UserError)."""
    settings = MapSettings.build(parse_source(source), **options)
    settings.check()
    row = store.datasets.ready(dataset)
    layer, grid = resolve_layer(store, settings.source, settings.layer, settings.grid)
    settings = settings.replace(layer=layer, grid=grid)
    version = source_version(store, settings.source)
    key = json.dumps(settings.umap_options(), sort_keys=True)
    digest = hashlib.sha1(f"{ALGORITHM}{key}".encode()).hexdigest()[:10]
    folder = store.workspace.dataset_dir(row.id) / "maps" / settings.source
    file = folder / f"{layer}-g{grid}-n{row.n_images}-{digest}-{version}.npy"
    return MapRequest(row, settings, version, file)


def _load(store: Store, dataset: Dataset, file: Path) -> Projection | None:
    found = load_cached(store, dataset, file)
    if found is None:
        return None
    coords, params, images = found
    ids = np.fromiter((i.id for i in images), np.int64, len(images))
    return Projection(coords, ids, [i.path for i in images], params, file)


def cached_projection(
    store: Store, dataset: Any, source: int | str, **options: Any
) -> Projection | None:
    """The stored map if it exists and is current, else None; never computes. ``options`` are
    ``MapSettings`` fields (layer, grid, neighbors, min_dist, metric, dims)."""
    request = map_request(store, dataset, source, **options)
    return _load(store, request.dataset, request.file)


def project(
    store: Store,
    dataset: Any,
    source: int | str,
    *,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options: Any,
) -> Projection:
    """A UMAP map of every image of ``dataset`` from ``source``'s embeddings (computed first if
    needed; ``on_progress`` follows them); cached. ``options`` are ``MapSettings`` fields;
    ``should_stop`` as in ``embed``."""
    request = map_request(store, dataset, source, **options)
    dataset, settings, file = request.dataset, request.settings, request.file
    found = _load(store, dataset, file)
    if found is not None:
        return found
    emb = embed(
        store,
        dataset,
        settings.source,
        layer=settings.layer,
        grid=settings.grid,
        on_progress=on_progress,
        should_stop=should_stop,
    )
    file.parent.mkdir(parents=True, exist_ok=True)
    with locked(file.with_suffix(".lock")):
        found = _load(store, dataset, file)
        if found is None:
            started = time.perf_counter()
            coords = fit_umap(
                emb.vectors,
                **settings.umap_options(),
                root=store.workspace.root,
                should_stop=should_stop,
            )
            meta = {
                **settings.to_dict(),
                "init": INIT,
                "seed": SEED,
                "pca_dims": PCA_DIMS,
                "algorithm": ALGORITHM,
                "step": emb.step,
                "seconds": round(time.perf_counter() - started, 3),
                "created_at": time.time(),
            }
            publish(file, meta, coords)
            found = _load(store, dataset, file)
    assert found is not None
    if on_progress:
        on_progress(len(found.paths), len(found.paths))
    return found
