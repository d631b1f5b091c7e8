"""Batch Mode's output: a result file's lines read into the same Outcomes a synchronous answer gives.

Each line is `{"key": "<image_id>", "response": {GenerateContentResponse as REST JSON}}`, or the key with an
`error` (or `status`) object for a request that failed alone. A response goes through
`GeminiAnnotator.annotation_from_response`, the reading every synchronous answer gets (blocked, truncated,
invalid JSON, off-list categories, ...), at the batch price. Lines already recorded for the run are skipped, so
reading a file again after a crash records each image exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labeling.annotators.base import ResponseFailure, RetryableError
from labeling.annotators.gemini import GeminiAnnotator
from labeling.categories import Category
from labeling.recorder import Outcome

# Per-line error codes that say "try again later", not "this image": such a line is sent again in a new shard.
# A line's error is a google.rpc.Status, whose code is the RPC one (CANCELLED 1, DEADLINE_EXCEEDED 4,
# RESOURCE_EXHAUSTED 8, INTERNAL 13, UNAVAILABLE 14; INVALID_ARGUMENT 3); HTTP numbers are read too.
_TRANSIENT_CODES = {1, 4, 8, 13, 14, 429, 499, 500, 502, 503, 504}
_INVALID_CODES = {3, 400}
_TRANSIENT_STATUSES = {"RESOURCE_EXHAUSTED", "UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "CANCELLED"}


@dataclass(frozen=True)
class ResultLine:
    """One line of a result file, read: the image, and its outcome or None (send it again)."""

    image_id: int
    outcome: Outcome | None


def stage_of(kind: str) -> str:
    """The failure stage a request kind records under (as the synchronous runner does)."""
    return "categorize" if kind == "categorize" else "model"


def line_error(error: Mapping[str, Any]) -> tuple[str, str, bool]:
    """(kind, message, transient) of a line's error object `{code, message, status}`."""
    code = error.get("code")
    status = str(error.get("status") or "")
    message = str(error.get("message") or "no message")
    transient = (isinstance(code, int) and code in _TRANSIENT_CODES) or status in _TRANSIENT_STATUSES
    lowered = message.lower()
    if "image" in lowered and ("not valid" in lowered or "unable to process" in lowered):
        kind = "image_rejected"
    elif transient:
        kind = "server_error"
    elif code in _INVALID_CODES or status == "INVALID_ARGUMENT":
        kind = "invalid_argument"
    else:
        kind = "batch_error"
    return kind, f"Gemini Batch Mode refused this request ({code or status}: {message})", transient


def read_results(
    path: Path,
    *,
    kind: str,
    expected: set[int],
    skip: set[int],
    annotator: GeminiAnnotator,
    categories: list[Category],
    max_categories: int,
    descriptions: Mapping[int, str],
    price: dict[str, float] | None,
    last_attempt: bool,
) -> Iterator[ResultLine]:
    """Outcomes of the lines of `path` whose key is in `expected` and not in `skip`, one line at a time.

    A transient error or an empty answer yields `outcome=None` (the line goes out again) unless this is the
    shard's last attempt, when it is recorded as the failure it is.
    """
    stage = stage_of(kind)
    seen: set[int] = set()
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
                image_id = int(line["key"])
            except (ValueError, KeyError, TypeError):
                continue  # not a line of ours: its image, if any, stays missing and is sent again
            if image_id not in expected or image_id in skip or image_id in seen:
                continue
            seen.add(image_id)
            yield ResultLine(
                image_id,
                _outcome(
                    line,
                    image_id,
                    kind=kind,
                    stage=stage,
                    annotator=annotator,
                    categories=categories,
                    max_categories=max_categories,
                    description=descriptions.get(image_id),
                    price=price,
                    last_attempt=last_attempt,
                ),
            )


def _outcome(
    line: Mapping[str, Any],
    image_id: int,
    *,
    kind: str,
    stage: str,
    annotator: GeminiAnnotator,
    categories: list[Category],
    max_categories: int,
    description: str | None,
    price: dict[str, float] | None,
    last_attempt: bool,
) -> Outcome | None:
    outcome = Outcome(image_id, requests=1)
    response = line.get("response")
    error = line.get("error") or line.get("status")
    if not isinstance(response, dict):
        if isinstance(error, dict) and error:
            failure_kind, message, transient = line_error(error)
            if transient and not last_attempt:
                return None
            outcome.failure = (stage, failure_kind, message)
            return outcome
        if not last_attempt:
            return None
        outcome.failure = (stage, "empty", "The batch result line has neither a response nor an error.")
        return outcome
    stored = json.loads(description) if kind == "categorize" and description else None
    if kind == "categorize" and stored is None:  # categories are stored with the description they came from
        outcome.failure = (stage, "no_description", "The image's description is gone: describe it again.")
        return outcome
    try:
        annotation = annotator.annotation_from_response(kind, response, categories, max_categories, stored, price=price)
    except ResponseFailure as exc:
        outcome.usage += exc.usage
        outcome.cost_usd += exc.cost_usd
        outcome.failure = (stage, exc.kind, str(exc))
        return outcome
    except RetryableError as exc:  # an empty answer: intermittent, so it goes out again
        if not last_attempt:
            return None
        outcome.usage += exc.usage
        outcome.cost_usd += exc.cost_usd
        outcome.failure = (stage, exc.kind, str(exc))
        return outcome
    outcome.usage += annotation.usage
    outcome.cost_usd += annotation.cost_usd
    outcome.annotations.append(annotation)
    return outcome
