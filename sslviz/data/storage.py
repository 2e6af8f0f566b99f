"""Where an ingested image's bytes and thumbnail live inside its dataset's folder.

Files are named by content hash, never by anything the user supplied, so no name in a folder, zip
or upload can become a filesystem path:

    <dataset_dir>/files/<sha256>.<ext>     the original bytes, unchanged
    <dataset_dir>/thumbs/<sha256>.jpg      a small RGB JPEG for the gallery
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image as PILImage

from sslviz.core.atomic import write_bytes
from sslviz.store import Image, Store

THUMB_SIZE = 128  # pixels on the longer side
THUMB_QUALITY = 85
_EXTENSIONS = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "GIF": ".gif",
    "WEBP": ".webp",
    "TIFF": ".tif",
    "BMP": ".bmp",
}


def stored_name(sha256: str, fmt: str) -> str:
    """The stored file's name: the hash plus an extension derived from the decoded format."""
    ext = _EXTENSIONS.get(fmt) or "." + ("".join(c for c in fmt.lower() if c.isalnum()) or "img")
    return f"{sha256}{ext}"


def image_path(store: Store, image: Image) -> Path:
    """The stored original of ``image`` (read it with :func:`sslviz.data.load_rgb`)."""
    return store.workspace.dataset_dir(image.dataset_id) / image.file


def thumbnail_path(store: Store, image: Image) -> Path:
    """The gallery thumbnail of ``image``: an RGB JPEG at most ``THUMB_SIZE`` px a side."""
    return store.workspace.dataset_dir(image.dataset_id) / "thumbs" / f"{image.sha256}.jpg"


def thumbnail_bytes(rgb: PILImage.Image, size: int = THUMB_SIZE) -> bytes:
    thumb = rgb.copy()
    thumb.thumbnail((size, size), PILImage.Resampling.BILINEAR, reducing_gap=2.0)
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=THUMB_QUALITY)
    return out.getvalue()


def write_once(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically unless it exists (same name = same content)."""
    if path.exists():
        return
    # The pid in the temporary name lets a later ingest remove the file if this process is killed
    # mid-write (``sslviz.data.recovery.clean_leftovers``).
    write_bytes(path, data)
