"""Per-image held-out results of a run, computed once per checkpoint where the model is, and read
back by the result pages.

    probabilities = rotation_of(store, run, load, held)      # a page: read (or compute once)

``sslviz.results.at_run_end.write_results`` computes them when a run ends.

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
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sslviz.core import devices
from sslviz.core.atomic import write_bytes
from sslviz.results.apply import LoadedModel, checkpoint_version
from sslviz.results.heldout import HeldOut
from sslviz.results.rotation_answers import rotation_probabilities
from sslviz.store import Run, Store

RESULTS_DIR = "results"
Arrays = dict[str, np.ndarray]


def results_file(store: Store, run_id: int, name: str, version: int) -> Path:
    return store.workspace.run_dir(run_id) / RESULTS_DIR / f"{name}-{version}.npz"


def is_stored(store: Store, run_id: int, name: str) -> bool:
    """True when the arrays ``name`` of the run's current checkpoint are stored."""
    return results_file(store, run_id, name, checkpoint_version(store, run_id)).exists()


def stored(
    store: Store,
    run_id: int,
    name: str,
    compute: Callable[[], Arrays],
    keys: tuple[str, ...] = (),
) -> Arrays:
    """The arrays ``name`` of the run's current checkpoint: read if stored, else computed by
    ``compute()`` and stored (atomically; older checkpoints' files of that name removed). A
    stored file without all of ``keys`` (written by an older version) is computed again."""
    version = checkpoint_version(store, run_id)
    file = results_file(store, run_id, name, version)
    try:
        with np.load(file) as saved:
            if set(keys) <= set(saved.files):
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
    """(N, 4, 4) rotation probabilities of the held-out images (``results.rotation_answers``)."""

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
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, 3, S, S) twice: the model's colours of its own held-out images decoded the
    run's way (the annealed mean at its temperature, or L2) — what the page shows until the
    temperature slider moves — and the faithful decode."""

    def compute() -> Arrays:
        loaded = load()
        model, device = _on_device(loaded)
        model.eval()
        vivid = []
        step = devices.inference_batch(device, 64)
        with torch.no_grad(), devices.autocast(device):
            for start in range(0, len(held.images), step):
                chunk = held.images[start : start + step].to(device)
                vivid.append(loaded.task.colorize(model, chunk, temperature=None).cpu())
            # cross-fitted, as `sslviz eval` decodes them (ColorizationTask.faithful_held_out)
            faithful = loaded.task.faithful_held_out(model, held.images.to(device), batch_size=step)
        empty = held.images.clone()
        return {
            "colour": (torch.cat(vivid) if vivid else empty).numpy(),
            "faithful": (faithful[0].cpu() if len(held.images) else empty).numpy(),
        }

    arrays = stored(store, run.id, "colorization", compute, keys=("colour", "faithful"))
    return torch.from_numpy(arrays["colour"]), torch.from_numpy(arrays["faithful"])


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
            logits = loaded.task.puzzle_logits(
                model, held.images, layout, devices.inference_batch(device, 64)
            )
        return {"logits": logits.float().numpy()}

    return torch.from_numpy(stored(store, run.id, "jigsaw", compute)["logits"])
