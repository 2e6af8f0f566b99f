"""Validation by decoding and conversion to RGB: every awkward kind, from real encoded bytes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageCms

from sslviz.data.decode import BACKGROUND, Rejected, decode, fit_square, load_rgb, to_rgb
from tests.data.make_files import (
    bad_files,
    colorants,
    display_p3_profile,
    encoded,
    good_files,
    noise,
    srgb_decode,
    srgb_encode,
)


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


# --- colour profiles -----------------------------------------------------------------------------
P3_PIXELS = [(200, 60, 40), (40, 180, 70), (60, 80, 200), (128, 128, 128), (250, 250, 250)]


def _expected_srgb(p3: np.ndarray) -> np.ndarray:
    """P3-encoded uint8 (N, 3) -> the same colours in sRGB, from the two profiles' colorants:
    decode the tone curve, P3 -> XYZ -> sRGB (linear), encode (both use sRGB's curve)."""
    srgb_matrix = colorants(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    p3_matrix = colorants(display_p3_profile())
    linear = srgb_decode(p3 / 255.0) @ (np.linalg.inv(srgb_matrix) @ p3_matrix).T
    return srgb_encode(linear) * 255


def _p3_image(fmt: str) -> bytes:
    pixels = np.array(P3_PIXELS, np.uint8).reshape(1, -1, 3).repeat(12, axis=0).repeat(12, axis=1)
    return encoded(Image.fromarray(pixels), fmt, icc_profile=display_p3_profile())


@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])  # lossless, so pixels can be compared exactly
def test_a_display_p3_image_is_converted_to_srgb(fmt: str, tmp_path) -> None:
    data = _p3_image(fmt)
    path = tmp_path / f"p3.{fmt.lower()}"
    path.write_bytes(data)
    expected = _expected_srgb(np.array(P3_PIXELS, float))
    for rgb in (decode(data).rgb, load_rgb(path)):  # ingest's check and every later read
        got = np.asarray(rgb)[6, 6::12].astype(float)  # one pixel per colour patch
        assert np.abs(got - expected).max() <= 2.5, (got, expected)
    # The conversion is visible: P3's red is more saturated than sRGB's, so the same numbers
    # read as sRGB would be duller (red 200 becomes ~216 in sRGB); greys stay grey.
    red, grey = np.asarray(decode(data).rgb)[6, 6], np.asarray(decode(data).rgb)[6, 42]
    assert red[0] > 210 and red[1] < 60
    assert np.ptp(grey.astype(int)) <= 1


def test_srgb_profiles_and_missing_profiles_keep_the_pixels() -> None:
    pixels = noise(16, 16, 3)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for data in (encoded(pixels, "PNG"), encoded(pixels, "PNG", icc_profile=srgb)):
        assert (np.asarray(decode(data).rgb) == np.asarray(pixels)).all()
    broken = encoded(pixels, "PNG", icc_profile=b"not a profile at all" * 10)
    assert (np.asarray(decode(broken).rgb) == np.asarray(pixels)).all()  # used as they are


def test_a_p3_photo_with_alpha_is_composited_then_converted() -> None:
    rgba = Image.new("RGBA", (16, 16), (200, 60, 40, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 8, 16))  # left half transparent
    rgb = np.asarray(decode(encoded(rgba, "PNG", icc_profile=display_p3_profile())).rgb)
    assert (rgb[:, :8] >= 254).all()  # transparent -> white, and white stays white
    assert abs(int(rgb[0, 12, 0]) - round(_expected_srgb(np.array([[200, 60, 40.0]]))[0, 0])) <= 2


def test_shrinking_before_the_colour_conversion_gives_the_same_picture(tmp_path) -> None:
    path = tmp_path / "p3.png"
    path.write_bytes(_p3_image("PNG"))
    late = load_rgb(path, srgb=False)
    assert "icc_profile" in late.info  # still in P3, and says so
    small_late = to_rgb(late.resize((30, 6), Image.Resampling.NEAREST))
    small_early = load_rgb(path).resize((30, 6), Image.Resampling.NEAREST)
    assert np.abs(np.asarray(small_late, int) - np.asarray(small_early, int)).max() <= 1


def _keyed(mode: str) -> bytes:
    """A 16x16 PNG in ``mode`` whose left half is opaque (red, or grey 200) and whose right half
    is clear by the mode's own kind of transparency: alpha, a palette entry, a colour key."""
    grey = mode in ("L", "LA", "I;16")
    opaque = (200,) if grey else (255, 0, 0)
    if mode in ("RGBA", "LA"):
        image = Image.new(mode, (16, 16), (*opaque, 0))
        image.paste((*opaque, 255), (0, 0, 8, 16))
        return encoded(image, "PNG")
    if mode == "P":
        image = Image.new("P", (16, 16), 1)
        image.putpalette([255, 0, 0, 0, 0, 0] + [0] * 762)
        image.paste(0, (0, 0, 8, 16))
        return encoded(image, "PNG", transparency=1)
    if mode == "I;16":
        array = np.full((16, 16), 7, np.uint16)
        array[:, :8] = 200 * 257
        image = Image.fromarray(array)
        return encoded(image, "PNG", transparency=7)
    key = 0 if grey else (0, 0, 0)  # the tRNS colour key: pixels of this colour are clear
    image = Image.new(mode, (16, 16), key)
    image.paste(opaque[0] if grey else opaque, (0, 0, 8, 16))
    return encoded(image, "PNG", transparency=key)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "RGB", "L", "I;16"])
def test_every_kind_of_transparency_is_composited_on_one_background(mode: str, tmp_path) -> None:
    """An RGB or grey PNG with a tRNS colour key went black where it is clear (a third of a real
    stamp): every transparent mode now gives the same picture to the model and the thumbnail."""
    data = _keyed(mode)
    (tmp_path / "keyed.png").write_bytes(data)
    for rgb in (load_rgb(tmp_path / "keyed.png"), decode(data).rgb):  # model, thumbnail
        pixels = np.asarray(rgb)
        assert (pixels[:, 8:] == BACKGROUND).all(), pixels[0]  # the clear half
        assert (pixels[:, :8] != BACKGROUND).any(axis=-1).all()  # the opaque half kept


def test_a_thin_image_is_an_image_judged_by_its_longer_side(tmp_path) -> None:
    """A 39x7 clip-art rule was refused as "too small"; the cache pads it whole instead of
    cutting a 7x7 sliver from its middle."""
    rule = np.zeros((7, 39, 3), np.uint8)
    rule[:, :, 0] = np.linspace(0, 250, 39).astype(np.uint8)  # red grows left to right
    decoded = decode(encoded(Image.fromarray(rule), "PNG"))
    assert (decoded.width, decoded.height) == (39, 7)
    with pytest.raises(Rejected, match="longer side"):
        decode(encoded(noise(7, 3), "PNG"))
    square = np.asarray(fit_square(decoded.rgb, 32))  # (32, 32, 3)
    assert (square[:10] == BACKGROUND).all() and (square[-10:] == BACKGROUND).all()  # padded
    band = square[14:18, :, 0].astype(int)  # the rule, all of it: dark left, bright right
    assert band[:, :3].mean() < 40 and band[:, -3:].mean() > 210
    photo = noise(40, 30)  # an ordinary aspect is still cut from the centre, not padded
    assert (np.asarray(fit_square(photo, 30)) == np.asarray(photo)[:, 5:35]).all()
