"""What each API version accepts: the field names of a generateContent body, their enum values,
the thinking rules of each model family and how complex a response schema may be.

Field sets follow googleapis google/ai/generativelanguage/{v1,v1beta}/generative_service.proto. The API
reads proto JSON, so every name may come camelCase or snake_case.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from labeling.fake_gemini.models import is_gemini2
from labeling.fake_gemini.shapes import TOO_MANY_STATES
from labeling.fake_gemini.wire import TYPE_PREFIX, GenerateRequest, WireError, camel_case, pick, snake_case

_V1_TOP = frozenset({"model", "contents", "safetySettings", "generationConfig"})
_V1_CONFIG = frozenset(
    {
        "candidateCount",
        "stopSequences",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "enableEnhancedCivicAnswers",
    }
)
# continuationToken: the SDK sends it back to get the rest of an answer cut at finishReason CONTINUATION.
_BETA_TOP = _V1_TOP | {
    "systemInstruction",
    "tools",
    "toolConfig",
    "cachedContent",
    "serviceTier",
    "store",
    "continuationToken",
}
_BETA_CONFIG = _V1_CONFIG | {
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "seed",
    "speechConfig",
    "thinkingConfig",
    "mediaResolution",
    "imageConfig",
}
_THINKING = frozenset({"thinkingBudget", "thinkingLevel", "includeThoughts"})
_SERVICE_TIERS = frozenset({"unspecified", "standard", "flex", "priority"})
_MEDIA_RESOLUTIONS = frozenset(f"MEDIA_RESOLUTION_{level}" for level in ("UNSPECIFIED", "LOW", "MEDIUM", "HIGH"))
THINKING_LEVELS = frozenset({"THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH", "XHIGH"})
# Each minItems/maxItems costs the schema this many "states" (see `schema_states`).
_STATES_PER_ITEM_BOUND = 10


def _unknown(names: Iterable[str], known: frozenset[str]) -> list[str]:
    return [name for name in names if camel_case(name) not in known]


def _violation(name: str, location: str | None) -> dict[str, str]:
    at = f" at '{location}'" if location else ""
    description = f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
    return {"field": location, "description": description} if location else {"description": description}


def unknown_fields(request: GenerateRequest, api_version: str) -> WireError | None:
    """400 INVALID_ARGUMENT listing every field this version lacks, worded as Google words it."""
    beta = api_version != "v1"
    violations = [_violation(n, None) for n in _unknown(request.top_level_keys, _BETA_TOP if beta else _V1_TOP)]
    violations += [
        _violation(n, "generation_config")
        for n in _unknown(request.generation_config_keys, _BETA_CONFIG if beta else _V1_CONFIG)
    ]
    if beta and request.thinking is not None:
        location = "generation_config.thinking_config"
        violations += [_violation(n, location) for n in _unknown(request.thinking, _THINKING)]
    if not violations:
        return None
    details = [{"@type": TYPE_PREFIX + "BadRequest", "fieldViolations": violations}]
    return WireError(400, "\n".join(v["description"] for v in violations), details)


def bad_enum_value(request: GenerateRequest) -> WireError | None:
    """400 for an enum value the API does not know (wording approximated from proto-JSON parse errors)."""
    tier, resolution = request.service_tier, request.media_resolution
    level = pick(request.thinking, "thinkingLevel")
    if tier is not None and tier.lower() not in _SERVICE_TIERS:
        return _invalid_value("service_tier", tier)
    if resolution is not None and resolution not in _MEDIA_RESOLUTIONS:
        return _invalid_value("generation_config.media_resolution", resolution)
    if level is not None and str(level).upper() not in THINKING_LEVELS:
        return _invalid_value("generation_config.thinking_config.thinking_level", level)
    return None


def _invalid_value(location: str, sent: Any) -> WireError:
    message = f"Invalid value at '{location}', \"{sent}\""
    details = [{"@type": TYPE_PREFIX + "BadRequest", "fieldViolations": [{"field": location, "description": message}]}]
    return WireError(400, message, details)


def thinking_refusal(request: GenerateRequest, model: str) -> WireError | None:
    """The 400s Google answers for thinking settings a model does not take (measured on the live API)."""
    thinking = request.thinking or {}
    level, budget = pick(thinking, "thinkingLevel"), pick(thinking, "thinkingBudget")
    if level is not None and is_gemini2(model):
        return WireError(400, "Thinking level is not supported for this model.")
    if level is not None and budget is not None:
        return WireError(400, "You can only set only one of thinking budget and thinking level.")
    if str(level).upper() == "MINIMAL" and "-pro" in model:
        # Wording approximated: the live API refuses MINIMAL on Pro models, no public source quotes the text.
        return WireError(400, f"Thinking level MINIMAL is not supported for {model}. Use LOW or higher.")
    return None


def schema_states(schema: Any) -> int:
    """A stand-in for the serving constraint's size: enum characters plus a fixed cost per item bound."""
    if isinstance(schema, list):
        return sum(schema_states(item) for item in schema)
    if not isinstance(schema, dict):
        return 0
    states = 0
    for key, value in schema.items():
        name = snake_case(key)
        if name == "enum" and isinstance(value, list):
            states += sum(len(str(v)) for v in value)
        elif name in ("min_items", "max_items"):
            states += _STATES_PER_ITEM_BOUND
        elif name == "properties" and isinstance(value, dict):
            states += schema_states(list(value.values()))  # property names are not keywords
        else:
            states += schema_states(value)
    return states


def schema_refusal(request: GenerateRequest, max_states: int) -> WireError | None:
    """The "too many states" 400 when the schema exceeds `max_states` (0: never)."""
    if max_states > 0 and request.schema is not None and schema_states(request.schema) > max_states:
        return WireError(400, TOO_MANY_STATES)
    return None
