"""The interface every pretext task answers, so the training loop needs to know none of them.

A task turns a batch of uint8 images into (inputs, targets) with a pure ``make_batch``, builds a
model (the shared encoder plus the task's head) whose ``forward`` returns ``(outputs, loss)``,
measures itself on held-out images, and saves the artifacts its result page shows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from sslviz.core.errors import UserError
from sslviz.models.encoders import Encoder

# Per-channel RGB statistics (ImageNet's) that inputs are standardized with; fixed, so a model
# trained on one dataset sees another's images on the same scale.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


def normalize(images: Tensor) -> Tensor:
    """uint8 (B, 3, H, W) -> float32 (B, 3, H, W), standardized per channel."""
    mean = images.new_tensor(IMAGE_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = images.new_tensor(IMAGE_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def denormalize(x: Tensor) -> Tensor:
    """Inverse of ``normalize``: float (B, 3, H, W) -> uint8 (B, 3, H, W)."""
    mean = x.new_tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(IMAGE_STD).view(1, 3, 1, 1)
    return ((x * std + mean) * 255.0).round().clamp(0, 255).to(torch.uint8)


def uniform(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device
) -> Tensor:
    """U[0, 1) numbers drawn on the generator's device (CPU if None), then moved to ``device``;
    the same generator state gives the same numbers whatever device the images are on."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(shape, generator=generator, device=gen_device).to(device)


def model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@dataclass(frozen=True)
class PretextBatch:
    # float, what the model eats, e.g. (4B, 3, H, W) for rotation (multi-task: a dict by head)
    inputs: Tensor | dict[str, Tensor]
    targets: Tensor | dict[str, Tensor]  # what the loss compares against, e.g. (4B,) classes


class PretextModel(nn.Module):
    """Encoder + head. ``forward(inputs, targets=None) -> (outputs, loss or None)``.

    Data-dependent state (e.g. the colorization class-rebalancing weights) lives in buffers, so
    it is saved and restored with ``state_dict`` like the weights.
    """

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    @abstractmethod
    def forward(
        self, inputs: Tensor, targets: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]: ...


class PretextTask(ABC):
    name: ClassVar[str]
    input_channels: ClassVar[int] = 3  # channels the encoder sees (1 for colorization's L)
    metric_name: ClassVar[str] = "accuracy"  # the live pretext metric logged during training
    # Whether the shared augmentation may mirror images left-right (rotation says no: see there).
    augment_flip: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {}  # every option this task takes, with its default
    # Share of the training images the trainer keeps out of training for ``calibrate`` (0: none).
    calibration_fraction: ClassVar[float] = 0.0

    def __init__(self, **options: Any) -> None:
        """Task options (e.g. ``permutations=100`` for jigsaw, ``loss="l2"`` for colorization).
        Unknown options raise a UserError listing the valid ones."""
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            valid = ", ".join(self.defaults) or "none"
            raise UserError(
                f"unknown option(s) {', '.join(unknown)} for task {self.name!r}; valid: {valid}"
            )
        self.options: dict[str, Any] = {**self.defaults, **options}

    def encoder_view(self, images: Tensor) -> Tensor:
        """uint8 images (B, 3, H, W) -> float (B, input_channels, H, W): how a whole image is shown
        to this task's trained encoder (for embeddings and the live demo)."""
        return normalize(images)

    @classmethod
    @abstractmethod
    def min_image_size(cls) -> int:
        """The smallest training resolution this task can work with."""

    def encoder_input_size(self, image_size: int) -> int:
        """Side of what the encoder sees for images of ``image_size`` (a tile, for jigsaw)."""
        return image_size

    @abstractmethod
    def make_batch(self, images: Tensor, generator: torch.Generator | None = None) -> PretextBatch:
        """Pure: uint8 images (B, 3, H, W) on any device -> inputs and targets on that device."""

    @abstractmethod
    def build_model(self, encoder: Encoder, sample: Tensor) -> PretextModel:
        """The encoder plus this task's head. ``sample`` is uint8 training images (N, 3, H, W)
        for data-dependent statistics (e.g. the ab prior for class rebalancing)."""

    @torch.no_grad()
    def calibrate(self, model: PretextModel, images: Tensor, *, batch_size: int = 64) -> None:
        """After training: fit what the model's outputs need to be trusted (e.g. colorization's
        faithful decode) on uint8 images (N, 3, H, W) it never trained on, into its buffers.
        An optional hook: most tasks need nothing."""
        return

    def chance_loss(self, model: PretextModel, sample: Tensor) -> float:
        """The loss at chance: that of the best prediction which ignores the image (measured on
        uint8 training images ``sample`` (N, 3, H, W) where it depends on the data). A
        multi-task run divides each head's loss by it, so the heads weigh alike untuned."""
        raise NotImplementedError(f"task {self.name!r} has no loss at chance")

    def batch_metric(self, outputs: Tensor, targets: Tensor) -> float:
        """The live pretext metric of one batch (accuracy for classification tasks)."""
        return (outputs.argmax(dim=1) == targets).float().mean().item()

    @abstractmethod
    @torch.no_grad()
    def evaluate(
        self, model: PretextModel, images: Tensor, *, batch_size: int, seed: int = 0
    ) -> dict[str, Any]:
        """Held-out metrics on uint8 images (N, 3, H, W); the keys of DESIGN 3.2's ``eval``
        row for this task (without ``run``/``task``), JSON-serialisable."""

    @abstractmethod
    @torch.no_grad()
    def save_artifacts(
        self, model: PretextModel, images: Tensor, out_dir: Path, *, seed: int = 0
    ) -> dict[str, tuple[str, Path]]:
        """Write what the result page shows (PNG/JSON/NPZ) into ``out_dir``; returns
        ``{name: (kind, path)}`` for the store's artifacts table."""
