"""Google's error answers, one builder per shape: quota 429s, key refusals, overloads, bad images, schemas.

Bodies follow the real ones quoted in public issues (sources in ../shared/REFERENCE.md, "Gemini through
google-genai"); a wording no public source shows is marked "approximated".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labeling.fake_gemini.wire import TYPE_PREFIX, WireError

KEY_INVALID = "API key not valid. Please pass a valid API key."
NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
TROUBLESHOOTING = "https://developers.generativeai.google/guide/troubleshooting"
IMAGE_UNPROCESSABLE = f"Unable to process input image. Please retry or report in {TROUBLESHOOTING}"
TOO_MANY_STATES = (
    "The specified schema produces a constraint that has too many states for serving.  Typical causes of this "
    "error are schemas with lots of text (for example, very long property or enum names), schemas with long "
    "array length limits (especially when nested), or schemas using complex value matchers (for example, "
    "integers or numbers with minimum/maximum bounds or strings with complex formats like date-time)"
)
_QUOTA_INTRO = (
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: "
    "https://ai.dev/rate-limit. \n"
)
_QUOTA_SHORT = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits."
)
_METRIC = "generativelanguage.googleapis.com/generate_content_"
# Delays of the daily and zero-limit 429s: short, as the real ones are (gemini-cli#8437, #22486).
_DAILY_DELAY_S = 17.390816473
_ZERO_LIMIT_DELAY_S = 25.465784708
# Limit named in the message of an injected per-minute 429 when no rpm quota is set.
NOMINAL_RPM = 4000
# Faults answered with a plain error body: (code, message).
_PLAIN_ERRORS = {
    "http_400": (400, "Request contains an invalid argument."),
    "http_499": (499, "The operation was cancelled."),
    "http_500": (500, f"An internal error has occurred. Please retry or report in {TROUBLESHOOTING}"),
    "http_503": (
        503,
        "This model is currently experiencing high demand. Spikes in demand are usually temporary. "
        "Please try again later.",
    ),
    "http_503_overloaded": (503, "The model is overloaded. Please try again later."),
    "http_504": (504, "Deadline expired before operation could complete."),
    "image_invalid": (400, "Provided image is not valid."),
    "image_unprocessable": (400, IMAGE_UNPROCESSABLE),
    "schema_too_complex": (400, TOO_MANY_STATES),
    "quota_bare": (429, "Resource has been exhausted (e.g. check quota)."),
}


def duration(seconds: float) -> str:
    """A protobuf Duration with nine decimals ("45.837906927s"), as the real per-minute RetryInfo."""
    return f"{max(seconds, 0.0):.9f}s"


def retry_info(retry_delay: str) -> dict[str, Any]:
    return {"@type": TYPE_PREFIX + "RetryInfo", "retryDelay": retry_delay}


def quota_help() -> dict[str, Any]:
    return {
        "@type": TYPE_PREFIX + "Help",
        "links": [
            {
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
            }
        ],
    }


def quota_failure(model: str, metric: str, quota_id: str, value: int) -> dict[str, Any]:
    """One QuotaFailure violation; a limit of 0 has no quotaValue (proto JSON leaves zeros out)."""
    violation: dict[str, Any] = {
        "quotaMetric": _METRIC + metric,
        "quotaId": quota_id,
        "quotaDimensions": {"location": "global", "model": model},
    }
    if value:
        violation["quotaValue"] = str(value)
    return {"@type": TYPE_PREFIX + "QuotaFailure", "violations": [violation]}


def _quota_message(model: str, metric: str, limit: int, delay_s: float) -> str:
    return (
        f"{_QUOTA_INTRO}* Quota exceeded for metric: {_METRIC}{metric}, limit: {limit}, model: {model}\n"
        f"Please retry in {delay_s:.9f}s."
    )


def per_minute_quota(model: str, rpm: int, delay_s: float) -> WireError:
    """The requests-per-minute 429: QuotaFailure, Help and a fractional RetryInfo; never a Retry-After header."""
    metric, quota_id = "paid_tier_requests", "GenerateRequestsPerMinutePerProjectPerModel"
    details = [quota_failure(model, metric, quota_id, rpm), quota_help(), retry_info(duration(delay_s))]
    return WireError(429, _quota_message(model, metric, rpm, delay_s), details)


def daily_quota(model: str, limit: int = 20) -> WireError:
    """Requests per day used up, yet a RetryInfo of seconds (gemini-cli#8437)."""
    metric, quota_id = "free_tier_requests", "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    details = [quota_failure(model, metric, quota_id, limit), quota_help(), retry_info("17s")]
    return WireError(429, _quota_message(model, metric, limit, _DAILY_DELAY_S), details)


def zero_limit_quota(model: str) -> WireError:
    """A project with no quota at all for the model: "limit: 0" (gemini-cli#22486)."""
    metric, quota_id = "free_tier_input_token_count", "GenerateContentInputTokensPerModelPerMinute-FreeTier"
    details = [quota_failure(model, metric, quota_id, 0), quota_help(), retry_info("25s")]
    return WireError(429, _quota_message(model, metric, 0, _ZERO_LIMIT_DELAY_S), details)


def key_invalid() -> WireError:
    """400 API_KEY_INVALID with ErrorInfo and LocalizedMessage, Google's answer to a bad key (continue#8516)."""
    return WireError(
        400,
        KEY_INVALID,
        [
            {
                "@type": TYPE_PREFIX + "ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {"@type": TYPE_PREFIX + "LocalizedMessage", "locale": "en-US", "message": KEY_INVALID},
        ],
    )


def key_without_access() -> WireError:
    """403 for a key that exists but may not call the API (wording and metadata approximated)."""
    return WireError(
        403,
        "Permission denied: Consumer 'api_key:fake-key' has been suspended.",
        [
            {
                "@type": TYPE_PREFIX + "ErrorInfo",
                "reason": "CONSUMER_SUSPENDED",
                "domain": "googleapis.com",
                "metadata": {"consumer": "projects/000000000000", "service": "generativelanguage.googleapis.com"},
            },
            {
                "@type": TYPE_PREFIX + "LocalizedMessage",
                "locale": "en-US",
                "message": "Permission denied: Consumer 'api_key:fake-key' has been suspended.",
            },
        ],
    )


def key_refusal(status: int) -> WireError:
    """What a key outside `valid_keys` gets: the real 400 by default, or the 403 shape."""
    if status == 400:
        return key_invalid()
    if status == 403:
        return key_without_access()
    return WireError(status, KEY_INVALID)


def model_not_found(model: str, api_version: str) -> WireError:
    """404 NOT_FOUND worded as Google words it."""
    return WireError(
        404,
        f"models/{model} is not found for API version {api_version}, or is not supported "
        "for generateContent. Call ListModels to see the list of available models and their "
        "supported methods.",
    )


def _schema_violations() -> WireError:
    return WireError(
        400,
        "Request contains an invalid argument.",
        [
            {
                "@type": TYPE_PREFIX + "BadRequest",
                "fieldViolations": [{"field": "generation_config.response_schema", "description": TOO_MANY_STATES}],
            }
        ],
    )


# Fault kind -> the error it answers, given (model, api_version, rpm, retry_delay_s).
ErrorShape = Callable[[str, str, int, float], WireError]


def _plain(code: int, text: str) -> ErrorShape:
    return lambda m, v, r, d: WireError(code, text)


ERROR_SHAPES: dict[str, ErrorShape] = {
    **{kind: _plain(code, text) for kind, (code, text) in _PLAIN_ERRORS.items()},
    "http_429": lambda m, v, rpm, delay: per_minute_quota(m, rpm or NOMINAL_RPM, delay),
    "daily_quota": lambda m, v, r, d: daily_quota(m),
    "quota_limit_zero": lambda m, v, r, d: zero_limit_quota(m),
    "quota_help_only": lambda m, v, r, d: WireError(429, _QUOTA_SHORT, [quota_help()]),
    "http_403": lambda m, v, r, d: key_without_access(),
    "key_invalid": lambda m, v, r, d: key_invalid(),
    "http_404": lambda m, v, r, d: model_not_found(m, v),
    "schema_too_complex_violations": lambda m, v, r, d: _schema_violations(),
    "location_unsupported": lambda m, v, r, d: WireError(
        400, "User location is not supported for the API use.", status="FAILED_PRECONDITION"
    ),
}
