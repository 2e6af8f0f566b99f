"""What a pretext run computes when it ends, so its result page only reads files: the per-image
held-out results (``sslviz.results.stored``) and, for rotation, the upright check of its own
dataset (``sslviz.results.upright``). Called by ``sslviz.api.write_run_results``, the kinds table's
results writer of each pretext task, after the final evaluation."""

from __future__ import annotations

import logging

from sslviz.results import stored, upright
from sslviz.results.apply import load_run_model
from sslviz.results.heldout import held_out
from sslviz.store import Run, Store

HELD_OUT = {
    "rotation": stored.rotation_of,
    "colorization": stored.colorization_of,
    "jigsaw": stored.jigsaw_of,
}
_log = logging.getLogger(__name__)


def write_results(store: Store, run: Run) -> None:
    """Compute and store what the run's result page shows. A failure here never fails the run:
    the page then computes it on its first visit."""
    heads = list(HELD_OUT) if run.task == "multi" else [run.task]  # multi: every head's
    if not set(heads) <= set(HELD_OUT):
        return
    try:
        loaded = load_run_model(store, run.id)
        held = held_out(store, run, loaded.config)
        for name in heads:
            head = loaded.head(name)
            HELD_OUT[name](store, run, lambda head=head: head, held)
        if "rotation" in heads:
            dataset = store.datasets.get(run.dataset_id)
            rotation = loaded.head("rotation")
            upright.turn_probabilities(store, run.id, dataset, lambda: rotation)
    except Exception:  # noqa: BLE001 (the run's own results are already saved)
        _log.warning("could not store run %s's per-image results", run.id, exc_info=True)
