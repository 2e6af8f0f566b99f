"""Encoders: one small interface over every backbone, created by name from a registry.

Every encoder is a stack of named stages (shallow -> deep). ``forward`` returns the deepest feature
map, ``feature_maps`` any named ones, and ``embed`` the pooled features of one layer (over the
whole map: each channel's average and maximum; or averaged over a coarse grid that keeps the
layout).
The default embedding layer is the one that measured best (DESIGN 3.5: the middle block of the
small CNN beat the last, which specialises on the pretext task), not blindly the last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sslviz.core.errors import UserError


class Encoder(nn.Module):
    """Named stages applied in order after an optional stem.

    Subclasses fill ``self.stem`` and ``self.stages`` (a ModuleDict in shallow -> deep order) and
    set ``layer_dims`` and ``default_layer``; ``untrained_layer`` / ``untrained_grid`` where the
    same network untrained (the ``random`` baseline) embeds best elsewhere.
    """

    in_channels: int
    layer_names: tuple[str, ...]
    layer_dims: dict[str, int]
    default_layer: str
    default_grid: int = 1  # pooling grid of the default embedding (1 = global average and max)
    untrained_layer: str | None = None  # None: the default layer
    untrained_grid: int | None = None  # None: the default grid

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.stem: nn.Module = nn.Identity()
        self.stages = nn.ModuleDict()

    @property
    def embed_dim(self) -> int:
        """Width of ``embed(x)`` with the default layer and grid."""
        return self.pooled_dim(self.default_layer, self.default_grid)

    def pooled_dim(self, layer: str, grid: int) -> int:
        """Width of ``embed(x, layer, grid)``: 2 x channels globally (average and max), else
        channels x grid**2."""
        channels = self.layer_dims[self.check_layer(layer)]
        return 2 * channels if grid == 1 else channels * grid * grid

    @property
    def out_channels(self) -> int:
        """Channels of ``forward``'s output (the deepest layer)."""
        return self.layer_dims[self.layer_names[-1]]

    def check_layer(self, layer: str) -> str:
        if layer not in self.layer_dims:
            raise UserError(
                f"unknown layer {layer!r} for this encoder; choose one of: {', '.join(self.layer_names)}"
            )
        return layer

    def forward(self, x: Tensor) -> Tensor:
        """x (B, in_channels, H, W) float -> deepest feature map (B, out_channels, h, w)."""
        x = self.stem(x)
        for stage in self.stages.values():
            x = stage(x)
        return x

    def feature_maps(self, x: Tensor, layers: Iterable[str] | None = None) -> dict[str, Tensor]:
        """x (B, in_channels, H, W) -> {layer: (B, C_layer, h, w)} for the asked layers (all if
        None). Stops after the deepest asked layer, so shallow layers are cheap."""
        wanted = set(self.layer_names) if layers is None else {self.check_layer(n) for n in layers}
        out: dict[str, Tensor] = {}
        x = self.stem(x)
        for name, stage in self.stages.items():
            x = stage(x)
            if name in wanted:
                out[name] = x
                if len(out) == len(wanted):
                    break
        return out

    def embed(self, x: Tensor, layer: str | None = None, grid: int = 1) -> Tensor:
        """x (B, in_channels, H, W) -> pooled features (B, ``pooled_dim``) of ``layer`` (default
        layer if None). grid=1: each channel's average and its maximum over the whole map (the
        maximum says whether a pattern occurs anywhere, which the average dilutes: after a
        rotation run, a linear probe with 5 labels per class 0.868 -> 0.899 on digits and
        0.874 -> 0.913 on colour icons, docs/pretext.md); grid > 1: averages over grid x grid
        cells, flattened cell-major per channel, which keeps where things are.
        """
        name = self.check_layer(layer or self.default_layer)
        fmap = self.feature_maps(x, [name])[name]  # (B, D, h, w)
        if grid == 1:
            return torch.cat([fmap.mean(dim=(2, 3)), fmap.amax(dim=(2, 3))], dim=1)  # (B, 2D)
        return F.adaptive_avg_pool2d(fmap, grid).flatten(1)  # (B, D * grid * grid)


class PoolIfLarge(nn.Module):
    """2x2 max-pool, skipped once the map is smaller than 4 px: a jigsaw tile can be ~8 px, and
    pooling a 3x3 map to 1x1 would throw away all spatial structure (or crash below 2x2)."""

    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) < 4:
            return x
        return F.max_pool2d(x, 2)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class SmallCNN(Encoder):
    """Six 3x3 convs in three blocks (conv-BN-ReLU x2 + 2x2 pool), for 32-64 px images.

    At 32 px: block1 (B, 16, 16, 16), block2 (B, 64, 8, 8), block3 (B, 128, 4, 4).
    block1 is narrow because it runs at full resolution: at 32 channels it was ~40% of the
    compute; at 16, a CPU step is ~1.4x faster and (rotation on digits, 60 s) both the pretext
    accuracy and the few-shot probes of block2/block3 came out as good or better.
    Default embedding: block3 with global pooling for a trained encoder, block2 pooled over a 2x2
    grid for the untrained one (measured, see ``default_layer`` below).
    """

    def __init__(self, in_channels: int = 3, widths: tuple[int, int, int] = (16, 64, 128)) -> None:
        super().__init__(in_channels)
        cin = in_channels
        for i, w in enumerate(widths, start=1):
            self.stages[f"block{i}"] = nn.Sequential(
                *_conv_bn_relu(cin, w), *_conv_bn_relu(w, w), PoolIfLarge()
            )
            cin = w
        self.layer_names = tuple(self.stages.keys())
        self.layer_dims = dict(zip(self.layer_names, widths, strict=True))
        # Measured (benchmarks/embedding_layers.py --datasets digits demo icons, README): after a
        # rotation run, block3 with global pooling is best on average over the three with both
        # few-shot probes (5 labels per class: ensemble 0.786 vs block2 2x2's 0.725; logistic
        # regression 0.772 vs 0.717); the untrained network is best at block2 2x2 (ensemble,
        # 5 / 10 labels: 0.670 / 0.742 vs block3 global's 0.664 / 0.724), and the baseline is
        # compared at its best.
        self.default_layer = "block3"
        self.default_grid = 1
        self.untrained_layer = "block2"
        self.untrained_grid = 2


class ResNet18(Encoder):
    """torchvision ResNet-18 (``weights=None``) as an encoder with layers layer1..layer4.

    For images <= 64 px the stem is a 3x3 stride-1 conv without max-pool (as for CIFAR), so a
    32 px image keeps 32x32 maps in layer1 instead of 8x8. Default layer: layer3 (the last block
    specialises on the pretext task, as RotNet reports).
    """

    def __init__(self, in_channels: int = 3, image_size: int = 32) -> None:
        super().__init__(in_channels)
        # imported here: torchvision's models take ~1 s to import (torch._dynamo through its ops),
        # which every process and first page visit paid for the default small CNN's sake
        from torchvision.models import resnet18

        net = resnet18(weights=None)
        if image_size <= 64:
            conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
            maxpool: nn.Module = nn.Identity()
        else:
            conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            maxpool = net.maxpool
        self.stem = nn.Sequential(conv1, net.bn1, net.relu, maxpool)
        for name in ("layer1", "layer2", "layer3", "layer4"):
            self.stages[name] = getattr(net, name)
        self.layer_names = tuple(self.stages.keys())
        self.layer_dims = {"layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}
        self.default_layer = "layer3"


ENCODERS: dict[str, Callable[..., Encoder]] = {
    "small-cnn": lambda in_channels=3, image_size=32: SmallCNN(in_channels),
    "resnet18": lambda in_channels=3, image_size=32: ResNet18(in_channels, image_size),
}
DEFAULT_ENCODER = "small-cnn"


def create_encoder(name: str, *, in_channels: int = 3, image_size: int = 32) -> Encoder:
    """A freshly initialised encoder by registry name, for inputs of ``in_channels`` channels
    and side ``image_size`` (what the encoder sees: a jigsaw tile, not the whole image)."""
    if name not in ENCODERS:
        raise UserError(f"unknown encoder {name!r}; choose one of: {', '.join(ENCODERS)}")
    return ENCODERS[name](in_channels=in_channels, image_size=image_size)
