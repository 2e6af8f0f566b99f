"""RGB <-> Lab in torch against scikit-image (when installed) and textbook colour values."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from sslviz.pretext.lab import lab_to_rgb, lab_to_rgb_uint8, rgb_to_lab, rgb_uint8_to_lab

# sRGB primaries, white, black and a mid grey in CIE Lab (D65), to two decimals.
KNOWN = [
    ((255, 0, 0), (53.24, 80.09, 67.20)),
    ((0, 255, 0), (87.73, -86.18, 83.18)),
    ((0, 0, 255), (32.30, 79.19, -107.86)),
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((128, 128, 128), (53.59, 0.0, 0.0)),
]


def as_image(rgb: tuple[int, int, int]) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.uint8).view(1, 3, 1, 1)


@pytest.mark.parametrize(("rgb", "lab"), KNOWN)
def test_known_colours(rgb: tuple[int, int, int], lab: tuple[float, float, float]) -> None:
    got = rgb_uint8_to_lab(as_image(rgb)).flatten()
    torch.testing.assert_close(got, torch.tensor(lab), atol=0.02, rtol=0)


def test_matches_scikit_image(photos32: torch.Tensor) -> None:
    color = pytest.importorskip("skimage.color")
    rgb = photos32.permute(0, 2, 3, 1).numpy()  # (N, H, W, 3)
    ref = torch.from_numpy(color.rgb2lab(rgb)).permute(0, 3, 1, 2).float()
    torch.testing.assert_close(rgb_uint8_to_lab(photos32), ref, atol=2e-3, rtol=0)
    back = torch.from_numpy(color.lab2rgb(ref.permute(0, 2, 3, 1).double().numpy()))
    torch.testing.assert_close(
        lab_to_rgb(ref.double()), back.permute(0, 3, 1, 2), atol=1e-4, rtol=0
    )


def test_round_trip_is_lossless_in_uint8() -> None:
    """Every 5th level of each channel (52^3 colours, the corners included) survives RGB -> Lab
    -> RGB to within 1/255 in float and exactly after rounding."""
    v = torch.arange(0, 256, 5, dtype=torch.uint8)
    r, g, b = torch.meshgrid(v, v, v, indexing="ij")
    images = torch.stack([r, g, b]).reshape(1, 3, -1, 1)  # (1, 3, 52^3, 1)
    lab = rgb_to_lab(images.float() / 255)
    assert (lab_to_rgb(lab) - images.float() / 255).abs().max().item() < 1 / 255
    assert torch.equal(lab_to_rgb_uint8(lab), images)


def test_out_of_gamut_is_clipped() -> None:
    rgb = lab_to_rgb(torch.tensor([50.0, 120.0, -120.0]).view(1, 3, 1, 1))
    assert rgb.min() >= 0 and rgb.max() <= 1


class NoFloat64(TorchDispatchMode):
    """Fails any op that makes or reads a float64 tensor: a device without float64 (Apple MPS)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tensors = [t for t in tree_flatten((args, kwargs, out))[0] if isinstance(t, torch.Tensor)]
        if any(t.dtype == torch.float64 for t in tensors) or kwargs.get("dtype") == torch.float64:
            raise RuntimeError(f"{func} uses float64, which this device lacks")
        return out


def test_converts_in_float32_without_float64(photos32: torch.Tensor) -> None:
    """Both directions run with no float64 anywhere and keep their accuracy (MPS trained a
    colorization run and then failed in evaluation on lab_to_linear's .double())."""
    expected = rgb_uint8_to_lab(photos32)
    with NoFloat64():
        lab = rgb_uint8_to_lab(photos32)
        back = lab_to_rgb_uint8(lab)
    torch.testing.assert_close(lab, expected)
    assert lab.dtype == torch.float32
    assert (back.int() - photos32.int()).abs().max() <= 1
