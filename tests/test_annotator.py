"""The Gemini annotator: the real google-genai client against the fake Gemini server over HTTP."""

from __future__ import annotations

import json

import pytest

from labeling.annotators import ResponseFailure, RetryableError, prompts
from labeling.annotators.gemini import GeminiAnnotator, normalize_categories
from labeling.categories import Category
from labeling.errors import AnnotatorError
from labeling.fake_gemini import OFF_LIST_VALUE, FakeGemini
from labeling.settings import Settings
from tests.conftest import image_bytes

CATEGORIES = [
    Category("animals", "pets and wildlife"),
    Category("food", "dishes"),
    Category("landscapes", "scenery"),
    Category("people", "portraits"),
]
GREEN = image_bytes((120, 90), (20, 200, 30))


def _annotator(fake: FakeGemini, **changes: object) -> GeminiAnnotator:
    settings = Settings(gemini_api_key="test-key", gemini_base_url=fake.base_url, request_timeout_seconds=5.0)
    return GeminiAnnotator(settings.replace(**changes))


def test_fused_call_returns_description_and_listed_categories_in_one_request(fake: FakeGemini) -> None:
    result = _annotator(fake).describe_and_categorize(GREEN, "image/jpeg", CATEGORIES, 2)
    assert result.kind == "fused" and result.prompt_version == prompts.PROMPT_VERSION
    assert set(result.description or {}) == set(prompts.DESCRIPTION_FIELDS)
    assert "120x90" in (result.summary or "")  # the fake saw the image we sent, at its size
    assert result.categories and set(result.categories) <= {c.name for c in CATEGORIES} | {"unknown"}
    assert result.usage.prompt > 258 and result.usage.candidates > 0
    assert fake.request_count == 1
    record = fake.records[0]
    assert record.has_image and (record.image_width, record.image_height) == (120, 90)


def test_schema_constrains_categories_to_the_list_plus_unknown_and_max_categories() -> None:
    schema = prompts.fused_schema(CATEGORIES, 3)
    categories = schema["properties"]["categories"]
    assert categories["items"]["enum"] == ["animals", "food", "landscapes", "people", "unknown"]
    # minItems/maxItems count toward the API's "too many states" limit: the count is checked locally instead
    assert "minItems" not in categories and "maxItems" not in categories
    assert schema["propertyOrdering"][-1] == "categories"
    assert set(prompts.describe_schema()["properties"]) == set(prompts.DESCRIPTION_FIELDS)


def test_schemas_are_plain_data_that_the_sdk_reads_as_sent() -> None:
    from google.genai import types

    schema = prompts.fused_schema(CATEGORIES, 2)
    json.dumps(schema)  # plain data: a batch file carries it as it is
    sdk = types.Schema.model_validate(schema)
    assert sdk.property_ordering == schema["propertyOrdering"]
    assert sdk.properties is not None and sdk.properties["categories"].items is not None
    assert sdk.properties["categories"].items.enum == ["animals", "food", "landscapes", "people", "unknown"]


def test_describe_sends_no_categories_and_categorize_sends_no_image(fake: FakeGemini) -> None:
    annotator = _annotator(fake)
    described = annotator.describe(GREEN, "image/jpeg")
    assert described.categories is None and described.description
    categorized = annotator.categorize(described.description, CATEGORIES, 2)
    assert categorized.kind == "categorize" and categorized.categories
    assert categorized.description == described.description
    first, second = fake.records
    assert first.has_image and not second.has_image


def test_thinking_tokens_bill_as_output(fake: FakeGemini) -> None:
    fake.thoughts_tokens = 100
    annotator = _annotator(fake, prices={"gemini-2.5-flash-lite": {"input": 1.0, "output": 10.0}})
    result = annotator.describe_and_categorize(GREEN, "image/jpeg", CATEGORIES, 2)
    usage = result.usage
    assert usage.thoughts == 100
    assert result.cost_usd == pytest.approx((usage.prompt * 1.0 + (usage.candidates + 100) * 10.0) / 1e6)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("safety", "safety"),
        ("prompt_blocked", "prompt_blocked"),
        ("max_tokens", "max_tokens"),
        ("malformed_json", "invalid_json"),
        ("off_list_category", "off_list"),
        ("wrong_shape", "wrong_shape"),
    ],
)
def test_unusable_answers_are_per_image_failures_with_a_kind(fake: FakeGemini, fault: str, kind: str) -> None:
    fake.inject(fault)
    with pytest.raises(ResponseFailure) as caught:
        _annotator(fake).describe_and_categorize(GREEN, "image/jpeg", CATEGORIES, 2)
    assert caught.value.kind == kind
    assert caught.value.usage.prompt > 0  # the request was billed even though the answer is unusable
    if fault == "off_list_category":
        assert OFF_LIST_VALUE in str(caught.value)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("http_429", "quota"),
        ("http_500", "server_error"),
        ("http_503", "overloaded"),
        ("http_504", "timeout"),
    ],
)
def test_transient_errors_are_retryable(fake: FakeGemini, fault: str, kind: str) -> None:
    fake.retry_delay_s = 7
    fake.inject(fault)
    with pytest.raises(RetryableError) as caught:
        _annotator(fake).describe_and_categorize(GREEN, "image/jpeg", CATEGORIES, 2)
    assert caught.value.kind == kind
    if fault == "http_429":
        assert caught.value.retry_after == 7.0  # from the body's RetryInfo


def test_rpm_quota_429_carries_the_servers_retry_delay(fake: FakeGemini) -> None:
    fake.rpm_quota = 1
    annotator = _annotator(fake)
    annotator.describe(GREEN, "image/jpeg")
    with pytest.raises(RetryableError) as caught:
        annotator.describe(GREEN, "image/jpeg")
    assert caught.value.kind == "quota"
    assert caught.value.retry_after is not None and 50 <= caught.value.retry_after <= 60


def test_a_hung_request_times_out_as_retryable(fake: FakeGemini) -> None:
    fake.hang_s = 5
    fake.inject("hang")
    with pytest.raises(RetryableError) as caught:
        _annotator(fake, request_timeout_seconds=0.3).describe(GREEN, "image/jpeg")
    assert caught.value.kind == "timeout"


def test_unreachable_server_is_a_retryable_transport_error(fake: FakeGemini) -> None:
    annotator = _annotator(fake)
    fake.stop()
    with pytest.raises(RetryableError) as caught:
        annotator.describe(GREEN, "image/jpeg")
    assert caught.value.kind == "transport"


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (400, r"API key was rejected \(400 API_KEY_INVALID\): set GEMINI_API_KEY"),  # what Google answers
        (403, r"Gemini refused the key \(403 PERMISSION_DENIED.*Generative Language API enabled"),
    ],
)
def test_rejected_key_is_fatal_with_what_to_do(fake: FakeGemini, status: int, message: str) -> None:
    fake.valid_keys = {"the-right-key"}
    fake.bad_key_status = status
    with pytest.raises(AnnotatorError, match=message):
        _annotator(fake).describe(GREEN, "image/jpeg")


def test_unknown_model_is_fatal_and_names_the_setting(fake: FakeGemini) -> None:
    fake.known_models = {"gemini-2.5-flash-lite"}
    with pytest.raises(AnnotatorError, match=r"model 'gemini-0-nope' was not found .*--model"):
        _annotator(fake, caption_model="gemini-0-nope").describe(GREEN, "image/jpeg")


def test_invalid_request_is_fatal_when_a_known_good_image_is_refused_too(fake: FakeGemini) -> None:
    fake.fault_for(lambda request: True, "http_400")
    with pytest.raises(AnnotatorError, match="rejected the request"):
        _annotator(fake).describe(GREEN, "image/jpeg")
    assert fake.request_count == 2  # the image, then the small probe image


def test_a_generic_400_on_the_first_image_is_that_images_when_a_probe_passes(fake: FakeGemini) -> None:
    fake.inject("http_400")
    annotator = _annotator(fake)
    with pytest.raises(ResponseFailure) as caught:
        annotator.describe(GREEN, "image/jpeg")
    assert caught.value.kind == "invalid_argument" and fake.request_count == 2
    fake.inject("http_400")  # once a request has succeeded, no probe is needed
    with pytest.raises(ResponseFailure):
        annotator.describe(GREEN, "image/jpeg")
    assert fake.request_count == 3


def test_an_image_gemini_cannot_decode_fails_alone(fake: FakeGemini) -> None:
    with pytest.raises(ResponseFailure) as caught:
        _annotator(fake).describe(b"not an image at all", "image/jpeg")
    assert caught.value.kind == "image_rejected"


def test_no_api_key_says_how_to_set_one() -> None:
    with pytest.raises(AnnotatorError, match="GEMINI_API_KEY"):
        GeminiAnnotator(Settings())


def test_normalize_categories() -> None:
    assert normalize_categories(["Food", "food", "animals"], CATEGORIES, 2) == ["food", "animals"]
    assert normalize_categories(["unknown", "people"], CATEGORIES, 2) == ["people"]
    assert normalize_categories(["unknown"], CATEGORIES, 2) == ["unknown"]
    assert normalize_categories(["food", "animals", "people"], CATEGORIES, 2) == ["food", "animals"]
    with pytest.raises(ValueError, match="off_list"):
        normalize_categories(["food", "robots"], CATEGORIES, 2)
    with pytest.raises(ValueError, match="wrong_shape"):
        normalize_categories("food", CATEGORIES, 2)


def test_categorize_prompt_carries_the_description_not_the_image() -> None:
    prompt = prompts.categorize_prompt({"summary": "a cat on a sofa"}, CATEGORIES, 2)
    assert json.dumps({"summary": "a cat on a sofa"}) in prompt.text
    assert "- animals: pets and wildlife" in prompt.system and "- unknown" in prompt.system
