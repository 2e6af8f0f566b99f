"""One PNG of what ``apply`` shows (``sslviz apply --out``): the headline, then the panels side by
side, each with its title above and its caption below (green if right, red if wrong)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from sslviz.pretext.render import BAD, GOOD, PLAIN, to_pil

PAD = 16
TEXT = 22  # px: readable when the picture is projected


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one small bitmap font
        return ImageFont.load_default()


def _fitting(draw: ImageDraw.ImageDraw, text: str, width: int) -> ImageFont.ImageFont:
    """The largest font up to ``TEXT`` px in which ``text`` fits in ``width`` px."""
    for size in range(TEXT, 9, -2):
        font = _font(size)
        if draw.textlength(text, font=font) <= width:
            return font
    return font


def compose(headline: str, panels: Sequence, side: int = 256) -> Image.Image:
    """Panels (``sslviz.results.apply.Panel``) -> one RGB picture, ``side`` px per panel."""
    font, big = _font(TEXT), _font(TEXT + 8)
    pictures = [to_pil(p.image[None], side)[0] for p in panels]
    pictures = [p.resize((side, round(side * p.height / p.width))) for p in pictures]
    tallest = max(p.height for p in pictures)
    head = TEXT + 8 + 2 * PAD
    width = len(pictures) * (side + PAD) + PAD
    sheet = Image.new("RGB", (width, head + 2 * (TEXT + 10) + tallest + PAD), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((PAD, PAD), headline, fill=PLAIN, font=big)
    for i, (panel, picture) in enumerate(zip(panels, pictures, strict=True)):
        left = PAD + i * (side + PAD)
        draw.text((left, head), panel.title, fill=PLAIN, font=font)
        sheet.paste(picture, (left, head + TEXT + 8))
        colour = PLAIN if panel.ok is None else (GOOD if panel.ok else BAD)
        caption_font = _fitting(draw, panel.caption, side)
        draw.text((left, head + TEXT + 12 + tallest), panel.caption, fill=colour, font=caption_font)
    return sheet


def save_png(headline: str, panels: Sequence, path: Path | str) -> Path:
    """Write ``compose(...)`` as a PNG at ``path`` (its folder is created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compose(headline, panels).save(path, format="PNG")
    return path
