"""Which devices can train here, turning a ``--device`` spec into a ``torch.device``, and where
(and in which precision) a trained model is applied: ``inference_device`` + ``autocast``."""

from __future__ import annotations

import contextlib
import re

import torch

from sslviz.core.errors import UserError

DEVICE_SPECS = ("auto", "cpu", "cuda", "cuda:N", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Devices a run can use, e.g. ``["cpu", "cuda:0", "cuda:1"]`` (CPU always first)."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if _mps_available():
        devices.append("mps")
    return devices


def device_note() -> str | None:
    """Why no GPU is offered (None if one is), for the Train page and error messages."""
    if torch.cuda.is_available() or _mps_available():
        return None
    if torch.version.cuda is None and not torch.backends.mps.is_built():
        return "this PyTorch build has no GPU support (CPU-only wheel)"
    return "no CUDA device found (torch.cuda.is_available() is False)"


def device_label(device: str) -> str:
    """A readable name for a device spec, e.g. ``"cuda:0 (NVIDIA A100)"``."""
    if device.startswith("cuda:") and torch.cuda.is_available():
        return f"{device} ({torch.cuda.get_device_name(int(device.split(':')[1]))})"
    return device


def resolve_device(spec: str) -> torch.device:
    """``auto`` -> the first GPU if any (CUDA, then MPS), else the CPU; ``cuda`` -> ``cuda:0``.

    Raises a UserError listing the available devices if the asked one is not there.
    """
    spec = (spec or "auto").strip().lower()
    devices = available_devices()
    if spec == "auto":
        return torch.device(devices[1] if len(devices) > 1 else "cpu")
    if spec == "cuda":
        spec = "cuda:0"
    if spec not in ("cpu", "mps") and not re.fullmatch(r"cuda:\d+", spec):
        raise UserError(
            f"unknown device {spec!r}: use one of {', '.join(DEVICE_SPECS)} "
            f"(available here: {', '.join(devices)})"
        )
    if spec not in devices:
        note = device_note()
        raise UserError(
            f"device {spec} is not available: use one of {', '.join(['auto', *devices])}"
            + (f"; {note}" if note else "")
        )
    return torch.device(spec)


def device_or_cpu(spec: str) -> torch.device:
    """``resolve_device(spec)`` if that device is here, else the CPU: a run trained on a GPU can
    still be looked into (features, data checks) on a machine without one."""
    try:
        return resolve_device(spec)
    except UserError:
        return torch.device("cpu")


# --- inference: where a trained model is applied, and how -----------------------------------------
def inference_device(preferred: str | None = None) -> torch.device:
    """Where to apply a model: ``preferred`` (a run's ``--device``) if it is available here, else
    the best available device (CUDA, then MPS, else the CPU). Never raises: a run trained on a
    GPU machine is still looked at on a laptop."""
    try:
        return resolve_device(preferred or "auto")
    except UserError:
        return resolve_device("auto")


def autocast(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast on CUDA (as training does), nothing elsewhere: the CPU keeps float32, so
    CPU-only results are unchanged. Use around inference forward passes; cast outputs with
    ``.float()`` before numpy."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def inference_batch(device: torch.device, cpu: int) -> int:
    """Images per forward pass: ``cpu`` on the CPU (sized for its caches and progress), 4x that
    on a GPU, where small batches leave it idle."""
    return cpu * 4 if device.type != "cpu" else cpu
