"""The app's work process: one child process per server that does the pages' long work
(embedding a small dataset, predicting every image from the labels), so that neither a page
script nor the server's GIL holds it. No streamlit here: the child imports this module alone.

    process = WorkProcess()
    result = process.call("predict", {...}, on_stage=print)   # blocks the calling thread only

The caller (``background_requests``'s lane thread) sends one task and waits for its result; the
child says its stage meanwhile. The child is started with forkserver (the server has threads),
dies with the server (prctl), reads numba's compiled code from the workspace's cache (like the
UMAP fits of ``maps.project``), and lives on between tasks: modules stay imported and what a
prediction derives from the embedding alone stays kept (``fewshot.kept``), so the next label's
prediction pays only for what depends on the labels. A child that died is started again for
the next task; the task it was doing fails with that said.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.2  # how often the waiting thread looks whether the child is still there
Stage = Callable[[str], None]


class TaskFailed(Exception):
    """The task raised in the child; its message is the child's error in one line."""


# --- in the child -------------------------------------------------------------------------------
_stores: dict[str, Any] = {}


def _store(root: str) -> Any:
    from sslviz.store import Store

    if root not in _stores:
        _stores[root] = Store.open(Path(root))
    return _stores[root]


def _embeddings(args: dict[str, Any]) -> Any:
    from sslviz.core.errors import UserError
    from sslviz.maps.embed import cached_embeddings

    store = _store(args["root"])
    found = cached_embeddings(
        store, args["dataset_id"], args["source"], layer=args["layer"], grid=args["grid"]
    )
    if found is None:
        raise UserError("the embedding is not computed any more: open the page again")
    return found


def predict_task(args: dict[str, Any], stage: Stage) -> Any:
    """``sslviz predict`` on the session's cached embedding: the same ``PredictResult``."""
    from sslviz.fewshot.predict import predict

    stage("loading the embedding")
    emb = _embeddings(args)
    stage("cross-validating and predicting")
    return predict(
        _store(args["root"]),
        args["dataset_id"],
        emb.source,
        dict(args["labels"]),
        args["method"],
        embeddings=emb,
        suggested=set(args["suggested"]),
        umap=args["umap"],
    )


def embed_task(args: dict[str, Any], stage: Stage) -> None:
    """Embed every image of a (small) dataset into the workspace's cache; progress as stages."""
    from sslviz.maps.embed import embed

    def progress(done: int, total: int) -> None:
        stage(f"embedding: {done:,} of {total:,} images")

    stage("loading the encoder")
    embed(
        _store(args["root"]),
        args["dataset_id"],
        args["source"],
        layer=args["layer"],
        grid=args["grid"],
        on_progress=progress,
    )


TASKS: dict[str, Callable[[dict[str, Any], Stage], Any]] = {
    "predict": predict_task,
    "embed": embed_task,
}


def _serve(conn: Connection, parent: int, root: str | None) -> None:
    from sslviz.core.processes import background_priority, die_with_parent
    from sslviz.maps.project import configure_numba

    die_with_parent(parent)
    background_priority()  # its predictions and embeddings never slow another session's pages
    configure_numba(Path(root) if root else None)  # before numba code is first imported

    def stage(text: str) -> None:
        conn.send(("stage", text))

    while True:
        try:
            name, args = conn.recv()
        except EOFError:  # the server closed its end: nothing more to do
            return
        try:
            conn.send(("done", TASKS[name](args, stage)))
        except Exception as error:  # the task failed: said to the page, the child lives on
            text = str(error).strip()
            conn.send(("error", text.splitlines()[0] if text else repr(error)))


# --- in the server --------------------------------------------------------------------------------
class WorkProcess:
    """The child and the server's end of its pipe; one task at a time (``call`` holds a lock)."""

    def __init__(self, root: str | None = None) -> None:
        self.root = root  # the workspace whose numba cache the child reads (None: $SSLVIZ_HOME's)
        self._process: Any = None
        self._conn: Connection | None = None
        self._lock = threading.Lock()
        self._registered = False

    def call(self, name: str, args: dict[str, Any], on_stage: Stage | None = None) -> Any:
        """Run task ``name`` in the child and return its result; TaskFailed with the child's
        message if it raised, RuntimeError if the child died meanwhile."""
        with self._lock:
            conn = self._started()
            conn.send((name, args))
            while True:
                if not conn.poll(POLL_SECONDS):
                    if not self._process.is_alive():
                        code = self._process.exitcode
                        self._forget()
                        raise RuntimeError(
                            f"the work process ended unexpectedly (exit code {code})"
                        )
                    continue
                try:
                    kind, value = conn.recv()
                except (EOFError, OSError):  # its end closed: it died
                    self._forget()
                    raise RuntimeError("the work process ended unexpectedly") from None
                if kind == "stage":
                    if on_stage is not None:
                        on_stage(value)
                    continue
                if kind == "error":
                    raise TaskFailed(value)
                return value

    def _started(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return self._conn
        self._forget()
        context = multiprocessing.get_context("forkserver")  # the server has threads
        ours, theirs = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(theirs, os.getpid(), self.root),
            # not daemonic: a daemon may not start processes (the decode pool of an embedding);
            # ended at the server's exit by ``stop`` (atexit), or by the kernel when it is killed
            name="sslviz-work",
        )
        self._process.start()
        if not self._registered:
            atexit.register(self.stop)
            self._registered = True
        theirs.close()
        self._conn = ours
        return ours

    def _forget(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._process, self._conn = None, None

    def stop(self) -> None:
        """End the child now, even while it works (the server's exit; tests)."""
        self._forget()  # not under the lock: a task may hold it while it waits on the child
