"""What a Gemini error means for a run: wait (and how long), fail one image, fall back, or stop.

Shapes handled are the real API's, as public issues show them (see the README, "Using the real Gemini API"):
quota 429s with or without details (per minute, per day, `limit: 0`), 503 overload, 499/500/504, per-image 400s,
"too many states" schema refusals, bad keys (400 API_KEY_INVALID), 403, unsupported location, v1-only fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from google.genai import errors

from labeling.annotators.base import ResponseFailure, RetryableError
from labeling.annotators.gemini_client import KEY_HELP
from labeling.annotators.quota import quota_is_zero
from labeling.errors import AnnotatorError

_RETRY_IN = re.compile(r"retry in ([0-9.]+)\s*(ms|s)\b", re.IGNORECASE)
_IMAGE_MESSAGES = ("provided image is not valid", "unable to process input image")
_GENERIC_INVALID = "request contains an invalid argument"
_TOO_MANY_STATES = "too many states"


class KeyRejected(AnnotatorError):
    """The key, its project's access or this machine's location was refused."""


class ModelNotFound(AnnotatorError):
    """The model does not exist on this API version."""


class RequestRefused(AnnotatorError):
    """The request itself was refused (fields, thinking settings, an invalid argument)."""


class AmbiguousRefusal(RequestRefused):
    """A bare "invalid argument" before any request of this shape succeeded: the image, the schema or the
    request itself may be at fault; the annotator finds out which (a probe image, then plain strings)."""


class SchemaTooComplex(Exception):
    """The response schema is too big for the API's constrained decoding: send plain strings instead."""


@dataclass(frozen=True)
class RequestShape:
    """What the request that failed carried, which decides what an ambiguous 400 means."""

    model: str
    api_version: str
    has_image: bool
    has_enum: bool  # the categories are an enum in the schema
    proven: bool  # a request of this shape has succeeded before in this run


def _body(error: errors.APIError) -> dict[str, Any]:
    body = error.details if isinstance(error.details, dict) else {}
    inner = body.get("error")
    return inner if isinstance(inner, dict) else body


def _details(error: errors.APIError) -> list[dict[str, Any]]:
    details = _body(error).get("details")
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _of_type(error: errors.APIError, name: str) -> list[dict[str, Any]]:
    return [d for d in _details(error) if str(d.get("@type", "")).endswith("google.rpc." + name)]


def _duration_seconds(text: str) -> float | None:
    """A protobuf Duration in JSON ("53s", "0.5s", "45.837906927s") as seconds."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)s\s*", text or "")
    return float(match.group(1)) if match else None


def retry_delay(error: errors.APIError) -> float | None:
    """The delay the server asked for: RetryInfo.retryDelay, else "Please retry in Xs" in the message."""
    for detail in _details(error):
        if "retryDelay" in detail:
            seconds = _duration_seconds(str(detail["retryDelay"]))
            if seconds is not None:
                return seconds
    found = _RETRY_IN.search(error.message or "")
    if found:
        value = float(found.group(1))
        return value / 1000 if found.group(2).lower() == "ms" else value
    return None


def is_daily_quota(error: errors.APIError) -> bool:
    """A 429 that waiting a minute will not cure: a per-day quota, or a quota of zero for this key."""
    for failure in _of_type(error, "QuotaFailure"):
        for violation in failure.get("violations") or []:
            if isinstance(violation, dict) and "PerDay" in str(violation.get("quotaId", "")):
                return True
    return quota_is_zero(error.message or "")


def _texts(error: errors.APIError) -> str:
    """The message and every fieldViolations description, lower case (some refusals say why only there)."""
    parts = [error.message or ""]
    for bad in _of_type(error, "BadRequest"):
        parts += [str(v.get("description", "")) for v in bad.get("fieldViolations") or [] if isinstance(v, dict)]
    return "\n".join(parts).lower()


def _reason(error: errors.APIError) -> str:
    for info in _of_type(error, "ErrorInfo"):
        if info.get("reason"):
            return str(info["reason"])
    return ""


def classify(error: errors.APIError, shape: RequestShape) -> Exception:
    """RetryableError, ResponseFailure (this image), SchemaTooComplex (fall back) or AnnotatorError (stop)."""
    code, status = int(error.code or 0), (error.status or "")
    message = (error.message or str(error)).strip()
    said = f"{code} {status}: {message}".strip()
    if code == 429:
        if is_daily_quota(error):
            return RetryableError(said, "daily_quota")
        return RetryableError(said, "quota", retry_delay(error))
    if code == 503:
        return RetryableError(said, "overloaded", retry_delay(error))
    if code == 499:
        return RetryableError(said, "cancelled")
    if code in (408, 504):
        return RetryableError(said, "timeout")
    if code >= 500:
        return RetryableError(said, "server_error", retry_delay(error))
    return _client_error(error, code, status, message, shape)


def _client_error(error: errors.APIError, code: int, status: str, message: str, shape: RequestShape) -> Exception:
    texts = _texts(error)
    if _reason(error) == "API_KEY_INVALID" or code == 401:
        return KeyRejected(f"The Gemini API key was rejected ({code} {_reason(error) or status}): {KEY_HELP}.")
    if status == "FAILED_PRECONDITION" and "location" in texts:
        return KeyRejected(
            f"Gemini is not available where this machine is ({code} {status}: {message}): run "
            "from a supported region (https://ai.google.dev/gemini-api/docs/available-regions) "
            "or through Vertex AI."
        )
    if code == 403:
        return KeyRejected(
            f"Gemini refused the key ({code} {status}: {message}): check that the key's project "
            "has the Generative Language API enabled and access to this model."
        )
    if code == 404:
        return ModelNotFound(
            f"The model {shape.model!r} was not found on API version {shape.api_version} "
            f"({code}: {message}): set caption_model (or --model) to an available model, e.g. "
            "gemini-2.5-flash-lite."
        )
    if "unknown name" in texts and "cannot find field" in texts:
        return RequestRefused(
            f"Gemini {shape.api_version} does not accept fields this request needs ({message}): "
            "set gemini_api_version to v1beta (the default)."
        )
    if "thinking" in texts:
        return RequestRefused(
            f"Gemini refused the thinking settings for {shape.model!r} ({message}): check the "
            "model name; the README's model table says what each family is sent."
        )
    if _TOO_MANY_STATES in texts:
        return SchemaTooComplex(message)
    if shape.has_image and any(known in texts for known in _IMAGE_MESSAGES):
        return ResponseFailure(f"Gemini could not use this image ({message}).", "image_rejected")
    if _GENERIC_INVALID in texts:
        if shape.proven:  # requests like this one have worked: it is this image (or this description)
            return ResponseFailure(
                f"Gemini refused the request for this {'image' if shape.has_image else 'item'} ({message}).",
                "invalid_argument",
            )
        if not shape.proven:  # Gemini 3 lite models refuse a big enum with only this, and so a bad image
            return AmbiguousRefusal(
                f"Gemini rejected the request ({code} {status}: {message}): check the model "
                "name and settings (`labeling check` tests them with one small request)."
            )
    return RequestRefused(
        f"Gemini rejected the request ({code} {status}: {message}): check the model name and "
        "settings (`labeling check` tests them with one small request)."
    )
