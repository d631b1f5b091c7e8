"""Sending generateContent requests through google-genai with the config converted once, not per request.

`Models.generate_content` validates and converts the whole config (system instruction, response schema, thinking,
tier) into its REST body on every call: about 3.5 ms of CPU per request, more than everything else the runner
does for an image sent as is. A run sends one config thousands of times, so a `RequestTemplate` asks the SDK's
own converter for that body once and each request adds only its contents. The request then goes through the
same client (`BaseApiClient.request`: URL, API version, key header, timeout, error raising) and the answer is read
by the SDK's own response conversion, so the wire and the errors are exactly those of `generate_content`
(tests/test_gemini_requests.py compares the bodies). Automatic continuation is followed as the SDK does.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from google import genai
from google.genai import _common, _extra_utils, models, types


@dataclass(frozen=True)
class RequestTemplate:
    """The REST body of one (model, config) without its contents, and the path it is posted to."""

    path: str
    body: dict[str, Any]

    @classmethod
    def build(cls, client: genai.Client, model: str, config: types.GenerateContentConfig) -> RequestTemplate:
        # The same steps as Models._generate_content, on parameters without contents.
        params = types._GenerateContentParameters(model=model, config=config)
        body = models._GenerateContentParameters_to_mldev(client._api_client, params, None, params)
        url, query = body.pop("_url", None), body.pop("_query", None)
        body.pop("config", None)
        path = "{model}:generateContent".format_map(url) if url else "{model}:generateContent"
        if query:
            path = f"{path}?{urlencode(query)}"
        return cls(path, _common.encode_unserializable_types(_common.convert_to_dict(body)))

    def request(self, image: bytes | None, mime_type: str | None, text: str | None) -> dict[str, Any]:
        """The body for one request: the image (inline) then the text, as one user turn."""
        parts: list[dict[str, Any]] = []
        if image is not None:
            parts.append({"inlineData": {"data": _base64(image), "mime_type": mime_type}})  # as the SDK spells it
        if text:
            parts.append({"text": text})
        return {"contents": [{"role": "user", "parts": parts}], **self.body}


def send(client: genai.Client, template: RequestTemplate, request: dict[str, Any]) -> types.GenerateContentResponse:
    """Post `request`, following continuation tokens until the answer is complete; raises the SDK's errors."""
    responses = [_post(client, template.path, request)]
    while token := _extra_utils.should_continue_generation(responses[-1]):
        responses.append(_post(client, template.path, {**request, "continuationToken": _base64(token)}))
    return _extra_utils.merge_continuation_responses(responses)


def _post(client: genai.Client, path: str, request: dict[str, Any]) -> types.GenerateContentResponse:
    answer = client._api_client.request("post", path, request, None)
    body = json.loads(answer.body) if answer.body else {}
    return types.GenerateContentResponse._from_response(
        response=models._GenerateContentResponse_from_mldev(body), kwargs={}
    )


def _base64(data: bytes) -> str:
    """Bytes as the SDK puts them in JSON (`_common.encode_unserializable_types`): URL-safe base64."""
    return base64.urlsafe_b64encode(data).decode("ascii")
