"""Every real Gemini answer shape, recorded as the fake serves it, through the real SDK over HTTP.

Each row: the fault the fake answers with (bodies copied from public reports, see labeling/fake_gemini), and what
the annotator makes of it: retry (with its kind and delay), fail this image (with its kind), stop the run
(with what to do), or an answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from labeling.annotators import ResponseFailure, RetryableError
from labeling.annotators.gemini import PLAIN_CATEGORIES_NOTICE, GeminiAnnotator
from labeling.annotators.gemini_errors import KeyRejected
from labeling.categories import Category
from labeling.errors import AnnotatorError
from labeling.fake_gemini import FakeGemini
from labeling.settings import Settings
from tests.conftest import image_bytes

CATEGORIES = [Category("animals"), Category("food"), Category("landscapes"), Category("people")]
IMAGE = image_bytes((160, 120), (40, 160, 60))


@dataclass(frozen=True)
class Shape:
    fault: str
    outcome: type[BaseException] | None  # None: a usable answer
    kind: str = ""  # RetryableError / ResponseFailure kind
    says: str = ""  # part of the message the user reads
    after_success: bool = False  # the run has already had an answer


SHAPES = [
    Shape("daily_quota", RetryableError, "daily_quota"),
    Shape("quota_limit_zero", RetryableError, "daily_quota"),
    Shape("http_429", RetryableError, "quota"),
    Shape("quota_help_only", RetryableError, "quota"),
    Shape("quota_bare", RetryableError, "quota"),
    Shape("http_503", RetryableError, "overloaded", "high demand"),
    Shape("http_503_overloaded", RetryableError, "overloaded", "overloaded"),
    Shape("http_500", RetryableError, "server_error"),
    Shape("http_504", RetryableError, "timeout"),
    Shape("http_499", RetryableError, "cancelled", "CANCELLED"),
    Shape("connection_reset", RetryableError, "transport"),
    Shape("empty_parts", RetryableError, "empty"),
    Shape("empty_candidates", RetryableError, "empty"),
    Shape("thoughts", None),
    Shape("max_tokens_thinking", ResponseFailure, "max_tokens", "thinking used the whole output limit"),
    Shape("image_invalid", ResponseFailure, "image_rejected", "Provided image is not valid"),
    Shape("image_unprocessable", ResponseFailure, "image_rejected", "Unable to process input image"),
    Shape("http_400", ResponseFailure, "invalid_argument", "invalid argument", after_success=True),
    Shape("schema_too_complex", None),
    Shape("schema_too_complex_violations", None),
    Shape("key_invalid", KeyRejected, says="API key was rejected (400 API_KEY_INVALID): set GEMINI_API_KEY"),
    Shape("http_403", KeyRejected, says="Gemini refused the key (403 PERMISSION_DENIED"),
    Shape("location_unsupported", KeyRejected, says="not available where this machine is (400 FAILED_PRECONDITION"),
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(retry_delay_s=45.837906927) as server:
        yield server


@pytest.fixture
def annotator(fake: FakeGemini) -> Iterator[GeminiAnnotator]:
    fake.reset()
    settings = Settings(gemini_api_key="test-key", gemini_base_url=fake.base_url, request_timeout_seconds=5.0)
    annotator = GeminiAnnotator(settings)
    yield annotator
    annotator.close()


def _camel(config: dict[str, object] | None) -> dict[str, object]:
    """thinkingConfig as sent, in one spelling (the SDK sends its keys in snake_case, which the API accepts)."""
    return {re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k): v for k, v in (config or {}).items()}


def _call(annotator: GeminiAnnotator):  # type: ignore[no-untyped-def]
    return annotator.describe_and_categorize(IMAGE, "image/jpeg", CATEGORIES, 2)


@pytest.mark.parametrize("shape", SHAPES, ids=[s.fault for s in SHAPES])
def test_every_real_answer_shape(fake: FakeGemini, annotator: GeminiAnnotator, shape: Shape) -> None:
    if shape.after_success:
        _call(annotator)
    fake.inject(shape.fault)
    if shape.outcome is None:
        result = _call(annotator)
        assert result.description and result.categories
        return
    with pytest.raises(shape.outcome) as caught:
        _call(annotator)
    error = caught.value
    if shape.kind:
        assert getattr(error, "kind", None) == shape.kind
    assert shape.says in str(error)


def test_a_fractional_retry_delay_is_honoured_to_the_nanosecond(annotator: GeminiAnnotator, fake: FakeGemini) -> None:
    fake.inject("http_429")
    with pytest.raises(RetryableError) as caught:
        _call(annotator)
    assert caught.value.retry_after == pytest.approx(45.837906927)


@pytest.mark.parametrize("fault", ["quota_bare", "daily_quota"])
def test_429s_without_a_usable_delay_carry_none(annotator: GeminiAnnotator, fake: FakeGemini, fault: str) -> None:
    """A bare 429 has no delay; a daily quota's short RetryInfo must not be taken for "come back soon"."""
    fake.inject(fault)
    with pytest.raises(RetryableError) as caught:
        _call(annotator)
    assert caught.value.retry_after is None


def test_empty_answers_are_billed(annotator: GeminiAnnotator, fake: FakeGemini) -> None:
    fake.inject("empty_parts")
    with pytest.raises(RetryableError) as caught:
        _call(annotator)
    assert caught.value.usage.prompt > 0


def test_thought_parts_never_reach_the_description(annotator: GeminiAnnotator, fake: FakeGemini) -> None:
    fake.inject("thoughts")
    result = _call(annotator)
    assert result.usage.thoughts > 0 and result.summary and "Simulated description" in result.summary


@pytest.mark.parametrize("fault", ["schema_too_complex", "schema_too_complex_violations"])
def test_too_many_states_falls_back_to_plain_strings_once(
    annotator: GeminiAnnotator, fake: FakeGemini, fault: str
) -> None:
    fake.inject(fault)
    first = _call(annotator)
    second = _call(annotator)
    assert first.categories and second.categories
    assert annotator.notices() == [PLAIN_CATEGORIES_NOTICE]
    refused, *answered = fake.records
    assert refused.status == 400 and [r.status for r in answered] == [200, 200]
    assert fake.request_count == 3  # the refused request was sent once more, then the next went plain


def test_the_fake_refuses_a_big_enum_by_itself_and_the_fallback_copes(fake: FakeGemini) -> None:
    fake.reset()
    fake.max_schema_states = 40  # the category enum below is longer than that
    try:
        settings = Settings(gemini_api_key="test-key", gemini_base_url=fake.base_url, request_timeout_seconds=5.0)
        many = [Category(f"category number {i}") for i in range(12)]
        result = GeminiAnnotator(settings).describe_and_categorize(IMAGE, "image/jpeg", many, 2)
    finally:
        fake.max_schema_states = 0
    assert result.categories and set(result.categories) <= {c.name for c in many} | {"unknown"}
    assert [r.status for r in fake.records] == [400, 200]


def test_a_schema_refusal_without_an_enum_stops_with_advice(annotator: GeminiAnnotator, fake: FakeGemini) -> None:
    fake.inject("schema_too_complex")
    with pytest.raises(AnnotatorError, match="even without an enum"):
        annotator.describe(IMAGE, "image/jpeg")


def test_v1_refuses_the_products_request_and_v1beta_takes_it(fake: FakeGemini) -> None:
    """Round 1's bug: the SDK's default v1 has no systemInstruction or structured output."""
    fake.reset()
    on = {
        version: GeminiAnnotator(
            Settings(gemini_api_key="k", gemini_base_url=fake.base_url, gemini_api_version=version)
        )
        for version in ("v1", "v1beta")
    }
    with pytest.raises(AnnotatorError, match="set gemini_api_version to v1beta") as caught:
        _call(on["v1"])
    assert 'Unknown name "systemInstruction"' in str(caught.value)
    assert _call(on["v1beta"]).categories
    assert [(r.api_version, r.status) for r in fake.records] == [("v1", 400), ("v1beta", 200)]


def test_the_request_follows_the_model_family(fake: FakeGemini) -> None:
    fake.reset()
    for model in ("gemini-2.5-flash-lite", "gemini-3.5-flash-lite", "gemini-3.5-pro"):
        settings = Settings(gemini_api_key="k", gemini_base_url=fake.base_url, caption_model=model)
        _call(GeminiAnnotator(settings))
    lite2, lite3, pro3 = fake.records
    assert _camel(lite2.thinking) == {"thinkingBudget": 0} and "temperature" in lite2.generation_config_keys
    assert _camel(lite3.thinking) == {"thinkingLevel": "MINIMAL"} and "temperature" not in lite3.generation_config_keys
    assert _camel(pro3.thinking) == {"thinkingLevel": "LOW"}
    assert all(r.status == 200 and r.service_tier == "standard" for r in fake.records)


def test_an_unknown_model_gets_gemini_3_settings_and_a_warning(fake: FakeGemini) -> None:
    fake.reset()
    annotator = GeminiAnnotator(
        Settings(gemini_api_key="k", gemini_base_url=fake.base_url, caption_model="gemini-exp-1206")
    )
    _call(annotator)
    assert _camel(fake.records[0].thinking) == {"thinkingLevel": "MINIMAL"}
    assert any("not one this version knows" in n for n in annotator.notices())
    assert not annotator.price_known


def test_media_resolution_and_service_tier_are_sent(fake: FakeGemini) -> None:
    fake.reset()
    settings = Settings(
        gemini_api_key="k",
        gemini_base_url=fake.base_url,
        caption_model="gemini-3.5-flash-lite",
        media_resolution="low",
        service_tier="flex",
    )
    annotator = GeminiAnnotator(settings)
    result = _call(annotator)
    record = fake.records[0]
    assert (record.media_resolution, record.service_tier) == ("MEDIA_RESOLUTION_LOW", "flex")
    standard = GeminiAnnotator(settings.replace(service_tier="standard"))
    assert result.cost_usd == pytest.approx(result.usage.cost(standard.price) / 2)  # flex bills half


def test_implicit_cache_hits_bill_at_the_cached_rate(fake: FakeGemini) -> None:
    fake.reset()
    fake.cached_tokens = 200
    try:
        prices = {"gemini-2.5-flash-lite": {"input": 1.0, "output": 10.0, "cached": 0.1}}
        result = _call(GeminiAnnotator(Settings(gemini_api_key="k", gemini_base_url=fake.base_url, prices=prices)))
    finally:
        fake.cached_tokens = 0
    usage = result.usage
    assert usage.cached == 200
    expected = ((usage.prompt - 200) * 1.0 + 200 * 0.1 + usage.output * 10.0) / 1e6
    assert result.cost_usd == pytest.approx(expected)


def test_a_bare_invalid_argument_on_a_text_request_with_the_enum_falls_back(
    annotator: GeminiAnnotator, fake: FakeGemini
) -> None:
    """Gemini 3 lite models refuse a big enum with only "Request contains an invalid argument." (python-genai#2133)."""
    fake.inject("http_400")
    result = annotator.categorize({"summary": "a dog on a beach"}, CATEGORIES, 2)
    assert result.categories and annotator.notices() == [PLAIN_CATEGORIES_NOTICE]
    fake.inject("http_400")  # now that text requests have worked, the same answer is about this description
    with pytest.raises(ResponseFailure) as caught:
        annotator.categorize({"summary": "a cat"}, CATEGORIES, 2)
    assert caught.value.kind == "invalid_argument"
