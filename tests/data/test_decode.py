"""Validation by decoding and conversion to RGB: every awkward kind, from real encoded bytes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sslviz.data.decode import Rejected, decode, load_rgb
from tests.data.make_files import bad_files, encoded, good_files, noise


@pytest.mark.parametrize("path", sorted(good_files()))
def test_every_good_kind_decodes_to_8bit_rgb(path: str) -> None:
    decoded = decode(good_files()[path])
    assert decoded.rgb.mode == "RGB"
    assert decoded.rgb.size == (decoded.width, decoded.height)
    assert np.asarray(decoded.rgb).dtype == np.uint8


@pytest.mark.parametrize("path", sorted(bad_files()))
def test_every_bad_kind_is_rejected_with_its_reason(path: str) -> None:
    data, word = bad_files()[path]
    with pytest.raises(Rejected, match=word):
        decode(data)


def test_sixteen_bit_grey_is_rescaled_not_clipped() -> None:
    decoded = decode(good_files()["grey16.png"])  # a ramp over the whole 0..65535 range
    pixels = np.asarray(decoded.rgb)[..., 0].astype(float)
    assert decoded.mode == "I;16"
    assert pixels.min() == 0 and pixels.max() == 255
    assert abs(pixels.mean() - 127.5) < 2  # clipping at 255 would put the mean near 255


def test_exif_orientation_swaps_width_and_height() -> None:
    decoded = decode(good_files()["rotated.jpg"])  # stored 40x20 with orientation 6
    assert (decoded.width, decoded.height) == (20, 40)
    assert decoded.rgb.size == (20, 40)


def test_cmyk_converts_to_the_same_colour() -> None:
    red = np.asarray(decode(good_files()["cmyk.jpg"]).rgb).reshape(-1, 3).mean(0)
    assert red[0] > 240 and red[1] < 15 and red[2] < 15


def test_transparency_is_composited_on_white() -> None:
    palette = np.asarray(decode(good_files()["palette_transparent.png"]).rgb)
    assert (palette[:, :12] == (255, 0, 0)).all()  # opaque red half
    assert (palette[:, 12:] == 255).all()  # transparent half
    assert (np.asarray(decode(good_files()["rgba.png"]).rgb) == 255).all()


def test_animation_keeps_its_first_frame() -> None:
    decoded = decode(good_files()["animated.gif"])
    assert decoded.frames == 2
    assert tuple(np.asarray(decoded.rgb)[5, 5]) == (255, 0, 0)


def test_reduced_decoding_still_catches_truncation() -> None:
    jpeg = encoded(noise(512, 512), "JPEG")
    assert decode(jpeg, reduce_to=128).width == 512  # recorded size is the full size
    with pytest.raises(Rejected, match="truncated"):
        decode(jpeg[:-200], reduce_to=128)


def test_load_rgb_matches_what_ingest_validated(tmp_path) -> None:
    path = tmp_path / "rotated.jpg"
    path.write_bytes(good_files()["rotated.jpg"])
    image = load_rgb(path)
    assert image.mode == "RGB" and image.size == (20, 40)
    with Image.open(path) as raw:
        assert raw.size == (40, 20)
