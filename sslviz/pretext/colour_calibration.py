"""The faithful colorization decode: the colours closest to the truth, chosen on images the model
never trained on, so it is not worse than the grey image where the model can't tell the colour,
and better where it can.

Why a second decode. The vivid decode (annealed mean, T = 0.38, of a model trained with class
rebalancing) is meant to look colourful, not to be right: rebalancing multiplies the learned
distribution by each colour's rarity weight, the low temperature sharpens it further, and a model
trained for minutes on a few hundred images is over-confident on images it never saw (measured on
generated clip art: +7.3 dB over grey on its own training images, +2.1 dB on held-out ones). The
faithful decode is one of a few candidates, each

1. the predicted distribution with the rebalancing prior undone (p(q | x) ~ softmax(logits)_q /
   w_q: the loss weighted each pixel by w of its colour, which multiplies the learned
   distribution by w) or kept,
2. at a temperature T, its mean taken over the bins in gamut at the pixel's lightness,
3. shrunk toward grey (ab = 0) by a factor k in [0, 1] that depends on how spread the predicted
   distribution is (its standard deviation in ab, ``SPREAD_BINS`` quantile bins): k is the
   least-squares factor between predicted and true ab on the calibration pixels (each image
   weighted by 1 / (its grey image's ab error + ``IMAGE_FLOOR``), since the reported PSNR is a
   mean over images of a logarithm), then scaled by one of ``BACKOFF``.

The candidate kept is the one whose per-image PSNR gain over the grey image has the best lower
bound (mean - ``Z`` standard errors) on the calibration images, the metric that is reported; grey
itself (gain 0) is a candidate, so when nothing is clearly better the decode stays grey.

Which images. The choice must be made on images distributed like the ones it is judged on. It
was made on training images kept out of training, and lost to grey on held-out ones (colour
icons: 18.38 vs 20.20 dB; the demo: 16.99 vs 22.90): where whole folders are held out, those
images were crops of the photos the model trained on (it knew their colours), not of unseen ones.
So it is made on the held-out images themselves, cross-fitted: each is decoded with the choice
made on the other ``FOLDS - 1`` folds, so no image's figure comes from a choice it took part in
(``ColorizationTask.faithful_held_out``). The choice stored with the model (for images beyond
these: the live demo) is made on all of them. Fewer than ``MIN_IMAGES`` images can't bound
anything: the decode is then grey.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from sslviz.core.liveness import alive
from sslviz.pretext.lab import lab_to_rgb_uint8

SPREAD_BINS = 8  # confidence bins, each with its own shrink factor
TEMPERATURES = (0.25, 0.38, 0.6, 1.0, 1.5)  # candidate temperatures
BACKOFF = (1.0, 0.75, 0.5, 0.25)  # global scalings of the fitted shrink factors
IMAGE_FLOOR = 25.0  # (ab units)^2 added to each image's grey error in the image weights
CALIBRATION_PIXELS = 1 << 19  # at most this many pixels of calibration images (512 at 32 px)
FOLDS = 2  # cross-fitting folds of the held-out images
MIN_IMAGES = 8  # fewer calibration images: grey
Z = 2.0  # the lower bound of a candidate's mean gain: mean - Z standard errors


@dataclass(frozen=True)
class Calibration:
    """What the faithful decode needs besides the logits. ``temperature`` 0 = not calibrated
    (then T = 1 and no shrinkage: the plain mean with the prior undone)."""

    temperature: float
    edges: Tensor  # (SPREAD_BINS - 1,) spread thresholds (ab units), ascending
    shrink: Tensor  # (SPREAD_BINS,) factor toward grey per spread bin
    prior_undone: bool = True  # divide the rebalancing weights out of the distribution

    @classmethod
    def identity(cls) -> Calibration:
        return cls(0.0, torch.zeros(SPREAD_BINS - 1), torch.ones(SPREAD_BINS))

    @classmethod
    def grey(cls) -> Calibration:
        """The decode that adds no colour at all (calibrated: nothing was clearly better)."""
        return cls(1.0, torch.zeros(SPREAD_BINS - 1), torch.zeros(SPREAD_BINS))

    def scaled(self, factor: float) -> Calibration:
        """The same calibration with every shrink factor multiplied by ``factor``."""
        return Calibration(self.temperature, self.edges, self.shrink * factor, self.prior_undone)


def mean_and_spread(
    logits: Tensor,
    centres: Tensor,
    log_weights: Tensor | None,
    temperature: float,
    allowed: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """logits (B, Q, h, w) -> (mean ab (B, 2, h, w), spread (B, h, w)): the mean and the standard
    deviation (ab units) of softmax(logits / T) with the rebalancing prior divided out
    (``log_weights`` (Q,) = log w, None to keep it), over the ``allowed`` bins (B, Q, h, w)."""
    scaled = logits.float() / temperature
    if log_weights is not None:
        scaled = scaled - log_weights.to(scaled).view(1, -1, 1, 1)
    if allowed is not None:
        scaled = scaled.masked_fill(~allowed, -math.inf)
    probs = torch.softmax(scaled, dim=1)  # (B, Q, h, w)
    c = centres.to(probs)
    mean = torch.einsum("bqhw,qc->bchw", probs, c)
    second = torch.einsum("bqhw,q->bhw", probs, c.pow(2).sum(dim=1))
    spread = (second - mean.pow(2).sum(dim=1)).clamp(min=0).sqrt()
    return mean, spread


def shrink_factors(spread: Tensor, calibration: Calibration) -> Tensor:
    """spread (B, h, w) -> k (B, 1, h, w): each pixel's factor toward grey."""
    edges = calibration.edges.to(spread)
    bins = torch.bucketize(spread.contiguous(), edges)  # (B, h, w) in 0..SPREAD_BINS-1
    return calibration.shrink.to(spread)[bins].unsqueeze(1)


def fit_shrink(
    spread: Tensor, dot: Tensor, norm: Tensor, truth: Tensor, bins: int = SPREAD_BINS
) -> tuple[Tensor, Tensor, float]:
    """Per-pixel (flat) spread and weighted <mean, truth>, |mean|^2, |truth|^2 -> (edges,
    shrink factors, weighted squared error): k per spread quantile bin, least squares in [0, 1]."""
    sample = spread[:: max(1, len(spread) // 100_000)]  # quantile() has an input size limit
    edges = torch.quantile(sample, torch.linspace(0, 1, bins + 1)[1:-1])
    which = torch.bucketize(spread, edges)
    num = torch.zeros(bins).index_add_(0, which, dot)
    den = torch.zeros(bins).index_add_(0, which, norm)
    shrink = torch.where(den > 0, num / den.clamp(min=1e-12), torch.zeros(bins)).clamp(0, 1)
    k = shrink[which]
    error = float((truth - 2 * k * dot + k * k * norm).sum())
    return edges, shrink, error


def least_squares_shrink(
    decoded: list[tuple[Tensor, Tensor]], truth_ab: list[Tensor], bins: int = SPREAD_BINS
) -> tuple[Tensor, Tensor]:
    """Chunks of (mean ab (b, 2, H, W), spread (b, H, W)) and the true ab (b, 2, H, W) ->
    (edges (SPREAD_BINS - 1,), shrink (SPREAD_BINS,)): the image-weighted least-squares factor
    toward grey per spread bin (one factor for all pixels if ``bins`` is 1)."""
    dot, norm, truth, spread = [], [], [], []
    for (mean, s), ab in zip(decoded, truth_ab, strict=True):
        weight = 1.0 / (ab.pow(2).sum(dim=1).mean(dim=(1, 2)) + IMAGE_FLOOR)  # (b,)
        w = weight.view(-1, 1, 1).expand_as(s)
        dot.append(((mean * ab).sum(dim=1) * w).flatten().cpu())
        norm.append((mean.pow(2).sum(dim=1) * w).flatten().cpu())
        truth.append((ab.pow(2).sum(dim=1) * w).flatten().cpu())
        spread.append(s.flatten().cpu())
    edges, shrink, _ = fit_shrink(
        torch.cat(spread), torch.cat(dot), torch.cat(norm), torch.cat(truth), bins
    )
    if bins == 1:
        return torch.zeros(SPREAD_BINS - 1), shrink.expand(SPREAD_BINS).clone()
    return edges, shrink


def lower_bound(gains: Tensor) -> Tensor:
    """Per-image gains (C, N) of C candidates -> mean - Z standard errors of each (C,)."""
    n = gains.shape[1]
    if n < 2:
        return gains.mean(dim=1)
    return gains.mean(dim=1) - Z * gains.std(dim=1) / math.sqrt(n)


def psnr(pred: Tensor, truth: Tensor) -> Tensor:
    """uint8 (N, 3, H, W) x2 -> PSNR in dB per image (N,), peak 255 (capped at 100 if equal)."""
    mse = (pred.float() - truth.float()).pow(2).flatten(1).mean(dim=1)
    return 10 * torch.log10(255.0**2 / mse.clamp(min=255.0**2 * 1e-10))


def spread_rows(n: int, pixels: int) -> Tensor:
    """Rows of at most CALIBRATION_PIXELS // ``pixels`` (>= 2) of ``n`` images, evenly spread
    (bounded cost at any image size)."""
    keep = max(2, CALIBRATION_PIXELS // max(1, pixels))
    if n <= keep:
        return torch.arange(n)
    return torch.linspace(0, n - 1, keep).long()


def spread_subset(images: Tensor) -> Tensor:
    """uint8 (N, 3, H, W) -> the ``spread_rows`` of them."""
    return images[spread_rows(len(images), images.shape[-2] * images.shape[-1])]


@dataclass(frozen=True)
class Candidates:
    """Each candidate decode of N calibration images, computed once (``ColorizationTask.
    calibration_candidates``), so choices on subsets of them (cross-fitting) cost no forward."""

    decodes: dict[tuple[bool, float], tuple[Tensor, Tensor]]  # (prior undone, T) -> (mean ab
    # (N, 2, H, W), spread (N, H, W))
    lightness: Tensor  # (N, 1, H, W) L in [0, 100]
    ab: Tensor  # (N, 2, H, W) the true ab
    truth: Tensor  # uint8 (N, 3, H, W)
    regression: bool  # an L2 model: one shrink factor, no temperature

    def psnr_with(self, ab: Tensor, rows: Tensor) -> Tensor:
        """(n,) per-image PSNR of the ``rows`` images' true L with ``ab`` (n, 2, H, W)."""
        rgb = lab_to_rgb_uint8(torch.cat([self.lightness[rows], ab], dim=1))
        return psnr(rgb, self.truth[rows]).cpu()


def choose(candidates: Candidates, rows: Tensor | None = None) -> Calibration:
    """The calibration whose per-image PSNR gain over grey has the best lower bound on the
    ``rows`` images of ``candidates`` (all if None): each decode's least-squares shrink,
    scaled by each of ``BACKOFF`` or not shrunk, or grey itself."""
    c = candidates
    rows = torch.arange(len(c.truth)) if rows is None else rows
    if len(rows) < MIN_IMAGES:
        return Calibration.grey()
    grey = c.psnr_with(torch.zeros_like(c.ab[rows]), rows)
    options, gains = [Calibration.grey()], [torch.zeros_like(grey)]
    for (undone, t), (mean, spread) in c.decodes.items():
        m, sp = mean[rows], spread[rows]
        edges, shrink = least_squares_shrink(
            [(m, sp)], [c.ab[rows]], 1 if c.regression else SPREAD_BINS
        )
        fitted = Calibration(t, edges, shrink, undone)
        unshrunk = Calibration(t, edges, torch.ones(SPREAD_BINS), undone)
        for option in [*(fitted.scaled(f) for f in BACKOFF), unshrunk]:
            alive()  # no forward pass here: a sign of life of its own (a run's end is watched)
            options.append(option)
            gains.append(c.psnr_with(m * shrink_factors(sp, option), rows) - grey)
    return options[int(lower_bound(torch.stack(gains)).argmax())]
