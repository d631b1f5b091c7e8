"""Every real answer shape of the fake Gemini server, and its version-strict request checks, seen through
the real google-genai client over HTTP (bodies as quoted in ../shared/REFERENCE.md, "Gemini through google-genai")."""

from __future__ import annotations

import functools
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from google import genai
from google.genai import errors, types
from PIL import Image

from labeling.fake_gemini import FAULT_KINDS, FakeGemini
from labeling.fake_gemini.__main__ import _parser
from tests.fake_gemini_fixtures import *  # noqa: F403 - the shared fake and server fixtures

ROOT = Path(__file__).resolve().parent.parent
LITE = "gemini-2.5-flash-lite"
FLASH3 = "gemini-3-flash-preview"
RPC = "type.googleapis.com/google.rpc."
SCHEMA = {
    "type": "OBJECT",
    "properties": {"category": {"type": "STRING", "enum": ["animals", "food", "people"]}},
    "required": ["category"],
}
TOO_MANY_STATES = "The specified schema produces a constraint that has too many states for serving."


@functools.cache  # building a Client costs ~0.2 s: reuse them
def client_for(base_url: str, api_version: str = "v1beta", timeout_ms: int = 5000) -> genai.Client:
    return genai.Client(
        api_key="k", http_options=types.HttpOptions(base_url=base_url, api_version=api_version, timeout=timeout_ms)
    )


@functools.cache
def png(size: tuple[int, int] = (640, 480)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (30, 60, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def generate(
    fake: FakeGemini,
    *,
    model: str = LITE,
    api_version: str = "v1beta",
    image: tuple[int, int] | None = None,
    **config: Any,
) -> types.GenerateContentResponse:
    contents: list[Any] = ["Describe this image."]
    if image is not None:
        contents.insert(0, types.Part.from_bytes(data=png(image), mime_type="image/png"))
    return client_for(fake.base_url, api_version).models.generate_content(
        model=model, contents=contents, config=types.GenerateContentConfig(**config) if config else None
    )


def the_product_request() -> dict[str, Any]:
    """What the captioning client sends: a system instruction and a JSON schema."""
    return {
        "system_instruction": "You label images.",
        "response_mime_type": "application/json",
        "response_schema": SCHEMA,
    }


def error_of(call: Callable[[], object]) -> errors.APIError:
    with pytest.raises(errors.APIError) as caught:
        call()
    return caught.value


def details(error: errors.APIError) -> list[dict[str, Any]]:
    return list(error.details["error"].get("details", []))


def detail(error: errors.APIError, kind: str) -> dict[str, Any]:
    found = [d for d in details(error) if d["@type"] == RPC + kind]
    assert len(found) == 1, details(error)
    return found[0]


def image_tokens(response: types.GenerateContentResponse) -> int:
    usage = response.usage_metadata
    assert usage is not None
    return sum(d.token_count or 0 for d in usage.prompt_tokens_details or [] if d.modality == types.MediaModality.IMAGE)


# -- error shapes, one row per fault kind ----------------------------------------------------------------


def _quota_failure(error: errors.APIError) -> dict[str, Any]:
    return dict(detail(error, "QuotaFailure")["violations"][0])


def check_daily(e: errors.APIError) -> None:
    violation = _quota_failure(e)
    assert violation["quotaId"] == "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    assert violation["quotaMetric"] == "generativelanguage.googleapis.com/generate_content_free_tier_requests"
    assert violation["quotaValue"] == "20" and violation["quotaDimensions"]["model"] == LITE
    assert detail(e, "RetryInfo")["retryDelay"] == "17s" and detail(e, "Help")["links"]


def check_limit_zero(e: errors.APIError) -> None:
    assert (
        "* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_input_token_"
        f"count, limit: 0, model: {LITE}"
    ) in (e.message or "")
    violation = _quota_failure(e)
    assert violation["quotaId"] == "GenerateContentInputTokensPerModelPerMinute-FreeTier"
    assert "quotaValue" not in violation and detail(e, "RetryInfo")["retryDelay"]


def check_per_minute(e: errors.APIError) -> None:
    assert detail(e, "RetryInfo")["retryDelay"] == "45.837906927s"
    assert (e.message or "").endswith("Please retry in 45.837906927s.")
    assert _quota_failure(e)["quotaId"] == "GenerateRequestsPerMinutePerProjectPerModel"


def check_help_only(e: errors.APIError) -> None:
    assert [d["@type"] for d in details(e)] == [RPC + "Help"]


def check_no_details(e: errors.APIError) -> None:
    assert "details" not in e.details["error"]


def check_key_invalid(e: errors.APIError) -> None:
    info = detail(e, "ErrorInfo")
    assert (info["reason"], info["domain"]) == ("API_KEY_INVALID", "googleapis.com")
    assert info["metadata"] == {"service": "generativelanguage.googleapis.com"}
    assert detail(e, "LocalizedMessage")["message"] == e.message


def check_no_access(e: errors.APIError) -> None:
    assert detail(e, "ErrorInfo")["reason"] == "CONSUMER_SUSPENDED"


def check_schema_violation(e: errors.APIError) -> None:
    [violation] = detail(e, "BadRequest")["fieldViolations"]
    assert violation["field"] == "generation_config.response_schema"
    assert violation["description"].startswith(TOO_MANY_STATES)


def no_check(e: errors.APIError) -> None:
    check_no_details(e)


ERROR_ROWS: dict[str, tuple[type[errors.APIError], int, str, str, Callable[[errors.APIError], None]]] = {
    # kind: (SDK error, code, status, message (prefix), detail check)
    "daily_quota": (errors.ClientError, 429, "RESOURCE_EXHAUSTED", "You exceeded your current quota", check_daily),
    "quota_limit_zero": (
        errors.ClientError,
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota",
        check_limit_zero,
    ),
    "http_429": (errors.ClientError, 429, "RESOURCE_EXHAUSTED", "You exceeded your current quota", check_per_minute),
    "quota_help_only": (
        errors.ClientError,
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota",
        check_help_only,
    ),
    "quota_bare": (
        errors.ClientError,
        429,
        "RESOURCE_EXHAUSTED",
        "Resource has been exhausted (e.g. check quota).",
        check_no_details,
    ),
    "http_503": (
        errors.ServerError,
        503,
        "UNAVAILABLE",
        "This model is currently experiencing high demand. Spikes "
        "in demand are usually temporary. Please try again later.",
        no_check,
    ),
    "http_503_overloaded": (
        errors.ServerError,
        503,
        "UNAVAILABLE",
        "The model is overloaded. Please try again later.",
        no_check,
    ),
    "http_499": (errors.ClientError, 499, "CANCELLED", "The operation was cancelled.", no_check),
    "http_500": (errors.ServerError, 500, "INTERNAL", "An internal error has occurred.", no_check),
    "http_504": (errors.ServerError, 504, "DEADLINE_EXCEEDED", "Deadline expired", no_check),
    "http_400": (errors.ClientError, 400, "INVALID_ARGUMENT", "Request contains an invalid argument.", no_check),
    "image_invalid": (errors.ClientError, 400, "INVALID_ARGUMENT", "Provided image is not valid.", no_check),
    "image_unprocessable": (
        errors.ClientError,
        400,
        "INVALID_ARGUMENT",
        "Unable to process input image. Please "
        "retry or report in https://developers.generativeai.google/guide/troubleshooting",
        no_check,
    ),
    "schema_too_complex": (errors.ClientError, 400, "INVALID_ARGUMENT", TOO_MANY_STATES, no_check),
    "schema_too_complex_violations": (
        errors.ClientError,
        400,
        "INVALID_ARGUMENT",
        "Request contains an invalid argument.",
        check_schema_violation,
    ),
    "key_invalid": (
        errors.ClientError,
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
        check_key_invalid,
    ),
    "http_403": (errors.ClientError, 403, "PERMISSION_DENIED", "Permission denied", check_no_access),
    "http_404": (errors.ClientError, 404, "NOT_FOUND", f"models/{LITE} is not found for API version v1beta", no_check),
    "location_unsupported": (
        errors.ClientError,
        400,
        "FAILED_PRECONDITION",
        "User location is not supported for the API use.",
        no_check,
    ),
}
# Kinds answered 200 or not answered at all: tested one by one below.
OTHER_KINDS = {
    "hang",
    "connection_reset",
    "malformed_json",
    "safety",
    "prompt_blocked",
    "empty_parts",
    "empty_candidates",
    "max_tokens",
    "max_tokens_thinking",
    "thoughts",
    "continuation",
    "off_list_category",
    "wrong_shape",
}


def test_every_fault_kind_is_covered_here() -> None:
    assert set(ERROR_ROWS) | OTHER_KINDS == set(FAULT_KINDS)
    assert all(FAULT_KINDS[kind] for kind in FAULT_KINDS)


@pytest.mark.parametrize("kind", list(ERROR_ROWS))
def test_error_shapes_raise_what_the_real_api_raises(fake: FakeGemini, kind: str) -> None:
    error_type, code, status, message, check = ERROR_ROWS[kind]
    fake.retry_delay_s = 45.837906927
    fake.inject(kind)

    error = error_of(lambda: generate(fake, image=(64, 64), **the_product_request()))

    assert type(error) is error_type
    assert (error.code, error.status) == (code, status)
    assert (error.message or "").startswith(message)
    assert error.details["error"]["status"] == status
    check(error)
    assert "retry-after" not in error.response.headers  # no 429 of the real API carries one
    assert fake.records[-1].fault == kind and fake.records[-1].status == code


def test_rpm_quota_refusals_send_no_retry_after_either(fake: FakeGemini) -> None:
    fake.rpm_quota = 1
    try:
        generate(fake)
        error = error_of(lambda: generate(fake))
    finally:
        fake.rpm_quota = 0

    assert error.code == 429 and "retry-after" not in error.response.headers
    assert re.fullmatch(r"\d+\.\d{9}s", detail(error, "RetryInfo")["retryDelay"])


def test_a_key_outside_valid_keys_gets_400_api_key_invalid_by_default(fake: FakeGemini) -> None:
    fake.valid_keys = {"another-key"}
    try:
        error = error_of(lambda: generate(fake))
    finally:
        fake.valid_keys = None

    assert (error.code, error.status, error.message) == (
        400,
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
    )
    check_key_invalid(error)


# -- transport and 200 shapes -------------------------------------------------------------------------------


def test_connection_reset_is_immediate_and_a_transport_error(fake: FakeGemini) -> None:
    fake.hang_s = 20
    fake.inject("connection_reset")
    started = time.monotonic()

    with pytest.raises(httpx2.TransportError):
        generate(fake)

    assert time.monotonic() - started < 2  # unlike "hang"
    assert (fake.records[-1].status, fake.records[-1].fault) == (0, "connection_reset")
    assert generate(fake).text  # the next request is answered


def test_empty_parts_is_a_stop_candidate_without_text(fake: FakeGemini) -> None:
    fake.inject("empty_parts")

    response = generate(fake, image=(64, 64))

    assert response.text is None and response.candidates
    candidate = response.candidates[0]
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content is not None and candidate.content.role == "model" and not candidate.content.parts
    assert response.usage_metadata and response.usage_metadata.prompt_token_count


def test_empty_candidates_has_no_prompt_feedback(fake: FakeGemini) -> None:
    fake.inject("empty_candidates")

    response = generate(fake)

    assert response.candidates == [] and response.prompt_feedback is None and response.text is None


def test_thoughts_come_first_as_a_thought_part(fake: FakeGemini) -> None:
    fake.inject("thoughts")

    response = generate(fake, image=(64, 64))

    assert response.candidates and response.candidates[0].content
    parts = response.candidates[0].content.parts or []
    assert [bool(p.thought) for p in parts] == [True, False]
    assert response.text == parts[1].text and "64x64" in (response.text or "")
    assert response.usage_metadata and (response.usage_metadata.thoughts_token_count or 0) > 0


def test_continuation_cuts_the_answer_and_its_token_gets_the_rest(fake: FakeGemini) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "Describe this image."}]}]}
    whole = post(fake, body)[1]["candidates"][0]
    fake.inject("continuation")

    status, first = post(fake, body)
    cut = first["candidates"][0]
    assert status == 200 and cut["finishReason"] == "CONTINUATION" and cut["continuationToken"]
    status, second = post(fake, {**body, "continuationToken": cut["continuationToken"]})
    rest = second["candidates"][0]
    assert status == 200 and rest["finishReason"] == "STOP" and "continuationToken" not in rest
    assert (
        cut["content"]["parts"][0]["text"] + rest["content"]["parts"][0]["text"] == whole["content"]["parts"][0]["text"]
    )
    other = {"contents": [{"role": "user", "parts": [{"text": "Something else."}]}]}
    for refused_body in (
        {**body, "continuationToken": "bm90LWlzc3VlZA=="},  # not a token the server issued
        {**other, "continuationToken": cut["continuationToken"]},  # issued for another request
    ):
        status, refused = post(fake, refused_body)
        assert status == 400 and "continuation_token" in refused["error"]["message"]


@pytest.mark.parametrize(("max_output_tokens", "thoughts"), [(None, 256), (1000, 1000)])
def test_max_tokens_while_thinking_has_no_parts_and_no_candidates_count(
    fake: FakeGemini, max_output_tokens: int | None, thoughts: int
) -> None:
    fake.inject("max_tokens_thinking")

    response = generate(fake, **({"max_output_tokens": max_output_tokens} if max_output_tokens else {}))

    assert response.text is None and response.candidates
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    usage = response.usage_metadata
    assert usage is not None and usage.thoughts_token_count == thoughts and usage.candidates_token_count is None
    assert usage.total_token_count == (usage.prompt_token_count or 0) + thoughts


# -- version-strict request checks ----------------------------------------------------------------------------


def unknown(name: str, at: str | None = None) -> str:
    where = f" at '{at}'" if at else ""
    return f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.'


def test_v1_refuses_the_product_request_exactly_as_google_does(fake: FakeGemini) -> None:
    error = error_of(lambda: generate(fake, api_version="v1", **the_product_request()))

    expected = [
        unknown("systemInstruction"),
        unknown("responseMimeType", "generation_config"),
        unknown("responseSchema", "generation_config"),
    ]
    assert (error.code, error.status) == (400, "INVALID_ARGUMENT")
    assert error.message == "\n".join(expected)
    assert detail(error, "BadRequest")["fieldViolations"] == [
        {"description": expected[0]},
        {"field": "generation_config", "description": expected[1]},
        {"field": "generation_config", "description": expected[2]},
    ]
    assert (fake.records[-1].status, fake.records[-1].api_version) == (400, "v1")


def test_the_same_request_is_answered_on_v1beta(fake: FakeGemini) -> None:
    response = generate(fake, image=(64, 64), **the_product_request())

    assert json.loads(response.text or "")["category"] in {"animals", "food", "people"}
    assert fake.records[-1].schema_sent


@pytest.mark.parametrize(
    ("config", "name"),
    [
        ({"thinking_config": types.ThinkingConfig(thinking_budget=0)}, "thinkingConfig"),
        ({"media_resolution": types.MediaResolution.MEDIA_RESOLUTION_LOW}, "mediaResolution"),
    ],
)
def test_v1_refuses_thinking_and_media_resolution(fake: FakeGemini, config: dict[str, Any], name: str) -> None:
    error = error_of(lambda: generate(fake, api_version="v1", **config))

    assert error.message == unknown(name, "generation_config")
    assert detail(error, "BadRequest")["fieldViolations"] == [
        {"field": "generation_config", "description": unknown(name, "generation_config")}
    ]
    assert generate(fake, **config).text  # v1beta takes it


def test_v1_takes_what_its_proto_has(fake: FakeGemini) -> None:
    response = generate(
        fake,
        api_version="v1",
        temperature=0.2,
        max_output_tokens=200,
        top_p=0.9,
        stop_sequences=["END"],
        candidate_count=1,
    )

    assert response.text


def post(fake: FakeGemini, body: dict[str, Any], version: str = "v1beta") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{fake.base_url}/{version}/models/{LITE}:generateContent",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "x-goog-api-key": "k"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_names_are_quoted_as_sent_and_either_spelling_is_accepted(fake: FakeGemini) -> None:
    contents = [{"parts": [{"text": "hi"}]}]
    snake = {
        "contents": contents,
        "system_instruction": {"parts": [{"text": "be brief"}]},
        "service_tier": "FLEX",
        "generation_config": {
            "response_mime_type": "text/plain",
            "max_output_tokens": 50,
            "thinking_config": {"thinking_budget": 0},
        },
    }
    status, _ = post(fake, snake)
    refused, body = post(
        fake,
        {
            "contents": contents,
            "system_instruction": "x",
            "generation_config": {"response_schema": SCHEMA},
            "fooBar": 1,
        },
        version="v1",
    )
    beta_refused, beta_body = post(
        fake, {"contents": contents, "fooBar": 1, "generationConfig": {"thinkingConfig": {"thinkingBudgett": 1}}}
    )

    assert status == 200 and fake.records[0].service_tier == "FLEX"
    assert refused == 400 and body["error"]["message"] == "\n".join(
        [unknown("system_instruction"), unknown("fooBar"), unknown("response_schema", "generation_config")]
    )
    assert beta_refused == 400 and beta_body["error"]["message"] == "\n".join(
        [unknown("fooBar"), unknown("thinkingBudgett", "generation_config.thinking_config")]
    )


def test_unknown_enum_values_are_refused(fake: FakeGemini) -> None:
    status, body = post(fake, {"contents": [{"parts": [{"text": "hi"}]}], "serviceTier": "fast"})

    assert status == 400 and "service_tier" in body["error"]["message"]
    for tier in ("standard", "flex", "priority"):
        assert generate(fake, service_tier=tier).text
    assert [r.service_tier for r in fake.records[1:]] == ["standard", "flex", "priority"]


# -- thinking rules and token accounting by model family ----------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "thinking", "message"),
    [
        (LITE, {"thinking_level": "LOW"}, "Thinking level is not supported for this model."),
        ("gemini-2.5-flash", {"thinking_level": "MINIMAL"}, "Thinking level is not supported for this model."),
        (
            FLASH3,
            {"thinking_level": "LOW", "thinking_budget": 128},
            "You can only set only one of thinking budget and thinking level.",
        ),
        ("gemini-3-pro-preview", {"thinking_level": "MINIMAL"}, "MINIMAL"),
    ],
)
def test_thinking_rules(fake: FakeGemini, model: str, thinking: dict[str, Any], message: str) -> None:
    error = error_of(lambda: generate(fake, model=model, thinking_config=types.ThinkingConfig(**thinking)))

    assert (error.code, error.status) == (400, "INVALID_ARGUMENT")
    assert message in (error.message or "")
    assert fake.records[-1].thinking is not None


@pytest.mark.parametrize(
    ("model", "thinking", "thoughts"),
    [
        (FLASH3, {"thinking_level": "MINIMAL"}, 24),
        (FLASH3, {"thinking_level": "LOW"}, 100),
        (FLASH3, {"thinking_level": "MEDIUM"}, 300),
        (FLASH3, {"thinking_level": "HIGH"}, 800),
        (FLASH3, None, 800),
        ("gemini-3-pro-preview", {"thinking_level": "LOW"}, 100),
        ("gemini-2.5-flash", None, 300),
        ("gemini-2.5-flash", {"thinking_budget": 0}, None),
        (LITE, None, None),
        (LITE, {"thinking_budget": 0}, None),
        (LITE, {"thinking_budget": 512}, 300),
        ("gemini-2.0-flash", None, None),
    ],
)
def test_thoughts_by_family(
    fake: FakeGemini, model: str, thinking: dict[str, Any] | None, thoughts: int | None
) -> None:
    config = {"thinking_config": types.ThinkingConfig(**thinking)} if thinking else {}

    usage = generate(fake, model=model, **config).usage_metadata

    assert usage is not None and usage.thoughts_token_count == thoughts
    assert usage.total_token_count == (usage.prompt_token_count or 0) + (usage.candidates_token_count or 0) + (
        thoughts or 0
    )


def test_thoughts_tokens_overrides_the_family(fake: FakeGemini) -> None:
    fake.thoughts_tokens = 40
    lite = generate(fake).usage_metadata
    fake.thoughts_tokens = 0
    gemini3 = generate(fake, model=FLASH3).usage_metadata

    assert lite and lite.thoughts_token_count == 40
    assert gemini3 and gemini3.thoughts_token_count is None


def test_include_thoughts_sends_a_thought_summary(fake: FakeGemini) -> None:
    response = generate(
        fake,
        model=FLASH3,
        thinking_config=types.ThinkingConfig(thinking_level=types.ThinkingLevel.LOW, include_thoughts=True),
    )

    assert response.candidates and response.candidates[0].content
    assert [bool(p.thought) for p in response.candidates[0].content.parts or []] == [True, False]


def test_on_gemini3_thinking_counts_toward_max_output_tokens(fake: FakeGemini) -> None:
    cut = generate(
        fake,
        model=FLASH3,
        max_output_tokens=103,
        response_mime_type="application/json",
        response_schema=SCHEMA,
        thinking_config=types.ThinkingConfig(thinking_level="LOW"),
    )
    nothing = generate(fake, model=FLASH3, max_output_tokens=500)  # HIGH thinking (800) uses it all
    room = generate(fake, model=FLASH3, max_output_tokens=2000)
    lite = generate(
        fake,
        max_output_tokens=110,
        response_mime_type="application/json",
        response_schema=SCHEMA,
        thinking_config=types.ThinkingConfig(thinking_budget=512),
    )

    assert cut.candidates and cut.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert cut.text and cut.parsed is None and cut.usage_metadata
    assert cut.usage_metadata.candidates_token_count == 3 and cut.usage_metadata.thoughts_token_count == 100
    assert nothing.text is None and nothing.candidates
    assert nothing.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert nothing.usage_metadata and nothing.usage_metadata.thoughts_token_count == 500
    assert nothing.usage_metadata.candidates_token_count is None
    assert room.candidates and room.candidates[0].finish_reason == types.FinishReason.STOP
    # Gemini 2.5 keeps thinking outside maxOutputTokens here.
    assert lite.candidates and lite.candidates[0].finish_reason == types.FinishReason.STOP and lite.parsed


@pytest.mark.parametrize(
    ("model", "resolution", "size", "tokens"),
    [
        (FLASH3, None, (64, 64), 1120),
        (FLASH3, "MEDIA_RESOLUTION_HIGH", (2000, 1500), 1120),
        (FLASH3, "MEDIA_RESOLUTION_MEDIUM", (640, 480), 560),
        (FLASH3, "MEDIA_RESOLUTION_LOW", (640, 480), 280),
        (LITE, None, (384, 384), 258),
        (LITE, None, (1000, 800), 258 * 4),
        (LITE, "MEDIA_RESOLUTION_LOW", (1000, 800), 64),
    ],
)
def test_image_tokens_by_family_and_media_resolution(
    fake: FakeGemini, model: str, resolution: str | None, size: tuple[int, int], tokens: int
) -> None:
    config = {"media_resolution": resolution} if resolution else {}

    response = generate(fake, model=model, image=size, **config)

    assert image_tokens(response) == tokens
    assert fake.records[-1].media_resolution == resolution


def test_cached_tokens_are_reported_up_to_the_prompt(fake: FakeGemini) -> None:
    plain = generate(fake).usage_metadata
    fake.cached_tokens = 200
    image = generate(fake, image=(64, 64)).usage_metadata
    text = generate(fake).usage_metadata

    assert plain and plain.cached_content_token_count is None
    assert image and image.cached_content_token_count == 200
    assert text and text.cached_content_token_count == text.prompt_token_count  # min(200, prompt)


def test_a_schema_over_max_schema_states_is_too_complex_on_its_own(fake: FakeGemini) -> None:
    fake.max_schema_states = 30  # "animals" + "food" + "people" = 17 characters
    accepted = generate(fake, response_mime_type="application/json", response_schema=SCHEMA)
    bounded = {
        "type": "OBJECT",
        "properties": {
            "tags": {
                "type": "ARRAY",
                "minItems": 1,
                "maxItems": 3,
                "items": {"type": "STRING", "enum": ["animals", "food", "people"]},
            }
        },
    }

    error = error_of(lambda: generate(fake, response_mime_type="application/json", response_schema=bounded))

    assert accepted.text
    assert (error.code, error.status) == (400, "INVALID_ARGUMENT") and (error.message or "").startswith(TOO_MANY_STATES)
    assert fake.records[-1].fault == "schema_too_complex"
    assert generate(fake, response_mime_type="application/json", response_schema=SCHEMA).text


# -- command line ------------------------------------------------------------------------------------------------


def test_fault_flags_parse() -> None:
    args = _parser().parse_args(["--fault", "http_503:0.2", "--fault", "daily_quota", "--fault-rate", "safety=0.1"])

    assert dict(args.faults) == {"http_503": 0.2, "daily_quota": 1.0, "safety": 0.1}
    with pytest.raises(SystemExit):
        _parser().parse_args(["--fault", "meteor:0.1"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "labeling.fake_gemini"],
        [sys.executable, "-m", "labeling", "fake-gemini"],
    ],
)
def test_command_line_faults_and_log(tmp_path: Path, command: list[str]) -> None:
    log = tmp_path / "requests.jsonl"
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [*command, "--port", str(port), "--fault", "http_503:1", "--log", str(log)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert f"127.0.0.1:{port}" in process.stdout.readline()
        client = client_for(f"http://127.0.0.1:{port}")
        error = error_of(
            lambda: client.models.generate_content(
                model=LITE,
                contents=[types.Part.from_bytes(data=png((320, 200)), mime_type="image/png"), "Describe."],
                config=types.GenerateContentConfig(
                    response_mime_type="application/json", response_schema=SCHEMA, service_tier="flex"
                ),
            )
        )
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0

    assert error.code == 503
    [line] = [json.loads(text) for text in log.read_text().splitlines()]
    assert line == {
        **line,
        "path": f"/v1beta/models/{LITE}:generateContent",
        "api_version": "v1beta",
        "model": LITE,
        "status": 503,
        "fault": "http_503",
        "image_width": 320,
        "image_height": 200,
        "schema": True,
        "service_tier": "flex",
    }
    assert re.match(r"\d{4}-\d\d-\d\dT", line["time"])
