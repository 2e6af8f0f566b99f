"""A file that crashes the image decoder, as a codec bug does: an image format whose decoder
reads address 0 (a real SIGSEGV of the process that decodes it).

Pillow reads a file with whichever registered plugin accepts its first bytes; :func:`register`
adds one for files starting with ``MAGIC``. Decoding processes forked after it inherit it, so a
real ``sslviz ingest`` started through :func:`cli_with_crashing_format` meets the crash in its
pool, exactly where a segfaulting codec would crash it.
"""

from __future__ import annotations

import ctypes
import sys

from PIL import Image, ImageFile

MAGIC = b"SSLVIZ-CRASH"
FORMAT = "SSLVIZCRASH"


class _CrashingImage(ImageFile.ImageFile):
    format = FORMAT
    format_description = "an image whose decoder segfaults"

    def _open(self) -> None:
        if not self.fp.read(len(MAGIC)) == MAGIC:
            raise SyntaxError("not a crashing image")
        ctypes.string_at(0)  # SIGSEGV: the decoding process dies without a word


def register() -> None:
    Image.register_open(FORMAT, _CrashingImage, lambda prefix: prefix.startswith(MAGIC))


def crashing_file() -> bytes:
    return MAGIC + b"\0" * 64


def cli_with_crashing_format(argv: list[str]) -> int:
    """``sslviz ARGV...`` in this process, with the crashing format registered first."""
    register()
    from sslviz.cli import main

    return main(argv)


if __name__ == "__main__":
    raise SystemExit(cli_with_crashing_format(sys.argv[1:]))
