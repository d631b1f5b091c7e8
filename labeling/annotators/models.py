"""Generation settings per Gemini model family: thinking, temperature, output limits and image tokens.

One table, matched top to bottom by model name (the README shows the same table):

| models            | thinking                         | temperature   | output tokens (describe, fused, categorize) |
|-------------------|----------------------------------|---------------|---------------------------------------------|
| gemini-2.5-pro*   | thinking_budget 128 (the least)  | 0.2           | 4096, 4096, 1024                            |
| gemini-2.0-*      | none (these models do not think) | 0.2           | 2048, 2048, 256                             |
| gemini-2.*        | thinking_budget 0 (off)          | 0.2           | 2048, 2048, 256                             |
| gemini-3+ *-pro*  | thinking_level low (no minimal)  | model default | 8192, 8192, 2048                            |
| gemini-3+ others  | thinking_level minimal           | model default | 4096, 4096, 1024                            |
| anything else     | as gemini-3+ others, with a warning                                                            |

Why: Gemini 2.5 Flash thinks unless told `thinking_budget: 0`; Gemini 3 takes `thinking_level` instead (sending
both is a 400), counts thinking inside `max_output_tokens`, and Google recommends its default temperature 1.0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Gemini 3 image tokens by media_resolution (the default is high).
_GEMINI3_IMAGE_TOKENS = {"": 1120, "high": 1120, "medium": 560, "low": 280}
# Gemini 2.x: 258 for a small image, else 258 per 768x768 tile; media_resolution low is 64 a picture.
_TILE_TOKENS, _SMALL_SIDE, _TILE_SIDE, _GEMINI2_LOW = 258, 384, 768, 64


@dataclass(frozen=True)
class Family:
    """How requests to one family of models are configured."""

    name: str
    thinking: Mapping[str, Any]  # keyword arguments of types.ThinkingConfig
    temperature: float | None  # None: leave the model's default
    max_output_tokens: Mapping[str, int] = field(default_factory=dict)  # per request kind
    tiled_images: bool = False  # Gemini 2.x bills images by tile; Gemini 3 by media resolution

    def output_limit(self, kind: str) -> int:
        return int(self.max_output_tokens[kind])

    def image_tokens(self, media_resolution: str, width: int, height: int) -> int:
        """Input tokens one image of this size costs."""
        if not self.tiled_images:
            return _GEMINI3_IMAGE_TOKENS.get(media_resolution, _GEMINI3_IMAGE_TOKENS[""])
        if media_resolution == "low":
            return _GEMINI2_LOW
        if width <= _SMALL_SIDE and height <= _SMALL_SIDE:
            return _TILE_TOKENS
        return _TILE_TOKENS * math.ceil(width / _TILE_SIDE) * math.ceil(height / _TILE_SIDE)


def _limits(describe: int, categorize: int) -> dict[str, int]:
    return {"describe": describe, "fused": describe, "categorize": categorize}


GEMINI3 = Family("Gemini 3 and later", {"thinking_level": "MINIMAL"}, None, _limits(4096, 1024))
FAMILIES: tuple[tuple[re.Pattern[str], Family], ...] = (
    (
        re.compile(r"^gemini-2\.5-pro"),
        Family("Gemini 2.5 Pro", {"thinking_budget": 128}, 0.2, _limits(4096, 1024), tiled_images=True),
    ),
    (re.compile(r"^gemini-2\.0"), Family("Gemini 2.0", {}, 0.2, _limits(2048, 256), tiled_images=True)),
    (
        re.compile(r"^gemini-2\."),
        Family("Gemini 2.x", {"thinking_budget": 0}, 0.2, _limits(2048, 256), tiled_images=True),
    ),
    (
        re.compile(r"^gemini-([3-9]|[1-9][0-9])(\.[0-9]+)?-.*pro"),
        Family("Gemini 3+ Pro", {"thinking_level": "LOW"}, None, _limits(8192, 2048)),
    ),
    (re.compile(r"^gemini-([3-9]|[1-9][0-9])(\.[0-9]+)?-"), GEMINI3),
)


def family_for(model: str) -> tuple[Family, bool]:
    """The family of `model`, and whether the name is one we know (unknown names get Gemini 3's settings)."""
    name = model.strip().lower().removeprefix("models/")
    for pattern, family in FAMILIES:
        if pattern.match(name):
            return family, True
    return GEMINI3, False


def unknown_model_warning(model: str) -> str | None:
    """A one-line warning when `model` matches no family, else None."""
    if family_for(model)[1]:
        return None
    return (
        f"The model {model!r} is not one this version knows: it gets Gemini 3's settings (thinking_level "
        "minimal, default temperature); check the answers before a large run."
    )
