"""Multi-task pretext training (Doersch & Zisserman, "Multi-task Self-Supervised Visual Learning",
ICCV 2017): one encoder, the three heads (rotation, colorization, jigsaw), one loss.

Every step, each image of the batch is used by every head: its four rotations, its L channel,
and one jigsaw puzzle of it. The loss is the mean of the heads' losses, each divided by its value
*at chance*: the loss of the best prediction that ignores the image (log 4 for rotation,
log(#permutations) for jigsaw, for colorization the rebalanced cross-entropy of the one fixed
bin distribution that fits the training sample best, ``ColorizationTask.chance_loss``). So each
head starts near 1 whatever its number of classes, and no weight needs tuning.

The heads are the single tasks' own models over the shared encoder, so everything a single task
does with its model (held-out metrics, calibration, artifacts, result pages) works on a head as
it is (``MultiModel.heads[name]``). The colorization head sees the encoder through ``GreyEncoder``:
it is fed L as the colorization task feeds it, and shows the shared encoder the grey image,
standardized like every other input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from sslviz.models.encoders import Encoder
from sslviz.pretext.base import (
    IMAGE_MEAN,
    IMAGE_STD,
    PretextBatch,
    PretextModel,
    PretextTask,
    normalize,
)
from sslviz.pretext.colorization import ColorizationTask
from sslviz.pretext.jigsaw import JigsawModel, JigsawTask
from sslviz.pretext.lab import lab_to_rgb
from sslviz.pretext.rotation import RotationModel, RotationTask

HEADS = ("rotation", "colorization", "jigsaw")  # the order of the heads everywhere


class LightnessToGrey(nn.Module):
    """L scaled to [-1, 1] (B, 1, H, W) -> the grey sRGB image of that lightness (B, 3, H, W),
    standardized with the image statistics every other input uses."""

    def forward(self, x: Tensor) -> Tensor:
        lightness = (x.float() + 1.0) * 50.0  # (B, 1, H, W) in [0, 100]
        lab = torch.cat([lightness, torch.zeros_like(lightness).expand(-1, 2, -1, -1)], dim=1)
        grey = lab_to_rgb(lab)  # (B, 3, H, W) in [0, 1], equal channels
        mean = grey.new_tensor(IMAGE_MEAN).view(1, 3, 1, 1)
        std = grey.new_tensor(IMAGE_STD).view(1, 3, 1, 1)
        return (grey - mean) / std


class GreyEncoder(Encoder):
    """The shared encoder's own stem and stages (the same modules, not copies) behind
    ``LightnessToGrey``: an encoder of 1-channel L for the colorization head."""

    def __init__(self, shared: Encoder) -> None:
        super().__init__(in_channels=1)
        self.stem = nn.Sequential(LightnessToGrey(), shared.stem)
        self.stages = shared.stages
        self.layer_names = shared.layer_names
        self.layer_dims = shared.layer_dims
        self.default_layer = shared.default_layer


class MultiModel(PretextModel):
    """The shared encoder and one model per head. ``forward`` takes and returns dicts by head
    name; the loss is the mean over heads of loss / loss at chance (buffer ``chance``, (3,))."""

    def __init__(self, encoder: Encoder, heads: dict[str, PretextModel], chance: Tensor) -> None:
        super().__init__(encoder)
        self.heads = nn.ModuleDict(heads)
        self.register_buffer("chance", chance.float().clone())  # (n_heads,)
        self.last_losses: dict[str, float] = {}  # each head's loss / chance at the last step

    def forward(
        self, inputs: dict[str, Tensor], targets: dict[str, Tensor] | None = None
    ) -> tuple[dict[str, Tensor], Tensor | None]:
        outputs, parts = {}, []
        for i, (name, head) in enumerate(self.heads.items()):
            out, loss = head(inputs[name], None if targets is None else targets[name])
            outputs[name] = out
            if loss is not None:
                parts.append(loss.float() / self.chance[i])
        if not parts:
            return outputs, None
        self.last_losses = {n: float(p.detach()) for n, p in zip(self.heads, parts, strict=True)}
        return outputs, torch.stack(parts).mean()


class MultiTask(PretextTask):
    name = "multi"
    metric_name = "head_accuracy"  # the mean of the heads' live accuracies
    # neither flips (rotation: a flip then 180 is a vertical flip) nor a reflect-padded shift
    # (jigsaw: mirrored content tells where a border tile goes); colorization flips on its own
    augment_flip: ClassVar[bool] = False
    augment_reflect_pad = False
    # permutations: the jigsaw head's set size (30/100/1000)
    defaults = {"permutations": 100}
    calibration_fraction: ClassVar[float] = ColorizationTask.calibration_fraction

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.heads: dict[str, PretextTask] = {
            "rotation": RotationTask(),
            "colorization": ColorizationTask(),
            "jigsaw": JigsawTask(permutations=self.options["permutations"]),
        }
        self.options["permutations"] = self.heads["jigsaw"].options["permutations"]

    @classmethod
    def min_image_size(cls) -> int:
        return max(RotationTask.min_image_size(), ColorizationTask.min_image_size(), 24)

    def encoder_view(self, images: Tensor) -> Tensor:
        return normalize(images)

    def make_batch(self, images: Tensor, generator: torch.Generator | None = None) -> PretextBatch:
        """uint8 (B, 3, H, H) -> inputs and targets as dicts by head, each what that head's
        task makes of the same images (one generator, drawn from in the heads' order)."""
        batches = {name: task.make_batch(images, generator) for name, task in self.heads.items()}
        return PretextBatch(
            {name: b.inputs for name, b in batches.items()},
            {name: b.targets for name, b in batches.items()},
        )

    def build_model(self, encoder: Encoder, sample: Tensor) -> MultiModel:
        colour_task = self.heads["colorization"]
        colour = colour_task.build_model(GreyEncoder(encoder), sample)
        heads: dict[str, PretextModel] = {
            "rotation": RotationModel(encoder),
            "colorization": colour,
            "jigsaw": JigsawModel(encoder, len(self.heads["jigsaw"].permutations)),
        }
        chance = torch.tensor([self.heads[name].chance_loss(heads[name], sample) for name in HEADS])
        return MultiModel(encoder, heads, chance)

    def head(self, model: MultiModel, name: str) -> tuple[PretextTask, PretextModel]:
        """(the single task, its model over the shared encoder) of head ``name``."""
        return self.heads[name], model.heads[name]

    @torch.no_grad()
    def calibrate(self, model: PretextModel, images: Tensor, *, batch_size: int = 64) -> None:
        self.heads["colorization"].calibrate(
            model.heads["colorization"], images, batch_size=batch_size
        )

    def batch_metric(self, outputs: Any, targets: Any) -> float:
        scores = [
            task.batch_metric(outputs[name].detach().float(), targets[name])
            for name, task in self.heads.items()
        ]
        return sum(scores) / len(scores)

    @torch.no_grad()
    def evaluate(
        self, model: PretextModel, images: Tensor, *, batch_size: int, seed: int = 0
    ) -> dict[str, Any]:
        """``{"heads": {name: that task's held-out metrics of its head}}``."""
        return {
            "heads": {
                name: task.evaluate(model.heads[name], images, batch_size=batch_size, seed=seed)
                for name, task in self.heads.items()
            }
        }

    @torch.no_grad()
    def save_artifacts(
        self, model: PretextModel, images: Tensor, out_dir: Path, *, seed: int = 0
    ) -> dict[str, tuple[str, Path]]:
        """Each head's artifacts in ``out_dir/<head>/``, named ``<head>/<name>``."""
        saved = {}
        for name, task in self.heads.items():
            parts = task.save_artifacts(model.heads[name], images, out_dir / name, seed=seed)
            saved.update({f"{name}/{key}": value for key, value in parts.items()})
        return saved

    def chance_loss(self, model: PretextModel, sample: Tensor) -> float:
        return 1.0  # each head's loss is divided by its own chance level
