"""What the fake "sees" in an image: size, mean colour, dominant hue, saturation, brightness.

Everything is computed from a small thumbnail so that answers are cheap and fully deterministic,
and so that a test (or a demo-image generator) can steer the answer by the colour and size it sends.
"""

from __future__ import annotations

import colorsys
import io
from dataclasses import dataclass

from PIL import Image, ImageStat

# A small sample is enough to name a colour and keeps big images cheap to "look at".
_SAMPLE_SIDE = 32
_HUE_BINS = 36
# Pixels this grey or this dark carry no usable hue.
_MIN_PIXEL_SATURATION = 0.15
_MIN_PIXEL_VALUE = 0.10
# Below this mean saturation an image counts as greyish (names it grey/white/black, picks a 2nd category).
LOW_SATURATION = 0.25


@dataclass(frozen=True)
class ImageFacts:
    """Facts derived from one received image; every field is a pure function of its bytes."""

    width: int
    height: int
    mime_type: str
    n_bytes: int
    mean_rgb: tuple[int, int, int]
    hue: float  # dominant hue in [0, 1): 0 red, 1/3 green, 2/3 blue
    saturation: float  # mean HSV saturation in [0, 1]
    brightness: float  # mean HSV value in [0, 1]

    @property
    def colour(self) -> str:
        """A plain colour name for the dominant hue ("blue"), or grey/white/black when unsaturated."""
        if self.saturation < _MIN_PIXEL_SATURATION:
            if self.brightness > 0.8:
                return "white"
            return "black" if self.brightness < 0.2 else "grey"
        return hue_name(self.hue)

    @property
    def tone(self) -> str:
        """Brightness as a word: dark, mid-toned or bright."""
        if self.brightness < 0.35:
            return "dark"
        return "bright" if self.brightness > 0.65 else "mid-toned"

    @property
    def orientation(self) -> str:
        """landscape, portrait or square."""
        if self.width == self.height:
            return "square"
        return "landscape" if self.width > self.height else "portrait"

    @property
    def is_greyish(self) -> bool:
        """True when the image has little colour (used to pick a second category)."""
        return self.saturation < LOW_SATURATION


def hue_name(hue: float) -> str:
    """Name a hue in [0, 1) with one of eight everyday colour words."""
    degrees = (hue % 1.0) * 360
    for limit, name in (
        (15, "red"),
        (45, "orange"),
        (70, "yellow"),
        (165, "green"),
        (195, "cyan"),
        (255, "blue"),
        (290, "purple"),
        (345, "magenta"),
    ):
        if degrees < limit:
            return name
    return "red"


def image_facts(data: bytes, mime_type: str) -> ImageFacts:
    """Decode `data` with Pillow and describe it; raises `OSError`/`ValueError` when it is not an image."""
    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        # JPEG draft decoding at 1/8 scale makes huge photos cheap; the size above is the real one.
        img.draft("RGB", (_SAMPLE_SIDE * 4, _SAMPLE_SIDE * 4))
        sample = img.convert("RGB").resize((_SAMPLE_SIDE, _SAMPLE_SIDE), Image.Resampling.BOX)
    mean = ImageStat.Stat(sample).mean
    hsv_stat = ImageStat.Stat(sample.convert("HSV")).mean
    return ImageFacts(
        width=width,
        height=height,
        mime_type=mime_type,
        n_bytes=len(data),
        mean_rgb=(round(mean[0]), round(mean[1]), round(mean[2])),
        hue=_dominant_hue(sample),
        saturation=hsv_stat[1] / 255,
        brightness=hsv_stat[2] / 255,
    )


def _dominant_hue(sample: Image.Image) -> float:
    """Hue of the mean colour of the most common hue bin among saturated pixels (0.0 when none)."""
    rgb = sample.tobytes()
    hsv = sample.convert("HSV").tobytes()
    weights = [0.0] * _HUE_BINS
    members: list[list[tuple[int, int, int]]] = [[] for _ in range(_HUE_BINS)]
    for i in range(0, len(rgb), 3):
        h, s, v = hsv[i], hsv[i + 1], hsv[i + 2]
        if s / 255 < _MIN_PIXEL_SATURATION or v / 255 < _MIN_PIXEL_VALUE:
            continue
        index = h * _HUE_BINS // 256
        weights[index] += s * v
        members[index].append((rgb[i], rgb[i + 1], rgb[i + 2]))
    if not any(weights):
        return 0.0
    peak = members[weights.index(max(weights))]
    # The exact hue of the bin's mean colour, so a flat image of hue h reports h, not a bin centre.
    r, g, b = (sum(p[i] for p in peak) / len(peak) / 255 for i in range(3))
    return colorsys.rgb_to_hsv(r, g, b)[0] % 1.0
