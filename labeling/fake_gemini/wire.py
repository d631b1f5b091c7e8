"""The Gemini REST wire format: parsing a generateContent request, building answers and error bodies.

Bodies follow what generativelanguage.googleapis.com sends, key for key, so the real google-genai
client parses them exactly as it would parse Google's.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from labeling.errors import LabelingError

# HTTP code -> google.rpc status name, for every code the fake can answer with.
STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
TYPE_PREFIX = "type.googleapis.com/google.rpc."
# Gemini 2.x image billing: one 258-token unit for small images, else one per 768x768 tile.
IMAGE_TOKENS_PER_TILE = 258
_SMALL_IMAGE_SIDE = 384
_TILE_SIDE = 768


class WireError(LabelingError):
    """A request the fake answers with a Google-style error body (code, status, message, details)."""

    def __init__(self, code: int, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        """The JSON body Google sends for this error."""
        return error_body(self.code, self.message, self.details)


@dataclass(frozen=True)
class InlineBlob:
    """One `inlineData` part: its declared MIME type and decoded bytes."""

    mime_type: str
    data: bytes


@dataclass(frozen=True)
class GenerateRequest:
    """The parts of a generateContent body the fake's answer depends on."""

    texts: list[str] = field(default_factory=list)
    blobs: list[InlineBlob] = field(default_factory=list)
    response_mime_type: str | None = None
    schema: dict[str, Any] | None = None
    max_output_tokens: int | None = None

    @property
    def prompt(self) -> str:
        """All text parts (system instruction first), one per line."""
        return "\n".join(self.texts)

    @property
    def images(self) -> list[InlineBlob]:
        """Inline parts whose MIME type says image/*."""
        return [b for b in self.blobs if b.mime_type.lower().startswith("image/")]


@functools.cache
def snake_case(camel: str) -> str:
    """`inlineData` -> `inline_data` (the same few keys are converted on every request)."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()


def pick(obj: Any, camel: str) -> Any:
    """`obj[camel]` or its snake_case twin: the SDK and other clients send either spelling."""
    if not isinstance(obj, dict):
        return None
    if camel in obj:
        return obj[camel]
    return obj.get(snake_case(camel))


def parse_generate_request(raw: bytes) -> GenerateRequest:
    """Parse a generateContent body; raises `WireError` 400 INVALID_ARGUMENT as Google would."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(400, f"Invalid JSON payload received. {exc}") from exc
    if not isinstance(body, dict):
        raise WireError(400, "Invalid JSON payload received. Expected an object.")
    contents = body.get("contents")
    if not contents or not isinstance(contents, list):
        raise WireError(400, "* GenerateContentRequest.contents: contents is not specified\n")
    texts: list[str] = []
    blobs: list[InlineBlob] = []
    system = pick(body, "systemInstruction")
    for where, content in [("system_instruction", system)] + [(f"contents[{i}]", c) for i, c in enumerate(contents)]:
        _collect_parts(content, where, texts, blobs)
    config = pick(body, "generationConfig") or {}
    schema = pick(config, "responseJsonSchema") or pick(config, "responseSchema")
    max_tokens = pick(config, "maxOutputTokens")
    return GenerateRequest(
        texts=texts,
        blobs=blobs,
        response_mime_type=pick(config, "responseMimeType"),
        schema=schema if isinstance(schema, dict) else None,
        max_output_tokens=int(max_tokens) if max_tokens else None,
    )


def _collect_parts(content: Any, where: str, texts: list[str], blobs: list[InlineBlob]) -> None:
    if isinstance(content, str):  # a bare string is how some clients send a system instruction
        texts.append(content)
        return
    for j, part in enumerate(pick(content, "parts") or []):
        if isinstance(pick(part, "text"), str):
            texts.append(part["text"])
        inline = pick(part, "inlineData")
        if isinstance(inline, dict):
            data = _decode_base64(str(inline.get("data", "")), f"{where}.parts[{j}].inline_data.data")
            blobs.append(InlineBlob(str(pick(inline, "mimeType") or ""), data))


def _decode_base64(text: str, where: str) -> bytes:
    """Decode URL-safe or standard base64, padded or not (the SDK sends URL-safe with padding)."""
    cleaned = re.sub(r"\s+", "", text).replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WireError(400, f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed") from exc


def error_body(code: int, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """`{"error": {"code", "message", "status", "details"?}}`; Google omits details when empty."""
    error: dict[str, Any] = {"code": code, "message": message, "status": STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        error["details"] = details
    return {"error": error}


def retry_info(delay_s: float) -> dict[str, Any]:
    """A RetryInfo detail; like Google, whole seconds only ("12s" for 12.7 s)."""
    return {"@type": TYPE_PREFIX + "RetryInfo", "retryDelay": f"{max(int(delay_s), 0)}s"}


def quota_details(model: str, rpm: int, delay_s: float) -> list[dict[str, Any]]:
    """Help, QuotaFailure and RetryInfo details of a requests-per-minute 429."""
    return [
        {"@type": TYPE_PREFIX + "Help", "links": [
            {"description": "Learn more about Gemini API quotas",
             "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
        {"@type": TYPE_PREFIX + "QuotaFailure", "violations": [{
            "quotaMetric": "generativelanguage.googleapis.com/generate_content_paid_tier_requests",
            "quotaId": "GenerateRequestsPerMinutePerProjectPerModel",
            "quotaDimensions": {"location": "global", "model": model},
            "quotaValue": str(rpm),
        }]},
        retry_info(delay_s),
    ]


def quota_message(model: str, rpm: int, delay_s: float) -> str:
    """The 429 message, ending with "Please retry in 12.3s." as Google's does."""
    return (
        "You exceeded your current quota, please check your plan and billing details. For more information "
        "on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current "
        "usage, head to: https://ai.dev/rate-limit. \n"
        "* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_paid_tier_requests, "
        f"limit: {rpm}, model: {model}\nPlease retry in {delay_s:.1f}s."
    )


def key_invalid_details() -> list[dict[str, Any]]:
    """ErrorInfo API_KEY_INVALID plus the localized message, as Google sends for a bad key."""
    message = "API key not valid. Please pass a valid API key."
    return [
        {"@type": TYPE_PREFIX + "ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
         "metadata": {"service": "generativelanguage.googleapis.com"}},
        {"@type": TYPE_PREFIX + "LocalizedMessage", "locale": "en-US", "message": message},
    ]


def text_tokens(text: str) -> int:
    """About four characters a token, as Gemini's tokenizer averages on English."""
    return math.ceil(len(text) / 4)


def image_tokens(width: int, height: int) -> int:
    """Gemini 2.x: 258 when both sides are <= 384 px, else 258 per 768x768 tile."""
    if width <= _SMALL_IMAGE_SIDE and height <= _SMALL_IMAGE_SIDE:
        return IMAGE_TOKENS_PER_TILE
    return IMAGE_TOKENS_PER_TILE * math.ceil(width / _TILE_SIDE) * math.ceil(height / _TILE_SIDE)


def usage_metadata(prompt_text: int, prompt_image: int, output: int, thoughts: int) -> dict[str, Any]:
    """usageMetadata; thoughtsTokenCount only when > 0 and IMAGE details only when an image was sent."""
    details = [{"modality": "TEXT", "tokenCount": prompt_text}]
    if prompt_image:
        details.append({"modality": "IMAGE", "tokenCount": prompt_image})
    usage: dict[str, Any] = {"promptTokenCount": prompt_text + prompt_image}
    if output:
        usage["candidatesTokenCount"] = output
    usage["totalTokenCount"] = prompt_text + prompt_image + output + thoughts
    usage["promptTokensDetails"] = details
    if thoughts > 0:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def response_body(model: str, usage: dict[str, Any], *, candidate: dict[str, Any] | None = None,
                  prompt_feedback: dict[str, Any] | None = None) -> dict[str, Any]:
    """A GenerateContentResponse with one candidate (or none, when the prompt was blocked)."""
    body: dict[str, Any] = {}
    if candidate is not None:
        body["candidates"] = [candidate]
    if prompt_feedback is not None:
        body["promptFeedback"] = prompt_feedback
    body["usageMetadata"] = usage
    body["modelVersion"] = model
    body["responseId"] = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
    return body


def text_candidate(text: str, finish_reason: str = "STOP") -> dict[str, Any]:
    """A candidate answering `text`."""
    return {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": finish_reason, "index": 0}


def safety_candidate() -> dict[str, Any]:
    """A candidate blocked by the safety filter: no content, one HIGH rating."""
    ratings = [
        {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "HIGH", "blocked": True},
        {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"},
    ]
    return {"finishReason": "SAFETY", "index": 0, "safetyRatings": ratings}
