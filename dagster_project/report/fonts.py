"""The CJK font the report and the metadata charts draw Chinese with, so that they read on a machine without one.

`make setup` unpacks Debian's `fonts-wqy-microhei` (WenQuanYi Micro Hei, Apache-2.0 or GPL-3+ with the font
exception; docs/bi.md) into the virtual environment, `.venv/share/crm-fonts/`, not into the system: the machine's
own fonts stay as they are, and a test proves the report renders on a system with no CJK font at all.

- The HTML report embeds a subset of it, exactly the characters the page uses beyond ASCII, as a base64 WOFF
  `@font-face` (`font_face_css`) named `FAMILY`; the page's CSS and every plotly chart name that family after the
  usual system CJK fonts, so a machine that has one still uses it and one that has none uses the embedded glyphs.
- matplotlib (the Dagster metadata PNGs) gets the font file itself as a fallback family (`use_in_matplotlib`).

`CRM_CJK_FONT` may point at another TrueType / OpenType font or collection with Chinese glyphs.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import sys
from functools import lru_cache
from pathlib import Path

# The family name the page's @font-face gives the embedded subset (distinct from any installed font's name).
FAMILY = "CRM Report CJK"
ENVIRONMENT = "CRM_CJK_FONT"
FONT_FILE = "wqy-microhei.ttc"
# Where `make setup` puts it: inside the virtual environment the code runs in.
FONT_DIR = Path(sys.prefix) / "share" / "crm-fonts"
# Text plotly.js draws itself, not found in the page: the minus sign of negative tick labels.
PLOTLY_TEXT = "\u2212"

UNUSED_TABLES = ("FFTM", "GPOS", "GSUB", "GDEF", "kern")

_ESCAPE = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})|\\u([0-9a-f]{4})", re.IGNORECASE)


class FontMissing(RuntimeError):
    """The CJK font is not where the code looks for it."""


def font_path() -> Path:
    """The CJK font file: $CRM_CJK_FONT, else the one `make setup` installs into the virtual environment."""
    explicit = os.environ.get(ENVIRONMENT)
    path = Path(explicit) if explicit else FONT_DIR / FONT_FILE
    if not path.is_file():
        origin = (f"${ENVIRONMENT} names {path}, which is not a file" if explicit else
                  f"{path} is missing: `make setup` installs it (Debian's fonts-wqy-microhei, unpacked into the "
                  f"virtual environment), or set ${ENVIRONMENT} to a .ttf/.otf/.ttc font with Chinese glyphs")
        raise FontMissing(f"the CJK font the report and charts draw Chinese with is not available: {origin}")
    return path


def _open(path: Path, lazy: bool | None = None):
    from fontTools.ttLib import TTFont

    # The first face of a collection (WenQuanYi Micro Hei; the second is its monospaced twin).
    return TTFont(str(path), fontNumber=0 if path.suffix.lower() in (".ttc", ".otc") else -1, lazy=lazy)


@lru_cache(maxsize=4)
def _codepoints(path: Path, modified: float) -> frozenset[int]:
    font = _open(path, lazy=True)
    try:
        return frozenset(font.getBestCmap())
    finally:
        font.close()


def page_characters(page: str) -> str:
    """Every character of the page beyond ASCII, with those the page's JSON (plotly figures) writes as \\uXXXX
    escapes decoded, in code point order."""
    decoded = _ESCAPE.sub(_unescape, page)
    return "".join(sorted({c for c in decoded + PLOTLY_TEXT if ord(c) > 0x7F and not 0xD800 <= ord(c) <= 0xDFFF}))


def _unescape(match: re.Match) -> str:
    if match[1]:  # a surrogate pair: one character beyond the BMP
        return chr(0x10000 + ((int(match[1], 16) - 0xD800) << 10) + int(match[2], 16) - 0xDC00)
    return chr(int(match[3], 16))


def subset(characters: str) -> bytes:
    """The font cut down to the given characters (those it has), as WOFF."""
    path = font_path()
    modified = path.stat().st_mtime
    wanted = "".join(c for c in characters if ord(c) in _codepoints(path, modified))
    return _subset(path, modified, wanted)


# A process that writes several reports (each refresh writes one per language) mostly needs the same characters again:
# cutting the font takes most of a report's time on a small export.
@lru_cache(maxsize=8)
def _subset(path: Path, modified: float, wanted: str) -> bytes:
    from fontTools import subset as subsetter

    options = subsetter.Options()
    options.flavor = "woff"
    options.notdef_outline = True
    # fontTools logs every table it drops or cannot subset; none of it matters to a reader.
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    font = _open(path)
    try:
        # Tables the page's text does not need, dropped before the subsetter reads them (the layout tables take
        # seconds): FontForge's time stamps and kerning of Latin pairs (the page draws Latin with system fonts).
        for tag in UNUSED_TABLES:
            if tag in font:
                del font[tag]
        cutter = subsetter.Subsetter(options)
        cutter.populate(text=wanted)
        cutter.subset(font)
        buffer = io.BytesIO()
        font.flavor = "woff"
        font.save(buffer)
    finally:
        font.close()
    return buffer.getvalue()


def font_face_css(page: str) -> str:
    """A CSS @font-face rule embedding, as base64, the glyphs of every character `page` uses beyond ASCII."""
    woff = base64.b64encode(subset(page_characters(page))).decode("ascii")
    # `block`: text waits for the (inline, immediately available) font rather than flashing boxes first.
    return (f'@font-face {{ font-family: "{FAMILY}"; font-display: block;'
            f' src: url(data:font/woff;base64,{woff}) format("woff"); }}')


# -------------------------------------------------------------------------------------------------- matplotlib

_matplotlib_family: str | None = None


def use_in_matplotlib() -> str:
    """Register the font with matplotlib (once) and add its family after the configured ones: Latin text keeps
    matplotlib's look (DejaVu Sans) and characters it lacks (Chinese) are drawn with this font instead of boxes.
    Returns the family name."""
    global _matplotlib_family
    import matplotlib
    from matplotlib import font_manager

    if _matplotlib_family is None:
        path = font_path()
        font_manager.fontManager.addfont(str(path))
        _matplotlib_family = font_manager.FontProperties(fname=str(path)).get_name()
    families = list(matplotlib.rcParams["font.family"])
    if _matplotlib_family not in families:
        matplotlib.rcParams["font.family"] = [*families, _matplotlib_family]
    return _matplotlib_family
