"""Colorization (Zhang, Isola, Efros, "Colorful Image Colorization", ECCV 2016).

The encoder sees only the lightness L of CIE Lab and predicts the colour channels ab. Regressing ab
with L2 gives greyish images (the L2 optimum is the mean of the plausible colours), so the default
treats colour as classification over ab bins (grid 10, in sRGB gamut): targets are soft-encoded
over the 5 nearest bins (Gaussian, sigma 5), the loss reweights pixels by the rarity of their colour
(class rebalancing, lambda 0.5, from the ab distribution of the training sample), and predictions
are decoded with the annealed mean (softmax temperature T = 0.38): between the mean (T = 1,
desaturated) and the mode (T -> 0, vivid but patchy). ``loss="l2"`` keeps plain regression to
compare. Quantization, rebalancing and decoding live in ``ab_bins.py``.

The head (a light U-Net decoder predicting at H/4) is in ``colorization_model.py``. Decodes run
at full resolution (the logits upsampled to the image) over only the bins in gamut at each
pixel's own L: near white or black only ab ~ 0 exists, so no decode can put colour where the
lightness says there is none.

Two decodes. *Vivid* (the paper's annealed mean) is meant to look colourful. *Faithful* is meant
to be right on images the model never saw: the rebalancing prior undone, a calibrated
temperature, and a shrink toward grey where the model is unsure, chosen after training on
held-out images, each judged with a choice made on the others (``faithful_held_out``;
``colour_calibration.py`` says why).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from sslviz.core.errors import UserError
from sslviz.core.liveness import alive
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
from sslviz.pretext.colorization_model import (
    AB_SCALE,
    ColorizationModel,
    decoder_layers,
    map_sizes,
)
from sslviz.pretext.colour_calibration import (
    FOLDS,
    TEMPERATURES,
    Calibration,
    Candidates,
    choose,
    mean_and_spread,
    psnr,
    shrink_factors,
    spread_rows,
    spread_subset,
)
from sslviz.pretext.lab import lab_to_rgb_uint8, rgb_uint8_to_lab
from sslviz.pretext.render import label_tiles, save_grid

DECODE_ELEMENTS = 1 << 24  # logits (images x Q x H x W) decoded at once at full resolution
LAB_PIXELS = 1 << 18  # pixels converted to Lab at once when sampling the colour prior


def colourfulness(images: Tensor) -> Tensor:
    """uint8 (N, 3, H, W) -> Hasler & Suesstrunk (2003) colourfulness per image (N,):
    std + 0.3 * mean of the opponent channels rg = R - G and yb = (R + G) / 2 - B."""
    r, g, b = images.float().unbind(dim=1)
    rg = (r - g).flatten(1)
    yb = (0.5 * (r + g) - b).flatten(1)
    std = (rg.var(dim=1, unbiased=False) + yb.var(dim=1, unbiased=False)).sqrt()
    mean = (rg.mean(dim=1) ** 2 + yb.mean(dim=1) ** 2).sqrt()
    return std + 0.3 * mean


def without_colour(images: Tensor) -> Tensor:
    """uint8 (N, 3, H, W) -> their lightness alone (ab = 0): the "no colour" baseline."""
    lab = rgb_uint8_to_lab(images)
    return lab_to_rgb_uint8(torch.cat([lab[:, :1], torch.zeros_like(lab[:, 1:])], dim=1))


def colour_figures(truth: Tensor, colour: Tensor, faithful: Tensor) -> dict[str, float]:
    """Means over uint8 images (N, 3, H, W): PSNR against ``truth`` of the vivid ``colour``, the
    ``faithful`` decode and the grey baseline, and the colourfulness of each (``sslviz eval``'s
    keys; the result page's summary)."""
    return {
        "psnr": psnr(colour, truth).mean().item(),
        "psnr_faithful": psnr(faithful, truth).mean().item(),
        "psnr_grey": psnr(without_colour(truth), truth).mean().item(),
        "colourfulness": colourfulness(colour).mean().item(),
        "colourfulness_faithful": colourfulness(faithful).mean().item(),
        "colourfulness_truth": colourfulness(truth).mean().item(),
    }


class ColorizationTask(PretextTask):
    name = "colorization"
    input_channels = 1
    metric_name = "bin_accuracy"  # share of pixels whose predicted ab bin is the true one
    # loss: "classification" (default) or "l2"; temperature: annealed-mean T; flip: random h-flip.
    defaults = {"loss": "classification", "temperature": 0.38, "flip": True}
    # the faithful decode is calibrated on the held-out images, cross-fitted (``evaluate``):
    # no training images are kept out for it
    calibration_fraction: ClassVar[float] = 0.0

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

    @torch.no_grad()
    def chance_loss(self, model: PretextModel, sample: Tensor) -> float:
        """The loss of the best prediction that ignores the image, on ``sample``: one fixed
        distribution q over the bins for every pixel. The rebalanced soft cross-entropy is
        -sum_j c_j log q_j with c_j = mean over pixels of (the pixel's weight x its soft target
        at bin j), least at q = c / sum(c). For l2: predicting the mean ab (its variance)."""
        side = map_sizes(model.encoder, min(sample.shape[-2:]))[model.layers[-1]]
        step = max(1, LAB_PIXELS // max(1, sample.shape[-2] * sample.shape[-1]))
        mass = torch.zeros(len(self.centres), dtype=torch.float64)
        sums, squares, pixels = torch.zeros(2, dtype=torch.float64), torch.zeros(2), 0
        weights = model.weights.cpu().float()
        for i in range(0, len(sample), step):
            ab = F.adaptive_avg_pool2d(rgb_uint8_to_lab(sample[i : i + step].cpu())[:, 1:], side)
            pixels += ab.shape[0] * side * side
            if self.options["loss"] == "l2":
                flat = ab.double().transpose(0, 1).flatten(1) / AB_SCALE  # (2, n pixels)
                sums += flat.sum(dim=1)
                squares = squares + flat.pow(2).sum(dim=1)
                continue
            bins, soft = soft_targets(ab, self.centres)  # (n, k, s, s) each
            share = soft * weights[bins[:, 0]][:, None]  # (n, k, s, s)
            mass.index_add_(0, bins.flatten(), share.flatten().double())
        if self.options["loss"] == "l2":
            mean = sums / pixels
            return float((squares / pixels - mean.pow(2)).mean())
        c = mass[mass > 0] / pixels
        return float(-(c * (c / c.sum()).log()).sum())

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

    def mean_and_spread(
        self,
        model: ColorizationModel,
        outputs: Tensor,
        lightness: Tensor,
        temperature: float,
        *,
        prior_undone: bool = True,
    ) -> tuple[Tensor, Tensor]:
        """Model outputs -> (mean ab (B, 2, H, W), spread (B, H, W)) at L's resolution: for
        logits, the distribution at ``temperature`` (the rebalancing prior divided out if
        ``prior_undone``) over the bins in gamut at each pixel's L; an L2 model's ab, spread 0."""
        size = lightness.shape[-2:]
        if outputs.shape[1] == 2:
            ab = F.interpolate(outputs.float(), size=size, mode="bilinear", align_corners=False)
            return ab, ab.new_zeros(ab.shape[0], *size)
        centres = self.centres.to(outputs.device)
        log_weights = model.weights.float().log() if prior_undone else None
        step = max(1, DECODE_ELEMENTS // (outputs.shape[1] * size[0] * size[1]))
        means, spreads = [], []
        for i in range(0, len(outputs), step):  # bounded memory: Q x H x W per image
            logits = F.interpolate(
                outputs[i : i + step].float(), size=size, mode="bilinear", align_corners=False
            )
            allowed = in_gamut(lightness[i : i + step])
            mean, spread = mean_and_spread(logits, centres, log_weights, temperature, allowed)
            means.append(mean)
            spreads.append(spread)
        return torch.cat(means), torch.cat(spreads)

    def decode_faithful(
        self,
        model: ColorizationModel,
        outputs: Tensor,
        lightness: Tensor,
        calibration: Calibration | None = None,
    ) -> Tensor:
        """Model outputs -> the faithful ab (B, 2, H, W): the calibrated mean, shrunk toward grey
        where the model is unsure (``model.calibration`` unless given)."""
        calibration = calibration or model.calibration
        t = calibration.temperature or 1.0  # not calibrated: the plain mean, prior undone
        mean, spread = self.mean_and_spread(
            model, outputs, lightness, t, prior_undone=calibration.prior_undone
        )
        return mean * shrink_factors(spread, calibration)

    @torch.no_grad()
    def colorize(
        self,
        model: PretextModel,
        images: Tensor,
        batch_size: int = 64,
        temperature: float | None = None,
        *,
        faithful: bool = False,
        calibration: Calibration | None = None,
    ) -> Tensor:
        """uint8 (N, 3, H, W) -> colorized uint8 (N, 3, H, W): the true L with the predicted ab,
        decoded at full resolution within the gamut of each pixel's L. Vivid (the annealed mean
        at ``temperature``) by default; ``faithful``: the calibrated decode meant to be closest
        to the truth (``decode_faithful``, with ``calibration`` if given, else the model's;
        ``temperature`` is then unused)."""
        was_training = model.training
        model.eval()
        device = model_device(model)
        out = []
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size].to(device)
            lab = rgb_uint8_to_lab(chunk)
            outputs, _ = model(lab[:, :1] / 50.0 - 1.0)
            if faithful or calibration is not None:
                ab = self.decode_faithful(model, outputs, lab[:, :1], calibration)
            else:
                ab = self.decode(outputs, temperature, lightness=lab[:, :1])
            out.append(lab_to_rgb_uint8(torch.cat([lab[:, :1], ab], dim=1)).cpu())
        model.train(was_training)
        return torch.cat(out) if out else images.new_zeros(0, *images.shape[1:])

    @torch.no_grad()
    def calibration_candidates(
        self, model: PretextModel, images: Tensor, *, batch_size: int = 64
    ) -> Candidates:
        """Everything choosing a faithful decode on uint8 images (N, 3, H, W) needs, computed
        once: each (prior undone or kept, temperature) decode's mean and spread, the true ab and
        each image's grey PSNR (``colour_calibration.Candidates``)."""
        was_training = model.training
        model.eval()
        device = model_device(model)
        chunks = []  # (outputs, L, ab, truth uint8)
        for start in range(0, len(images), batch_size):
            truth = images[start : start + batch_size].to(device)
            lab = rgb_uint8_to_lab(truth)
            outputs, _ = model(lab[:, :1] / 50.0 - 1.0)
            chunks.append((outputs.float(), lab[:, :1], lab[:, 1:], truth))
        model.train(was_training)
        regression = chunks[0][0].shape[1] == 2
        decodes = {}
        for undone in (True,) if regression else (True, False):
            for t in (1.0,) if regression else TEMPERATURES:
                parts = []
                for o, lightness, _, _ in chunks:
                    alive()  # decoding, no forward pass: a sign of life of its own
                    parts.append(self.mean_and_spread(model, o, lightness, t, prior_undone=undone))
                decodes[(undone, t)] = (
                    torch.cat([m for m, _ in parts]),
                    torch.cat([sp for _, sp in parts]),
                )
        lightness = torch.cat([c[1] for c in chunks])
        truth = torch.cat([c[3] for c in chunks])
        return Candidates(decodes, lightness, torch.cat([c[2] for c in chunks]), truth, regression)

    @torch.no_grad()
    def calibrate(self, model: PretextModel, images: Tensor, *, batch_size: int = 64) -> None:
        """Choose the faithful decode on uint8 images (N, 3, H, W) the model never trained on
        and store it in the model's buffers (saved with its checkpoint): the candidate whose
        per-image PSNR gain over the grey image has the best lower bound; grey itself is a
        candidate (``colour_calibration.choose``)."""
        if len(images) == 0:
            return
        images = spread_subset(images)
        model.calibration = choose(
            self.calibration_candidates(model, images, batch_size=batch_size)
        )

    @torch.no_grad()
    def faithful_held_out(
        self, model: PretextModel, images: Tensor, *, batch_size: int = 64
    ) -> tuple[Tensor, Calibration]:
        """Faithful colorizations uint8 (N, 3, H, W) of held-out images, each decoded with a
        calibration chosen on the *other* held-out images (cross-fitting over ``FOLDS`` folds:
        the calibration is measured on images distributed like the ones it is judged on, and
        never on the image it is judged on); and the calibration chosen on all of them, for
        images beyond these (``evaluate`` stores it in the model: the live demo uses it)."""
        out = images.new_zeros(images.shape)
        folds = torch.arange(len(images)) % FOLDS
        candidates = self.calibration_candidates(
            model, spread_subset(images), batch_size=batch_size
        )
        subset_folds = folds[spread_rows(len(images), images.shape[-2] * images.shape[-1])]
        for fold in range(FOLDS):
            rest = torch.nonzero(subset_folds != fold).flatten()
            here = torch.nonzero(folds == fold).flatten()
            calibration = choose(candidates, rest)
            for start in range(0, len(here), batch_size):
                rows = here[start : start + batch_size]
                out[rows] = self.colorize(model, images[rows], batch_size, calibration=calibration)
        return out, choose(candidates)

    @torch.no_grad()
    def evaluate(
        self, model: PretextModel, images: Tensor, *, batch_size: int, seed: int = 0
    ) -> dict[str, Any]:
        """Mean per-image PSNR (dB, RGB) of the vivid colorization (``psnr``), of the faithful
        one (``psnr_faithful``, cross-fitted: ``faithful_held_out``, which also stores the
        calibration chosen on all these images in the model) and of the grey baseline (true L,
        ab = 0), PSNR of the T = 1 decode, Hasler-Suesstrunk colourfulness of ours and the
        truth, and the faithful decode's calibration. No randomness: ``seed`` unused."""
        images = images.cpu()
        colour = self.colorize(model, images, batch_size)
        faithful, chosen = self.faithful_held_out(model, images, batch_size=batch_size)
        model.calibration = chosen  # chosen on all the held-out images: for any other image
        calibration = model.calibration
        result = {
            **colour_figures(images, colour, faithful),
            "faithful_calibrated": calibration.temperature > 0,
            "faithful_temperature": round(calibration.temperature or 1.0, 4),
            "faithful_shrink": [round(float(k), 4) for k in calibration.shrink],
            "faithful_prior_undone": calibration.prior_undone,
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
        panels = torch.stack([without_colour(shown), colour, shown], dim=1).flatten(
            0, 1
        )  # (3n, 3, H, W)
        captions = ["grey input", "colorized", "truth"] * len(shown)
        path = out_dir / "colorization_examples.png"
        save_grid(label_tiles(panels, captions), columns=3, path=path)
        return {"examples": ("image", path)}
