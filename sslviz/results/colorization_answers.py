"""Colorization results image by image: grey input, the model's vivid colours (annealed mean, at
any temperature), its faithful colours (the calibrated decode meant to be closest to the truth),
the truth, and their PSNR and colourfulness.

Everything goes through the task's public ``colorize`` (true L + predicted ab), so a change in
how the model decodes colour shows here unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from sslviz.pretext.base import PretextModel, PretextTask
from sslviz.pretext.colorization import colour_figures, psnr, without_colour
from sslviz.pretext.lab import lab_to_rgb_uint8, rgb_uint8_to_lab


def with_colours_of(target: Tensor, coloured: Tensor) -> Tensor:
    """Lightness of ``target`` uint8 (N, 3, H, W) with the ab of ``coloured`` uint8 (N, 3, h, w)
    upsampled bilinearly: a small colorization shown at a larger size without blurring its
    edges (the edges come from the sharp L, as in Zhang et al.'s full-resolution output)."""
    lab = rgb_uint8_to_lab(target)
    ab = F.interpolate(
        rgb_uint8_to_lab(coloured)[:, 1:], size=lab.shape[-2:], mode="bilinear", align_corners=False
    )
    return lab_to_rgb_uint8(torch.cat([lab[:, :1], ab], dim=1))


def is_classification(task: PretextTask) -> bool:
    """True for the default classification-over-ab-bins model (it has a temperature)."""
    return task.options.get("loss", "classification") == "classification"


@dataclass(frozen=True)
class ColorizationResults:
    paths: list[str]
    truth: Tensor  # uint8 (N, 3, S, S)
    grey: Tensor  # uint8 (N, 3, S, S), ab = 0
    colour: Tensor  # uint8 (N, 3, S, S), the model's vivid decode
    faithful: Tensor  # uint8 (N, 3, S, S), the model's faithful decode
    temperature: float | None  # annealed-mean T (None: the run's default, or an L2 model)

    @property
    def psnr(self) -> Tensor:
        """(N,) dB of the model's colorization against the truth."""
        return psnr(self.colour, self.truth)

    @property
    def psnr_faithful(self) -> Tensor:
        """(N,) dB of the faithful colorization against the truth."""
        return psnr(self.faithful, self.truth)

    @property
    def psnr_grey(self) -> Tensor:
        """(N,) dB of the grey baseline against the truth."""
        return psnr(self.grey, self.truth)

    def summary(self) -> dict[str, float]:
        """Means over the images, with the keys of ``sslviz eval``'s colorization row."""
        return colour_figures(self.truth, self.colour, self.faithful)


@torch.no_grad()
def colorization_results(
    task: PretextTask,
    model: PretextModel,
    paths: list[str],
    images: Tensor,
    *,
    temperature: float | None = None,
) -> ColorizationResults:
    """The model's colorizations of uint8 held-out images (N, 3, S, S): vivid at
    ``temperature``, and faithful (which has no temperature of its own to choose: it is
    calibrated), each image decoded with the choice made on the others, as `sslviz eval` does
    (``ColorizationTask.faithful_held_out``)."""
    model.eval()
    t = temperature if is_classification(task) else None
    colour = task.colorize(model, images, temperature=t)
    faithful, _ = task.faithful_held_out(model, images)
    return ColorizationResults(paths, images, without_colour(images), colour, faithful, t)


# --- a new temperature without a new model pass --------------------------------------------------
MAX_DECODE_INPUTS_BYTES = 256 * 2**20  # model outputs kept for re-decoding (else: recompute)


@dataclass(frozen=True, eq=False)
class DecodeInputs:
    """What the vivid decode reads, computed once per model: its raw outputs and the images' L."""

    outputs: Tensor  # (N, Q, h, w) logits over the ab bins (an L2 model: (N, 2, h, w) ab)
    lightness: Tensor  # (N, 1, S, S) L in [0, 100]


@torch.no_grad()
def decode_inputs(
    task: PretextTask, model: PretextModel, images: Tensor, batch_size: int = 64
) -> DecodeInputs | None:
    """The model's outputs on uint8 images (N, 3, S, S) and their L, as ``colorize`` computes
    them; None if they would take more than ``MAX_DECODE_INPUTS_BYTES``."""
    model.eval()
    lab = rgb_uint8_to_lab(images)
    outputs = []
    for start in range(0, len(images), batch_size):
        out, _ = model(lab[start : start + batch_size, :1] / 50.0 - 1.0)
        outputs.append(out.float().cpu())
        if sum(o.numel() for o in outputs) * 4 > MAX_DECODE_INPUTS_BYTES:
            return None
    if not outputs:
        return None
    return DecodeInputs(torch.cat(outputs), lab[:, :1])


@torch.no_grad()
def at_temperature(
    results: ColorizationResults, task: PretextTask, inputs: DecodeInputs, temperature: float
) -> ColorizationResults:
    """``results`` with the vivid decode at ``temperature``: only the decode runs again (the
    faithful decode, calibrated, has no temperature and is kept). The same colours ``colorize``
    gives at that temperature."""
    ab = task.decode(inputs.outputs, temperature, lightness=inputs.lightness)
    colour = lab_to_rgb_uint8(torch.cat([inputs.lightness, ab], dim=1))
    return ColorizationResults(
        results.paths, results.truth, results.grey, colour, results.faithful, temperature
    )
