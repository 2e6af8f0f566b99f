"""Jigsaw puzzles (Noroozi & Favaro, "Unsupervised Learning of Visual Representations by Solving
Jigsaw Puzzles", ECCV 2016).

The image is split into a 3x3 grid of cells of side S = H // 3; from each cell a tile of side
t ~ 0.8 S is cut at a random offset, so the gaps and the jitter keep edges and lines from lining up
across tiles (a low-level shortcut). Each tile is standardized on its own (zero mean, unit std per
channel), so tiles can't be matched by brightness, and some tiles are turned grey, so they can't be
matched by chromatic aberration. The tiles are shuffled by one permutation of a fixed set chosen
for maximal Hamming distance (``permutations.py``) and the network names which one: a shared
encoder sees each tile alone, the per-tile features are concatenated in shuffled order, and an MLP
classifies the permutation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslviz.core.errors import UserError
from sslviz.models.encoders import Encoder
from sslviz.pretext.base import PretextBatch, PretextModel, PretextTask, model_device, uniform
from sslviz.pretext.permutations import SIZES, hamming, maximal_hamming_permutations
from sslviz.pretext.render import label_tiles, save_grid

TILE_FRACTION = 0.8  # tile side / cell side: leaves a random gap of ~0.2 S between tiles
GREY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma


def tile_side(image_size: int) -> int:
    """Side t of a tile cut from a cell of side image_size // 3."""
    cell = image_size // 3
    return max(1, min(cell - 1, int(cell * TILE_FRACTION + 0.5)))


@dataclass(frozen=True)
class JigsawLayout:
    """The random choices of one batch, all drawn from the batch's generator in this order."""

    offsets: Tensor  # (B, 9, 2) int64: (row, col) of each tile's corner inside its cell
    labels: Tensor  # (B,) int64: index into the permutation set
    grey: Tensor  # (B, 9) bool: tiles (in original order) turned grey


def cut_tiles(images: Tensor, offsets: Tensor, tile: int) -> Tensor:
    """images (B, C, H, W), offsets (B, 9, 2) -> tiles (B, 9, C, t, t) in reading order
    (cell k = row k // 3, column k % 3), by one advanced-indexing gather (no per-image loop)."""
    b = images.shape[0]
    cell = min(images.shape[-2:]) // 3
    k = torch.arange(9, device=images.device)
    span = torch.arange(tile, device=images.device)
    top = (k // 3) * cell + offsets[..., 0]  # (B, 9)
    left = (k % 3) * cell + offsets[..., 1]  # (B, 9)
    rows = (top[..., None] + span)[..., :, None]  # (B, 9, t, 1)
    cols = (left[..., None] + span)[..., None, :]  # (B, 9, 1, t)
    batch = torch.arange(b, device=images.device).view(b, 1, 1, 1)
    tiles = images[batch, :, rows, cols]  # (B, 9, t, t, C): advanced dims first, then C
    return tiles.permute(0, 1, 4, 2, 3)  # (B, 9, C, t, t)


def standardize_tiles(tiles: Tensor, eps: float = 1e-5) -> Tensor:
    """float (..., C, t, t) -> zero mean, unit std per tile and channel."""
    mean = tiles.mean(dim=(-2, -1), keepdim=True)
    std = tiles.std(dim=(-2, -1), keepdim=True, unbiased=False)
    return (tiles - mean) / (std + eps)


class JigsawModel(PretextModel):
    """Shared encoder per tile -> pooled (9B, D) -> per-tile fc (9B, 256) -> concat (B, 2304)
    -> fc 512 -> n_perms logits. Noroozi & Favaro's fc6 / fc7 / fc8, scaled down."""

    def __init__(
        self, encoder: Encoder, n_perms: int, tile_dim: int = 256, hidden: int = 512
    ) -> None:
        super().__init__(encoder)
        self.tile_fc = nn.Sequential(
            nn.Linear(encoder.out_channels, tile_dim), nn.ReLU(inplace=True)
        )
        self.classifier = nn.Sequential(
            nn.Linear(9 * tile_dim, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(hidden, n_perms),
        )

    def forward(
        self, inputs: Tensor, targets: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """inputs (B, 9, C, t, t) tiles in shuffled order, targets (B,) -> logits (B, n), CE."""
        b = inputs.shape[0]
        feats = self.encoder(inputs.flatten(0, 1)).mean(dim=(2, 3))  # (9B, D): one pass, all tiles
        feats = self.tile_fc(feats).view(b, -1)  # (B, 9 * tile_dim), shuffled order kept
        logits = self.classifier(feats)  # (B, n)
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss


class JigsawTask(PretextTask):
    name = "jigsaw"
    metric_name = "accuracy"
    # No shift in the shared augmentation: it pads by reflection, and mirrored content at the
    # border of a border tile would say where that tile goes. The random tile offsets inside each
    # cell are the jitter (crop-only, as in the paper).
    augment_reflect_pad = False
    # permutations: size of the maximal-Hamming set (30/100/1000); grey_p: chance a tile is grey.
    defaults = {"permutations": 100, "grey_p": 0.3}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        n = self.options["permutations"]
        if str(n).isdigit():  # from a form or a command line
            n = self.options["permutations"] = int(n)
        if n not in SIZES:
            raise UserError(f"jigsaw permutations must be one of {SIZES}, got {n}")
        self.permutations = maximal_hamming_permutations(n)  # (n, 9)

    @classmethod
    def min_image_size(cls) -> int:
        return 24  # 8 px cells, 6 px tiles

    def encoder_input_size(self, image_size: int) -> int:
        return tile_side(image_size)

    def encoder_view(self, images: Tensor) -> Tensor:
        """Whole images standardized per image and channel, as the encoder saw each tile."""
        return standardize_tiles(images.float() / 255.0)

    def sample_layout(
        self, batch: int, image_size: int, generator: torch.Generator | None, device: torch.device
    ) -> JigsawLayout:
        """Draw offsets, permutation labels and grey tiles for a batch of square images."""
        cell = image_size // 3
        room = cell - tile_side(image_size) + 1  # possible offsets per axis
        offsets = (uniform((batch, 9, 2), generator, device) * room).long().clamp_(max=room - 1)
        n = len(self.permutations)
        labels = (uniform((batch,), generator, device) * n).long().clamp_(max=n - 1)
        grey = uniform((batch, 9), generator, device) < self.options["grey_p"]
        return JigsawLayout(offsets, labels, grey)

    def make_batch(self, images: Tensor, generator: torch.Generator | None = None) -> PretextBatch:
        """uint8 images (B, 3, H, W) -> inputs (B, 9, 3, t, t) standardized tiles in shuffled
        order (position j holds original tile ``permutations[label, j]``), targets (B,) labels."""
        size = min(images.shape[-2:])
        if size < self.min_image_size():
            raise ValueError(
                f"jigsaw needs images of at least {self.min_image_size()} px, got {size}"
            )
        return self.assemble(
            images, self.sample_layout(len(images), size, generator, images.device)
        )

    def assemble(self, images: Tensor, layout: JigsawLayout) -> PretextBatch:
        """The puzzles ``layout`` describes: cut, grey, standardize, shuffle (see make_batch)."""
        device = images.device
        size = min(images.shape[-2:])
        offsets, labels, grey = (v.to(device) for v in (layout.offsets, layout.labels, layout.grey))
        tiles = cut_tiles(images, offsets, tile_side(size)).float() / 255.0  # (B, 9, 3, t, t)
        luma = (tiles * tiles.new_tensor(GREY_WEIGHTS).view(3, 1, 1)).sum(dim=2, keepdim=True)
        tiles = torch.where(grey[..., None, None, None], luma.expand_as(tiles), tiles)
        tiles = standardize_tiles(tiles)
        order = self.permutations.to(device)[labels]  # (B, 9)
        shuffled = torch.gather(tiles, 1, order.view(*order.shape, 1, 1, 1).expand_as(tiles))
        return PretextBatch(shuffled, labels)

    def build_model(self, encoder: Encoder, sample: Tensor) -> JigsawModel:
        return JigsawModel(encoder, len(self.permutations))

    def chance_loss(self, model: PretextModel, sample: Tensor) -> float:
        return math.log(len(self.permutations))  # labels are drawn uniformly from the set

    def eval_layout(self, images: Tensor, seed: int) -> JigsawLayout:
        """One puzzle per image, fixed by ``seed`` alone (not by how evaluation is batched)."""
        g = torch.Generator().manual_seed(seed)
        return self.sample_layout(len(images), min(images.shape[-2:]), g, torch.device("cpu"))

    @torch.no_grad()
    def puzzle_logits(
        self, model: PretextModel, images: Tensor, layout: JigsawLayout, batch_size: int = 64
    ) -> Tensor:
        """Logits (N, n_permutations) for the puzzles ``layout`` makes of uint8 ``images``."""
        was_training = model.training
        model.eval()
        device = model_device(model)
        logits = []
        for start in range(0, len(images), batch_size):
            part = slice(start, start + batch_size)
            chunk = JigsawLayout(layout.offsets[part], layout.labels[part], layout.grey[part])
            out, _ = model(self.assemble(images[part].to(device), chunk).inputs)
            logits.append(out.float().cpu())
        model.train(was_training)
        return torch.cat(logits) if logits else torch.empty(0, len(self.permutations))

    @torch.no_grad()
    def evaluate(
        self, model: PretextModel, images: Tensor, *, batch_size: int, seed: int = 0
    ) -> dict[str, Any]:
        """One puzzle per held-out image (drawn with ``seed``): accuracy, top-5 accuracy, mean
        Hamming distance between predicted and true tile order, and the set size."""
        layout = self.eval_layout(images, seed)
        logits, labels = self.puzzle_logits(model, images, layout, batch_size), layout.labels
        top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices  # (N, 5)
        pred = top5[:, 0]
        dist = hamming(self.permutations[pred], self.permutations[labels]).float()
        return {
            "accuracy": (pred == labels).float().mean().item(),
            "top5": (top5 == labels[:, None]).any(dim=1).float().mean().item(),
            "mean_hamming": dist.mean().item(),
            "permutations": len(self.permutations),
        }

    @torch.no_grad()
    def save_artifacts(
        self, model: PretextModel, images: Tensor, out_dir: Path, *, seed: int = 0
    ) -> dict[str, tuple[str, Path]]:
        """jigsaw_examples.png: per held-out image, the shuffled puzzle as the model saw its
        order, the model's reassembly, and the original (caption: Hamming distance)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        shown = images[
            torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:6]
        ]
        shown = shown.cpu()
        layout = self.eval_layout(shown, seed)
        pred = self.puzzle_logits(model, shown, layout, len(shown)).argmax(dim=1)
        # Show the raw tiles of the same layout (the model saw them standardized).
        tiles = cut_tiles(shown, layout.offsets, tile_side(min(shown.shape[-2:])))  # (n,9,3,t,t)
        true_order = self.permutations[layout.labels]  # (n, 9)
        guess = self.permutations[pred]
        panels, captions, ok = [], [], []
        for i in range(len(shown)):
            shuffled, reassembled = shuffled_and_reassembled(tiles[i], true_order[i], guess[i])
            d = int(hamming(guess[i], true_order[i]))
            panels += [board(shuffled, gap=1), board(reassembled, gap=1), board(tiles[i], gap=1)]
            captions += ["shuffled", f"model: {9 - d}/9 right", "original"]
            ok += [True, d == 0, True]
        path = out_dir / "jigsaw_examples.png"
        save_grid(label_tiles(torch.stack(panels), captions, ok, side=120), columns=3, path=path)
        return {"examples": ("image", path)}


def shuffled_and_reassembled(
    tiles: Tensor, permutation: Tensor, predicted: Tensor
) -> tuple[Tensor, Tensor]:
    """Tiles (9, C, t, t) in original order, the true and the predicted permutation (9,) ->
    (shuffled tiles as the model saw them, the shuffled tiles put back where the model says)."""
    shuffled = tiles[permutation]  # position j holds tile permutation[j]
    reassembled = torch.empty_like(shuffled)
    reassembled[predicted] = shuffled  # the model claims position j holds tile predicted[j]
    return shuffled, reassembled


def board(tiles: Tensor, gap: int = 2) -> Tensor:
    """(9, C, t, t) tiles in reading order -> (C, 3t + 2 gap, 3t + 2 gap) on white (255)."""
    c, t = tiles.shape[1], tiles.shape[-1]
    side = 3 * t + 2 * gap
    out = torch.full((c, side, side), 255, dtype=tiles.dtype)
    for k in range(9):
        top, left = (k // 3) * (t + gap), (k % 3) * (t + gap)
        out[:, top : top + t, left : left + t] = tiles[k]
    return out
