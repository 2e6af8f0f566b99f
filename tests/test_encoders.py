"""Every registered encoder answers the same interface (parametrized over the registry)."""

from __future__ import annotations

import pytest
import torch

from sslviz.core.errors import UserError
from sslviz.models.encoders import DEFAULT_ENCODER, ENCODERS, Encoder, create_encoder

torch.set_num_threads(1)


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("in_channels", [1, 3])
def test_interface_shapes(name: str, in_channels: int) -> None:
    enc = create_encoder(name, in_channels=in_channels, image_size=24)
    assert isinstance(enc, Encoder) and enc.in_channels == in_channels
    assert enc.default_layer in enc.layer_names
    assert enc.embed_dim == enc.pooled_dim(enc.default_layer, enc.default_grid)
    assert enc.out_channels == enc.layer_dims[enc.layer_names[-1]]
    enc.eval()
    x = torch.randn(2, in_channels, 24, 24)
    maps = enc.feature_maps(x)
    assert list(maps) == list(enc.layer_names)  # shallow -> deep
    for layer, fmap in maps.items():
        assert fmap.shape[:2] == (2, enc.layer_dims[layer])
    assert torch.equal(enc(x), maps[enc.layer_names[-1]])
    assert enc.embed(x).shape == (2, enc.embed_dim)
    first = enc.layer_names[0]
    # global pooling: each channel's average, then its maximum
    average, maximum = enc.embed(x, first).split(enc.layer_dims[first], dim=1)
    assert torch.allclose(average, maps[first].mean(dim=(2, 3)))
    assert torch.allclose(maximum, maps[first].amax(dim=(2, 3)))
    assert enc.embed(x, first, 2).shape == (2, enc.pooled_dim(first, 2))
    assert enc.pooled_dim(first, 2) == 4 * enc.layer_dims[first]


@pytest.mark.parametrize("name", sorted(ENCODERS))
@pytest.mark.parametrize("side", [6, 9, 17])
def test_tiny_inputs_do_not_crash(name: str, side: int) -> None:
    """Jigsaw tiles are 6-20 px: every layer must still produce a non-empty map."""
    enc = create_encoder(name, image_size=side)
    maps = enc.feature_maps(torch.randn(3, 3, side, side))
    assert all(min(m.shape[-2:]) >= 1 for m in maps.values())
    enc(torch.randn(3, 3, side, side)).sum().backward()


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_unknown_layer_lists_valid_ones(name: str) -> None:
    enc = create_encoder(name)
    with pytest.raises(UserError, match=enc.layer_names[0]):
        enc.embed(torch.randn(1, 3, 16, 16), layer="nope")


def test_unknown_encoder_lists_valid_ones() -> None:
    with pytest.raises(UserError, match="small-cnn"):
        create_encoder("vgg99")


def test_defaults_follow_design() -> None:
    """DESIGN 3.5, re-measured on three families: a trained small CNN embeds best at block3
    (global pooling), the untrained one at block2 (2x2); ResNet-18 at layer3."""
    assert DEFAULT_ENCODER in ENCODERS
    small = create_encoder("small-cnn")
    assert (small.default_layer, small.default_grid) == ("block3", 1)
    assert (small.untrained_layer, small.untrained_grid) == ("block2", 2)
    assert create_encoder("resnet18").default_layer == "layer3"


def test_resnet_stem_depends_on_image_size() -> None:
    small = create_encoder("resnet18", image_size=32).eval()
    large = create_encoder("resnet18", image_size=128).eval()
    # 3x3 stride-1 stem without max-pool keeps layer1 at full resolution for small images.
    assert small.feature_maps(torch.randn(1, 3, 32, 32), ["layer1"])["layer1"].shape[-1] == 32
    assert large.feature_maps(torch.randn(1, 3, 128, 128), ["layer1"])["layer1"].shape[-1] == 32


def test_feature_maps_of_a_subset() -> None:
    enc = create_encoder("small-cnn").eval()
    maps = enc.feature_maps(torch.randn(2, 3, 32, 32), ["block1", "block2"])
    assert list(maps) == ["block1", "block2"]
    assert maps["block1"].shape == (2, 16, 16, 16) and maps["block2"].shape == (2, 64, 8, 8)
