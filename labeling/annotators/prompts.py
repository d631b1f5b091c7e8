"""Prompts and response schemas, versioned. The version is stored with every annotation they produce.

Change any prompt text or schema here and bump PROMPT_VERSION: images described with an older version then
count as not described for the new one (their annotations stay in the history).

The description has the seed's fields: summary, objects (name, attributes), scene (indoor_outdoor,
environment), style (genre, lighting, colors), camera (shot, fov, lens), text, quality (aesthetic, issues).
Categories are an enum of the active list plus `unknown`, 1..max_categories of them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from google.genai import types

from labeling.store.categories import Category
from labeling.taxonomy import UNKNOWN, schema_enum

PROMPT_VERSION = "2026-11.1"

DESCRIPTION_FIELDS = ("summary", "objects", "scene", "style", "camera", "text", "quality")
# Generous for the description JSON (~300 tokens); a truncated answer is a per-image max_tokens failure.
MAX_OUTPUT_TOKENS_DESCRIBE = 2048
MAX_OUTPUT_TOKENS_CATEGORIZE = 256
TEMPERATURE = 0.2

_DESCRIBE_INSTRUCTIONS = """You describe images for a dataset that compares real photographs with AI-generated images.
Look at the image and describe only what is visible; do not guess whether it is real or generated.
Fill every field of the JSON schema:
- summary: one or two plain sentences about the whole image.
- objects: the main objects, each with a short name and a few visual attributes (colour, material, size, state).
- scene: indoor_outdoor (indoor, outdoor or unclear) and the environment in a few words.
- style: genre (photo, illustration, 3D render, painting, screenshot, ...), lighting, and the dominant colors.
- camera: shot type (close-up, medium, wide, aerial, ...), field of view, and the apparent lens.
- text: any readable text in the image, verbatim, or "none".
- quality: an aesthetic judgement in a few words, and visible issues (blur, noise, artefacts, distortions) or none.
Be concise: short phrases, no speculation."""

_CATEGORIZE_INSTRUCTIONS = """Choose the categories that best fit the image, from the allowed list only.
Give between 1 and {max_categories} categories, the best fit first. Answer "unknown" alone when none fits."""


def _string(description: str) -> types.Schema:
    return types.Schema(type=types.Type.STRING, description=description)


def _strings(description: str) -> types.Schema:
    return types.Schema(type=types.Type.ARRAY, items=types.Schema(type=types.Type.STRING), description=description)


def _object(properties: dict[str, types.Schema]) -> types.Schema:
    names = list(properties)
    return types.Schema(type=types.Type.OBJECT, properties=properties, required=names, property_ordering=names)


def _description_properties() -> dict[str, types.Schema]:
    return {
        "summary": _string("One or two sentences about the whole image."),
        "objects": types.Schema(
            type=types.Type.ARRAY,
            items=_object({"name": _string("What the object is."),
                           "attributes": _strings("Visual attributes: colour, material, size, state.")}),
            description="The main objects."),
        "scene": _object({
            "indoor_outdoor": types.Schema(type=types.Type.STRING, enum=["indoor", "outdoor", "unclear"]),
            "environment": _string("The setting in a few words.")}),
        "style": _object({"genre": _string("photo, illustration, 3D render, painting, screenshot, ..."),
                          "lighting": _string("The lighting in a few words."),
                          "colors": _strings("The dominant colours.")}),
        "camera": _object({"shot": _string("close-up, medium, wide, aerial, ..."),
                           "fov": _string("Field of view: narrow, normal or wide."),
                           "lens": _string("The apparent lens, e.g. 50mm standard, wide-angle, macro.")}),
        "text": _string('Readable text in the image, verbatim, or "none".'),
        "quality": _object({"aesthetic": _string("An aesthetic judgement in a few words."),
                            "issues": _strings("Visible quality issues; empty when none.")}),
    }


def category_names(categories: Sequence[Category]) -> list[str]:
    """The enum the model may answer: the active list in order, then `unknown`."""
    names = [c.name for c in categories if c.active and c.name.lower() != UNKNOWN]
    return [*names, UNKNOWN]


def _categories_schema(categories: Sequence[Category], max_categories: int) -> types.Schema:
    return types.Schema(type=types.Type.ARRAY, min_items=1, max_items=max_categories,
                        # Too long a list for one enum ("too many states"): plain strings, checked on our side.
                        items=types.Schema(type=types.Type.STRING, enum=schema_enum(category_names(categories))),
                        description=f"1 to {max_categories} categories from the list, or just unknown.")


def describe_schema() -> types.Schema:
    """The description alone (two-pass mode's first request)."""
    return _object(_description_properties())


def fused_schema(categories: Sequence[Category], max_categories: int) -> types.Schema:
    """Description and categories in one answer; categories come last so the model describes first."""
    return _object({**_description_properties(), "categories": _categories_schema(categories, max_categories)})


def categorize_schema(categories: Sequence[Category], max_categories: int) -> types.Schema:
    """Categories alone (from a stored description, no image)."""
    return _object({"categories": _categories_schema(categories, max_categories)})


def category_list_text(categories: Sequence[Category]) -> str:
    """The allowed categories, one per line with its definition."""
    lines = [f"- {c.name}: {c.definition}" if c.definition else f"- {c.name}"
             for c in categories if c.active and c.name.lower() != UNKNOWN]
    lines.append(f"- {UNKNOWN}: none of the above fits")
    return "\n".join(lines)


@dataclass(frozen=True)
class Prompt:
    """One request's text parts and its generation config (everything but the image)."""

    system: str
    text: str
    schema: types.Schema
    max_output_tokens: int

    def config(self) -> types.GenerateContentConfig:
        return _config(self.system, self.schema.model_dump_json(exclude_none=True), self.max_output_tokens)


@functools.lru_cache(maxsize=64)
def _config(system: str, schema_json: str, max_output_tokens: int) -> types.GenerateContentConfig:
    # Built once per prompt and list: the SDK copies the config on every call, so sharing it is safe.
    return types.GenerateContentConfig(
        system_instruction=system, response_mime_type="application/json",
        response_schema=types.Schema.model_validate_json(schema_json), temperature=TEMPERATURE,
        max_output_tokens=max_output_tokens, candidate_count=1)


_CategoryKey = tuple[tuple[str, str, bool], ...]


def _key(categories: Sequence[Category]) -> _CategoryKey:
    return tuple((c.name, c.definition, c.active) for c in categories)


def _categories(key: _CategoryKey) -> list[Category]:
    return [Category(name, definition, active) for name, definition, active in key]


@functools.lru_cache(maxsize=1)
def describe_prompt() -> Prompt:
    return Prompt(_DESCRIBE_INSTRUCTIONS, "Describe this image as JSON.", describe_schema(),
                  MAX_OUTPUT_TOKENS_DESCRIBE)


def fused_prompt(categories: Sequence[Category], max_categories: int) -> Prompt:
    return _fused_prompt(_key(categories), max_categories)


@functools.lru_cache(maxsize=16)
def _fused_prompt(key: _CategoryKey, max_categories: int) -> Prompt:
    categories = _categories(key)
    system = (_DESCRIBE_INSTRUCTIONS + "\n\n" + _CATEGORIZE_INSTRUCTIONS.format(max_categories=max_categories)
              + "\n\nAllowed categories:\n" + category_list_text(categories))
    return Prompt(system, "Describe this image as JSON, then categorize it.",
                  fused_schema(categories, max_categories), MAX_OUTPUT_TOKENS_DESCRIBE)


def categorize_prompt(description: dict[str, Any], categories: Sequence[Category], max_categories: int) -> Prompt:
    """Categorize from the description text alone (the image is not sent)."""
    base = _categorize_base(_key(categories), max_categories)
    text = "Image description:\n" + json.dumps(description, ensure_ascii=False)
    return Prompt(base.system, text, base.schema, base.max_output_tokens)


@functools.lru_cache(maxsize=16)
def _categorize_base(key: _CategoryKey, max_categories: int) -> Prompt:
    categories = _categories(key)
    system = ("You categorize images from their written description.\n"
              + _CATEGORIZE_INSTRUCTIONS.format(max_categories=max_categories)
              + "\n\nAllowed categories:\n" + category_list_text(categories))
    return Prompt(system, "", categorize_schema(categories, max_categories), MAX_OUTPUT_TOKENS_CATEGORIZE)
