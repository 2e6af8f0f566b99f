"""Real files of every kind ingestion must handle, written with Pillow (no fixtures on disk)."""

from __future__ import annotations

import io
import os
import struct
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

EXIF_ORIENTATION = 0x0112


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


@cache
def good_files() -> dict[str, bytes]:
    """Valid images, one per awkward kind, by relative path."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored landscape, shown portrait
    palette = Image.new("P", (24, 24), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    palette.paste(1, (0, 0, 12, 24))
    red, blue = Image.new("RGB", (20, 20), (255, 0, 0)), Image.new("RGB", (20, 20), (0, 0, 255))
    grey16 = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    return {
        "plain.jpg": encoded(noise(40, 30, 1), "JPEG"),
        "sub/deeper/nested.png": encoded(noise(16, 16, 2), "PNG"),
        "rotated.jpg": encoded(noise(40, 20, 3), "JPEG", exif=exif),
        "cmyk.jpg": encoded(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG"),
        "grey16.png": encoded(Image.fromarray(grey16), "PNG"),
        "palette_transparent.png": encoded(palette, "PNG", transparency=0),
        "rgba.png": encoded(Image.new("RGBA", (16, 16), (0, 128, 0, 0)), "PNG"),
        "la.png": encoded(Image.new("LA", (16, 16), (10, 255)), "PNG"),
        "animated.gif": encoded(red, "GIF", save_all=True, append_images=[blue], duration=100),
        "bitmap.bmp": encoded(noise(12, 9, 4), "BMP"),
        "webp image.webp": encoded(noise(20, 20, 5), "WEBP"),
        "float.tif": encoded(Image.fromarray(np.full((10, 10), 0.5, np.float32)), "TIFF"),
        "no_extension": encoded(noise(10, 10, 6), "PNG"),
        "wrong_extension.png": encoded(noise(11, 11, 7), "JPEG"),
        "thin.png": encoded(noise(39, 7, 8), "PNG"),  # a clip-art rule: judged by its longer side
    }


@cache
def bad_files() -> dict[str, tuple[bytes, str]]:
    """Unusable files by relative path, with (a word of) the reason each must be rejected for."""
    jpeg = encoded(noise(64, 64, 8), "JPEG")
    png = encoded(noise(64, 64, 9), "PNG")
    gif = encoded(noise(64, 64, 11), "GIF")
    webp = encoded(noise(64, 64, 12), "WEBP")
    return {
        "zero.png": (b"", "empty"),
        "truncated.jpg": (jpeg[: len(jpeg) // 2], "truncated"),
        "truncated.png": (png[: len(png) // 2], "truncated"),
        "text.jpg": (b"this is not an image\n" * 10, "not an image"),
        "drawing.svg": (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "SVG"),
        # 400 M pixels (over 2x Pillow's limit: an error) and 100 M (over 1x: a warning), each a
        # 1-bit PNG of a few tens of kB.
        "bomb_error.png": (encoded(Image.new("1", (20000, 20000)), "PNG"), "decompression bomb"),
        "bomb_warning.png": (encoded(Image.new("1", (10000, 10000)), "PNG"), "decompression bomb"),
        "png_without_end.png": (png[:-13], "truncated"),  # pixels complete, IEND chunk cut
        "truncated.gif": (gif[:-1], "truncated"),
        "truncated.webp": (webp[: len(webp) - 40], "truncated"),
        "tiny.png": (encoded(noise(4, 4), "PNG"), "too small"),
        "short_line.png": (encoded(noise(7, 3), "PNG"), "too small"),  # 7 px long at most
    }


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def make_folder(root: Path) -> dict[str, str]:
    """A folder of good and bad files. Returns {bad relative path: expected reason word}."""
    write_tree(root, good_files())
    bad = bad_files()
    write_tree(root, {path: data for path, (data, _) in bad.items()})
    expected = {path: word for path, (_, word) in bad.items()}
    outside = root.parent / "outside.png"
    outside.write_bytes(encoded(noise(16, 16, 10), "PNG"))
    os.symlink(outside, root / "link_out.png")
    expected["link_out.png"] = "outside"
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    expected[".DS_Store"] = "hidden"
    return expected


# --- colour profiles -----------------------------------------------------------------------------
# Display P3's primaries adapted to the ICC's D50 white (the rXYZ/gXYZ/bXYZ tags of Apple's
# "Display P3" profile); its tone curve is sRGB's, as here.
P3_COLORANTS = (
    (0.515121, 0.241196, -0.001053),
    (0.291977, 0.692245, 0.041885),
    (0.157104, 0.066574, 0.784073),
)


def _tags(profile: bytes) -> dict[bytes, tuple[int, int]]:
    count = struct.unpack(">I", profile[128:132])[0]
    entries = (struct.unpack(">4sII", profile[132 + 12 * i : 144 + 12 * i]) for i in range(count))
    return {sig: (offset, size) for sig, offset, size in entries}


def colorants(profile: bytes) -> np.ndarray:
    """The (3, 3) matrix whose columns are a matrix/TRC profile's red, green, blue XYZ (D50)."""
    tags = _tags(profile)
    columns = []
    for sig in (b"rXYZ", b"gXYZ", b"bXYZ"):
        offset = tags[sig][0] + 8  # after "XYZ " and 4 reserved bytes
        columns.append([v / 65536 for v in struct.unpack(">3i", profile[offset : offset + 12])])
    return np.array(columns).T


def display_p3_profile() -> bytes:
    """A Display P3 ICC profile: LittleCMS's sRGB profile with P3's colorants written in (same
    tone curve) and another description, so nothing can take it for sRGB."""
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    tags = _tags(bytes(data))
    for sig, xyz in zip((b"rXYZ", b"gXYZ", b"bXYZ"), P3_COLORANTS, strict=True):
        offset = tags[sig][0] + 8
        data[offset : offset + 12] = struct.pack(">3i", *(round(v * 65536) for v in xyz))
    desc_start, desc_size = tags[b"desc"]
    desc = bytes(data[desc_start : desc_start + desc_size])
    old = "sRGB built-in".encode("utf-16-be")
    assert old in desc
    data[desc_start : desc_start + desc_size] = desc.replace(
        old, "P3 test built".encode("utf-16-be")
    )
    data[84:100] = bytes(16)  # profile ID (an MD5 of the rest): 0 means "not computed"
    return bytes(data)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """sRGB's tone curve (also Display P3's): linear 0..1 -> encoded 0..1."""
    linear = np.clip(linear, 0, 1)
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)
