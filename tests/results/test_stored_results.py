"""The per-image results a result page shows are stored by the run's worker when it ends, equal
what the model computes now, and follow the checkpoint (a newer one is a new file)."""

from __future__ import annotations

import os

import torch
from trained_runs import Trained

from sslviz.models.checkpoint import checkpoint_path
from sslviz.results import held_out, stored, upright
from sslviz.results.apply import cached_run_model, checkpoint_version
from sslviz.results.features import feature_source, index_file
from sslviz.results.rotation_answers import rotation_probabilities
from sslviz.store import Store
from sslviz.training.evaluate import evaluate_run


def _never() -> None:
    raise AssertionError("stored results were computed again instead of read")


def test_the_worker_stored_every_tasks_results_at_the_run_end(
    trained: Trained, store: Store
) -> None:
    for run_id, name in (
        (trained.rotation, "rotation"),
        (trained.colorization, "colorization"),
        (trained.colorization_l2, "colorization"),
        (trained.jigsaw, "jigsaw"),
    ):
        file = stored.results_file(store, run_id, name, checkpoint_version(store, run_id))
        assert file.exists(), f"run {run_id} ({name}) has no stored results"
    run = store.runs.get(trained.rotation)
    dataset = store.datasets.get(run.dataset_id)
    assert upright.is_stored(store, run.id, dataset)
    for source in (run.id, "random"):  # the Features page's first view
        found = feature_source(store, source)
        deepest = found.encoder.layer_names[-1]
        assert index_file(store, dataset, found, deepest).exists(), source


def test_stored_results_equal_the_model_now_and_are_only_read(
    trained: Trained, store: Store
) -> None:
    run = store.runs.get(trained.rotation)
    loaded = cached_run_model(store, run.id)
    held = held_out(store, run, loaded.config)
    probabilities = stored.rotation_of(store, run, _never, held)  # read, not computed
    assert torch.allclose(probabilities, rotation_probabilities(loaded.model, held.images))
    predicted = probabilities.argmax(dim=2)  # (N, 4)
    confusion = torch.zeros(4, 4, dtype=torch.long)
    for turn in range(4):
        confusion[turn] += torch.bincount(predicted[:, turn], minlength=4)
    assert confusion.tolist() == evaluate_run(store, run.id)["confusion"]

    run = store.runs.get(trained.jigsaw)
    loaded = cached_run_model(store, run.id)
    held = held_out(store, run, loaded.config)
    layout = loaded.task.eval_layout(held.images, loaded.config.seed)
    logits = stored.jigsaw_of(store, run, _never, held)
    fresh = loaded.task.puzzle_logits(loaded.model, held.images, layout)
    assert torch.allclose(logits, fresh, atol=1e-5)

    run = store.runs.get(trained.colorization)
    loaded = cached_run_model(store, run.id)
    held = held_out(store, run, loaded.config)
    colour, faithful = stored.colorization_of(store, run, _never, held)
    with torch.no_grad():
        assert torch.equal(colour, loaded.task.colorize(loaded.model, held.images))
        # cross-fitted, as `sslviz eval` decodes them
        assert torch.equal(faithful, loaded.task.faithful_held_out(loaded.model, held.images)[0])

    run = store.runs.get(trained.rotation)
    loaded = cached_run_model(store, run.id)
    dataset = store.datasets.get(run.dataset_id)
    q = upright.turn_probabilities(store, run.id, dataset, _never)  # the whole dataset, read
    fresh = upright.dataset_turn_probabilities(
        store, loaded.model, loaded.config.image_size, dataset
    )
    assert q.shape == (dataset.n_images, 4) and torch.allclose(q, fresh, atol=1e-5)


def test_a_newer_checkpoint_is_computed_once_and_replaces_the_old_file(
    trained: Trained, store: Store
) -> None:
    run = store.runs.get(trained.rotation)
    old = stored.results_file(store, run.id, "rotation", checkpoint_version(store, run.id))
    path = checkpoint_path(store.workspace.run_dir(run.id))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # "a new checkpoint"
    loaded = cached_run_model(store, run.id)
    held = held_out(store, run, loaded.config)
    calls = []

    def load():
        calls.append(1)
        return loaded

    first = stored.rotation_of(store, run, load, held)
    again = stored.rotation_of(store, run, load, held)
    assert calls == [1] and torch.equal(first, again)
    new = stored.results_file(store, run.id, "rotation", checkpoint_version(store, run.id))
    assert new.exists() and not old.exists()
