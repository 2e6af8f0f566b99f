"""Open, validate and convert one image: the only place that decides what counts as an image.

A file is an image if Pillow can decode all of it (a full ``load()``, so truncation shows), within
Pillow's decompression-bomb pixel limit, at least ``MIN_SIDE`` pixels on its longer side (a 39x7
clip-art rule is an image; a 4x4 dot is not). Accepted images are read everywhere later through
:func:`load_rgb`: EXIF orientation applied, first frame of an animation, any mode converted to 8-bit
RGB with every kind of transparency (an alpha channel, a palette's or a colour key's ``tRNS``)
composited on one ``BACKGROUND``, so the model and the thumbnails see the same picture, and colours
converted to sRGB when the file embeds another ICC colour profile (phone photos are often in
Display P3: read as if sRGB, their colours come out dull and shifted). The stored file keeps its
original bytes and profile.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

MIN_SIDE = 8  # pixels on the longer side; smaller images carry nothing a CNN can learn from
BACKGROUND = (255, 255, 255)  # under transparent pixels and around a padded thin image
MAX_CROP_ASPECT = 2.0  # longer / shorter side up to which a square is cut from the centre
# Bumped whenever what ``load_rgb`` + ``fit_square`` give for a file changes: names the caches.
# 2: colour-key transparency composited like alpha; thin images padded, not cropped.
DECODE_VERSION = 2
if TYPE_CHECKING:
    import numpy as np

_ORIENTATION_TAG = 0x0112
_SWAPS_SIDES = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class Rejected(Exception):
    """A file is not a usable image; ``str(error)`` is the short human reason."""


@dataclass(frozen=True)
class Decoded:
    """A validated image: its RGB pixels and what the store records about the original."""

    rgb: Image.Image  # converted, oriented; possibly reduced in scale when ``reduce_to`` was asked
    width: int  # of the full image after EXIF orientation
    height: int
    mode: str  # Pillow mode of the original, before conversion
    format: str
    frames: int


def decode(data: bytes, *, reduce_to: int | None = None) -> Decoded:
    """Validate ``data`` by decoding it completely; raise :class:`Rejected` with a reason if unusable.

    ``reduce_to`` lets JPEG decode at a smaller DCT scale (at least that many pixels a side) when
    only a thumbnail is needed: every byte is still decoded, so truncation is still caught.
    """
    if not data:
        raise Rejected("empty file (0 bytes)")
    with warnings.catch_warnings():
        # Pillow only *warns* between 1x and 2x its pixel limit; both levels are a bomb here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise Rejected(_bomb_reason(error)) from None
        except UnidentifiedImageError:
            raise Rejected(_unidentified_reason(data)) from None
        except Exception as error:  # Pillow plugins raise many types on malformed headers
            if _incomplete(data, "WEBP" if data[8:12] == b"WEBP" else ""):
                raise Rejected("truncated image file") from None
            raise Rejected(_decode_error_reason(error)) from None

        width, height = img.size
        if max(width, height) < MIN_SIDE:
            raise Rejected(
                f"too small ({width}x{height} px; at least {MIN_SIDE} px on its longer side)"
            )
        mode, fmt = img.mode, img.format or "unknown"
        frames = int(getattr(img, "n_frames", 1) or 1)
        try:
            orientation = int(img.getexif().get(_ORIENTATION_TAG, 1) or 1)
        except Exception:  # a broken EXIF block is not a broken image
            orientation = 1
        if orientation in _SWAPS_SIDES:
            width, height = height, width
        try:
            if reduce_to and fmt == "JPEG":
                img.draft(img.mode, (reduce_to, reduce_to))
            img.load()
            rgb = to_rgb(_oriented(img))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise Rejected(_bomb_reason(error)) from None
        except MemoryError:
            raise Rejected("too large to decode in memory") from None
        except Exception as error:
            if _incomplete(data, fmt):
                raise Rejected("truncated image file") from None
            raise Rejected(_decode_error_reason(error)) from None
    if _incomplete(data, fmt):
        raise Rejected("truncated image file")
    return Decoded(rgb=rgb, width=width, height=height, mode=mode, format=fmt, frames=frames)


def load_rgb(path: Path | str, *, srgb: bool = True) -> Image.Image:
    """A stored image as 8-bit RGB: EXIF orientation applied, first frame, alpha on white, colours
    in sRGB. With ``srgb=False`` an RGB image keeps its own colour space and its ICC profile (in
    ``.info``), so a caller that shrinks it first can convert far fewer pixels afterwards:
    ``to_rgb(small)`` (a 12 MP photo's conversion costs ~1.5x its decoding)."""
    with Image.open(path) as img:
        img.load()
        oriented = _oriented(img)
        if not srgb and oriented.mode == "RGB":
            return oriented
        return to_rgb(oriented)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit sRGB. Alpha is composited on white; 16-bit and float are
    rescaled; an embedded RGB or CMYK ICC profile other than sRGB is converted to sRGB.

    16-bit greyscale maps 0..65535 onto 0..255 (not clipped at 255, which would turn it white).
    """
    profile = img.info.get("icc_profile")
    if profile and img.mode == "CMYK":  # through its profile, not Pillow's naive formula
        converted = _convert(img, bytes(profile), "CMYK")
        if converted is not None:
            return converted
    rgb = _plain_rgb(img)
    if profile and img.mode != "CMYK":  # alpha composited on white first: white stays white
        return _convert(rgb, bytes(profile), "RGB") or rgb
    return rgb


def _convert(img: Image.Image, profile: bytes, mode: str) -> Image.Image | None:
    transform = _to_srgb(profile, mode)
    if transform is None:
        return None
    try:
        return ImageCms.applyTransform(img, transform)
    except (ValueError, ImageCms.PyCMSError):
        return None


@lru_cache(maxsize=16)
def _to_srgb(profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform from the embedded ``profile`` (pixels in ``mode``, RGB or CMYK) to sRGB, or
    None if there is nothing to do (already sRGB, a profile of another colour space) or the profile
    can't be read (the pixels are then used as they are, as before). Cached: a folder of photos
    from one phone carries the same profile thousands of times."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        space = source.profile.xcolor_space.strip()
        if space != {"RGB": "RGB", "CMYK": "CMYK"}[mode]:
            return None
        if mode == "RGB" and "srgb" in (source.profile.profile_description or "").lower():
            return None  # the common case: sRGB declared explicitly; the transform is identity
        return ImageCms.buildTransform(source, _srgb(), mode, "RGB")
    except (OSError, ValueError, TypeError, ImageCms.PyCMSError):
        return None


@lru_cache(maxsize=1)
def _srgb() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


def fit_square(image: Image.Image, size: int) -> Image.Image:
    """An RGB image -> ``size`` x ``size``, as the training cache and the live demo see it: the
    shorter side resized to ``size`` and the centre cut square; an image more than
    ``MAX_CROP_ASPECT`` times longer than wide (or wide than long) is instead shrunk whole, aspect
    kept, and padded with ``BACKGROUND`` (a centre square of a 39x7 rule would be a 7x7 sliver)."""
    width, height = image.size
    if max(width, height) <= MAX_CROP_ASPECT * min(width, height):
        return ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC)
    scale = size / max(width, height)
    inner = (max(1, round(width * scale)), max(1, round(height * scale)))
    canvas = Image.new("RGB", (size, size), BACKGROUND)
    resized = image.resize(inner, Image.Resampling.BICUBIC)
    canvas.paste(resized, ((size - inner[0]) // 2, (size - inner[1]) // 2))
    return canvas


def _plain_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB, colour values taken as they are; whatever is transparent
    (alpha, a palette entry, an RGB or grey colour key) composited on ``BACKGROUND``."""
    mode = img.mode
    if mode in _ALPHA_MODES or "transparency" in img.info:
        return _on_background(img)
    if mode == "RGB":
        return img
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        return _grey_to_uint8(img).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError:
        raise Rejected(f"unsupported colour mode {mode}") from None


def _on_background(img: Image.Image) -> Image.Image:
    """``img`` over ``BACKGROUND``: one compositing for every kind of transparency."""
    if img.mode in _SIXTEEN_BIT or img.mode in ("I", "F"):
        import numpy as np

        # a 16-bit grey colour key: pixels equal to the key are clear; Pillow can't convert these
        key = img.info.get("transparency")
        clear = np.asarray(img) == key if isinstance(key, int) else None
        img = _grey_to_uint8(img).convert("RGBA")
        if clear is not None:
            img.putalpha(Image.fromarray(np.where(clear, 0, 255).astype(np.uint8), "L"))
    rgba = img.convert("RGBA")
    out = Image.new("RGB", rgba.size, BACKGROUND)
    out.paste(rgba, mask=rgba.getchannel("A"))
    return out


def _grey_to_uint8(img: Image.Image) -> Image.Image:
    """A 16-bit, 32-bit integer or float grey image -> 8-bit grey ("L")."""
    import numpy as np  # here, not at the top: decoding workers start faster without it

    return Image.fromarray(_to_uint8(np.asarray(img), sixteen_bit=img.mode in _SIXTEEN_BIT), "L")


def _to_uint8(values: np.ndarray, *, sixteen_bit: bool) -> np.ndarray:
    """Integer or float grey levels (H, W) -> uint8 (H, W), keeping the original's meaning."""
    import numpy as np

    v = values.astype(np.float64)
    lo, hi = (float(v.min()), float(v.max())) if v.size else (0.0, 0.0)
    if sixteen_bit or (lo >= 0 and 255 < hi <= 65535 and values.dtype.kind in "iu"):
        scaled = v / 257.0
    elif values.dtype.kind == "f" and lo >= 0 and hi <= 1:
        scaled = v * 255.0
    elif lo >= 0 and hi <= 255:
        scaled = v
    else:  # unknown range (negative or very large values): stretch what is there
        scaled = (v - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(v)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _oriented(img: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(img) or img
    except Exception:  # keep the pixels as stored if the EXIF block is unreadable
        return img


def _incomplete(data: bytes, fmt: str) -> bool:
    """True if the file ends before its format's end marker.

    Pillow stops reading once it has the pixels, so a PNG or GIF cut inside its last chunk
    still decodes; a file cut short is still broken (and often a sign of a failed copy).
    """
    if fmt == "PNG":
        return data.rfind(b"IEND\xaeB`\x82") == -1
    if fmt == "GIF":
        return b";" not in data[-16:]
    if fmt == "WEBP" and data[:4] == b"RIFF":
        return int.from_bytes(data[4:8], "little") + 8 > len(data)
    return False


# --- reasons ---------------------------------------------------------------------------------
def _bomb_reason(error: BaseException) -> str:
    match = re.search(r"\((\d+) pixels\)", str(error))
    pixels = f"{int(match.group(1)):,} pixels, " if match else ""
    return f"decompression bomb ({pixels}over Pillow's limit of {Image.MAX_IMAGE_PIXELS:,})"


def _unidentified_reason(data: bytes) -> str:
    head = data[:1024].lstrip()
    lowered = head.lower()
    if b"<svg" in lowered or (lowered.startswith(b"<?xml") and b"svg" in lowered):
        return "unsupported format (SVG)"
    if head.startswith(b"%PDF"):
        return "unsupported format (PDF)"
    if data[4:8] == b"ftyp" and data[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"hevc"):
        return "unsupported format (HEIC)"
    if data.startswith((b"PK\x03\x04", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!")):
        return "archive inside the source (not expanded)"
    return "not an image"


def _decode_error_reason(error: BaseException) -> str:
    message = str(error)
    lowered = message.lower()
    if isinstance(error, EOFError) or any(
        key in lowered for key in ("truncated", "broken data stream", "end of file", "premature")
    ):
        return "truncated image file"
    if isinstance(error, Rejected):
        return message
    short = message.splitlines()[0][:100] if message else type(error).__name__
    return f"corrupt image data ({short})"
