"""Per-image held-out results of a run, computed once per checkpoint where the model is, and read
back by the result pages.

    write_results(store, run)                      # the worker, when a pretext run ends
    probabilities = rotation_of(store, run, load, held)      # a page: read (or compute once)

What the result pages show image by image (rotation probabilities, colorizations at the run's
temperature, jigsaw answers) costs a forward pass over every held-out image: seconds to minutes
on a CPU. The run's worker pays it once at the end of training, on the run's device (or the best
available: ``sslviz.core.devices.inference_device``, bf16 autocast on CUDA), right after the
evaluation ``sslviz eval`` reads; a page then only reads a file. A running run's newer checkpoint
is computed by the first page that asks for it, once, and stored the same way.

    <run_dir>/results/<name>-<checkpoint version>.npz      older versions are removed

The version is the checkpoint file's modification time (``results.apply.checkpoint_version``),
so a new checkpoint is a new file and a stale one is never read.
"""

from __future__ import annotations

import copy
import io
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sslviz.core import devices
from sslviz.core.atomic import write_bytes
from sslviz.results.apply import LoadedModel, checkpoint_version, load_run_model
from sslviz.results.heldout import HeldOut, held_out
from sslviz.results.jigsaw import puzzle_logits
from sslviz.results.rotation import rotation_probabilities
from sslviz.store import Run, Store

RESULTS_DIR = "results"
Arrays = dict[str, np.ndarray]
_log = logging.getLogger(__name__)


def results_file(store: Store, run_id: int, name: str, version: int) -> Path:
    return store.workspace.run_dir(run_id) / RESULTS_DIR / f"{name}-{version}.npz"


def stored(store: Store, run_id: int, name: str, compute: Callable[[], Arrays]) -> Arrays:
    """The arrays ``name`` of the run's current checkpoint: read if stored, else computed by
    ``compute()`` and stored (atomically; older checkpoints' files of that name removed)."""
    version = checkpoint_version(store, run_id)
    file = results_file(store, run_id, name, version)
    try:
        with np.load(file) as saved:
            return {key: saved[key] for key in saved.files}
    except (FileNotFoundError, ValueError, OSError):
        pass
    arrays = compute()
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    file.parent.mkdir(parents=True, exist_ok=True)
    write_bytes(file, buffer.getvalue())
    for other in file.parent.glob(f"{name}-*.npz"):
        if other != file:
            other.unlink(missing_ok=True)
    return arrays


# --- what each page needs -------------------------------------------------------------------------
def _on_device(loaded: LoadedModel) -> tuple[torch.nn.Module, torch.device]:
    """The model on the run's device (a copy off the CPU: a page's cached model stays where the
    rest of the page expects it)."""
    device = devices.inference_device(loaded.run.device)
    if device.type == "cpu":
        return loaded.model, device
    return copy.deepcopy(loaded.model).to(device), device


def rotation_of(
    store: Store, run: Run, load: Callable[[], LoadedModel], held: HeldOut
) -> torch.Tensor:
    """(N, 4, 4) rotation probabilities of the held-out images (``results.rotation``)."""

    def compute() -> Arrays:
        model, device = _on_device(load())
        with devices.autocast(device):
            probabilities = rotation_probabilities(
                model, held.images, batch_size=devices.inference_batch(device, 64)
            )
        return {"probabilities": probabilities.float().numpy()}

    return torch.from_numpy(stored(store, run.id, "rotation", compute)["probabilities"])


def colorization_of(
    store: Store, run: Run, load: Callable[[], LoadedModel], held: HeldOut
) -> torch.Tensor:
    """uint8 (N, 3, S, S): the model's colours of its own held-out images, decoded the run's
    way (the annealed mean at its temperature, or L2) — what the page shows until the
    temperature slider moves."""

    def compute() -> Arrays:
        loaded = load()
        model, device = _on_device(loaded)
        model.eval()
        out = []
        step = devices.inference_batch(device, 64)
        with torch.no_grad(), devices.autocast(device):
            for start in range(0, len(held.images), step):
                chunk = held.images[start : start + step].to(device)
                out.append(loaded.task.colorize(model, chunk, temperature=None).cpu())
        colour = torch.cat(out) if out else held.images.clone()
        return {"colour": colour.numpy()}

    return torch.from_numpy(stored(store, run.id, "colorization", compute)["colour"])


def jigsaw_of(
    store: Store, run: Run, load: Callable[[], LoadedModel], held: HeldOut
) -> torch.Tensor:
    """(N, n_permutations) logits of one puzzle per held-out image, cut as ``sslviz eval``
    cuts them (the task's ``eval_layout`` with the run's seed)."""

    def compute() -> Arrays:
        loaded = load()
        model, device = _on_device(loaded)
        layout = loaded.task.eval_layout(held.images, loaded.config.seed)
        with devices.autocast(device):
            logits = puzzle_logits(
                loaded.task, model, held.images, layout, devices.inference_batch(device, 64)
            )
        return {"logits": logits.float().numpy()}

    return torch.from_numpy(stored(store, run.id, "jigsaw", compute)["logits"])


RESULTS = {"rotation": rotation_of, "colorization": colorization_of, "jigsaw": jigsaw_of}


def write_results(store: Store, run: Run) -> None:
    """Compute and store what the run's result page shows (the kinds table names this for the
    pretext tasks; the trainer calls it after the final evaluation). A failure here never fails
    the run: the page then computes it on its first visit."""
    if run.task not in RESULTS:
        return
    try:
        loaded = load_run_model(store, run.id)
        held = held_out(store, run, loaded.config)
        RESULTS[run.task](store, run, lambda: loaded, held)
    except Exception:  # noqa: BLE001 (the run's own results are already saved)
        _log.warning("could not store run %s's per-image results", run.id, exc_info=True)
