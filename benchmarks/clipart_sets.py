"""Colour clip art in ten semantic groups, drawn from the Noto Color Emoji font (nothing
downloaded; needs Debian's ``fonts-noto-color-emoji`` and ``pip install fonttools``): each emoji
once, at a random size (48-199 px canvases) and position, on white or a pale colour. Groups are
Unicode ranges (animals, faces, food, transport, plants, sports, clothing, hands, buildings,
hearts), so a group holds different objects that share a meaning, not copies of one shape.

    write_clipart(folder)   # folder/<group>/NNN.png (label = group), ~570 images
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
GROUPS = {
    "animals": [(0x1F400, 0x1F43C), (0x1F980, 0x1F9AE)],
    "faces": [(0x1F600, 0x1F64F), (0x1F910, 0x1F917), (0x1F920, 0x1F92F)],
    "food": [(0x1F345, 0x1F37F), (0x1F950, 0x1F96F)],
    "transport": [(0x1F680, 0x1F6C5), (0x1F6F4, 0x1F6FC)],
    "plants": [(0x1F330, 0x1F344), (0x1F490, 0x1F490), (0x1FAB4, 0x1FABA)],
    "sports": [(0x1F3BD, 0x1F3D3), (0x26BD, 0x26BE), (0x1F93A, 0x1F94F)],
    "clothing": [(0x1F451, 0x1F462), (0x1F97B, 0x1F97F), (0x1FA71, 0x1FA7C)],
    "hands": [(0x1F446, 0x1F450), (0x1F918, 0x1F91F), (0x1F932, 0x1F932), (0x1F590, 0x1F596)],
    "buildings": [(0x1F3E0, 0x1F3F0), (0x1F5FB, 0x1F5FF), (0x1F3D4, 0x1F3DF)],
    "hearts": [(0x1F493, 0x1F49F), (0x2764, 0x2764), (0x1F9E1, 0x1F9E1), (0x1F90D, 0x1F90E)],
}


def available() -> bool:
    try:
        import fontTools  # noqa: F401
    except ImportError:
        return False
    return FONT.exists()


def _glyphs() -> dict[str, list[str]]:
    from fontTools.ttLib import TTFont

    cmap = TTFont(str(FONT)).getBestCmap()
    return {
        group: [chr(u) for low, high in spans for u in range(low, high + 1) if u in cmap]
        for group, spans in GROUPS.items()
    }


def write_clipart(folder: Path, seed: int = 0) -> Path:
    """One PNG per emoji under ``folder/<group>/``; returns ``folder``."""
    rng = np.random.default_rng(seed)
    font = ImageFont.truetype(str(FONT), 109)  # the one size the bitmap font has
    for group, glyphs in _glyphs().items():
        (folder / group).mkdir(parents=True, exist_ok=True)
        for i, glyph in enumerate(glyphs):
            drawn = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
            ImageDraw.Draw(drawn).text((10, 10), glyph, font=font, embedded_color=True)
            drawn = drawn.crop(drawn.getbbox())
            side = int(rng.integers(48, 200))
            inner = max(1, int(side * rng.uniform(0.5, 0.95)))
            drawn = drawn.resize((inner, inner), Image.Resampling.LANCZOS)
            pale = tuple(int(v) for v in rng.integers(180, 256, 3))
            canvas = Image.new("RGBA", (side, side), (255, 255, 255, 255))
            if rng.random() < 0.3:
                canvas = Image.new("RGBA", (side, side), (*pale, 255))
            x, y = (int(rng.integers(0, side - inner + 1)) for _ in range(2))
            canvas.alpha_composite(drawn, (x, y))
            canvas.convert("RGB").save(folder / group / f"{i:03d}.png")
    return folder


if __name__ == "__main__":
    write_clipart(Path(sys.argv[1]))
