"""The fake model's answers: JSON valid against the request's schema, derived from what it received.

One generic walk serves both schema dialects the API accepts: the OpenAPI-style `responseSchema`
(types "OBJECT", "STRING", ..., `nullable`, `propertyOrdering`) and a JSON Schema `responseJsonSchema`
(lowercase types, `$defs`/`$ref`, `anyOf`, `const`). Keys may arrive camelCase or snake_case.

Steering rules (documented so demo-image generators and tests can rely on them):
- a string field named summary/description/caption says the image's real size, colour and tone;
- enum values come from the image's dominant hue: index = int(hue * n) over the enum minus "unknown";
  a greyish image (low saturation) also gets the value half-way round the list, within maxItems;
- with no image, enum values come from the prompt's description (see `described_values`): the values it
  names, else the one whose definition shares the most of its words, else one picked by a hash of the prompt
  (spread over the whole list, never one catch-all); never a value outside the enum.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from labeling.fake_gemini.vision import ImageFacts
from labeling.fake_gemini.wire import snake_case

# Value the off_list_category fault slips into an enum field.
OFF_LIST_VALUE = "spaceships"
# Recursive $refs (trees) stop growing here.
_MAX_DEPTH = 8
_SUMMARY_FIELDS = {"summary", "description", "caption", "alt_text", "alt"}
_OUTDOOR_COLOURS = {"blue", "green", "cyan"}
# A header that ends the description part of a prompt (the category list usually follows it).
_LIST_HEADER = re.compile(
    r"^\s*(allowed\s+|available\s+)?(categories|category\s+list|labels|options|taxonomy|choices)\b[^\n]*:",
    re.IGNORECASE | re.MULTILINE,
)
_DESCRIPTION_MARKER = re.compile(r"\bdescription\s*:", re.IGNORECASE)
# Words of category definitions that say nothing about the subject ("images without a main subject").
# (Compared after plurals are folded: "images" reads "image".)
_GENERIC_WORDS = frozenset(
    {"and", "any", "are", "but", "for", "from", "into", "its", "more", "not", "one", "other", "the", "their"}
    | {"them", "very", "where", "which", "with", "without", "image", "main", "picture", "scene", "shot", "subject"}
)
# Fixed, valid examples for string formats a client will parse (datetime, UUID, URL fields).
_FORMATS = {
    "date-time": "2026-01-01T12:00:00Z",
    "date": "2026-01-01",
    "time": "12:00:00",
    "duration": "PT1S",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "uri": "https://example.com/simulated",
    "email": "simulated@example.com",
}


@dataclass
class AnswerContext:
    """What an answer may depend on: the first image received, the prompt text, the fault to apply."""

    facts: ImageFacts | None
    prompt: str
    off_list: bool = False  # put one value outside its enum (the off_list_category fault)
    off_list_in_scalars: bool = False  # also in a single-value enum field (when no enum array exists)
    off_list_done: bool = False

    def take_off_list(self, in_array: bool) -> bool:
        """True once: for the first enum array (or, if allowed, enum field) met under the fault."""
        if self.off_list and not self.off_list_done and (in_array or self.off_list_in_scalars):
            self.off_list_done = True
            return True
        return False


def summary_sentence(ctx: AnswerContext) -> str:
    """The one-line description every summary field (and a plain-text answer) carries."""
    f = ctx.facts
    if f is None:
        return f"Simulated answer to a text-only request of {len(ctx.prompt)} characters."
    r, g, b = f.mean_rgb
    return f"Simulated description of a {f.width}x{f.height} image, mostly {f.colour} (mean RGB {r},{g},{b}), {f.tone}."


def answer_for_schema(schema: dict[str, Any], ctx: AnswerContext, *, drop_required: bool = False) -> Any:
    """A value valid against `schema` (unless a fault says otherwise), derived from `ctx`.

    `drop_required` (the wrong_shape fault) removes the root object's required fields.
    """
    value = _value(schema, schema, ctx, name="", index=0, depth=0)
    if ctx.off_list and not ctx.off_list_done:
        # No array of enum values took the off-list value: give it to the first single enum field.
        ctx.off_list_in_scalars = True
        value = _value(schema, schema, ctx, name="", index=0, depth=0)
    if drop_required:
        root = _resolve(schema, schema)
        required = set(_get(root, "required") or [])
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k not in required} or {"answer": summary_sentence(ctx)}
        else:
            value = {"answer": value}
    return value


def enum_answer(schema: dict[str, Any], ctx: AnswerContext) -> str:
    """The bare value for `text/x.enum` answers."""
    values = _get(_resolve(schema, schema), "enum") or [""]
    return str(_choose_values(values, ctx, name="", min_items=1, max_items=1)[0])


def mentioned_values(values: list[Any], prompt: str) -> list[Any]:
    """Enum values the prompt's description part names (case-insensitive, `_`/`-` read as spaces, plurals folded).

    The description part is the text after a "Description:" marker, up to a "Categories:"-style header; a JSON
    description counts by its subject only (see `_subject_text`), so its field names never count.
    Without a marker, a value counts as mentioned when it appears more often than the least-mentioned
    value, so a category list that names every value once does not make them all "mentioned".
    """
    section = _description_section(prompt)
    if section is not None:
        words = _words(_subject_text(section))
        return [v for v in values if _contains(words, _words(str(v)))]
    counts = [_count_mentions(str(v), prompt) for v in values]
    base = min(counts, default=0)
    return [v for v, n in zip(values, counts, strict=True) if n > base]


def described_values(values: list[Any], prompt: str) -> list[Any]:
    """The text-only choice: the values the description names, else the one whose definition (from the
    prompt's category list) shares the most of the description's words, rare words weighing more, else one
    picked by a hash of the prompt. Ties go by the hash too, so no value becomes the catch-all."""
    digest = int(hashlib.sha256(prompt.encode()).hexdigest(), 16)
    mentioned = mentioned_values(values, prompt)
    if mentioned:
        return mentioned
    section = _description_section(prompt)
    if section is not None:
        definitions = listed_definitions(prompt)
        scores = _definition_scores(values, definitions, set(_words(_subject_text(section))))
        best = max(scores, default=0.0)
        if best > 0:
            tied = [v for v, score in zip(values, scores, strict=True) if score == best]
            return [tied[digest % len(tied)]]
    return [values[digest % len(values)]] if values else []


def _definition_scores(values: list[Any], definitions: dict[str, str], words: set[str]) -> list[float]:
    """Per value: the description's words found in its definition, each weighing 1 / (definitions holding it)."""
    keywords = [
        {w for w in _words(definitions.get(str(v), "")) if w not in _GENERIC_WORDS and len(w) > 2} for v in values
    ]
    holding: dict[str, int] = {}
    for found in keywords:
        for word in found:
            holding[word] = holding.get(word, 0) + 1
    return [sum(1 / holding[w] for w in found & words) for found in keywords]


def _description_section(prompt: str) -> str | None:
    """The text after the last "Description:" marker, up to a "Categories:"-style header; None without one."""
    markers = list(_DESCRIPTION_MARKER.finditer(prompt))
    if not markers:
        return None
    section = prompt[markers[-1].end() :]
    header = _LIST_HEADER.search(section)
    return section[: header.start()] if header else section


def _subject_text(section: str) -> str:
    """What a description says the image shows: a JSON description's summary and object names (its style,
    camera and quality fields say how it looks, and its field names nothing); any other text as it is."""
    try:
        value, _ = json.JSONDecoder().raw_decode(section.strip())
    except ValueError:
        return section
    if not isinstance(value, dict):
        return section
    objects: list[Any] = value["objects"] if isinstance(value.get("objects"), list) else []
    names = [str(item.get("name", "")) for item in objects if isinstance(item, dict)]
    parts = [str(value.get("summary") or ""), *names]
    return "\n".join(parts) if any(parts) else " ".join(_strings_in(value))


def _strings_in(value: Any) -> list[str]:
    """Every string value in a JSON value (not its keys)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings_in(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings_in(item)]
    return []


def _words(text: str) -> list[str]:
    """Lower-case words with plurals folded ("cities" ~ "city", "cars" ~ "car"); `_` and `-` split words."""
    return [_singular_word(w) for w in re.findall(r"[a-z0-9]+", text.lower())]


def _singular_word(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _contains(words: list[str], phrase: list[str]) -> bool:
    """Whether `phrase` occurs in `words` as consecutive words."""
    size = len(phrase)
    return size > 0 and any(words[i : i + size] == phrase for i in range(len(words) - size + 1))


def listed_definitions(prompt: str) -> dict[str, str]:
    """name -> definition of a "Categories:"-style list in the prompt ("- name: definition" lines)."""
    header = _LIST_HEADER.search(prompt)
    if header is None:
        return {}
    found = {}
    for line in prompt[header.end() :].splitlines()[1:]:
        if not line.startswith("- "):
            break
        name, _, definition = line[2:].partition(":")
        found[name.strip()] = definition.strip()
    return found


def listed_values(prompt: str) -> list[str]:
    """The names of a "Categories:"-style list in the prompt ("- name: definition" lines), in order."""
    return [name for name in listed_definitions(prompt) if name]


def _count_mentions(value: str, text: str) -> int:
    """Whole-word, case-insensitive occurrences of `value` in `text` ("street_scene" ~ "street scene")."""
    words = [w for w in re.split(r"[\s_\-]+", value) if w]
    if not words:
        return 0
    pattern = r"\b" + r"[\s_\-]+".join(re.escape(w) for w in words) + r"\b"
    return len(re.findall(pattern, text, re.IGNORECASE))


def _get(schema: dict[str, Any], camel: str) -> Any:
    """A schema key in camelCase or snake_case."""
    if camel in schema:
        return schema[camel]
    return schema.get(snake_case(camel))


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow local `$ref`s ("#/$defs/X", "#/definitions/X", any JSON pointer into the root)."""
    seen = 0
    while isinstance(schema.get("$ref"), str) and seen < 32:
        node: Any = root
        for part in schema["$ref"].lstrip("#").strip("/").split("/"):
            node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, dict) else {}
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        schema = {**node, **rest} if isinstance(node, dict) else rest
        seen += 1
    return schema


def _type_of(schema: dict[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if str(k).lower() != "null"), "null")
    if isinstance(kind, str):
        return kind.lower()
    if _get(schema, "properties") is not None:
        return "object"
    return "array" if "items" in schema else None


def _value(schema: Any, root: dict[str, Any], ctx: AnswerContext, name: str, index: int, depth: int) -> Any:
    """Walk one schema node and build its value."""
    if not isinstance(schema, dict):
        return None
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    variants = _get(schema, "anyOf") or _get(schema, "oneOf")
    if variants:
        # The first non-null branch is as valid as any; null would hide the field's content.
        branch = next((v for v in variants if _type_of(_resolve(v, root)) != "null"), variants[0])
        return _value(branch, root, ctx, name, index, depth)
    all_of = _get(schema, "allOf")
    if all_of:
        merged: dict[str, Any] = {}
        for part in all_of:
            merged.update(_resolve(part, root))
        return _value(merged, root, ctx, name, index, depth)
    kind = _type_of(schema)
    enum = _get(schema, "enum")
    if enum and kind in (None, "string", "integer", "number"):
        return _enum_value(enum, ctx, name)
    if kind == "object":
        return _object(schema, root, ctx, index, depth)
    if kind == "array":
        return _array(schema, root, ctx, name, depth)
    if kind in ("integer", "number"):
        return _number(schema, ctx, name, integer=kind == "integer")
    if kind == "boolean":
        return _boolean(ctx, name)
    if kind == "null":
        return None
    return _string(schema, ctx, name, index)


def _object(schema: dict[str, Any], root: dict[str, Any], ctx: AnswerContext, index: int, depth: int) -> dict[str, Any]:
    """Every property, in propertyOrdering order; `index` (its place in an array) varies the names."""
    properties: dict[str, Any] = _get(schema, "properties") or {}
    if depth >= _MAX_DEPTH:
        properties = {k: v for k, v in properties.items() if k in (_get(schema, "required") or [])}
    order = [k for k in (_get(schema, "propertyOrdering") or []) if k in properties]
    order += [k for k in properties if k not in order]
    return {key: _value(properties[key], root, ctx, key, index, depth + 1) for key in order}


def _array(schema: dict[str, Any], root: dict[str, Any], ctx: AnswerContext, name: str, depth: int) -> list[Any]:
    items = _resolve(schema.get("items") or {}, root)
    min_items = int(_get(schema, "minItems") or 0)
    max_items = _get(schema, "maxItems")
    max_items = int(max_items) if max_items is not None else None
    enum = _get(items, "enum")
    if enum:
        picks = _choose_values(enum, ctx, name, min_items, max_items)
        if picks and ctx.take_off_list(in_array=True):
            picks[0] = OFF_LIST_VALUE
        return picks
    listed = listed_values(ctx.prompt) if _type_of(items) in (None, "string") else []
    if listed and name.lower() in ("categories", "labels", "tags"):
        # Plain strings for a list the prompt spells out: the model follows the instructions, as Gemini does.
        picks = _choose_values(listed, ctx, name, min_items, max_items)
        if picks and ctx.take_off_list(in_array=True):
            picks[0] = OFF_LIST_VALUE
        return picks
    if _type_of(items) in (None, "string") and not _get(items, "anyOf"):
        texts = _texts_for(name, ctx)
        count = _clamp(len(texts), min_items, max_items)
        return [texts[i] if i < len(texts) else f"{_plain(name)} {i + 1}" for i in range(count)]
    wanted = 0 if depth >= _MAX_DEPTH else 2
    count = _clamp(wanted, min_items, max_items)
    return [_value(items, root, ctx, _singular(name), i, depth + 1) for i in range(count)]


def _clamp(count: int, min_items: int, max_items: int | None) -> int:
    count = max(count, min_items)
    return min(count, max_items) if max_items is not None else count


def _enum_value(values: list[Any], ctx: AnswerContext, name: str) -> Any:
    if ctx.take_off_list(in_array=False):
        return OFF_LIST_VALUE
    derived = _string({}, ctx, name, 0).lower()
    for value in values:
        if str(value).lower() == derived:
            return value
    return _choose_values(values, ctx, name, 1, 1)[0]


def _choose_values(
    values: list[Any], ctx: AnswerContext, name: str, min_items: int, max_items: int | None
) -> list[Any]:
    """Deterministic enum choices: by dominant hue for an image, by mentions for text (module doc)."""
    pool = [v for v in values if str(v).lower() != "unknown"] or list(values)
    if ctx.facts is not None:
        first = int(ctx.facts.hue * len(pool)) % len(pool)
        picks = [pool[first]]
        if ctx.facts.is_greyish and len(pool) > 1:
            picks.append(pool[(first + len(pool) // 2) % len(pool)])
    else:
        picks = described_values(pool, ctx.prompt)
    for value in pool + list(values):
        # Fill up to minItems with the following values, never repeating one.
        if len(picks) >= min_items:
            break
        if value not in picks:
            picks.append(value)
    if max_items is not None:
        picks = picks[: max(max_items, 0)]
    return picks


def _number(schema: dict[str, Any], ctx: AnswerContext, name: str, *, integer: bool) -> int | float:
    key = name.lower()
    f = ctx.facts
    if f is not None and key in ("width", "height"):
        return f.width if key == "width" else f.height
    low = schema.get("minimum", 0)
    high = schema.get("maximum", low + (10 if integer else 1))
    share = f.brightness if f is not None else 0.5
    value = low + (high - low) * share
    return round(value) if integer else round(value, 3)


def _boolean(ctx: AnswerContext, name: str) -> bool:
    key = name.lower()
    f = ctx.facts
    if f is None or "text" in key or "watermark" in key:
        return False
    if "outdoor" in key:
        return f.colour in _OUTDOOR_COLOURS
    return f.saturation > 0.5


def _string(schema: dict[str, Any], ctx: AnswerContext, name: str, index: int) -> str:
    text = _FORMATS.get(str(schema.get("format", "")).lower()) or _text_for(name.lower(), ctx, index)
    max_length = _get(schema, "maxLength")
    if max_length is not None:
        text = text[: int(max_length)]
    min_length = int(_get(schema, "minLength") or 0)
    return text.ljust(min_length, ".")


def _text_for(key: str, ctx: AnswerContext, index: int) -> str:
    """Short plausible text for a string field, derived from the image (or the prompt when none)."""
    if key in _SUMMARY_FIELDS:
        return summary_sentence(ctx)
    f = ctx.facts
    if f is None:
        return f"simulated {_plain(key) or 'answer'}"
    outdoor = f.colour in _OUTDOOR_COLOURS
    shape = {"landscape": 0, "square": 1, "portrait": 2}[f.orientation]
    by_name = {
        "name": [f"{f.colour} shape", "background"][index] if index < 2 else f"object {index + 1}",
        "indoor_outdoor": "outdoor" if outdoor else "indoor",
        "environment": f"{f.colour}-toned {'open landscape' if outdoor else 'interior'}",
        "setting": f"{f.colour}-toned {'open landscape' if outdoor else 'interior'}",
        "genre": "simulated photograph",
        "lighting": {"bright": "bright, even daylight", "dark": "low light", "mid-toned": "soft, even light"}[f.tone],
        "colors": f"mostly {f.colour}",
        "colours": f"mostly {f.colour}",
        "shot": ("wide shot", "close-up", "medium shot")[shape],
        "fov": ("wide", "normal", "narrow")[shape],
        "lens": ("24mm wide-angle", "50mm standard", "85mm portrait")[shape],
        "text": "none",
        "aesthetic": "pleasant" if f.tone == "bright" else "average",
        "issues": "none",
        "mood": {"bright": "cheerful", "dark": "sombre", "mid-toned": "calm"}[f.tone],
    }
    return by_name.get(key, f"simulated {_plain(key) or 'answer'} of a {f.colour} image")


def _texts_for(name: str, ctx: AnswerContext) -> list[str]:
    """Items for an array of strings, derived like `_text_for`."""
    key = name.lower()
    f = ctx.facts
    if f is None:
        return [f"simulated {_plain(_singular(key)) or 'item'}"]
    lists = {
        "attributes": [f.colour, f.tone, f.orientation],
        "colors": [f.colour, "white" if f.tone != "dark" else "black"],
        "colours": [f.colour, "white" if f.tone != "dark" else "black"],
        "issues": ["low resolution"] if f.width * f.height < 256 * 256 else [],
        "tags": [f.colour, f.orientation],
        "keywords": [f.colour, f.orientation],
        "objects": [f"{f.colour} shape", "background"],
    }
    return lists.get(key, [_text_for(_singular(key), ctx, 0)])


def _plain(key: str) -> str:
    return key.replace("_", " ").strip()


def _singular(key: str) -> str:
    return key[:-1] if key.endswith("s") and not key.endswith("ss") else key
