"""sRGB <-> CIE Lab (D65 white, 2-degree observer) in torch, batched, on any device.

The same formulas as scikit-image's ``rgb2lab``/``lab2rgb``: sRGB gamma, the sRGB->XYZ matrix,
and Lab's cube-root compression with its linear segment near black. L is in [0, 100]; a and b are
roughly in [-128, 127] for colours sRGB can show.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

RGB_TO_XYZ = (
    (0.412453, 0.357580, 0.180423),
    (0.212671, 0.715160, 0.072169),
    (0.019334, 0.119193, 0.950227),
)
# Inverted once here, in float64 by numpy: devices without float64 (Apple's MPS) then convert
# Lab in float32 like any other dtype (an inverse per call in .double() failed there).
XYZ_TO_RGB = tuple(tuple(float(v) for v in row) for row in np.linalg.inv(np.array(RGB_TO_XYZ)))
D65_WHITE = (0.95047, 1.0, 1.08883)
EPS = (6 / 29) ** 3  # below this, Lab's f() is linear instead of a cube root
KAPPA = 1 / (3 * (6 / 29) ** 2)


def _matrix(rows: tuple[tuple[float, ...], ...], like: Tensor) -> Tensor:
    return torch.tensor(rows, dtype=like.dtype, device=like.device)


def srgb_to_linear(rgb: Tensor) -> Tensor:
    """Gamma-encoded sRGB in [0, 1] -> linear light, elementwise."""
    return torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb.clamp(min=0) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(lin: Tensor) -> Tensor:
    """Linear light -> gamma-encoded sRGB, elementwise (clamp first for values outside [0, 1])."""
    return torch.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin.clamp(min=0) ** (1 / 2.4) - 0.055)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """float sRGB (B, 3, H, W) in [0, 1] -> Lab (B, 3, H, W): L in [0, 100], a, b."""
    lin = srgb_to_linear(rgb)
    xyz = torch.einsum("ij,bjhw->bihw", _matrix(RGB_TO_XYZ, rgb), lin)
    xyz = xyz / torch.tensor(D65_WHITE, dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    f = torch.where(xyz > EPS, xyz.clamp(min=EPS) ** (1 / 3), KAPPA * xyz + 4 / 29)
    fx, fy, fz = f.unbind(dim=1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


def lab_to_linear(lab: Tensor) -> Tensor:
    """Lab (B, 3, H, W) -> linear RGB (B, 3, H, W), NOT clipped: values outside [0, 1] mean
    the colour is outside the sRGB gamut."""
    L, a, b = lab.unbind(dim=1)
    fy = (L + 16) / 116
    f = torch.stack([fy + a / 500, fy, fy - b / 200], dim=1)
    xyz = torch.where(f > 6 / 29, f**3, (f - 4 / 29) / KAPPA)
    xyz = xyz * torch.tensor(D65_WHITE, dtype=lab.dtype, device=lab.device).view(1, 3, 1, 1)
    return torch.einsum("ij,bjhw->bihw", _matrix(XYZ_TO_RGB, lab), xyz)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """Lab (B, 3, H, W) -> float sRGB (B, 3, H, W) in [0, 1] (out-of-gamut colours clipped)."""
    return linear_to_srgb(lab_to_linear(lab).clamp(0, 1))


def rgb_uint8_to_lab(images: Tensor) -> Tensor:
    """uint8 (B, 3, H, W) -> float32 Lab (B, 3, H, W)."""
    return rgb_to_lab(images.float() / 255.0)


def lab_to_rgb_uint8(lab: Tensor) -> Tensor:
    """Lab (B, 3, H, W) -> uint8 sRGB (B, 3, H, W)."""
    return (lab_to_rgb(lab) * 255.0).round().clamp(0, 255).to(torch.uint8)
