"""What a JPEG's header says about how it was encoded: the IJG quality of its luminance table, its subsampling.

Encoders built on libjpeg (Pillow, OpenCV, ImageMagick, most web tools) scale the standard luminance table of
JPEG Annex K by `jpeg_quality_scaling`, so a table that is exactly one of those 100 tables names its quality.
Cameras and phones write their own tables: those are "custom", reported with the nearest IJG quality.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, JpegImagePlugin

# JPEG Annex K.1 luminance table in natural (row-major) order: the order of Pillow's `quantization` tables
# (tests/test_file_facts.py checks every quality 1..100 against what Pillow's own encoder writes).
_ANNEX_K_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip


def ijg_table(quality: int) -> tuple[int, ...]:
    """The luminance table libjpeg writes at `quality` (1..100) with baseline tables (values clamped to 1..255)."""
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be between 1 and 100, got {quality}")
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality  # libjpeg's jpeg_quality_scaling
    return tuple(min(255, max(1, (value * scale + 50) // 100)) for value in _ANNEX_K_LUMINANCE)


# All 100 tables once: matching one image is then a dict lookup, or one vectorised distance for a custom table.
_TABLES = np.array([ijg_table(q) for q in range(1, 101)], dtype=np.int32)
_QUALITY_OF: dict[tuple[int, ...], int] = {}
for _quality in range(1, 101):
    _QUALITY_OF.setdefault(ijg_table(_quality), _quality)  # never a tie today; the lower would win


@dataclass(frozen=True)
class JpegQuality:
    """The IJG quality nearest to a luminance table, and whether the table is exactly that quality's."""

    quality: int  # 1..100
    standard: bool  # True: the table is libjpeg's at `quality`; False: custom (a camera's), nearest quality

    @property
    def table(self) -> str:
        """The `jpeg_table` fact: "standard" or "custom"."""
        return "standard" if self.standard else "custom"


def estimate_quality(luminance: Sequence[int]) -> JpegQuality | None:
    """The quality of a 64-entry luminance table in natural order; None when it is not 64 entries."""
    table = tuple(int(value) for value in luminance)
    if len(table) != 64:
        return None
    exact = _QUALITY_OF.get(table)
    if exact is not None:
        return JpegQuality(exact, standard=True)
    distance = np.abs(_TABLES - np.asarray(table, dtype=np.int32)).sum(axis=1)
    return JpegQuality(int(distance.argmin()) + 1, standard=False)  # argmin: the lowest quality on a tie


# Luma sampling factors (h, v) relative to chroma's: the usual names.
_SUBSAMPLING_NAMES = {(1, 1): "4:4:4", (2, 1): "4:2:2", (2, 2): "4:2:0", (4, 1): "4:1:1", (1, 2): "4:4:0"}
_PILLOW_SAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}


def subsampling(img: Image.Image) -> str | None:
    """Chroma subsampling of an opened JPEG: 4:4:4, 4:2:2, 4:2:0, 4:1:1, 4:4:0, gray or other."""
    if not isinstance(img, JpegImagePlugin.JpegImageFile):
        return None
    known = _PILLOW_SAMPLING.get(JpegImagePlugin.get_sampling(img))
    if known is not None:
        return known
    layers = getattr(img, "layer", None) or []  # [(component id, h, v, table)] from the SOF segment
    if len(layers) == 1:
        return "gray"
    if len(layers) < 3:
        return "other"
    _, luma_h, luma_v, _ = layers[0]
    chroma = {(h, v) for _, h, v, _ in layers[1:3]}
    if len(chroma) != 1:
        return "other"
    chroma_h, chroma_v = chroma.pop()
    if chroma_h == 0 or chroma_v == 0 or luma_h % chroma_h or luma_v % chroma_v:
        return "other"
    return _SUBSAMPLING_NAMES.get((luma_h // chroma_h, luma_v // chroma_v), "other")
