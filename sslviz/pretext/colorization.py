"""Colorization (Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016).

The encoder sees only the lightness L of CIE Lab and predicts the colour channels ab. Regressing ab
with L2 gives greyish images (the L2 optimum is the mean of the plausible colours), so the default
treats colour as classification over ab bins (grid 10, in sRGB gamut): targets are soft-encoded
over the 5 nearest bins (Gaussian, sigma 5), the loss reweights pixels by the rarity of their colour
(class rebalancing, lambda 0.5, from the ab distribution of the training sample), and predictions
are decoded with the annealed mean (softmax temperature T = 0.38): between the mean (T = 1,
desaturated) and the mode (T -> 0, vivid but patchy). ``loss="l2"`` keeps plain regression to
compare. As in the paper, the head predicts at 1/4 of the input resolution and the result is
upsampled bilinearly.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslviz.encoders import Encoder
from sslviz.errors import UserError
from sslviz.pretext.base import PretextBatch, PretextModel, PretextTask, model_device, uniform
from sslviz.pretext.lab import lab_to_linear, lab_to_rgb_uint8, rgb_uint8_to_lab
from sslviz.pretext.render import label_tiles, save_grid

GRID = 10  # ab bin spacing
SOFT_NEIGHBOURS = 5
SOFT_SIGMA = 5.0
REBALANCE_LAMBDA = 0.5
OUTPUT_STRIDE = 4  # predict ab at H/4 x W/4, as the paper does
AB_SCALE = 100.0  # ab units per unit of the L2 head's output


@lru_cache(maxsize=4)
def _ab_bins(grid: int) -> Tensor:
    # Walk a dense Lab grid (every 1 unit of L, a and b), keep the colours sRGB can show, and
    # mark the ab cell (nearest grid point) of each. A 1-unit grid misses thin slivers of gamut
    # at cell borders, so the cells of a lattice of sRGB colours (every 3rd level) are marked too.
    # ~260 bins at grid 10 (Zhang et al. count 313 with a looser gamut estimate); deterministic,
    # so bin indices are stable across runs and processes. ~0.5 s, once per process.
    reach = 120
    side = 2 * (reach // grid) + 1
    seen = torch.zeros(side * side, dtype=torch.long)

    def mark(ab: Tensor) -> None:  # ab (N, 2)
        cell = (ab / grid).round().long() + reach // grid  # (N, 2) in 0..side-1
        seen.add_(torch.bincount(cell[:, 0] * side + cell[:, 1], minlength=side * side))

    ab = torch.arange(-float(reach), reach + 0.5, 1.0)
    for start in range(0, 101, 20):  # L in chunks, to bound memory
        lab = torch.stack(
            torch.meshgrid(torch.arange(float(start), min(start + 20, 101)), ab, ab, indexing="ij")
        )
        lab = lab.reshape(1, 3, -1, 1)  # (1, 3, N, 1)
        lin = lab_to_linear(lab)
        inside = ((lin >= -1e-6) & (lin <= 1 + 1e-6)).all(dim=1).flatten()  # (N,)
        mark(lab[0, 1:, inside, 0].T)
    v = torch.arange(0, 256, 3, dtype=torch.uint8)
    rgb = torch.stack(torch.meshgrid(v, v, v, indexing="ij")).reshape(1, 3, -1, 1)
    mark(rgb_uint8_to_lab(rgb)[0, 1:, :, 0].T)
    cells = torch.nonzero(seen.view(side, side)).float()  # (Q, 2), sorted by a then b
    return (cells - reach // grid) * grid


def ab_bins(grid: int = GRID) -> Tensor:
    """(Q, 2) float32 centres of the in-gamut ab bins at spacing ``grid``."""
    return _ab_bins(grid).clone()


def nearest_bin(ab: Tensor, centres: Tensor) -> Tensor:
    """ab (B, 2, h, w) -> index (B, h, w) of the nearest bin centre (centres (Q, 2))."""
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)  # (N, 2)
    idx = torch.cdist(flat, centres).argmin(dim=1)  # (N,)
    return idx.view(ab.shape[0], *ab.shape[2:])


def soft_encode(
    ab: Tensor, centres: Tensor, k: int = SOFT_NEIGHBOURS, sigma: float = SOFT_SIGMA
) -> tuple[Tensor, Tensor]:
    """ab (B, 2, h, w) -> soft targets (B, Q, h, w): Gaussian weights on the k nearest bins,
    summing to 1 per pixel (Zhang et al. 3.1); and the nearest bin (B, h, w), as a by-product."""
    b, _, h, w = ab.shape
    flat = ab.permute(0, 2, 3, 1).reshape(-1, 2)  # (N, 2)
    dist, idx = torch.cdist(flat, centres).topk(k, dim=1, largest=False)  # (N, k), ascending
    weight = torch.softmax(-(dist**2) / (2 * sigma**2), dim=1)  # normalized Gaussian
    soft = torch.zeros(flat.shape[0], centres.shape[0], dtype=ab.dtype, device=ab.device)
    soft.scatter_(1, idx, weight)
    return soft.view(b, h, w, -1).permute(0, 3, 1, 2), idx[:, 0].view(b, h, w)


def annealed_mean(logits: Tensor, centres: Tensor, temperature: float) -> Tensor:
    """logits (B, Q, h, w) -> ab (B, 2, h, w): the mean of softmax(logits / T) over bin centres.
    T = 1 is the mean of the predicted distribution, T -> 0 its mode."""
    probs = torch.softmax(logits.float() / temperature, dim=1)  # (B, Q, h, w)
    return torch.einsum("bqhw,qc->bchw", probs, centres)


def rebalancing_weights(ab: Tensor, centres: Tensor, lam: float = REBALANCE_LAMBDA) -> Tensor:
    """ab of training pixels (B, 2, h, w) -> per-bin loss weights (Q,): w ~ 1 / ((1 - lam) p~ +
    lam / Q) with p~ the empirical bin distribution smoothed by a Gaussian (sigma 5), normalized
    so the expected weight under p~ is 1 (Zhang et al. eq. 3-4)."""
    q = centres.shape[0]
    counts = torch.bincount(nearest_bin(ab, centres).flatten(), minlength=q).float()  # (Q,)
    if counts.sum() == 0:
        return torch.ones(q)
    kernel = torch.exp(-(torch.cdist(centres, centres) ** 2) / (2 * SOFT_SIGMA**2))  # (Q, Q)
    p = kernel @ (counts / counts.sum())
    p = p / p.sum()
    w = 1.0 / ((1 - lam) * p + lam / q)
    return w / (p * w).sum()


def psnr(pred: Tensor, truth: Tensor) -> Tensor:
    """uint8 (N, 3, H, W) x2 -> PSNR in dB per image (N,), peak 255 (capped at 100 if equal)."""
    mse = (pred.float() - truth.float()).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(255.0**2 / mse.clamp(min=255.0**2 * 1e-10))


def colourfulness(images: Tensor) -> Tensor:
    """uint8 (N, 3, H, W) -> Hasler & Suesstrunk (2003) colourfulness per image (N,):
    std + 0.3 * mean of the opponent channels rg = R - G and yb = (R + G) / 2 - B."""
    r, g, b = images.float().unbind(dim=1)
    rg = (r - g).flatten(1)
    yb = (0.5 * (r + g) - b).flatten(1)
    std = (rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False)).sqrt()
    mean = (rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2).sqrt()
    return std + 0.3 * mean


class ColorizationModel(PretextModel):
    """Encoder on L -> deepest map -> conv head -> bilinear to (H/4, W/4) -> Q logits (or ab)."""

    def __init__(self, encoder: Encoder, loss: str, centres: Tensor, weights: Tensor) -> None:
        super().__init__(encoder)
        self.loss_kind = loss
        out = centres.shape[0] if loss == "classification" else 2
        d = encoder.out_channels
        self.head = nn.Sequential(
            nn.Conv2d(d, 256, 3, padding=1, bias=False), nn.BatchNorm2d(256), nn.ReLU(inplace=True)
        )
        self.classifier = nn.Conv2d(256, out, 1)
        self.register_buffer("centres", centres.clone())  # (Q, 2)
        self.register_buffer("weights", weights.clone())  # (Q,) class rebalancing

    def forward(
        self, inputs: Tensor, targets: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """inputs (B, 1, H, W) normalized L, targets (B, 2, H/4, W/4) ab -> outputs at
        (H/4, W/4): logits (B, Q, ., .) for classification or ab (B, 2, ., .) for l2; loss."""
        h, w = inputs.shape[-2] // OUTPUT_STRIDE, inputs.shape[-1] // OUTPUT_STRIDE
        x = self.head(self.encoder(inputs))
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)
        out = self.classifier(x)
        if self.loss_kind == "l2":
            out = out * AB_SCALE  # (B, 2, h, w) in Lab units
            loss = F.mse_loss(out / AB_SCALE, targets / AB_SCALE) if targets is not None else None
            return out, loss
        if targets is None:
            return out, None
        soft, nearest = soft_encode(targets.float(), self.centres)  # (B, Q, h, w), (B, h, w)
        pixel_w = self.weights[nearest]  # (B, h, w): rebalancing by the pixel's colour
        ce = -(soft * F.log_softmax(out.float(), dim=1)).sum(dim=1)  # (B, h, w)
        return out, (ce * pixel_w).mean()


class ColorizationTask(PretextTask):
    name = "colorization"
    input_channels = 1
    metric_name = "bin_accuracy"  # share of pixels whose predicted ab bin is the true one
    # loss: "classification" (default) or "l2"; temperature: annealed-mean T; flip: random h-flip.
    defaults = {"loss": "classification", "temperature": 0.38, "flip": True}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.options["loss"] not in ("classification", "l2"):
            raise UserError(
                f"colorization loss must be 'classification' or 'l2', got {self.options['loss']!r}"
            )
        try:
            self.options["temperature"] = float(self.options["temperature"])
        except (TypeError, ValueError):
            self.options["temperature"] = float("nan")
        if not 0 < self.options["temperature"] <= 1:
            raise UserError("colorization temperature must be in (0, 1]; the paper uses 0.38")
        self.centres = ab_bins()  # (Q, 2)

    @classmethod
    def min_image_size(cls) -> int:
        return 16

    def encoder_view(self, images: Tensor) -> Tensor:
        """uint8 (B, 3, H, W) -> normalized L (B, 1, H, W) in [-1, 1]."""
        return rgb_uint8_to_lab(images)[:, :1] / 50.0 - 1.0

    def make_batch(self, images: Tensor, generator: torch.Generator | None = None) -> PretextBatch:
        """uint8 (B, 3, H, W) -> inputs (B, 1, H, W) L scaled to [-1, 1], targets (B, 2, H/4, W/4)
        ab averaged over 4x4 blocks (the output resolution)."""
        x = images
        if self.options["flip"]:
            b = images.shape[0]
            flip = uniform((b,), generator, images.device) < 0.5
            x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
        lab = rgb_uint8_to_lab(x)  # (B, 3, H, W)
        ab = F.avg_pool2d(lab[:, 1:], OUTPUT_STRIDE)  # (B, 2, H/4, W/4)
        return PretextBatch(lab[:, :1] / 50.0 - 1.0, ab)

    def build_model(self, encoder: Encoder, sample: Tensor) -> ColorizationModel:
        """``sample`` uint8 (N, 3, H, W): its ab distribution sets the rebalancing weights."""
        chunks = [
            F.avg_pool2d(rgb_uint8_to_lab(sample[i : i + 256].cpu())[:, 1:], OUTPUT_STRIDE)
            for i in range(0, len(sample), 256)
        ]
        ab = torch.cat(chunks) if chunks else torch.zeros(0, 2, 1, 1)
        weights = rebalancing_weights(ab, self.centres)
        return ColorizationModel(encoder, self.options["loss"], self.centres, weights)

    def decode(self, outputs: Tensor, temperature: float | None = None) -> Tensor:
        """Model outputs -> ab (B, 2, h, w): annealed mean for logits, as is for l2."""
        if outputs.shape[1] == 2:
            return outputs.float()
        t = float(self.options["temperature"] if temperature is None else temperature)
        return annealed_mean(outputs, self.centres.to(outputs.device), t)

    def batch_metric(self, outputs: Tensor, targets: Tensor) -> float:
        centres = self.centres.to(outputs.device)
        pred = (
            outputs.argmax(dim=1)
            if outputs.shape[1] != 2
            else nearest_bin(outputs.float(), centres)
        )
        return (pred == nearest_bin(targets.float(), centres)).float().mean().item()

    @torch.no_grad()
    def colorize(
        self,
        model: PretextModel,
        images: Tensor,
        batch_size: int = 64,
        temperature: float | None = None,
    ) -> Tensor:
        """uint8 (N, 3, H, W) -> colorized uint8 (N, 3, H, W): the true L with predicted ab
        upsampled bilinearly to full resolution."""
        was_training = model.training
        model.eval()
        device = model_device(model)
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size].to(device)
            lab = rgb_uint8_to_lab(chunk)
            outputs, _ = model(lab[:, :1] / 50.0 - 1.0)
            ab = F.interpolate(
                self.decode(outputs, temperature),
                size=lab.shape[-2:],
                mode="bilinear",
                align_corners=False,
            )
            out.append(lab_to_rgb_uint8(torch.cat([lab[:, :1], ab], dim=1)).cpu())
        model.train(was_training)
        return torch.cat(out) if out else images.new_zeros(0, *images.shape[1:])

    @torch.no_grad()
    def evaluate(
        self, model: PretextModel, images: Tensor, *, batch_size: int, seed: int = 0
    ) -> dict[str, Any]:
        """Mean per-image PSNR (dB, RGB) of the colorized images and of the grey baseline (true L,
        ab = 0), PSNR of the T = 1 decode, and Hasler-Suesstrunk colourfulness of ours and the
        truth. No randomness: ``seed`` unused."""
        images = images.cpu()
        colour = self.colorize(model, images, batch_size)
        lab = rgb_uint8_to_lab(images)
        grey = lab_to_rgb_uint8(torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], dim=1))
        result = {
            "psnr": psnr(colour, images).mean().item(),
            "psnr_grey": psnr(grey, images).mean().item(),
            "colourfulness": colourfulness(colour).mean().item(),
            "colourfulness_truth": colourfulness(images).mean().item(),
        }
        if self.options["loss"] == "classification":
            result["psnr_t1"] = (
                psnr(self.colorize(model, images, batch_size, 1.0), images).mean().item()
            )
        return result

    @torch.no_grad()
    def save_artifacts(
        self, model: PretextModel, images: Tensor, out_dir: Path, *, seed: int = 0
    ) -> dict[str, tuple[str, Path]]:
        """colorization_examples.png: per held-out image, grey input | colorized | truth."""
        out_dir.mkdir(parents=True, exist_ok=True)
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:8]
        shown = images[pick].cpu()
        colour = self.colorize(model, shown)
        lab = rgb_uint8_to_lab(shown)
        grey = lab_to_rgb_uint8(torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], dim=1))
        panels = torch.stack([grey, colour, shown], dim=1).flatten(0, 1)  # (3n, 3, H, W)
        captions = ["grey input", "colorized", "truth"] * len(shown)
        path = out_dir / "colorization_examples.png"
        save_grid(label_tiles(panels, captions), columns=3, path=path)
        return {"examples": ("image", path)}
