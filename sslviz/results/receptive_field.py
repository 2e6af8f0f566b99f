"""Where a unit of a feature map looks: its receptive field in the model's input, and the same box
in the stored image's pixels.

The field is computed from the layers themselves (kernel, stride, padding of every conv and pool
on the way to the layer), the classic recurrence of Araujo et al., "Computing Receptive Fields of
Convolutional Neural Networks" (Distill 2019):

    size_out  = size_in + (k - 1) * jump_in
    jump_out  = jump_in * stride
    start_out = start_in + ((k - 1) / 2 - padding) * jump_in      (centre of unit 0)

A residual block's field is its main branch's (the 1x1 shortcut sees less). The map's side is
followed too, because the small CNN skips its 2x2 pool once a map is under 4 px.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from sslviz.models.encoders import Encoder, PoolIfLarge

SKIPPED_BRANCHES = ("downsample",)  # ResNet shortcuts: narrower than the main branch


@dataclass(frozen=True)
class Geometry:
    """How the units of one layer's map sit on an input of side ``input_side``."""

    input_side: int
    map_side: int  # h == w of the layer's map for that input
    size: int  # receptive field side, in input pixels
    jump: float  # input pixels between neighbouring units
    start: float  # centre of unit (0, 0), in input pixels (pixel centres at 0.5, 1.5, ...)

    def box(self, row: int, col: int) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) of unit (row, col)'s field in input pixels, clipped to the input."""
        cx, cy = self.start + col * self.jump, self.start + row * self.jump
        half = self.size / 2
        side = self.input_side
        return (
            max(0.0, cx - half),
            max(0.0, cy - half),
            min(float(side), cx + half),
            min(float(side), cy + half),
        )


def _pair(value: int | tuple[int, ...]) -> int:
    return int(value[0] if isinstance(value, tuple) else value)


def _step(module: nn.Module, side: int) -> tuple[int, int, int, int] | None:
    """(kernel, stride, padding, dilation) of a leaf that moves the field, else None."""
    if isinstance(module, nn.Conv2d):
        return (
            _pair(module.kernel_size),
            _pair(module.stride),
            _pair(module.padding),
            _pair(module.dilation),
        )
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        stride = module.stride or module.kernel_size
        dilation = getattr(module, "dilation", 1)
        return _pair(module.kernel_size), _pair(stride), _pair(module.padding), _pair(dilation)
    if isinstance(module, PoolIfLarge):
        return (2, 2, 0, 1) if side >= 4 else None
    return None


def _leaves(module: nn.Module) -> list[nn.Module]:
    """Leaves in forward order (registration order), residual shortcuts left out."""
    children = list(module.named_children())
    if not children or isinstance(module, PoolIfLarge):
        return [module]
    out: list[nn.Module] = []
    for name, child in children:
        if name not in SKIPPED_BRANCHES:
            out.extend(_leaves(child))
    return out


def layer_geometry(encoder: Encoder, layer: str, input_side: int) -> Geometry:
    """The receptive field of ``layer``'s units for square inputs of ``input_side`` px."""
    encoder.check_layer(layer)
    modules = _leaves(encoder.stem)
    for name, stage in encoder.stages.items():
        modules.extend(_leaves(stage))
        if name == layer:
            break
    size, jump, start, side = 1.0, 1.0, 0.5, input_side
    for module in modules:
        step = _step(module, side)
        if step is None:
            continue
        k, s, p, d = step
        k = d * (k - 1) + 1  # a dilated kernel's extent
        size += (k - 1) * jump
        start += ((k - 1) / 2 - p) * jump
        jump *= s
        side = (side + 2 * p - k) // s + 1
    return Geometry(input_side, side, round(size), jump, start)


def to_stored(
    box: tuple[float, float, float, float], input_side: int, width: int, height: int
) -> list[int]:
    """A box in the model's square input -> [x0, y0, x1, y1] in the stored image's pixels.

    The input is the stored image with its shorter side resized to ``input_side`` and the centre
    cropped square (as the decoded cache and ``apply`` make it), so this undoes that."""
    short = min(width, height)
    scale = short / input_side
    left, top = (width - short) / 2, (height - short) / 2
    x0, y0, x1, y1 = box
    return [
        max(0, int(left + x0 * scale)),
        max(0, int(top + y0 * scale)),
        min(width, round(left + x1 * scale)),
        min(height, round(top + y1 * scale)),
    ]
