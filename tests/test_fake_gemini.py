"""The fake Gemini server, exercised through the real google-genai client over HTTP."""

from __future__ import annotations

import base64
import datetime
import enum
import functools
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import httpx2
import pytest
from google import genai
from google.genai import errors, types
from PIL import Image
from pydantic import BaseModel, Field

from labeling.errors import LabelingError
from labeling.fake_gemini import OFF_LIST_VALUE, FakeGemini, GenerateRequest
from tests.fake_gemini_fixtures import *  # noqa: F403 - the shared fake and server fixtures

ROOT = Path(__file__).resolve().parent.parent
MODEL = "gemini-2.5-flash-lite"
CATEGORIES = ("animals", "food", "people", "vehicles", "unknown")


class Obj(BaseModel):
    name: str
    attributes: list[str]


class Scene(BaseModel):
    indoor_outdoor: Literal["indoor", "outdoor", "unknown"]
    environment: str


class Description(BaseModel):
    summary: str
    objects: list[Obj]
    scene: Scene
    categories: list[Literal["animals", "food", "people", "vehicles", "unknown"]]
    score: int | None = None


class Constrained(BaseModel):
    categories: list[Literal["animals", "food", "people", "vehicles", "unknown"]] = Field(min_length=2, max_length=3)
    score: int = Field(ge=1, le=5)
    ratio: float = Field(ge=0, le=1)
    taken_at: datetime.datetime
    has_text: bool
    note: str | None = None
    caption: str = Field(max_length=20)


class Node(BaseModel):
    label: str
    children: list[Node]


class Mood(enum.Enum):
    CALM = "calm"
    BUSY = "busy"


class Tagged(BaseModel):
    description: str
    mood: Mood
    tags: list[Mood]


# -- fixtures and helpers ------------------------------------------------------------------------------


def make_client(
    fake: FakeGemini, *, key: str = "k", timeout_ms: int = 5000, api_version: str | None = "v1beta"
) -> genai.Client:
    """A client on v1beta by default: the SDK's own default, v1, lacks systemInstruction and schemas."""
    return _client(fake.base_url, key, timeout_ms, api_version)


@functools.cache  # building a Client costs ~0.2 s (TLS context), a request ~5 ms: reuse them
def _client(base_url: str, key: str, timeout_ms: int, api_version: str | None) -> genai.Client:
    return genai.Client(
        api_key=key, http_options=types.HttpOptions(base_url=base_url, timeout=timeout_ms, api_version=api_version)
    )


@pytest.fixture(scope="module")
def client(server: FakeGemini) -> genai.Client:
    return make_client(server)


@functools.cache  # encoding a 640x480 PNG costs more than a request
def png(size: tuple[int, int] = (640, 480), color: tuple[int, int, int] = (30, 60, 200)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def describe(
    client: genai.Client,
    image: bytes | None = None,
    prompt: str = "Describe this image.",
    schema: Any = Description,
    **config: Any,
) -> types.GenerateContentResponse:
    contents: list[Any] = [prompt]
    if image is not None:
        contents.insert(0, types.Part.from_bytes(data=image, mime_type="image/png"))
    if schema is not None:
        config.setdefault("response_mime_type", "application/json")
        config["response_schema"] = schema
    return client.models.generate_content(model=MODEL, contents=contents, config=types.GenerateContentConfig(**config))


def categories_of(client: genai.Client, color: tuple[int, int, int]) -> list[str]:
    parsed = describe(client, png(color=color)).parsed
    assert isinstance(parsed, Description)
    return list(parsed.categories)


def modality_tokens(usage: types.GenerateContentResponseUsageMetadata) -> dict[str, int]:
    return {d.modality.value: d.token_count or 0 for d in usage.prompt_tokens_details or [] if d.modality}


def post_raw(
    fake: FakeGemini,
    body: bytes,
    *,
    path: str = f"/v1/models/{MODEL}:generateContent",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST bytes with urllib, for wire details the SDK never produces."""
    request = urllib.request.Request(
        fake.base_url + path, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# -- structured output derived from the image -----------------------------------------------------------


def test_structured_output_is_valid_and_describes_the_image_received(fake: FakeGemini, client: genai.Client) -> None:
    image = png((640, 480))
    response = describe(client, image)

    parsed = response.parsed
    assert isinstance(parsed, Description)
    assert "640x480" in parsed.summary
    assert "blue" in parsed.summary
    assert set(parsed.categories) <= set(CATEGORIES) and parsed.categories
    assert parsed.objects and parsed.objects[0].name
    record = fake.records[-1]
    assert (record.image_width, record.image_height, record.image_mime) == (640, 480, "image/png")
    assert record.image_bytes == len(image)
    assert (record.status, record.fault, record.api_version, record.model) == (200, None, "v1beta", MODEL)
    assert record.schema_sent and "responseSchema" in record.generation_config_keys


def test_red_and_blue_images_get_different_categories_by_hue(client: genai.Client) -> None:
    red, blue = categories_of(client, (255, 0, 0)), categories_of(client, (0, 0, 255))

    assert red != blue
    # hue bucket = int(hue * n) over the enum without "unknown": red (hue 0) -> 0, blue (2/3) -> 2.
    assert red == ["animals"] and blue == ["people"]
    assert categories_of(client, (255, 0, 0)) == red


def test_a_grey_image_gets_a_second_category(client: genai.Client) -> None:
    assert categories_of(client, (128, 128, 128)) == ["animals", "people"]


def test_json_schema_dialect_with_defs_and_enums_is_answered_validly(client: genai.Client) -> None:
    response = describe(
        client,
        png((300, 200), (20, 200, 40)),
        schema=None,
        response_mime_type="application/json",
        response_json_schema=Tagged.model_json_schema(),
    )

    parsed = Tagged.model_validate_json(response.text or "")
    assert "300x200" in parsed.description and "green" in parsed.description
    assert parsed.tags


@pytest.mark.parametrize("dialect", ["response_schema", "response_json_schema"])
def test_schema_constraints_are_respected(client: genai.Client, dialect: str) -> None:
    config: dict[str, Any] = {dialect: Constrained if dialect == "response_schema" else Constrained.model_json_schema()}
    response = describe(
        client, png((200, 200), (240, 240, 240)), schema=None, response_mime_type="application/json", **config
    )

    parsed = Constrained.model_validate_json(response.text or "")
    assert 2 <= len(parsed.categories) <= 3 and len(set(parsed.categories)) == len(parsed.categories)


def test_recursive_json_schema_terminates(client: genai.Client) -> None:
    response = describe(
        client, png(), schema=None, response_mime_type="application/json", response_json_schema=Node.model_json_schema()
    )

    assert Node.model_validate_json(response.text or "").label


def test_a_big_jpeg_is_reported_at_its_real_size(fake: FakeGemini, client: genai.Client) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (1600, 1200), (250, 200, 0)).save(buffer, format="JPEG")
    contents: list[Any] = [types.Part.from_bytes(data=buffer.getvalue(), mime_type="image/jpeg"), "Describe."]
    response = client.models.generate_content(model=MODEL, contents=contents)

    assert "1600x1200" in (response.text or "") and "yellow" in (response.text or "")
    assert response.usage_metadata and modality_tokens(response.usage_metadata)["IMAGE"] == 258 * 3 * 2
    assert fake.records[-1].image_mime == "image/jpeg"


def test_text_only_request_picks_the_categories_its_description_names(fake: FakeGemini, client: genai.Client) -> None:
    prompt = (
        "Choose the categories that fit the description.\nCategories: animals, food, people, vehicles\n"
        "Description: Two PEOPLE share food at a market stall."
    )

    parsed = describe(client, prompt=prompt).parsed

    assert isinstance(parsed, Description)
    assert parsed.categories == ["food", "people"]
    assert not fake.records[-1].has_image
    # Without a "Description:" marker, a value counts when named more often than the list names it.
    unmarked = describe(
        client, prompt="Pick from: animals, food, people, vehicles, unknown.\nA street full of parked vehicles."
    ).parsed
    assert isinstance(unmarked, Description) and unmarked.categories == ["vehicles"]


def test_text_only_request_without_mentions_stays_in_the_enum(client: genai.Client) -> None:
    first = describe(client, prompt="Nothing here names a category.").parsed
    second = describe(client, prompt="Nothing here names a category.").parsed

    assert isinstance(first, Description) and isinstance(second, Description)
    assert first.categories == second.categories and set(first.categories) <= set(CATEGORIES)


def categorize_as_the_app_does(client: genai.Client, description: dict[str, Any], categories: list[Any]) -> list[str]:
    """A text-only categorize request with the app's own prompt and schema (the re-categorize run's request)."""
    from labeling.annotators.prompts import categorize_prompt

    prompt = categorize_prompt(description, categories, 3)
    config = types.GenerateContentConfig(
        system_instruction=prompt.system, response_mime_type="application/json", response_schema=prompt.schema
    )
    response = client.models.generate_content(model=MODEL, contents=[prompt.text], config=config)
    return list(json.loads(response.text or "{}")["categories"])


def test_text_only_categories_come_from_the_description_words_not_its_field_names(client: genai.Client) -> None:
    from labeling.categories import Category
    from labeling.taxonomy import DEFAULT_CATEGORIES_FILE, parse_category_csv
    from tests.category_support import description

    listed = [*parse_category_csv(DEFAULT_CATEGORIES_FILE.read_bytes(), "defaults.csv")]
    listed.append(Category("pets", "Dogs, cats and other pets"))
    named = description("A busy city street at night", ["car"])  # "objects", a field name, does not count
    assert categorize_as_the_app_does(client, named, listed) == ["night"]
    defined = description("Two dogs asleep", ["dog"])  # the words of a definition count, plurals folded
    assert categorize_as_the_app_does(client, defined, listed) == ["pets"]
    # A description naming nothing on the list: a deterministic pick, spread over the list, not one catch-all.
    picks = [
        categorize_as_the_app_does(client, description(f"A {colour} blur, picture {i}"), listed)
        for i, colour in enumerate(["red", "green", "blue", "grey", "amber", "teal"] * 5)
    ]
    assert all(len(p) == 1 and p[0] in [c.name for c in listed] for p in picks)
    assert len({p[0] for p in picks}) >= 8
    assert picks[0] == categorize_as_the_app_does(client, description("A red blur, picture 0"), listed)


def test_plain_text_without_a_schema(client: genai.Client) -> None:
    response = describe(client, png((100, 50)), schema=None)

    assert response.text is not None and "100x50" in response.text
    assert response.parsed is None


def test_usage_metadata_counts_text_and_image_tokens(fake: FakeGemini, client: genai.Client) -> None:
    small = describe(client, png((384, 384))).usage_metadata
    big = describe(client, png((1000, 800))).usage_metadata
    fake.thoughts_tokens = 40
    thinking = describe(client, png((64, 64))).usage_metadata

    assert small is not None and big is not None and thinking is not None
    details = modality_tokens(small)
    assert details["IMAGE"] == 258 and details["TEXT"] > 0
    assert small.prompt_token_count == details["TEXT"] + 258
    assert small.candidates_token_count and small.thoughts_token_count is None
    assert small.total_token_count == small.prompt_token_count + small.candidates_token_count
    assert modality_tokens(big)["IMAGE"] == 258 * 2 * 2  # 1000x800 spans 2x2 tiles of 768 px
    assert thinking.thoughts_token_count == 40
    assert (
        thinking.total_token_count == (thinking.prompt_token_count or 0) + (thinking.candidates_token_count or 0) + 40
    )


def test_v1_and_v1beta_paths_are_both_served(fake: FakeGemini) -> None:
    for version in ("v1", "v1beta"):
        describe(make_client(fake, api_version=version), png(), schema=None, temperature=0.2)

    assert [r.api_version for r in fake.records] == ["v1", "v1beta"]


def test_sdk_finds_the_server_through_its_environment_variable(
    fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fake.env().items():
        monkeypatch.setenv(name, value)

    client = genai.Client()  # keep a reference: a temporary Client closes its pool mid-call
    response = client.models.generate_content(model=MODEL, contents="hello")

    assert response.text and fake.request_count == 1


# -- refusals: quota, key, model, bad requests ------------------------------------------------------------


def test_rpm_quota_answers_429_with_the_real_retry_delay(fake: FakeGemini, client: genai.Client) -> None:
    fake.rpm_quota = 2
    describe(client, png())
    describe(client, png())

    with pytest.raises(errors.ClientError) as caught:
        describe(client, png())

    error = caught.value
    assert (error.code, error.status) == (429, "RESOURCE_EXHAUSTED")
    delays = [d["retryDelay"] for d in error.details["error"]["details"] if "retryDelay" in d]
    assert len(delays) == 1 and re.fullmatch(r"\d+\.\d{9}s", delays[0]) and 55 <= float(delays[0][:-1]) <= 60
    assert re.search(r"Please retry in \d+\.\d{9}s\.", error.message or "")
    assert any("QuotaFailure" in d["@type"] for d in error.details["error"]["details"])
    assert "retry-after" not in error.response.headers  # the real API sends none
    assert fake.status_counts() == {200: 2, 429: 1}


def test_injected_429_carries_the_configured_retry_delay(fake: FakeGemini, client: genai.Client) -> None:
    fake.retry_delay_s = 45.837906927
    fake.inject("http_429")

    with pytest.raises(errors.ClientError) as caught:
        describe(client, png())

    details = caught.value.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "45.837906927s"} in details
    assert (caught.value.message or "").endswith("Please retry in 45.837906927s.")
    assert "retry-after" not in caught.value.response.headers


def test_bad_key_is_refused_with_400_api_key_invalid(fake: FakeGemini) -> None:
    fake.valid_keys = {"good-key"}

    with pytest.raises(errors.ClientError) as caught:
        describe(make_client(fake, key="bad-key"), png())
    describe(make_client(fake, key="good-key"), png())

    assert (caught.value.code, caught.value.status) == (400, "INVALID_ARGUMENT")
    assert caught.value.message == "API key not valid. Please pass a valid API key."
    assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    fake.bad_key_status = 403
    with pytest.raises(errors.ClientError) as no_access:
        describe(make_client(fake, key="bad-key"), png())
    assert (no_access.value.code, no_access.value.status) == (403, "PERMISSION_DENIED")


def test_unknown_model_is_404(fake: FakeGemini, client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="not-a-model", contents="hi")
    fake.known_models = {MODEL}
    with pytest.raises(errors.ClientError) as unlisted:
        client.models.generate_content(model="gemini-9-ultra", contents="hi")

    assert (caught.value.code, caught.value.status) == (404, "NOT_FOUND")
    assert "models/not-a-model is not found for API version v1" in (caught.value.message or "")
    assert unlisted.value.code == 404


def test_wire_details_the_sdk_never_sends(fake: FakeGemini) -> None:
    image = png((20, 10))
    # snake_case keys, standard (not URL-safe) base64 without padding, key in the query string.
    body = {
        "contents": [
            {
                "parts": [
                    {"inline_data": {"mime_type": "image/png", "data": base64.b64encode(image).decode().rstrip("=")}},
                    {"text": "describe"},
                ]
            }
        ],
        "generation_config": {
            "response_mime_type": "application/json",
            "response_schema": {
                "type": "OBJECT",
                "properties": {"summary": {"type": "STRING"}},
                "required": ["summary"],
            },
        },
    }
    path = f"/v1beta/models/{MODEL}:generateContent?key=abc"

    status, answer = post_raw(fake, json.dumps(body).encode(), path=path)
    no_key, refusal = post_raw(fake, json.dumps(body).encode())
    broken, invalid = post_raw(fake, b"{not json", headers={"x-goog-api-key": "k"})
    empty, missing = post_raw(fake, b"{}", headers={"x-goog-api-key": "k"})

    assert status == 200
    assert "20x10" in json.loads(answer["candidates"][0]["content"]["parts"][0]["text"])["summary"]
    assert answer["candidates"][0]["finishReason"] == "STOP" and answer["responseId"]
    assert no_key == 403 and refusal["error"]["status"] == "PERMISSION_DENIED"
    assert broken == 400 and invalid["error"]["status"] == "INVALID_ARGUMENT"
    assert empty == 400 and set(missing["error"]) == {"code", "message", "status"}


# -- injected faults ------------------------------------------------------------------------------------


def test_503_surfaces_as_a_server_error(fake: FakeGemini, client: genai.Client) -> None:
    fake.inject("http_503")

    with pytest.raises(errors.ServerError) as caught:
        describe(client, png())
    describe(client, png())  # only the next request was faulted

    assert (caught.value.code, caught.value.status) == (503, "UNAVAILABLE")
    assert caught.value.message == (
        "This model is currently experiencing high demand. Spikes in demand are usually "
        "temporary. Please try again later."
    )
    assert [r.fault for r in fake.records] == ["http_503", None]


@pytest.mark.parametrize(
    ("kind", "error", "code"),
    [
        ("http_500", errors.ServerError, 500),
        ("http_504", errors.ServerError, 504),
        ("http_400", errors.ClientError, 400),
        ("http_403", errors.ClientError, 403),
        ("http_404", errors.ClientError, 404),
    ],
)
def test_http_faults_raise_the_sdk_error_for_their_code(
    fake: FakeGemini, client: genai.Client, kind: str, error: type[errors.APIError], code: int
) -> None:
    fake.inject(kind)

    with pytest.raises(error) as caught:
        describe(client, png())

    assert caught.value.code == code


def test_hang_outlasts_a_client_timeout(fake: FakeGemini) -> None:
    fake.hang_s = 5
    fake.inject("hang")

    with pytest.raises(httpx2.TimeoutException):
        describe(make_client(fake, timeout_ms=200), png())


def stop_during_a_request(fake: FakeGemini) -> list[BaseException]:
    """Start one request from a thread, stop the server once it arrived, return what the caller got."""
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            describe(make_client(fake, timeout_ms=60_000), png())
        except Exception as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while fake.request_count == 0 and caller.is_alive():
        threading.Event().wait(0.01)
    fake.stop()
    caller.join(timeout=20)
    assert not caller.is_alive(), "stop() left a request hanging"
    return outcome


def test_stop_releases_a_hung_request() -> None:
    fake = FakeGemini(hang_s=60)
    fake.start()
    fake.inject("hang")

    outcome = stop_during_a_request(fake)

    assert outcome and isinstance(outcome[0], httpx2.TransportError)
    assert fake.records[0].status == 0 and fake.records[0].fault == "hang"


def test_stop_releases_requests_waiting_out_the_latency() -> None:
    fake = FakeGemini(latency_s=60)
    fake.start()

    outcome = stop_during_a_request(fake)

    assert outcome and isinstance(outcome[0], httpx2.TransportError)


def test_malformed_json_leaves_parsed_empty(fake: FakeGemini, client: genai.Client) -> None:
    fake.inject("malformed_json")

    response = describe(client, png())

    assert response.parsed is None and response.text
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_safety_block_has_no_text(fake: FakeGemini, client: genai.Client) -> None:
    fake.inject("safety")

    response = describe(client, png())

    assert response.text is None and response.parsed is None
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.SAFETY
    ratings = response.candidates[0].safety_ratings or []
    assert any(r.probability == types.HarmProbability.HIGH for r in ratings)


def test_blocked_prompt_has_no_candidates(fake: FakeGemini, client: genai.Client) -> None:
    fake.inject("prompt_blocked")

    response = describe(client, png())

    assert response.text is None and not response.candidates
    assert response.prompt_feedback and response.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT


def test_max_tokens_cuts_the_json(fake: FakeGemini, client: genai.Client) -> None:
    fake.inject("max_tokens")

    cut = describe(client, png())
    limited = describe(client, png(), max_output_tokens=5)

    for response in (cut, limited):
        assert response.parsed is None and response.text
        assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


def test_off_list_category_breaks_only_the_enum(fake: FakeGemini, client: genai.Client) -> None:
    fake.inject("off_list_category")

    response = describe(client, png())

    assert response.parsed is None
    answer = json.loads(response.text or "")
    assert OFF_LIST_VALUE in answer["categories"] and "640x480" in answer["summary"]


def test_wrong_shape_misses_required_fields(fake: FakeGemini, client: genai.Client) -> None:
    fake.inject("wrong_shape")

    response = describe(client, png())

    assert response.parsed is None
    answer = json.loads(response.text or "")
    assert not {"summary", "objects", "scene", "categories"} & set(answer)


def test_seeded_fault_rates_repeat_exactly() -> None:
    def faults(seed: int) -> list[str | None]:
        with FakeGemini(fault_rates={"http_503": 0.3, "safety": 0.2}, seed=seed) as fake:
            body = json.dumps({"contents": [{"parts": [{"text": "hi"}]}]}).encode()
            for _ in range(30):
                post_raw(fake, body, headers={"x-goog-api-key": "k"})
            return [r.fault for r in fake.records]

    first = faults(7)

    assert first == faults(7)
    assert {"http_503", "safety", None} <= set(first)


def test_fault_rules_and_queues(fake: FakeGemini, client: genai.Client) -> None:
    def text_only(request: GenerateRequest) -> bool:
        return not request.images

    fake.fault_for(text_only, "http_500", times=1)
    fake.inject("safety", times=2)

    assert describe(client, png()).text is None  # queued faults come first
    assert describe(client, png()).text is None
    with pytest.raises(errors.ServerError):
        describe(client, prompt="text only")
    assert describe(client, prompt="text only").parsed is not None
    assert fake.pending_faults == []
    with pytest.raises(LabelingError):
        fake.inject("meteor")


# -- load and the command line ---------------------------------------------------------------------------


def test_a_burst_of_64_concurrent_requests_all_succeed(fake: FakeGemini, client: genai.Client) -> None:
    image = png((128, 96))

    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(lambda _: describe(client, image).parsed, range(64)))

    assert all(isinstance(r, Description) for r in results)
    assert fake.request_count == 64 and fake.status_counts() == {200: 64}


def test_command_line_prints_its_url_and_serves() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "labeling.fake_gemini", "--port", "0", "--rpm", "600"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        url = re.search(r"http://127\.0\.0\.1:\d+", lines[0])
        assert url and any("GEMINI_API_KEY=fake-key" in line for line in lines)
        assert any(f"GOOGLE_GEMINI_BASE_URL={url.group(0)}" in line for line in lines)
        client = genai.Client(api_key="fake-key", http_options=types.HttpOptions(base_url=url.group(0), timeout=5000))
        assert client.models.generate_content(model=MODEL, contents="hello").text
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
