"""Category suggestions from the data.

- Without the API: the most frequent object names, scene words, settings and genres in the stored structured
  descriptions, counted by DuckDB (`term_counts`).
- With Gemini: a sample of stored descriptions goes out as text (no image), and the model proposes a list of
  names with definitions through structured output (`suggest_with_gemini`); the user edits it before adopting it
  (`labeling.taxonomy.import_categories`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from labeling.annotators.base import ResponseFailure, RetryableError, Usage
from labeling.annotators.prompts import Prompt, Schema
from labeling.annotators.providers import create_annotator, provider_for
from labeling.categories import UNKNOWN, Category, clean_category_name
from labeling.errors import AnnotatorError, InputError
from labeling.settings import Settings
from labeling.store import Store
from labeling.store.categories import TERMS_SAMPLE
from labeling.vocabulary import SUGGEST_PROPOSALS, SUGGEST_SAMPLE

MAX_PROPOSALS = 40
_CHARS_PER_DESCRIPTION = 400  # keeps a sample of 60 around 25k characters (~6k tokens)
SUGGEST_PROMPT_VERSION = "suggest-2026-11.1"

_INSTRUCTIONS = """You design category lists for image datasets used to train detectors of AI-generated images
(real photographs versus generated images). Below are short descriptions of a sample of the images.
Propose categories of image CONTENT (the subject or scene), not of style, quality or realness, so that most images
fit one or two categories and each category covers a useful share of the images.
Rules for each category:
- name: 1 to 3 lowercase words, no commas, not "unknown";
- definition: one sentence saying what belongs in it (and, where useful, what does not).
Give between {low} and {high} categories, the most common first, with no overlapping pairs."""


@dataclass(frozen=True)
class GeminiSuggestions:
    """What Gemini proposed (cleaned), for the user to edit before adopting."""

    categories: list[Category]
    sample_size: int
    model: str
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    dropped: list[str] = field(default_factory=list)  # proposals that were not usable names, and why
    price_known: bool = True

    def frame(self) -> pd.DataFrame:
        """adopt, name, definition: the editable table the page shows."""
        return pd.DataFrame(
            {
                "adopt": [True] * len(self.categories),
                "name": [c.name for c in self.categories],
                "definition": [c.definition for c in self.categories],
            }
        )


def _dataset_ids(store: Store, datasets: Sequence[str] | None) -> list[int] | None:
    if not datasets:
        return None
    return [store.dataset_id(name) for name in dict.fromkeys(datasets)]


def term_counts(
    store: Store, datasets: Sequence[str] | None = None, limit: int = 25, *, max_images: int = TERMS_SAMPLE
) -> pd.DataFrame:
    """The most frequent terms in the structured descriptions (no API): field (object, scene word, setting,
    genre), term, images, share (of the images counted: a sample of `max_images` beyond that), in_list (the
    term names a category of the list)."""
    frame = store.description_terms(_dataset_ids(store, datasets), limit, max_images=max_images)
    names = {c.name.lower() for c in store.categories(include_inactive=True)}
    frame["in_list"] = [str(term).lower() in names for term in frame["term"]]
    return frame


def _compact(description: dict[str, Any]) -> str:
    """One line per image: summary, objects, environment, genre (what matters for content categories)."""
    parts = [str(description.get("summary") or "").strip()]
    objects = description.get("objects")
    if isinstance(objects, list):
        names = [str(o.get("name")) for o in objects if isinstance(o, dict) and o.get("name")]
        if names:
            parts.append("objects: " + ", ".join(names[:8]))
    scene = description.get("scene")
    if isinstance(scene, dict) and scene.get("environment"):
        parts.append(f"scene: {scene['environment']}")
    style = description.get("style")
    if isinstance(style, dict) and style.get("genre"):
        parts.append(f"genre: {style['genre']}")
    text = "; ".join(p for p in parts if p)
    return " ".join(text.split())[:_CHARS_PER_DESCRIPTION]


def suggestion_schema(low: int, high: int) -> Schema:
    """An object with `categories`: low..high items of {name, definition} (the REST responseSchema form)."""
    item = {
        "type": "OBJECT",
        "required": ["name", "definition"],
        "propertyOrdering": ["name", "definition"],
        "properties": {
            "name": {"type": "STRING", "description": "1-3 lowercase words"},
            "definition": {"type": "STRING", "description": "what belongs in the category"},
        },
    }
    return {
        "type": "OBJECT",
        "required": ["categories"],
        "properties": {"categories": {"type": "ARRAY", "items": item, "minItems": low, "maxItems": high}},
    }


def suggestion_prompt(descriptions: Sequence[dict[str, Any]], current: Sequence[Category], proposals: int) -> Prompt:
    """The text-only request for a sample of descriptions: instructions, the descriptions, the schema."""
    high = max(1, min(proposals, MAX_PROPOSALS))
    low = max(1, min(5, high))
    system = _INSTRUCTIONS.format(low=low, high=high)
    lines = [f"{i + 1}. {_compact(d)}" for i, d in enumerate(descriptions)]
    text = "Image descriptions:\n" + "\n".join(lines)
    if current:
        text += (
            "\n\nThe team's current list, for reference (keep, rename, merge or drop its entries as the "
            "data suggests):\n" + "\n".join(f"- {c.name}" for c in current if c.active)
        )
    return Prompt("suggest", system, text, suggestion_schema(low, high))


def _clean(proposals: Any, limit: int) -> tuple[list[Category], list[str]]:
    if not isinstance(proposals, list):
        raise AnnotatorError("Gemini's answer had no list of categories: try again, or with a larger sample.")
    kept: dict[str, Category] = {}
    dropped: list[str] = []
    for item in proposals:
        if not isinstance(item, dict):
            continue
        raw = str(item.get("name") or "")
        definition = " ".join(str(item.get("definition") or "").split())
        try:
            name = clean_category_name(raw.lower())
        except InputError as exc:
            if raw.strip().lower() != UNKNOWN:
                dropped.append(f"{raw.strip()[:60]!r}: {exc}")
            continue
        if name.lower() in kept:
            continue
        kept[name.lower()] = Category(name, definition)
    return list(kept.values())[:limit], dropped


def suggest_with_gemini(
    store: Store,
    settings: Settings,
    datasets: Sequence[str] | None = None,
    *,
    sample_size: int = SUGGEST_SAMPLE,
    proposals: int = SUGGEST_PROPOSALS,
    model: str | None = None,
    seed: int = 0,
) -> GeminiSuggestions:
    """Ask Gemini for a category list from a sample of stored descriptions (one text-only request).

    Uses the annotator's client settings (API key, gemini_base_url, request timeout). Raises AnnotatorError
    with what to do when there is no key, no description, or the request fails.
    """
    provider = provider_for(settings)
    if not provider.has_key(settings):
        raise AnnotatorError(
            f"No {provider.title} API key is set: set {provider.key_missing_hint}, or use the "
            "counts from the descriptions, which need no API."
        )
    if sample_size < 1:
        raise InputError("The sample needs at least one description.")
    sample = store.description_sample(_dataset_ids(store, datasets), sample_size, seed)
    if not sample:
        raise InputError(
            "No image has a description yet: describe some images first (Run page or `labeling describe`)."
        )
    high = max(1, min(proposals, MAX_PROPOSALS))
    prompt = suggestion_prompt([s["description"] for s in sample], store.categories(), high)
    annotator = create_annotator(settings, model=(model or settings.caption_model).strip())
    try:
        answer, usage = annotator.ask(prompt)
    except (RetryableError, ResponseFailure, AnnotatorError) as exc:
        raise _user_error(exc) from None
    finally:
        annotator.close()
    categories, dropped = _clean(answer.get("categories") if isinstance(answer, dict) else None, high)
    if not categories:
        raise AnnotatorError("Gemini proposed no usable category names: try again or with a larger sample.")
    return GeminiSuggestions(
        categories, len(sample), annotator.model, usage, usage.cost(annotator.price), dropped, annotator.price_known
    )


def _user_error(error: Exception) -> AnnotatorError:
    if isinstance(error, AnnotatorError):
        return error
    if isinstance(error, RetryableError) and error.kind == "daily_quota":
        return AnnotatorError(
            f"The daily quota is used up ({error}): it resets at midnight Pacific; try again "
            "then, or use the counts from the descriptions, which need no API."
        )
    if isinstance(error, RetryableError):
        wait = f" in {error.retry_after:.0f} s" if error.retry_after else " in a minute"
        return AnnotatorError(f"Gemini is busy or over quota ({error}): try again{wait}.")
    if isinstance(error, ResponseFailure):
        return AnnotatorError(f"Gemini could not answer ({error}): try again with another sample.")
    return AnnotatorError(str(error))
