"""What the fake answers to an admitted request: an injected error shape or a 200 shaped by its fault."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from labeling.fake_gemini.answers import AnswerContext, answer_for_schema, enum_answer, summary_sentence
from labeling.fake_gemini.models import image_tokens, thinking_tokens, thoughts_count_toward_limit
from labeling.fake_gemini.shapes import ERROR_SHAPES, IMAGE_UNPROCESSABLE
from labeling.fake_gemini.vision import ImageFacts, image_facts
from labeling.fake_gemini.wire import (
    GenerateRequest,
    WireError,
    candidate,
    continuation_token,
    pick,
    response_body,
    safety_candidate,
    text_tokens,
    usage_metadata,
)

# thoughtsTokenCount of the max_tokens_thinking fault when the request sets no maxOutputTokens.
_DEFAULT_THINKING_LIMIT = 256


@dataclass
class Reply:
    """An HTTP answer; status 0 (with `body` None) means: close the connection without answering,
    abruptly (a TCP reset) when `reset` is set. `content` (raw bytes, e.g. a file download or an empty
    upload answer) is sent instead of the JSON `body` when set; `headers` go out with either."""

    status: int
    body: dict[str, Any] | None
    fault: str | None = None
    reset: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    content_type: str = "application/json; charset=UTF-8"


@dataclass(frozen=True)
class AnswerSettings:
    """The server settings a reply depends on, read once per request."""

    rpm_quota: int
    retry_delay_s: float
    thoughts_tokens: int | None  # None: by model family and thinkingConfig
    cached_tokens: int


@dataclass(frozen=True)
class _Prompt:
    """Prompt token counts of a request, by modality."""

    text: int
    image: int


# 200 answers with nothing usable in them: keyword arguments of `response_body`.
_EMPTY_ANSWERS: dict[str, dict[str, Any]] = {
    "safety": {"candidates": [safety_candidate()]},
    "prompt_blocked": {"prompt_feedback": {"blockReason": "PROHIBITED_CONTENT"}},
    "empty_parts": {"candidates": [candidate([])]},
    "empty_candidates": {"candidates": []},
}


def error_reply(error: WireError, fault: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    """The Google error body for `error` (with extra `headers`, e.g. an upload's status)."""
    return Reply(error.code, error.body(), fault=fault, headers=dict(headers or {}))


def first_image_facts(request: GenerateRequest) -> ImageFacts | None:
    """Facts of the first image; `WireError` 400 as Google answers when it cannot be decoded."""
    if not request.images:
        return None
    blob = request.images[0]
    try:
        return image_facts(blob.data, blob.mime_type)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise WireError(400, IMAGE_UNPROCESSABLE) from exc


def answer_reply(
    model: str,
    api_version: str,
    request: GenerateRequest,
    facts: ImageFacts | None,
    fault: str | None,
    settings: AnswerSettings,
) -> Reply:
    """The reply to an admitted request, shaped by its fault (None = a normal answer; no transport faults)."""
    if fault in ERROR_SHAPES:
        return error_reply(ERROR_SHAPES[fault](model, api_version, settings.rpm_quota, settings.retry_delay_s), fault)
    prompt = _Prompt(
        text_tokens(request.prompt),
        sum(image_tokens(*_image_size(b.data), model, request.media_resolution) for b in request.images),
    )
    if fault in _EMPTY_ANSWERS:
        body = response_body(model, _usage(prompt, 0, 0, settings), **_EMPTY_ANSWERS[fault])
        return Reply(200, body, fault=fault)
    if fault == "max_tokens_thinking":
        thoughts = request.max_output_tokens or _DEFAULT_THINKING_LIMIT
        return Reply(200, _out_of_budget(model, prompt, thoughts, settings), fault=fault)
    return _text_answer(model, request, facts, fault, prompt, settings)


def _text_answer(
    model: str,
    request: GenerateRequest,
    facts: ImageFacts | None,
    fault: str | None,
    prompt: _Prompt,
    settings: AnswerSettings,
) -> Reply:
    """A 200 with text, after thinking took its share of maxOutputTokens (on Gemini 3)."""
    thoughts = _thoughts(model, request, settings)
    if fault == "thoughts":
        thoughts = max(thoughts, text_tokens(_reasoning(facts)))
    text, finish = answer_text(request, facts, fault)
    limit = request.max_output_tokens
    if limit and thoughts_count_toward_limit(model):
        if thoughts >= limit:  # thinking used the whole budget: no answer at all
            return Reply(200, _out_of_budget(model, prompt, limit, settings), fault=fault)
        limit -= thoughts
    if limit and text_tokens(text) > limit:
        text, finish = text[: limit * 4], "MAX_TOKENS"  # the real model stops mid-answer
    text, finish, token = _hop(request, fault, text, finish)
    parts: list[dict[str, Any]] = [{"text": text}]
    if fault == "thoughts" or (thoughts and pick(request.thinking, "includeThoughts")):
        parts.insert(0, {"text": _reasoning(facts), "thought": True})
    usage = _usage(prompt, text_tokens(text), thoughts, settings)
    answer = candidate(parts, finish)
    if token is not None:
        answer["continuationToken"] = token
    return Reply(200, response_body(model, usage, candidates=[answer]), fault=fault)


def _hop(request: GenerateRequest, fault: str | None, text: str, finish: str) -> tuple[str, str, str | None]:
    """The part of the answer this hop carries, and the token to get the rest (fault "continuation")."""
    if request.continued_from is not None:
        return text[request.continued_from :], finish, None
    if fault == "continuation":
        cut = len(text) // 2
        return text[:cut], "CONTINUATION", continuation_token(cut, request)
    return text, finish, None


def _thoughts(model: str, request: GenerateRequest, settings: AnswerSettings) -> int:
    if settings.thoughts_tokens is not None:
        return settings.thoughts_tokens
    return thinking_tokens(model, request.thinking)


def _usage(prompt: _Prompt, output: int, thoughts: int, settings: AnswerSettings) -> dict[str, Any]:
    return usage_metadata(prompt.text, prompt.image, output, thoughts, settings.cached_tokens)


def _out_of_budget(model: str, prompt: _Prompt, thoughts: int, settings: AnswerSettings) -> dict[str, Any]:
    """MAX_TOKENS reached while thinking: a content without parts and no candidatesTokenCount."""
    return response_body(model, _usage(prompt, 0, thoughts, settings), candidates=[candidate([], "MAX_TOKENS")])


def _reasoning(facts: ImageFacts | None) -> str:
    """The thought summary a thinking model sends first when asked to include its thoughts."""
    seen = f"a {facts.width}x{facts.height} image, mostly {facts.colour}" if facts else "a text-only request"
    return f"**Looking at the request**\n\nI have {seen}; I will answer in the shape the request asks for."


def answer_text(request: GenerateRequest, facts: ImageFacts | None, fault: str | None) -> tuple[str, str]:
    """The candidate's text and finishReason of a 200 answer, before any maxOutputTokens cut."""
    ctx = AnswerContext(facts, request.prompt, off_list=fault == "off_list_category")
    mime = (request.response_mime_type or "").lower()
    if mime == "application/json":
        value = (
            answer_for_schema(request.schema, ctx, drop_required=fault == "wrong_shape")
            if request.schema
            else {"summary": summary_sentence(ctx)}
        )
        text = json.dumps(value, ensure_ascii=False)
    elif mime == "text/x.enum" and request.schema:
        text = enum_answer(request.schema, ctx)
    else:
        text = summary_sentence(ctx)
    if fault == "malformed_json":
        return "Sure! Here is the JSON: " + text[:-1] + ",", "STOP"
    if fault == "max_tokens":
        return text[: len(text) // 2], "MAX_TOKENS"
    return text, "STOP"


def _image_size(data: bytes) -> tuple[int, int]:
    """Width and height from the header only (no decode); (0, 0) if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return (0, 0)
