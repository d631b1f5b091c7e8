"""The Gemini annotator on google-genai: structured output, error classification, token accounting.

One `genai.Client` is shared by every worker thread (its connection pool is sized for them). The client
never retries on its own: the job runner does, honouring the server's retry delay, which the SDK ignores.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import httpx2
from google import genai
from google.genai import errors, types

from labeling.annotators import prompts
from labeling.annotators.base import Annotation, ResponseFailure, RetryableError, Usage
from labeling.errors import AnnotatorError
from labeling.settings import Settings
from labeling.store.categories import Category
from labeling.taxonomy import UNKNOWN

log = logging.getLogger(__name__)

# finishReason values that mean a filter withheld the answer.
_BLOCKED_REASONS = {"SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY",
                    "IMAGE_PROHIBITED_CONTENT"}
_RETRYABLE_CODES = {408: "timeout", 429: "quota", 500: "server_error", 502: "server_error",
                    503: "overloaded", 504: "timeout"}
_RETRY_IN = re.compile(r"retry in ([0-9.]+)\s*(ms|s)\b", re.IGNORECASE)
_KEY_HELP = ("set GEMINI_API_KEY (or gemini_api_key in config.yaml) to a valid key from "
             "https://aistudio.google.com/apikey")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Transport failures surface as raw httpx2 (or httpx) exceptions, not SDK errors."""
    found: list[type[BaseException]] = [httpx2.TransportError]
    try:
        import httpx

        found.append(httpx.TransportError)
    except ImportError:  # pragma: no cover - httpx is an optional backend
        pass
    return tuple(found)


_TRANSPORT_ERRORS = _transport_errors()


def _duration_seconds(text: str) -> float | None:
    """A protobuf Duration in JSON ("53s", "0.5s", "1.000340s") as seconds."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)s\s*", text or "")
    return float(match.group(1)) if match else None


def retry_delay(error: errors.APIError) -> float | None:
    """The delay the server asked for: RetryInfo.retryDelay, else Retry-After, else "Please retry in Xs"."""
    body = error.details if isinstance(error.details, dict) else {}
    details = (body.get("error") or {}).get("details") or body.get("details") or []
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and "retryDelay" in detail:
            seconds = _duration_seconds(str(detail["retryDelay"]))
            if seconds is not None:
                return seconds
    headers = getattr(getattr(error, "response", None), "headers", None)
    header = headers.get("retry-after") if headers is not None else None
    if header:
        try:
            return max(float(header), 0.0)
        except ValueError:
            when = email.utils.parsedate_to_datetime(header) if header else None
            if when is not None:
                return max(when.timestamp() - time.time(), 0.0)
    found = _RETRY_IN.search(error.message or "")
    if found:
        value = float(found.group(1))
        return value / 1000 if found.group(2).lower() == "ms" else value
    return None


def _error_reason(error: errors.APIError) -> str:
    body = error.details if isinstance(error.details, dict) else {}
    for detail in (body.get("error") or {}).get("details") or []:
        if isinstance(detail, dict) and detail.get("reason"):
            return str(detail["reason"])
    return ""


def classify_api_error(error: errors.APIError, model: str) -> Exception:
    """Turn an SDK error into RetryableError, ResponseFailure (this image only) or AnnotatorError (the run)."""
    code = int(error.code or 0)
    status = error.status or ""
    message = (error.message or str(error)).strip()
    if code in _RETRYABLE_CODES:
        return RetryableError(f"{code} {status}: {message}", _RETRYABLE_CODES[code], retry_delay(error))
    if code >= 500:
        return RetryableError(f"{code} {status}: {message}", "server_error", retry_delay(error))
    reason = _error_reason(error)
    if reason == "API_KEY_INVALID" or code == 401 or (code == 403 and "key" in message.lower()):
        return AnnotatorError(f"The Gemini API key was rejected ({code}): {_KEY_HELP}.")
    if code == 403:
        return AnnotatorError(f"Gemini refused the request ({code} {status}: {message}): check that the key's "
                              "project has the Generative Language API enabled and access to the model.")
    if code == 404:
        return AnnotatorError(f"The model {model!r} was not found ({code}: {message}): set caption_model in "
                              "config.yaml or pass --model with an available model, e.g. gemini-2.5-flash-lite.")
    if code == 400 and "image" in message.lower() and "process" in message.lower():
        # Google cannot decode this one image: the others may be fine.
        return ResponseFailure(f"Gemini could not process this image ({message}).", "image_rejected")
    if code == 400 and "too many states" in message.lower():
        return AnnotatorError(f"Gemini rejected the response schema ({message}): the category list is too long "
                              "or its names too long for structured output; shorten it on the Categories page.")
    return AnnotatorError(f"Gemini rejected the request ({code} {status}: {message}): check the model name and "
                          "settings; if they are right, this version of labeling sends a request the API "
                          "no longer accepts.")


def _usage(response: types.GenerateContentResponse) -> Usage:
    meta = response.usage_metadata
    if meta is None:
        return Usage()
    return Usage(prompt=meta.prompt_token_count or 0, candidates=meta.candidates_token_count or 0,
                 thoughts=meta.thoughts_token_count or 0)


def normalize_categories(values: Any, categories: Sequence[Category], max_categories: int) -> list[str]:
    """The answer's categories in the list's spelling; `unknown` only alone. Raises on anything off-list."""
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError("wrong_shape", "the categories are not a list of names")
    allowed = {name.lower(): name for name in prompts.category_names(categories)}
    chosen: list[str] = []
    off_list = [v for v in values if v.strip().lower() not in allowed]
    if off_list:
        raise ValueError("off_list", f"categories outside the list: {', '.join(map(repr, off_list))}")
    for value in values:
        name = allowed[value.strip().lower()]
        if name not in chosen:
            chosen.append(name)
    known = [name for name in chosen if name != UNKNOWN]
    if not chosen:
        raise ValueError("wrong_shape", "no category was given")
    return known[:max_categories] if known else [UNKNOWN]


def _check_description(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError("wrong_shape", "the answer is not a JSON object")
    missing = [name for name in prompts.DESCRIPTION_FIELDS if name not in value]
    if missing or not isinstance(value.get("summary"), str) or not value["summary"].strip():
        raise ValueError("wrong_shape", f"the description lacks {', '.join(missing) or 'a summary'}")
    return {name: value[name] for name in prompts.DESCRIPTION_FIELDS}


class GeminiAnnotator:
    """Gemini through google-genai; one instance (one Client) is shared by all worker threads of a run."""

    def __init__(self, settings: Settings, *, model: str | None = None, max_workers: int | None = None,
                 simulated: bool = False) -> None:
        if not settings.gemini_api_key:
            raise AnnotatorError(f"No Gemini API key is set: {_KEY_HELP}. To try the app without one, use "
                                 "\"Create an example project\" on the Run page (simulated).")
        self.model = (model or settings.caption_model).strip()
        if not self.model:
            raise AnnotatorError("No model is set: set caption_model in config.yaml or pass --model.")
        self.prompt_version = prompts.PROMPT_VERSION
        self.simulated = simulated
        self.price = settings.price_for(self.model)
        workers = max(max_workers or settings.num_workers, 1)
        options = types.HttpOptions(
            base_url=settings.gemini_base_url or None,
            # HttpOptions.timeout is in milliseconds; without one a stalled call would hang for ever.
            timeout=int(settings.request_timeout_seconds * 1000) or None,
            # The default pool keeps 20 connections alive: size it for every worker plus headroom.
            client_args={"limits": httpx2.Limits(max_connections=max(100, workers * 2),
                                                 max_keepalive_connections=max(20, workers * 2))},
        )
        # Kept referenced for the annotator's lifetime: a dropped Client closes its pool mid-call.
        self._client = genai.Client(api_key=settings.gemini_api_key, http_options=options)

    def close(self) -> None:
        self._client.close()

    # -- the three calls ---------------------------------------------------------------------------

    def describe(self, image: bytes, mime_type: str) -> Annotation:
        prompt = prompts.describe_prompt()
        value, usage = self._generate(prompt, image, mime_type)
        description = self._parsed(lambda: _check_description(value), usage)
        return self._annotation("describe", description, None, usage)

    def categorize(self, description: dict[str, Any], categories: Sequence[Category],
                   max_categories: int) -> Annotation:
        prompt = prompts.categorize_prompt(description, categories, max_categories)
        value, usage = self._generate(prompt, None, None)
        names = self._parsed(lambda: normalize_categories(
            value.get("categories") if isinstance(value, dict) else None, categories, max_categories), usage)
        return self._annotation("categorize", description, names, usage)

    def describe_and_categorize(self, image: bytes, mime_type: str, categories: Sequence[Category],
                                max_categories: int) -> Annotation:
        prompt = prompts.fused_prompt(categories, max_categories)
        value, usage = self._generate(prompt, image, mime_type)
        description = self._parsed(lambda: _check_description(value), usage)
        names = self._parsed(lambda: normalize_categories(value.get("categories"), categories, max_categories),
                             usage)
        return self._annotation("fused", description, names, usage)

    # -- plumbing ----------------------------------------------------------------------------------

    def _annotation(self, kind: str, description: dict[str, Any] | None, categories: list[str] | None,
                    usage: Usage) -> Annotation:
        return Annotation(kind, self.model, self.prompt_version, description, categories, usage,
                          usage.cost(self.price))

    def _failure(self, message: str, kind: str, usage: Usage) -> ResponseFailure:
        return ResponseFailure(message, kind, usage, usage.cost(self.price))

    def _parsed(self, check: Any, usage: Usage) -> Any:
        try:
            return check()
        except ValueError as exc:
            kind, detail = exc.args if len(exc.args) == 2 else ("wrong_shape", str(exc))
            raise self._failure(f"The answer does not fit the schema: {detail}.", kind, usage) from None

    def _generate(self, prompt: prompts.Prompt, image: bytes | None, mime_type: str | None) -> tuple[Any, Usage]:
        """Send one request; return its parsed JSON and usage, or raise one of the three error kinds."""
        contents: list[Any] = []
        if image is not None:
            contents.append(types.Part.from_bytes(data=image, mime_type=mime_type or "image/jpeg"))
        contents.append(prompt.text)
        try:
            response = self._client.models.generate_content(model=self.model, contents=contents,
                                                            config=prompt.config())
        except errors.APIError as exc:
            raise classify_api_error(exc, self.model) from exc
        except httpx2.TimeoutException as exc:
            raise RetryableError(f"The request timed out ({type(exc).__name__}).", "timeout") from exc
        except _TRANSPORT_ERRORS as exc:
            kind = "timeout" if "Timeout" in type(exc).__name__ else "transport"
            raise RetryableError(f"The connection to Gemini failed ({type(exc).__name__}: {exc}).", kind) from exc
        usage = _usage(response)
        return self._answer(response, usage), usage

    def _answer(self, response: types.GenerateContentResponse, usage: Usage) -> Any:
        feedback = response.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            reason = getattr(feedback.block_reason, "value", str(feedback.block_reason))
            raise self._failure(f"Gemini blocked the request ({reason}).", "prompt_blocked", usage)
        if not response.candidates:
            raise self._failure("Gemini returned no answer.", "empty", usage)
        candidate = response.candidates[0]
        finish = getattr(candidate.finish_reason, "value", None) or "STOP"
        if finish in _BLOCKED_REASONS:
            raise self._failure(f"Gemini withheld the answer (finishReason {finish}).", "safety", usage)
        if finish == "MAX_TOKENS":
            raise self._failure("The answer was cut off at the output token limit (MAX_TOKENS).", "max_tokens",
                                usage)
        if finish not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
            raise self._failure(f"Gemini stopped early (finishReason {finish}).", finish.lower(), usage)
        text = "".join(part.text for part in (candidate.content.parts or []) if part.text and not part.thought) \
            if candidate.content else ""
        if not text.strip():
            raise self._failure("Gemini returned an empty answer.", "empty", usage)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._failure(f"The answer is not valid JSON ({exc.msg} at character {exc.pos}).",
                                "invalid_json", usage) from None
