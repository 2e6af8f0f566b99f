"""The colorization network's head (Zhang, Isola, Efros, ECCV 2016, adapted to small images): a
light U-Net decoder over the encoder's maps down to output stride 4, then a 1x1 conv to the ab
bins' logits (or to ab for L2), and the buffers the task needs with the weights: the bin centres,
the class-rebalancing weights and the faithful decode's calibration.

A head on the deepest map alone (4 x 4 at 32 px) bleeds colour across edges into white
backgrounds; the decoder fuses shallower maps (chosen by layer name and measured shape, so any
registry encoder works) and predicts at H/4 from a map that has that detail.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslviz.models.encoders import Encoder
from sslviz.pretext.ab_bins import soft_targets
from sslviz.pretext.base import PretextModel
from sslviz.pretext.colour_calibration import Calibration

# Predict ab at H/4 (the paper's resolution; measured at equal steps on generated clip art, H/2
# was no better and costs more), or the encoder's finest map if it has none that fine.
OUTPUT_STRIDE = 4
AB_SCALE = 100.0  # ab units per unit of the L2 head's output
TOP_WIDTH, MIN_WIDTH = 128, 32  # decoder widths: at the deepest map, and the floor as it halves


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
        # the faithful decode's calibration (colour_calibration.py), fitted after training on
        # images it never trained on; temperature 0 = not calibrated yet
        identity = Calibration.identity()
        self.register_buffer("calib_temperature", torch.tensor(identity.temperature))
        self.register_buffer("calib_edges", identity.edges)  # (SPREAD_BINS - 1,)
        self.register_buffer("calib_shrink", identity.shrink)  # (SPREAD_BINS,)
        self.register_buffer("calib_prior_undone", torch.tensor(float(identity.prior_undone)))

    @property
    def calibration(self) -> Calibration:
        return Calibration(
            float(self.calib_temperature),
            self.calib_edges.cpu(),
            self.calib_shrink.cpu(),
            bool(self.calib_prior_undone > 0.5),
        )

    @calibration.setter
    def calibration(self, value: Calibration) -> None:
        self.calib_temperature.fill_(value.temperature)
        self.calib_edges.copy_(value.edges)
        self.calib_shrink.copy_(value.shrink)
        self.calib_prior_undone.fill_(float(value.prior_undone))

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args: Any) -> None:
        # checkpoints saved before the faithful decode existed have no calibration: load them
        # as not calibrated rather than refusing them
        for name in ("calib_temperature", "calib_edges", "calib_shrink", "calib_prior_undone"):
            state_dict.setdefault(prefix + name, getattr(self, name).clone())
        super()._load_from_state_dict(state_dict, prefix, *args)

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
