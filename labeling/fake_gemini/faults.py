"""Which fault, if any, the next request gets: a queue, rules and seeded random rates, all thread-safe."""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from labeling.errors import ConfigError
from labeling.fake_gemini.wire import GenerateRequest

# Every fault kind, with what the client sees.
FAULT_KINDS: dict[str, str] = {
    "http_500": "500 INTERNAL",
    "http_503": "503 UNAVAILABLE, the model is experiencing high demand",
    "http_503_overloaded": '503 UNAVAILABLE, the older "The model is overloaded"',
    "http_504": "504 DEADLINE_EXCEEDED",
    "http_499": "499 CANCELLED",
    "http_429": "429 per-minute quota: QuotaFailure, Help, fractional RetryInfo (FakeGemini.retry_delay_s)",
    "daily_quota": "429 requests-per-day quota used up (quotaId ...PerDay...), with a short RetryInfo",
    "quota_limit_zero": '429 "limit: 0": the project has no quota for the model',
    "quota_help_only": "429 with only a Help detail",
    "quota_bare": '429 "Resource has been exhausted (e.g. check quota)." without details',
    "http_400": '400 INVALID_ARGUMENT, the generic "Request contains an invalid argument."',
    "image_invalid": '400 INVALID_ARGUMENT "Provided image is not valid."',
    "image_unprocessable": '400 INVALID_ARGUMENT "Unable to process input image..."',
    "schema_too_complex": '400 INVALID_ARGUMENT, "too many states" in the message',
    "schema_too_complex_violations": '400 INVALID_ARGUMENT, "too many states" only in fieldViolations',
    "key_invalid": "400 INVALID_ARGUMENT API key not valid, ErrorInfo API_KEY_INVALID",
    "location_unsupported": "400 FAILED_PRECONDITION, user location is not supported",
    "http_403": "403 PERMISSION_DENIED, key without access (ErrorInfo CONSUMER_SUSPENDED)",
    "http_404": "404 NOT_FOUND, model not found",
    "hang": "no answer for FakeGemini.hang_s seconds, then the connection closes",
    "connection_reset": "the connection is reset at once, without an answer",
    "malformed_json": "200 whose text is not valid JSON",
    "safety": "candidate finishReason SAFETY, no content",
    "prompt_blocked": "no candidates, promptFeedback.blockReason PROHIBITED_CONTENT",
    "empty_parts": "candidate finishReason STOP whose content has no parts",
    "empty_candidates": '"candidates": [] without promptFeedback',
    "max_tokens": "JSON cut in the middle, finishReason MAX_TOKENS",
    "max_tokens_thinking": "MAX_TOKENS while thinking: no parts, thoughtsTokenCount only",
    "continuation": "the answer in two hops: finishReason CONTINUATION with a continuationToken, then the rest "
    "when the same request is sent again with it (the SDK's automatic continuation)",
    "thoughts": "a thought part first, then the answer; thoughtsTokenCount set",
    "off_list_category": "valid JSON with one enum value outside its enum",
    "wrong_shape": "valid JSON missing the required fields",
}

# A rule: given the parsed request, does this fault apply to it?
FaultPredicate = Callable[[GenerateRequest], bool]


def check_kind(kind: str) -> str:
    """Return `kind` or raise `ConfigError` naming the known kinds."""
    if kind not in FAULT_KINDS:
        raise ConfigError(f"Unknown fault kind {kind!r}: use one of {', '.join(FAULT_KINDS)}.")
    return kind


@dataclass
class _Rule:
    predicate: FaultPredicate
    kind: str
    times: int | None  # None: for ever


class FaultPlan:
    """Decides the fault of each request: queued faults first, then rules, then random rates."""

    def __init__(
        self, rates: Mapping[str, float] | None = None, seed: int = 0, check: Callable[[str], str] | None = None
    ) -> None:
        self._check = check or check_kind  # which kinds this plan serves (requests' by default, or batch jobs')
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()
        self._rules: list[_Rule] = []
        self._rng = random.Random(seed)
        self._rates: dict[str, float] = {}
        self.set_rates(rates or {})

    def inject(self, kind: str, times: int = 1) -> None:
        """Give the next `times` requests the fault `kind`."""
        self._check(kind)
        with self._lock:
            self._queue.extend([kind] * times)

    def add_rule(self, predicate: FaultPredicate, kind: str, times: int | None = None) -> None:
        """Give matching requests the fault `kind` (`times` matches, or for ever when None)."""
        self._check(kind)
        with self._lock:
            self._rules.append(_Rule(predicate, kind, times))

    def set_rates(self, rates: Mapping[str, float]) -> None:
        """Replace the random rates {kind: probability}; their sum must not exceed 1."""
        for kind, rate in rates.items():
            self._check(kind)
            if not 0 <= rate <= 1:
                raise ConfigError(f"Fault rate for {kind} must be between 0 and 1, not {rate}.")
        if sum(rates.values()) > 1 + 1e-9:
            raise ConfigError("Fault rates add up to more than 1: lower some of them.")
        with self._lock:
            self._rates = dict(rates)

    @property
    def rates(self) -> dict[str, float]:
        """A copy of the current random rates."""
        with self._lock:
            return dict(self._rates)

    @property
    def pending(self) -> list[str]:
        """Queued faults not yet served, in order."""
        with self._lock:
            return list(self._queue)

    def clear(self) -> None:
        """Drop queued faults, rules and rates."""
        with self._lock:
            self._queue.clear()
            self._rules.clear()
            self._rates = {}

    def next_fault(self, request: GenerateRequest | None = None) -> str | None:
        """The fault for this request (None: a batch job, which no rule matches), consuming a queued one or a
        rule's count."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            for rule in self._rules:
                if request is not None and rule.times != 0 and rule.predicate(request):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule.kind
            if not self._rates:
                return None
            # One draw per request keeps a seeded run reproducible whatever the rates are.
            draw = self._rng.random()
            for kind, rate in self._rates.items():
                if draw < rate:
                    return kind
                draw -= rate
            return None
