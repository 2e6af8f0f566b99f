"""Checkpoints: everything needed to continue a run exactly, written atomically and durably.

    <run_dir>/checkpoints/last.pt   {"model", "optimizer", "scheduler", "step", "epoch",
                                     "train_seconds", "rng", "config", "format"}

Only tensors, numbers, strings, lists and dicts go in, so ``torch.load(weights_only=True)`` can
read it: loading a checkpoint never runs code from the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sslviz.core.atomic import orphans, replacing

FORMAT = 1
CHECKPOINT_NAME = "last.pt"


def checkpoint_path(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints" / CHECKPOINT_NAME


def rng_state() -> dict[str, Any]:
    """Torch's global RNG states (CPU and every CUDA device), e.g. for dropout."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = list(state["cuda"])
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` via a temporary file, flushed to disk, and an atomic rename: a
    crash or power loss mid-write leaves the previous checkpoint intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def remove_orphans(path: Path) -> list[Path]:
    """Delete the temporary files a killed writer of ``path`` left behind; call it before a run
    writes its checkpoints."""
    found = orphans(path)
    for orphan in found:
        orphan.unlink(missing_ok=True)
    return found


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The state saved by ``save_checkpoint``, loaded with ``weights_only=True``."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)
