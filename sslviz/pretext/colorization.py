"""Colorization (Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016).

The encoder sees only the lightness L of CIE Lab and predicts the colour channels ab. Regressing ab
with L2 gives greyish images (the L2 optimum is the mean of the plausible colours), so the default
treats colour as classification over ab bins (grid 10, in sRGB gamut): targets are soft-encoded
over the 5 nearest bins (Gaussian, sigma 5), the loss reweights pixels by the rarity of their colour
(class rebalancing, lambda 0.5, from the ab distribution of the training sample), and predictions
are decoded with the annealed mean (softmax temperature T = 0.38): between the mean (T = 1,
desaturated) and the mode (T -> 0, vivid but patchy). ``loss="l2"`` keeps plain regression to
compare. Quantization, rebalancing and decoding live in ``ab_bins.py``.

Two changes to the paper's head, for small images, where a head on the deepest map alone (4 x 4
at 32 px) bleeds colour across edges into white backgrounds. A light U-Net decoder fuses shallower
encoder maps (chosen by layer name and measured shape, so any registry encoder works) and predicts
at H/4 from a map that has that detail. And the decode runs at full resolution (the logits
upsampled to the image) over only the bins in gamut at each pixel's own L: near white or black
only ab ~ 0 exists, so the annealed mean can't put colour where the lightness says there is none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslviz.core.errors import UserError
from sslviz.models.encoders import Encoder
from sslviz.pretext.ab_bins import (
    ab_bins,
    annealed_mean,
    bin_counts,
    in_gamut,
    nearest_bin,
    soft_targets,
    weights_from_counts,
)
from sslviz.pretext.base import PretextBatch, PretextModel, PretextTask, model_device, uniform
from sslviz.pretext.lab import lab_to_rgb_uint8, rgb_uint8_to_lab
from sslviz.pretext.render import label_tiles, save_grid

# Predict ab at H/4 (the paper's resolution; measured at equal steps on generated clip art, H/2
# was no better and costs more), or the encoder's finest map if it has none that fine.
OUTPUT_STRIDE = 4
AB_SCALE = 100.0  # ab units per unit of the L2 head's output
TOP_WIDTH, MIN_WIDTH = 128, 32  # decoder widths: at the deepest map, and the floor as it halves
DECODE_ELEMENTS = 1 << 24  # logits (images x Q x H x W) decoded at once at full resolution
LAB_PIXELS = 1 << 18  # pixels converted to Lab at once when sampling the colour prior


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


def decoder_layers(encoder: Encoder, image_size: int, stride: int = OUTPUT_STRIDE) -> list[str]:
    """The encoder layers the decoder reads, deepest first: the deepest, then each shallower one
    whose map is finer than the previous, down to output stride ``stride`` (or the finest map).
    Measured on a probe image of ``image_size``, so any registry encoder works (small-cnn at 32
    px: block3, block2; resnet18 at 32 px: layer4, layer3; at 128 px: layer4 .. layer1)."""
    sizes = map_sizes(encoder, image_size)
    chosen = [encoder.layer_names[-1]]
    for name in reversed(encoder.layer_names[:-1]):
        finer = sizes[name] > sizes[chosen[-1]]
        if finer and image_size / sizes[name] >= stride - 1e-6:
            chosen.append(name)
    return chosen


def map_sizes(encoder: Encoder, image_size: int) -> dict[str, int]:
    """{layer: side of its map} for a square input of ``image_size`` px."""
    was_training = encoder.training
    encoder.eval()  # batch norm on a probe must not move the running statistics
    try:
        with torch.no_grad():
            probe = torch.zeros(1, encoder.in_channels, image_size, image_size)
            maps = encoder.feature_maps(probe.to(next(encoder.parameters()).device))
    finally:
        encoder.train(was_training)
    return {name: int(fmap.shape[-1]) for name, fmap in maps.items()}


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


class ColorizationModel(PretextModel):
    """Encoder on L -> U-Net decoder over ``layers`` (deepest first: a 3x3 conv, then per
    shallower map upsample x2-ish, concatenate, 3x3 conv; widths 128 halving to 32) -> 1x1 conv
    to Q logits (or ab for l2) at the finest map's resolution (H/4 for small-cnn)."""

    def __init__(
        self, encoder: Encoder, loss: str, centres: Tensor, weights: Tensor, layers: list[str]
    ) -> None:
        super().__init__(encoder)
        self.loss_kind = loss
        self.layers = list(layers)
        dims = encoder.layer_dims
        width = TOP_WIDTH
        self.top = _conv_bn_relu(dims[self.layers[0]], width)
        self.fuse = nn.ModuleList()
        for name in self.layers[1:]:
            narrower = max(MIN_WIDTH, width // 2)
            self.fuse.append(_conv_bn_relu(width + dims[name], narrower))
            width = narrower
        self.classifier = nn.Conv2d(width, centres.shape[0] if loss == "classification" else 2, 1)
        self.register_buffer("centres", centres.clone())  # (Q, 2)
        self.register_buffer("weights", weights.clone())  # (Q,) class rebalancing

    def forward(
        self, inputs: Tensor, targets: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """inputs (B, 1, H, W) normalized L, targets (B, 2, H, W) ab -> outputs at the finest
        decoded map (h, w): logits (B, Q, h, w) for classification or ab (B, 2, h, w) for l2;
        the loss against the targets averaged over each output pixel's area."""
        maps = self.encoder.feature_maps(inputs, self.layers)
        x = self.top(maps[self.layers[0]])
        for name, fuse in zip(self.layers[1:], self.fuse, strict=True):
            skip = maps[name]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = fuse(torch.cat([x, skip], dim=1))
        out = self.classifier(x)
        if self.loss_kind == "l2":
            out = out * AB_SCALE  # (B, 2, h, w) in Lab units
        if targets is None:
            return out, None
        ab = F.adaptive_avg_pool2d(targets.float(), out.shape[-2:])  # (B, 2, h, w)
        if self.loss_kind == "l2":
            return out, F.mse_loss(out.float() / AB_SCALE, ab / AB_SCALE)
        # cross-entropy against the soft targets from the k gathered log-probabilities
        bins, weight = soft_targets(ab, self.centres)  # (B, k, h, w) each
        log_p = F.log_softmax(out.float(), dim=1).gather(1, bins)  # (B, k, h, w)
        ce = -(weight * log_p).sum(dim=1)  # (B, h, w)
        return out, (ce * self.weights[bins[:, 0]]).mean()  # rebalanced by the pixel's colour


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
        """uint8 (B, 3, H, W) -> inputs (B, 1, H, W) L scaled to [-1, 1], targets (B, 2, H, W)
        ab at full resolution (the model averages them to its output resolution)."""
        x = images
        if self.options["flip"]:
            b = images.shape[0]
            flip = uniform((b,), generator, images.device) < 0.5
            x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
        lab = rgb_uint8_to_lab(x)  # (B, 3, H, W)
        return PretextBatch(lab[:, :1] / 50.0 - 1.0, lab[:, 1:])

    def build_model(self, encoder: Encoder, sample: Tensor) -> ColorizationModel:
        """``sample`` uint8 (N, 3, H, W): its side picks the decoder's layers, its ab
        distribution (at the output resolution) sets the rebalancing weights. Converted a few
        images at a time, so memory stays small at any image size."""
        size = min(sample.shape[-2:])
        layers = decoder_layers(encoder, size)
        out_side = map_sizes(encoder, size)[layers[-1]]
        counts = torch.zeros(len(self.centres))
        step = max(1, LAB_PIXELS // max(1, sample.shape[-2] * sample.shape[-1]))
        for i in range(0, len(sample), step):
            ab = rgb_uint8_to_lab(sample[i : i + step].cpu())[:, 1:]  # (n, 2, H, W)
            counts += bin_counts(F.adaptive_avg_pool2d(ab, out_side), self.centres)
        weights = weights_from_counts(counts, self.centres)
        return ColorizationModel(encoder, self.options["loss"], self.centres, weights, layers)

    def decode(
        self, outputs: Tensor, temperature: float | None = None, lightness: Tensor | None = None
    ) -> Tensor:
        """Model outputs -> ab: the annealed mean for logits, as is for l2. With ``lightness``
        (B, 1, H, W), L in [0, 100] of the images: ab (B, 2, H, W) at L's resolution, the
        logits upsampled and the mean taken only over the bins in gamut at each pixel's L.
        Without it: ab (B, 2, h, w) at the outputs' resolution, over all bins."""
        if outputs.shape[1] == 2:
            ab = outputs.float()
            if lightness is None:
                return ab
            return F.interpolate(
                ab, size=lightness.shape[-2:], mode="bilinear", align_corners=False
            )
        t = float(self.options["temperature"] if temperature is None else temperature)
        centres = self.centres.to(outputs.device)
        if lightness is None:
            return annealed_mean(outputs, centres, t)
        size = lightness.shape[-2:]
        step = max(1, DECODE_ELEMENTS // (outputs.shape[1] * size[0] * size[1]))
        parts = []
        for i in range(0, len(outputs), step):  # bounded memory: Q x H x W per image
            logits = F.interpolate(
                outputs[i : i + step].float(), size=size, mode="bilinear", align_corners=False
            )
            parts.append(annealed_mean(logits, centres, t, in_gamut(lightness[i : i + step])))
        return torch.cat(parts)

    def batch_metric(self, outputs: Tensor, targets: Tensor) -> float:
        ab = F.adaptive_avg_pool2d(targets.float(), outputs.shape[-2:])
        centres = self.centres.to(outputs.device)
        pred = (
            outputs.argmax(dim=1)
            if outputs.shape[1] != 2
            else nearest_bin(outputs.float(), centres)
        )
        return (pred == nearest_bin(ab, centres)).float().mean().item()

    @torch.no_grad()
    def colorize(
        self,
        model: PretextModel,
        images: Tensor,
        batch_size: int = 64,
        temperature: float | None = None,
    ) -> Tensor:
        """uint8 (N, 3, H, W) -> colorized uint8 (N, 3, H, W): the true L with the predicted ab,
        decoded at full resolution within the gamut of each pixel's L."""
        was_training = model.training
        model.eval()
        device = model_device(model)
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size].to(device)
            lab = rgb_uint8_to_lab(chunk)
            outputs, _ = model(lab[:, :1] / 50.0 - 1.0)
            ab = self.decode(outputs, temperature, lightness=lab[:, :1])
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
