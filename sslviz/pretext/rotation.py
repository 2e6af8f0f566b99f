"""Rotation prediction (Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by
Predicting Image Rotations", ICLR 2018).

Every image appears in the batch at all four rotations (the paper found this better than one random
rotation per image), rotated with ``torch.rot90``: a lossless permutation of pixels, so there are no
interpolation artifacts the network could use instead of understanding the content. Class ``k``
means the image was rotated by ``k * 90`` degrees COUNTER-clockwise (``torch.rot90(x, k, (2, 3))``);
classes 0/1/2/3 = 0/90/180/270 degrees.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslviz.core.errors import UserError
from sslviz.models.encoders import Encoder
from sslviz.pretext.augment import augment
from sslviz.pretext.base import (
    PretextBatch,
    PretextModel,
    PretextTask,
    denormalize,
    model_device,
    normalize,
    uniform,
)
from sslviz.pretext.render import label_tiles, save_grid

ANGLES = (0, 90, 180, 270)


def rotate_all(x: Tensor) -> Tensor:
    """(B, C, H, W) square images -> (4B, C, H, W): image i at rotation k is row ``4 * i + k``."""
    rotated = torch.stack([torch.rot90(x, k, dims=(2, 3)) for k in range(4)], dim=1)  # (B,4,C,H,W)
    return rotated.flatten(0, 1)


class RotationModel(PretextModel):
    """Encoder -> global-average-pooled deepest features -> MLP -> 4 rotation logits."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__(encoder)
        d = encoder.out_channels
        self.head = nn.Sequential(
            nn.Linear(d, d), nn.BatchNorm1d(d), nn.ReLU(inplace=True), nn.Linear(d, 4)
        )

    def forward(
        self, inputs: Tensor, targets: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """inputs (N, 3, H, W) normalized, targets (N,) in 0..3 -> logits (N, 4), CE loss."""
        feats = self.encoder(inputs).mean(dim=(2, 3))  # (N, D)
        logits = self.head(feats)  # (N, 4)
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss


class RotationTask(PretextTask):
    name = "rotation"
    metric_name = "accuracy"
    # Horizontal flips are off by default, in the shared augmentation too: a flip followed by a
    # 180-degree rotation is a vertical flip, so anything roughly symmetric about its horizontal
    # axis (3, 8, B, text, reflections) appears upright under both labels 0 and 180. On digits
    # the flips cost ~5 points of held-out accuracy for the same training time.
    # flip: opt back in to a random horizontal flip per image before rotating.
    # crop / jitter / grey: random resized crops of at least this share of the area (1 = none),
    # colour jitter strength (0 = none), share of images turned grey (pretext/augment.py).
    defaults = {"flip": False, "crop": 1.0, "jitter": 0.0, "grey": 0.0}
    augment_flip: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        try:
            crop, jitter, grey = (float(self.options[k]) for k in ("crop", "jitter", "grey"))
        except (TypeError, ValueError):
            raise UserError("rotation crop, jitter and grey must be numbers") from None
        if not (0 < crop <= 1 and 0 <= jitter < 1 and 0 <= grey <= 1):
            raise UserError(
                "rotation options: crop in (0, 1] (1 = no crops), jitter in [0, 1), grey in [0, 1]"
            )
        self.options.update(crop=crop, jitter=jitter, grey=grey)

    @classmethod
    def min_image_size(cls) -> int:
        return 8

    def make_batch(self, images: Tensor, generator: torch.Generator | None = None) -> PretextBatch:
        """uint8 images (B, 3, H, H) -> inputs (4B, 3, H, H) normalized float, targets (4B,)
        int64 where row ``4 * i + k`` is image i rotated ``k * 90`` degrees counter-clockwise."""
        b, _, h, w = images.shape
        if h != w:
            raise ValueError(f"rotation needs square images, got {h}x{w}")
        o = self.options
        x = augment(images, generator, crop=o["crop"], jitter=o["jitter"], grey=o["grey"])
        if self.options["flip"]:
            flip = uniform((b,), generator, images.device) < 0.5  # (B,)
            x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
        inputs = rotate_all(normalize(x))  # (4B, 3, H, H)
        targets = torch.arange(4, device=images.device).repeat(b)  # (4B,) 0,1,2,3,0,1,...
        return PretextBatch(inputs, targets)

    def build_model(self, encoder: Encoder, sample: Tensor) -> RotationModel:
        return RotationModel(encoder)

    def chance_loss(self, model: PretextModel, sample: Tensor) -> float:
        return math.log(4)  # the four turns are equally frequent: the uniform guess

    @torch.no_grad()
    def predict(self, model: PretextModel, images: Tensor, batch_size: int = 64) -> Tensor:
        """uint8 (N, 3, H, H) -> predicted rotation classes (N, 4) of each image's 4 rotations."""
        was_training = model.training
        model.eval()
        device = model_device(model)
        preds = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size].to(device)
            logits, _ = model(rotate_all(normalize(chunk)))  # (4b, 4)
            preds.append(logits.argmax(dim=1).view(-1, 4).cpu())
        model.train(was_training)
        return torch.cat(preds) if preds else torch.empty(0, 4, dtype=torch.long)

    @torch.no_grad()
    def evaluate(
        self, model: PretextModel, images: Tensor, *, batch_size: int, seed: int = 0
    ) -> dict[str, Any]:
        """Accuracy over all 4 rotations of every held-out image and the 4x4 confusion matrix
        (row = true angle, column = predicted angle, counts). No randomness: ``seed`` unused."""
        preds = self.predict(model, images, max(1, batch_size // 4))  # (N, 4)
        truth = torch.arange(4).expand_as(preds)
        confusion = torch.zeros(4, 4, dtype=torch.long)
        confusion.index_put_(
            (truth.flatten(), preds.flatten()),
            torch.ones(preds.numel(), dtype=torch.long),
            accumulate=True,
        )
        total = int(confusion.sum())
        accuracy = float(confusion.diag().sum()) / total if total else 0.0
        return {"accuracy": accuracy, "confusion": confusion.tolist(), "angles": list(ANGLES)}

    @torch.no_grad()
    def save_artifacts(
        self, model: PretextModel, images: Tensor, out_dir: Path, *, seed: int = 0
    ) -> dict[str, tuple[str, Path]]:
        """confusion.json (the evaluate dict) and rotation_examples.png: a few held-out images at
        each rotation, captioned with predicted vs true angle (green right, red wrong)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        metrics = self.evaluate(model, images, batch_size=64, seed=seed)
        confusion_path = out_dir / "confusion.json"
        confusion_path.write_text(json.dumps(metrics))

        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(images), generator=g)[:6]
        shown = images[pick]
        preds = self.predict(model, shown)  # (n, 4)
        tiles = denormalize(rotate_all(normalize(shown)))  # (4n, 3, H, H)
        captions = [
            f"{ANGLES[p]}: right" if p == k else f"says {ANGLES[p]}, is {ANGLES[k]}"
            for row in preds.tolist()
            for k, p in enumerate(row)
        ]
        ok = [p == k for row in preds.tolist() for k, p in enumerate(row)]
        grid_path = out_dir / "rotation_examples.png"
        save_grid(label_tiles(tiles, captions, ok), columns=4, path=grid_path)
        return {"confusion": ("json", confusion_path), "examples": ("image", grid_path)}
