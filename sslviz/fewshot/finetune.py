"""Fine-tuning a run's encoder on a few labels: a run of job kind ``finetune``.

    run = submit_finetune(store, parent_id, labels)     # queued; a worker runs execute_run
    result = finetune_result(store, run.id)             # holdout_accuracy, labeled, predicted
    encoder = finetuned_encoder(store, store.runs.get(run.id))   # as an embedding source

Modules: ``finetune_data`` (settings, labels and their three-way split, augmentations, prediction
files), ``finetune_model`` (the model, its starting point, inference under autocast),
``finetune_loop`` (the executor: LP-FT, optionally FixMatch, early stopping on an inner split),
``finetune_result`` (predictions of every image and the result, measured on untouched labels).
Files: ``<run_dir>/checkpoints/last.pt`` (model, optimizer, step, RNG, chosen state, the split),
``<run_dir>/predictions.csv`` and ``predictions.npz``, ``<run_dir>/finetune.json``.
"""

from __future__ import annotations

from collections.abc import Mapping

from sslviz.core.errors import UserError
from sslviz.fewshot.finetune_data import FineTuneConfig, save_labels
from sslviz.fewshot.finetune_loop import execute_run
from sslviz.fewshot.finetune_model import finetuned_encoder
from sslviz.fewshot.finetune_result import finetune_result
from sslviz.store import Run, Store
from sslviz.store.kinds import JobRequest

__all__ = [
    "FineTuneConfig",
    "execute_run",
    "finetune_result",
    "finetuned_encoder",
    "submit_finetune",
]


# --- submit ---------------------------------------------------------------------------------------
def submit_finetune(
    store: Store,
    parent_id: int,
    labels: Mapping[str, str],
    *,
    config: FineTuneConfig | None = None,
    device: str = "auto",
    background: bool = True,
) -> Run:
    """Record a fine-tune of run ``parent_id``'s encoder on ``labels`` (path -> label, as
    ``read_labels_csv`` returns them) and, with ``background``, hand it to the job runner.

    UserError if the parent has no encoder or checkpoint, or the labels have fewer than 2 classes.
    """
    from sslviz.maps.embed import default_layer, source_run, source_version
    from sslviz.runner import jobs

    parent = source_run(store, str(parent_id))
    source_version(store, str(parent.id))  # UserError if it has no checkpoint yet
    labels = {str(p): str(v) for p, v in labels.items()}
    if len(set(labels.values())) < 2:
        raise UserError("fine-tuning needs labels of at least 2 classes: label more images")
    config = config or FineTuneConfig()
    layer, grid = (config.layer, config.grid)
    if layer is None or grid is None:
        default, default_grid = default_layer(store, str(parent.id))
        layer, grid = layer or default, default_grid if grid is None else grid
    # the labels go to a content-addressed file first: the worker may start the moment the run
    # is recorded, and a big label set doesn't belong in the runs table's config column
    sha = save_labels(store, parent.dataset_id, labels)
    settings = {**config.to_dict(), "layer": layer, "grid": int(grid)}
    settings.update(labels=sha, n_labels=len(labels), parent=parent.id)
    request = JobRequest(
        kind="finetune",
        dataset_id=parent.dataset_id,
        encoder=parent.model_name,
        config=settings,
        device=device,
        parent_id=parent.id,
    )
    # in the foreground it is recorded claimed by this process, as `sslviz train` does
    return jobs.submit(store, request, claim=not background)
