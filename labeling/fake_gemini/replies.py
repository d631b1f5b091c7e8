"""What the fake answers: refusals (key, model, quota), injected faults and normal answers."""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from labeling.fake_gemini.answers import AnswerContext, answer_for_schema, enum_answer, summary_sentence
from labeling.fake_gemini.vision import ImageFacts, image_facts
from labeling.fake_gemini.wire import (
    GenerateRequest,
    WireError,
    error_body,
    image_tokens,
    key_invalid_details,
    quota_details,
    quota_message,
    response_body,
    safety_candidate,
    text_candidate,
    text_tokens,
    usage_metadata,
)

KEY_INVALID = "API key not valid. Please pass a valid API key."
NO_KEY = ("Method doesn't allow unregistered callers (callers without established identity). "
          "Please use API Key or other form of API consumer identity to call this API.")
_TROUBLESHOOTING = "https://developers.generativeai.google/guide/troubleshooting"
# Messages Google sends with the plain HTTP-error faults.
_FAULT_ERRORS = {
    "http_400": (400, "Request contains an invalid argument."),
    "http_500": (500, f"An internal error has occurred. Please retry or report in {_TROUBLESHOOTING}"),
    "http_503": (503, "The model is overloaded. Please try again later."),
    "http_504": (504, "Deadline expired before operation could complete."),
}
# Limit named in the message of an injected 429 when no rpm quota is set.
_NOMINAL_RPM = 4000


@dataclass
class Reply:
    """An HTTP answer; `body` None means: close the connection without answering (status 0)."""

    status: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    fault: str | None = None


@dataclass(frozen=True)
class AnswerSettings:
    """The server settings a reply depends on, read once per request."""

    rpm_quota: int
    retry_delay_s: float
    thoughts_tokens: int


def error_reply(error: WireError, fault: str | None = None) -> Reply:
    """The Google error body for `error`."""
    return Reply(error.code, error.body(), fault=fault)


def model_not_found(model: str, api_version: str) -> WireError:
    """404 NOT_FOUND worded as Google words it."""
    return WireError(404, f"models/{model} is not found for API version {api_version}, or is not supported "
                          "for generateContent. Call ListModels to see the list of available models and their "
                          "supported methods.")


def quota_reply(model: str, rpm: int, wait_s: float, fault: str | None = None) -> Reply:
    """429 RESOURCE_EXHAUSTED with QuotaFailure and RetryInfo details and a Retry-After header."""
    body = error_body(429, quota_message(model, rpm, wait_s), quota_details(model, rpm, wait_s))
    return Reply(429, body, {"Retry-After": str(math.ceil(wait_s))}, fault)


def first_image_facts(request: GenerateRequest) -> ImageFacts | None:
    """Facts of the first image; `WireError` 400 as Google answers when it cannot be decoded."""
    if not request.images:
        return None
    blob = request.images[0]
    try:
        return image_facts(blob.data, blob.mime_type)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise WireError(400, f"Unable to process input image. Please retry or report in {_TROUBLESHOOTING}") from exc


def answer_reply(model: str, api_version: str, request: GenerateRequest, facts: ImageFacts | None,
                 fault: str | None, settings: AnswerSettings) -> Reply:
    """The reply to an admitted request, shaped by its fault (None = a normal answer; "hang" is not here)."""
    if fault in _FAULT_ERRORS:
        code, message = _FAULT_ERRORS[fault]
        return Reply(code, error_body(code, message), fault=fault)
    if fault == "http_429":
        return quota_reply(model, settings.rpm_quota or _NOMINAL_RPM, settings.retry_delay_s, fault)
    if fault == "http_403":
        return error_reply(WireError(403, KEY_INVALID, key_invalid_details()), fault)
    if fault == "http_404":
        return error_reply(model_not_found(model, api_version), fault)
    prompt_tokens = text_tokens(request.prompt)
    picture_tokens = sum(image_tokens(*_image_size(b.data)) for b in request.images)
    if fault == "safety":
        usage = usage_metadata(prompt_tokens, picture_tokens, 0, 0)
        return Reply(200, response_body(model, usage, candidate=safety_candidate()), fault=fault)
    if fault == "prompt_blocked":
        usage = usage_metadata(prompt_tokens, picture_tokens, 0, 0)
        feedback = {"blockReason": "PROHIBITED_CONTENT"}
        return Reply(200, response_body(model, usage, prompt_feedback=feedback), fault=fault)
    text, finish = answer_text(request, facts, fault)
    usage = usage_metadata(prompt_tokens, picture_tokens, text_tokens(text), settings.thoughts_tokens)
    return Reply(200, response_body(model, usage, candidate=text_candidate(text, finish)), fault=fault)


def answer_text(request: GenerateRequest, facts: ImageFacts | None, fault: str | None) -> tuple[str, str]:
    """The candidate's text and finishReason of a 200 answer."""
    ctx = AnswerContext(facts, request.prompt, off_list=fault == "off_list_category")
    mime = (request.response_mime_type or "").lower()
    if mime == "application/json":
        value = (answer_for_schema(request.schema, ctx, drop_required=fault == "wrong_shape")
                 if request.schema else {"summary": summary_sentence(ctx)})
        text = json.dumps(value, ensure_ascii=False)
    elif mime == "text/x.enum" and request.schema:
        text = enum_answer(request.schema, ctx)
    else:
        text = summary_sentence(ctx)
    if fault == "malformed_json":
        return "Sure! Here is the JSON: " + text[:-1] + ",", "STOP"
    if fault == "max_tokens":
        return text[: len(text) // 2], "MAX_TOKENS"
    limit = request.max_output_tokens
    if limit and text_tokens(text) > limit:
        # The real model stops mid-answer when maxOutputTokens runs out.
        return text[: limit * 4], "MAX_TOKENS"
    return text, "STOP"


def _image_size(data: bytes) -> tuple[int, int]:
    """Width and height from the header only (no decode); (0, 0) if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return (0, 0)
