"""Model families and what they bill: image tokens by media resolution, thinking tokens by settings.

Figures follow Google's documentation as summarised in ../shared/REFERENCE.md ("Model families",
"Image tokens"); the thinking amounts per level are typical sizes, not measurements.
"""

from __future__ import annotations

import math
import re
from typing import Any

from labeling.fake_gemini.wire import pick

# Gemini 2.x: one 258-token unit for small images, else one per 768x768 tile; 64 at LOW resolution.
IMAGE_TOKENS_PER_TILE = 258
_SMALL_IMAGE_SIDE = 384
_TILE_SIDE = 768
_GEMINI2_LOW_RESOLUTION_TOKENS = 64
# Gemini 3.x: a fixed count per image by media resolution (unset = HIGH).
_GEMINI3_IMAGE_TOKENS = {"MEDIA_RESOLUTION_LOW": 280, "MEDIA_RESOLUTION_MEDIUM": 560, "MEDIA_RESOLUTION_HIGH": 1120}
# Thinking tokens a Gemini 3.x answer reports per thinkingLevel (unset = HIGH).
GEMINI3_THOUGHTS = {"MINIMAL": 24, "LOW": 100, "MEDIUM": 300, "HIGH": 800, "XHIGH": 1600}
# What a thinking Gemini 2.5 model spends when its budget allows.
GEMINI25_THOUGHTS = 300
_VERSION = re.compile(r"^gemini-(\d+)")


def is_gemini2(model: str) -> bool:
    """True for Gemini 2.x and older; any other name (3.x, later, unknown) behaves as 3.x."""
    found = _VERSION.match(model)
    return found is not None and int(found.group(1)) < 3


def image_tokens(width: int, height: int, model: str, media_resolution: str | None) -> int:
    """Prompt tokens of one image for this model family and media resolution."""
    if not is_gemini2(model):
        return _GEMINI3_IMAGE_TOKENS.get(media_resolution or "", _GEMINI3_IMAGE_TOKENS["MEDIA_RESOLUTION_HIGH"])
    if media_resolution == "MEDIA_RESOLUTION_LOW":
        return _GEMINI2_LOW_RESOLUTION_TOKENS
    if width <= _SMALL_IMAGE_SIDE and height <= _SMALL_IMAGE_SIDE:
        return IMAGE_TOKENS_PER_TILE
    return IMAGE_TOKENS_PER_TILE * math.ceil(width / _TILE_SIDE) * math.ceil(height / _TILE_SIDE)


def thinking_tokens(model: str, thinking: dict[str, Any] | None) -> int:
    """thoughtsTokenCount of an answer: 3.x always thinks, 2.5 Flash unless budget 0, Flash-Lite only on request."""
    level, budget = pick(thinking, "thinkingLevel"), pick(thinking, "thinkingBudget")
    if not is_gemini2(model):
        if budget is not None and int(budget) >= 0:  # 3.x takes a budget too, but never stops thinking
            return max(min(int(budget), GEMINI3_THOUGHTS["HIGH"]), GEMINI3_THOUGHTS["MINIMAL"])
        return GEMINI3_THOUGHTS.get(str(level).upper(), GEMINI3_THOUGHTS["HIGH"])
    if not model.startswith("gemini-2.5"):
        return 0  # 2.0 and older do not think
    if budget is None:
        return 0 if "flash-lite" in model else GEMINI25_THOUGHTS
    budget = int(budget)
    return GEMINI25_THOUGHTS if budget < 0 else min(budget, GEMINI25_THOUGHTS)  # -1: dynamic thinking


def thoughts_count_toward_limit(model: str) -> bool:
    """On Gemini 3, maxOutputTokens caps thinking plus answer (python-genai#2062)."""
    return not is_gemini2(model)
