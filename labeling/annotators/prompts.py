"""Prompts and response schemas, versioned. The version is stored with every annotation they produce.

Change any prompt text or schema here and bump PROMPT_VERSION: images described with an older version then
count as not described for the new one (their annotations stay in the history).

The description has the seed's fields: summary, objects (name, attributes), scene (indoor_outdoor,
environment), style (genre, lighting, colors), camera (shot, fov, lens), text, quality (aesthetic, issues).
Categories are an enum of the active list plus `unknown`, 1..max_categories of them.
Schemas are plain data in the REST API's `responseSchema` form (an OpenAPI subset: "type": "STRING", ...):
the Gemini module turns them into SDK types, a batch file carries them as they are.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from labeling.categories import UNKNOWN, Category, schema_enum

PROMPT_VERSION = "2026-12.1"

DESCRIPTION_FIELDS = ("summary", "objects", "scene", "style", "camera", "text", "quality")

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


Schema = dict[str, Any]


def _string(description: str) -> Schema:
    return {"type": "STRING", "description": description}


def _strings(description: str) -> Schema:
    return {"type": "ARRAY", "items": {"type": "STRING"}, "description": description}


def _object(properties: dict[str, Schema]) -> Schema:
    names = list(properties)
    return {"type": "OBJECT", "properties": properties, "required": names, "propertyOrdering": names}


def _description_properties() -> dict[str, Schema]:
    return {
        "summary": _string("One or two sentences about the whole image."),
        "objects": {
            "type": "ARRAY",
            "items": _object(
                {
                    "name": _string("What the object is."),
                    "attributes": _strings("Visual attributes: colour, material, size, state."),
                }
            ),
            "description": "The main objects.",
        },
        "scene": _object(
            {
                "indoor_outdoor": {"type": "STRING", "enum": ["indoor", "outdoor", "unclear"]},
                "environment": _string("The setting in a few words."),
            }
        ),
        "style": _object(
            {
                "genre": _string("photo, illustration, 3D render, painting, screenshot, ..."),
                "lighting": _string("The lighting in a few words."),
                "colors": _strings("The dominant colours."),
            }
        ),
        "camera": _object(
            {
                "shot": _string("close-up, medium, wide, aerial, ..."),
                "fov": _string("Field of view: narrow, normal or wide."),
                "lens": _string("The apparent lens, e.g. 50mm standard, wide-angle, macro."),
            }
        ),
        "text": _string('Readable text in the image, verbatim, or "none".'),
        "quality": _object(
            {
                "aesthetic": _string("An aesthetic judgement in a few words."),
                "issues": _strings("Visible quality issues; empty when none."),
            }
        ),
    }


def category_names(categories: Sequence[Category]) -> list[str]:
    """The enum the model may answer: the active list in order, then `unknown`."""
    names = [c.name for c in categories if c.active and c.name.lower() != UNKNOWN]
    return [*names, UNKNOWN]


def _categories_schema(categories: Sequence[Category], max_categories: int, enum: bool) -> Schema:
    # No minItems/maxItems: they count toward the API's "too many states" limit; the count is checked locally.
    # Too long a list for one enum, or one the API refused: plain strings, checked on our side.
    item: Schema = {"type": "STRING"}
    allowed = schema_enum(category_names(categories)) if enum else None
    if allowed is not None:
        item["enum"] = allowed
    return {
        "type": "ARRAY",
        "items": item,
        "description": f"1 to {max_categories} categories from the list, or just unknown.",
    }


def has_category_enum(schema: Schema) -> bool:
    """Whether the categories of this schema are an enum (what a "too many states" refusal is about)."""
    return bool(schema.get("properties", {}).get("categories", {}).get("items", {}).get("enum"))


def describe_schema() -> Schema:
    """The description alone (two-pass mode's first request)."""
    return _object(_description_properties())


def fused_schema(categories: Sequence[Category], max_categories: int, enum: bool = True) -> Schema:
    """Description and categories in one answer; categories come last so the model describes first."""
    return _object({**_description_properties(), "categories": _categories_schema(categories, max_categories, enum)})


def categorize_schema(categories: Sequence[Category], max_categories: int, enum: bool = True) -> Schema:
    """Categories alone (from a stored description, no image)."""
    return _object({"categories": _categories_schema(categories, max_categories, enum)})


def category_list_text(categories: Sequence[Category]) -> str:
    """The allowed categories, one per line with its definition."""
    lines = [
        f"- {c.name}: {c.definition}" if c.definition else f"- {c.name}"
        for c in categories
        if c.active and c.name.lower() != UNKNOWN
    ]
    lines.append(f"- {UNKNOWN}: none of the above fits")
    return "\n".join(lines)


@dataclass(frozen=True)
class Prompt:
    """One request's text parts and response schema (everything but the image and the generation settings)."""

    kind: str  # describe | fused | categorize: the output limit depends on it
    system: str
    text: str
    schema: Schema


_CategoryKey = tuple[tuple[str, str, bool], ...]


def _key(categories: Sequence[Category]) -> _CategoryKey:
    return tuple((c.name, c.definition, c.active) for c in categories)


def _categories(key: _CategoryKey) -> list[Category]:
    return [Category(name, definition, active) for name, definition, active in key]


@functools.lru_cache(maxsize=1)
def describe_prompt() -> Prompt:
    return Prompt("describe", _DESCRIBE_INSTRUCTIONS, "Describe this image as JSON.", describe_schema())


def fused_prompt(categories: Sequence[Category], max_categories: int, enum: bool = True) -> Prompt:
    return _fused_prompt(_key(categories), max_categories, enum)


@functools.lru_cache(maxsize=16)
def _fused_prompt(key: _CategoryKey, max_categories: int, enum: bool) -> Prompt:
    categories = _categories(key)
    system = (
        _DESCRIBE_INSTRUCTIONS
        + "\n\n"
        + _CATEGORIZE_INSTRUCTIONS.format(max_categories=max_categories)
        + "\n\nAllowed categories:\n"
        + category_list_text(categories)
    )
    return Prompt(
        "fused",
        system,
        "Describe this image as JSON, then categorize it.",
        fused_schema(categories, max_categories, enum),
    )


def categorize_prompt(
    description: dict[str, Any], categories: Sequence[Category], max_categories: int, enum: bool = True
) -> Prompt:
    """Categorize from the description text alone (the image is not sent)."""
    base = _categorize_base(_key(categories), max_categories, enum)
    text = "Image description:\n" + json.dumps(description, ensure_ascii=False)
    return Prompt("categorize", base.system, text, base.schema)


@functools.lru_cache(maxsize=16)
def _categorize_base(key: _CategoryKey, max_categories: int, enum: bool) -> Prompt:
    categories = _categories(key)
    system = (
        "You categorize images from their written description.\n"
        + _CATEGORIZE_INSTRUCTIONS.format(max_categories=max_categories)
        + "\n\nAllowed categories:\n"
        + category_list_text(categories)
    )
    return Prompt("categorize", system, "", categorize_schema(categories, max_categories, enum))
