"""The Gemini REST wire format: parsing a generateContent request, building answers and error bodies.

Bodies follow what generativelanguage.googleapis.com sends, key for key, so the real google-genai
client parses them exactly as it would parse Google's.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
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
    499: "CANCELLED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
TYPE_PREFIX = "type.googleapis.com/google.rpc."


class WireError(LabelingError):
    """A request the fake answers with a Google-style error body (code, status, message, details)."""

    def __init__(
        self, code: int, message: str, details: list[dict[str, Any]] | None = None, status: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []
        self.status = status  # None: the code's usual status name

    def body(self) -> dict[str, Any]:
        """The JSON body Google sends for this error."""
        return error_body(self.code, self.message, self.details, self.status)


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
    top_level_keys: tuple[str, ...] = ()  # as sent, either spelling
    generation_config_keys: tuple[str, ...] = ()
    thinking: dict[str, Any] | None = None  # generationConfig.thinkingConfig as sent
    media_resolution: str | None = None
    service_tier: str | None = None
    continued_from: int | None = None  # where the previous hop stopped (its continuationToken says)

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


@functools.cache
def camel_case(snake: str) -> str:
    """`inline_data` -> `inlineData` (a camelCase name comes back unchanged)."""
    head, *rest = snake.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


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
    config = pick(body, "generationConfig")
    config = config if isinstance(config, dict) else {}
    schema = pick(config, "responseJsonSchema") or pick(config, "responseSchema")
    max_tokens = pick(config, "maxOutputTokens")
    thinking = pick(config, "thinkingConfig")
    return GenerateRequest(
        texts=texts,
        blobs=blobs,
        response_mime_type=pick(config, "responseMimeType"),
        schema=schema if isinstance(schema, dict) else None,
        max_output_tokens=int(max_tokens) if max_tokens else None,
        top_level_keys=tuple(body),
        generation_config_keys=tuple(config),
        thinking=thinking if isinstance(thinking, dict) else None,
        media_resolution=_text_or_none(pick(config, "mediaResolution")),
        service_tier=_text_or_none(pick(body, "serviceTier")),
        continued_from=_continued_from(pick(body, "continuationToken"), _fingerprint(texts, blobs)),
    )


def continuation_token(offset: int, request: GenerateRequest) -> str:
    """The token of an answer cut at CONTINUATION: where it stopped, for which request (the same request gets
    the same answer, so the fake keeps no state)."""
    token = f"fake-continuation:{offset}:{_fingerprint(request.texts, request.blobs)}"
    return base64.b64encode(token.encode()).decode("ascii")


def _fingerprint(texts: list[str], blobs: list[InlineBlob]) -> str:
    digest = hashlib.sha256("\n".join(texts).encode())
    for blob in blobs:
        digest.update(blob.data)
    return digest.hexdigest()[:16]


def _continued_from(value: Any, fingerprint: str) -> int | None:
    if value is None:
        return None
    found = re.fullmatch(rb"fake-continuation:(\d+):(\w+)", _decode_base64(str(value), "continuation_token"))
    if found is None or found.group(2).decode() != fingerprint:
        raise WireError(400, "Invalid value at 'continuation_token': the token was not issued for this request.")
    return int(found.group(1))


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


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


def error_body(
    code: int, message: str, details: list[dict[str, Any]] | None = None, status: str | None = None
) -> dict[str, Any]:
    """`{"error": {"code", "message", "status", "details"?}}`; Google omits details when empty."""
    error: dict[str, Any] = {"code": code, "message": message, "status": status or STATUS_NAMES.get(code, "UNKNOWN")}
    if details:
        error["details"] = details
    return {"error": error}


def text_tokens(text: str) -> int:
    """About four characters a token, as Gemini's tokenizer averages on English."""
    return math.ceil(len(text) / 4)


def usage_metadata(prompt_text: int, prompt_image: int, output: int, thoughts: int, cached: int = 0) -> dict[str, Any]:
    """usageMetadata; zero counts are left out, as Google leaves them out (IMAGE details likewise)."""
    details = [{"modality": "TEXT", "tokenCount": prompt_text}]
    if prompt_image:
        details.append({"modality": "IMAGE", "tokenCount": prompt_image})
    prompt = prompt_text + prompt_image
    usage: dict[str, Any] = {"promptTokenCount": prompt}
    if output:
        usage["candidatesTokenCount"] = output
    usage["totalTokenCount"] = prompt + output + thoughts
    if cached > 0:
        usage["cachedContentTokenCount"] = min(cached, prompt)
    usage["promptTokensDetails"] = details
    if thoughts > 0:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def response_body(
    model: str,
    usage: dict[str, Any],
    *,
    candidates: list[dict[str, Any]] | None = None,
    prompt_feedback: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A GenerateContentResponse; `candidates` None leaves the key out (a blocked prompt), [] sends it empty."""
    body: dict[str, Any] = {}
    if candidates is not None:
        body["candidates"] = candidates
    if prompt_feedback is not None:
        body["promptFeedback"] = prompt_feedback
    body["usageMetadata"] = usage
    body["modelVersion"] = model
    body["responseId"] = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode("ascii").rstrip("=")
    return body


def candidate(parts: list[dict[str, Any]], finish_reason: str = "STOP") -> dict[str, Any]:
    """A candidate with these parts; with none, Google sends a content holding only the role."""
    content: dict[str, Any] = {"parts": parts, "role": "model"} if parts else {"role": "model"}
    return {"content": content, "finishReason": finish_reason, "index": 0}


def safety_candidate() -> dict[str, Any]:
    """A candidate blocked by the safety filter: no content, one HIGH rating."""
    ratings = [
        {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "HIGH", "blocked": True},
        {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
        {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"},
    ]
    return {"finishReason": "SAFETY", "index": 0, "safetyRatings": ratings}
