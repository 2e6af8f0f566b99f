"""What a pretext run computes when it ends, so its result page only reads files: the per-image
held-out results (``sslviz.results.stored``) and, for rotation, the upright check of its own
dataset (``sslviz.results.upright``), then the Features page's first view: :func:`write_results`,
the kinds table's results writer of each pretext task, after the final evaluation.

That phase is part of the run (the job runner calls the writer, ``sslviz.runner.execute``): a
named stage with progress in the store ("writing results: upright check 40%"), a sign of life per
batch (so a long pass over a large dataset is never reaped as hung), and a stop answered between
batches by raising ``Cancelled``, which nothing here swallows.

    phase = ResultsPhase(store, run.id, should_stop)
    with phase.step("upright check", model, rows=4 * n_images):   # rows its first conv sees
        upright.turn_probabilities(...)
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from sslviz.core.liveness import Cancelled, alive
from sslviz.core.settings import results_batch_pause
from sslviz.results import stored, upright
from sslviz.results.apply import load_run_model
from sslviz.results.heldout import held_out
from sslviz.store import Run, Store
from sslviz.store.kinds import RESULTS_STAGE

HELD_OUT = {
    "rotation": stored.rotation_of,
    "colorization": stored.colorization_of,
    "jigsaw": stored.jigsaw_of,
}
# rows each image puts through the encoder's first convolution in its held-out pass: four turned
# copies; the vivid and the faithful colorization; nine jigsaw tiles
ROWS_PER_IMAGE = {"rotation": 4, "colorization": 2, "jigsaw": 9}
WRITE_SECONDS = 1.0  # how often a step's progress is written to the store
STOP_SECONDS = 0.25  # how often a stop is looked for (a store read)
_log = logging.getLogger(__name__)


class ResultsPhase:
    """The results phase of one run: each step a named stage with its progress in the run's row,
    every batch a sign of life and a chance to stop (``should_stop()`` true: ``Cancelled``)."""

    def __init__(
        self, store: Store, run_id: int, should_stop: Callable[[], bool] | None = None
    ) -> None:
        self.store, self.run_id = store, int(run_id)
        self.should_stop = should_stop or (lambda: False)
        self.pause = results_batch_pause()  # tests: a slow device
        self._written = self._checked = 0.0

    @contextmanager
    def step(self, name: str, model: torch.nn.Module, rows: int) -> Iterator[None]:
        """Within the block, every batch through ``model``'s first convolution (``rows`` rows in
        all) moves the step's progress, is a sign of life and looks for a stop."""
        self.stop_if_asked(force=True)
        self._write(name, 0.0, force=True)
        seen = 0

        def on_batch(module: torch.nn.Module, inputs: tuple) -> None:
            nonlocal seen
            seen += int(inputs[0].shape[0]) if inputs and hasattr(inputs[0], "shape") else 0
            if self.pause:
                time.sleep(self.pause)
            alive()
            self.stop_if_asked()
            self._write(name, min(1.0, seen / max(rows, 1)))

        handle = _first_conv(model).register_forward_pre_hook(on_batch)
        try:
            yield
        finally:
            handle.remove()
        self._write(name, 1.0, force=True)

    def stop_if_asked(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._checked >= STOP_SECONDS:
            self._checked = now
            if self.should_stop():
                raise Cancelled("stopped while writing the run's results")

    def _write(self, name: str, fraction: float, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._written < WRITE_SECONDS:
            return
        self._written = now
        try:
            self.store.runs.progress(
                self.run_id, stage=f"{RESULTS_STAGE}: {name}", stage_progress=round(fraction, 3)
            )
        except sqlite3.OperationalError as error:  # a locked moment: the next batch writes it
            _log.warning("run %s: progress not written: %s", self.run_id, error)


def _first_conv(model: torch.nn.Module) -> torch.nn.Module:
    """The module every batch passes once (an encoder's first convolution), else the model."""
    return next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), model)


def _per_image_results(store: Store, run: Run, phase: ResultsPhase) -> None:
    """Compute and store what the run's result page shows, step by step through ``phase``. A
    failure here never fails the run (the page then computes it on its first visit); a stop
    (``Cancelled``) ends the run cancelled, to redo this phase on resume."""
    heads = list(HELD_OUT) if run.kind == "multi" else [run.kind]  # multi: every head's
    if not set(heads) <= set(HELD_OUT):
        return
    try:
        loaded = load_run_model(store, run.id)
        held = held_out(store, run, loaded.config)
        for name in heads:
            head = loaded.head(name)
            title = f"held-out {name}" if run.kind == "multi" else "held-out images"
            with phase.step(title, head.model, ROWS_PER_IMAGE[name] * len(held)):
                HELD_OUT[name](store, run, lambda head=head: head, held)
        if "rotation" in heads:
            dataset = store.datasets.get(run.dataset_id)
            rotation = loaded.head("rotation")
            with phase.step("upright check", rotation.model, 4 * dataset.n_images):
                upright.turn_probabilities(store, run.id, dataset, lambda: rotation)
    except Cancelled:
        raise
    except Exception:  # broad on purpose: the run's own results are already saved
        _log.warning("could not store run %s's per-image results", run.id, exc_info=True)


def write_results(store: Store, run: Run, *, should_stop: Callable[[], bool] | None = None) -> None:
    """What a pretext run computes when it ends (the kinds table's results writer, called by
    the job runner as the run's last stage), so its pages only read files: the per-image
    held-out results and the upright check, then the Features page's first view — every
    channel's dataset examples at the deepest layer, for the run and for ``random`` beside it.
    Each step shows its progress; ``should_stop()`` ends it with ``Cancelled``. A failure here
    never fails the run: a page then computes what is missing on its first visit."""
    from sslviz.results.features import channel_index, feature_source

    phase = ResultsPhase(store, run.id, should_stop)
    _per_image_results(store, run, phase)
    try:
        dataset = store.datasets.get(run.dataset_id)
        for source, title in ((run.id, "channels of the run"), ("random", "channels of random")):
            looked_into = feature_source(store, source)
            with phase.step(title, looked_into.encoder, dataset.n_images):
                channel_index(store, dataset, looked_into)
    except Cancelled:
        raise
    except Exception:  # broad on purpose: the run's own results are already saved
        _log.warning("could not store run %s's channel index", run.id, exc_info=True)
