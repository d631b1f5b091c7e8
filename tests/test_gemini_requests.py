"""The annotator's requests are byte for byte what google-genai's `generate_content` sends, and read the same way.

The annotator builds each config's REST body once (labeling/annotators/gemini_requests.py) instead of letting the
SDK convert it on every call; these tests hold it to the SDK's own requests for every prompt kind and the
settings that shape a request (model family, tier, media resolution), against the fake Gemini over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from google.genai import types

from labeling.annotators import prompts
from labeling.annotators.gemini import GeminiAnnotator
from labeling.categories import Category
from labeling.fake_gemini import FakeGemini
from labeling.settings import Settings
from tests.conftest import image_bytes
from tests.fake_gemini_fixtures import *  # noqa: F403 - the shared fake and server fixtures

CATEGORIES = [Category("animals", "pets and wildlife"), Category("food", "dishes"), Category("people", "portraits")]
IMAGE = image_bytes((120, 90), (200, 40, 30))

PROMPTS = {
    "describe": lambda: prompts.describe_prompt(),
    "fused": lambda: prompts.fused_prompt(CATEGORIES, 2),
    "fused, plain categories": lambda: prompts.fused_prompt(CATEGORIES, 2, enum=False),
    "categorize": lambda: prompts.categorize_prompt({"summary": "A red square."}, CATEGORIES, 2),
}
SETTINGS = {
    "defaults": {},
    "flex tier, low media resolution": {"service_tier": "flex", "media_resolution": "low"},
    "a thinking family": {"caption_model": "gemini-2.5-flash"},
    "Gemini 3": {"caption_model": "gemini-3.5-flash-lite", "media_resolution": "high"},
}


@pytest.fixture
def annotator(fake: FakeGemini, request: pytest.FixtureRequest) -> Iterator[GeminiAnnotator]:
    settings = Settings(gemini_api_key="test-key", gemini_base_url=fake.base_url, request_timeout_seconds=5.0)
    annotator = GeminiAnnotator(settings.replace(**getattr(request, "param", {})))
    yield annotator
    annotator.close()


def _sent(annotator: GeminiAnnotator, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """Every (URL path, JSON body) the client puts on the wire from now on."""
    http = annotator.client._api_client._httpx_client
    sent: list[tuple[str, dict[str, Any]]] = []
    send = http.send

    def recording(request: Any, **options: Any) -> Any:
        sent.append((request.url.path, json.loads(request.content)))
        return send(request, **options)

    monkeypatch.setattr(http, "send", recording)
    return sent


def _through_the_sdk(
    annotator: GeminiAnnotator, prompt: prompts.Prompt, image: bytes | None
) -> types.GenerateContentResponse:
    contents: list[Any] = [types.Part.from_bytes(data=image, mime_type="image/jpeg")] if image else []
    if prompt.text:
        contents.append(prompt.text)
    config = annotator._config(prompt.kind, prompt.system, json.dumps(prompt.schema))
    return annotator.client.models.generate_content(model=annotator.model, contents=contents, config=config)


@pytest.mark.parametrize("annotator", list(SETTINGS.values()), ids=list(SETTINGS), indirect=True)
@pytest.mark.parametrize("kind", list(PROMPTS))
def test_each_request_is_the_one_generate_content_sends(
    annotator: GeminiAnnotator, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = PROMPTS[kind]()
    image = None if prompt.kind == "categorize" else IMAGE
    sent = _sent(annotator, monkeypatch)
    sdk_answer = _through_the_sdk(annotator, prompt, image)
    ours = annotator._send(prompt, image, "image/jpeg")
    assert len(sent) == 2
    (sdk_path, sdk_body), (path, body) = sent
    assert path == sdk_path == f"/v1beta/models/{annotator.model}:generateContent"
    assert body == sdk_body
    assert ours.text == sdk_answer.text and ours.usage_metadata == sdk_answer.usage_metadata


def test_a_suggestion_request_is_the_one_generate_content_sends(
    annotator: GeminiAnnotator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labeling.suggestions import suggestion_prompt

    prompt = suggestion_prompt([{"summary": "A red square on a table."}], CATEGORIES, 5)
    sent = _sent(annotator, monkeypatch)
    _through_the_sdk(annotator, prompt, None)
    annotator.ask(prompt)
    assert sent[0] == sent[1]


def test_an_answer_cut_at_continuation_is_followed_to_its_end(
    annotator: GeminiAnnotator, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = annotator.describe_and_categorize(IMAGE, "image/jpeg", CATEGORIES, 2)
    fake.inject("continuation")
    sent = _sent(annotator, monkeypatch)
    continued = annotator.describe_and_categorize(IMAGE, "image/jpeg", CATEGORIES, 2)
    assert continued.description == whole.description and continued.categories == whole.categories
    assert [("continuationToken" in body) for _, body in sent] == [False, True]
    assert sent[1][1] == {**sent[0][1], "continuationToken": sent[1][1]["continuationToken"]}
    whole_text = _through_the_sdk(annotator, PROMPTS["fused"](), IMAGE).text
    fake.inject("continuation")  # the SDK itself follows the same two hops to the same answer
    assert _through_the_sdk(annotator, PROMPTS["fused"](), IMAGE).text == whole_text
