"""Gemini Batch Mode: `models/{m}:batchGenerateContent`, get, list, cancel and delete, on the fake clock.

A batch is a long-running operation, as the SDK's `_BatchJob_from_mldev` reads it: `{"name": "batches/..",
"metadata": {"@type": ...GenerateContentBatch, "model", "displayName", "inputConfig"?, "output"?,
"createTime", "endTime"?, "updateTime", "batchStats", "state", "name"}, "done"?, "response"?}`. Key order,
the int64-as-string `batchStats` with zero counts left out, `output.responsesFile` = `files/batch-<id>` and the
doubly nested `inlinedResponses.inlinedResponses[]` with `metadata` echoed all follow bodies the live API
returned (python-genai#1323; public fixtures of real batches from 2025-12 and 2026-08). List answers
`{"operations": [...], "nextPageToken"}`. Each request line is answered by the fake's generateContent logic.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from labeling.fake_gemini.clock import FakeClock, rfc3339
from labeling.fake_gemini.files import FILE_TTL_S, FileStore, new_id, no_file
from labeling.fake_gemini.replies import Reply, error_reply
from labeling.fake_gemini.wire import TYPE_PREFIX, WireError, pick

BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
MAX_INLINE_BYTES = 20 * 1024 * 1024  # "inline requests ... under 20MB" (Batch Mode docs)
MAX_CONCURRENT_BATCHES = 100
BATCH_TTL_S = 48 * 3600  # a job neither done nor cancelled by then is EXPIRED
_BATCH_ID_LENGTH = 36  # real names look like batches/4m855v7q30kc7gtzcigdg9m72o87s08w33vp
_DEFAULT_PAGE_SIZE = 10
_ENDED = frozenset({"BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED"})
# google.rpc.Code numbers: a line's `error` is a google.rpc.Status, whose code is not the HTTP one.
_RPC_CODES = {
    "CANCELLED": 1,
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "FAILED_PRECONDITION": 9,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "UNAUTHENTICATED": 16,
}
# The 429 a batch create got when a project was over its batch limits (langchain4j#3942, 2026-01).
_OVER_QUOTA = (
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: "
    "https://ai.dev/rate-limit. "
)

# Answers one request line: (model, the REST GenerateContentRequest dict) -> the generateContent reply.
LineAnswerer = Callable[[str, dict[str, Any]], Reply]


@dataclass
class LineResult:
    """One request's outcome: a GenerateContentResponse or a google.rpc.Status."""

    key: str | None  # file input: the line's "key"
    metadata: dict[str, Any] | None  # inline input: the request's "metadata"
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


@dataclass
class Batch:
    """One batch job; its state follows from the clock, its answers are decided when it is created."""

    batch_id: str
    model: str
    display_name: str | None
    input_file: str | None
    results: list[LineResult]
    created: float
    pending_s: float
    running_s: float
    fault: str | None  # batch_failed, batch_expired, batch_stuck_pending
    cancelled_at: float | None = None
    output_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"batches/{self.batch_id}"

    def state_at(self, now: float) -> tuple[str, float]:
        """The state at `now` and when it began."""
        started, finished = self.created + self.pending_s, self.created + self.pending_s + self.running_s
        if self.cancelled_at is not None:
            return "BATCH_STATE_CANCELLED", self.cancelled_at
        if self.fault == "batch_stuck_pending":
            return "BATCH_STATE_PENDING", self.created
        if self.fault == "batch_expired":
            expired = self.created + BATCH_TTL_S
            if now >= expired:
                return "BATCH_STATE_EXPIRED", expired
            return ("BATCH_STATE_RUNNING", started) if now >= started else ("BATCH_STATE_PENDING", self.created)
        if now >= finished:
            return ("BATCH_STATE_FAILED" if self.fault == "batch_failed" else "BATCH_STATE_SUCCEEDED"), finished
        if now >= started:
            return "BATCH_STATE_RUNNING", started
        return "BATCH_STATE_PENDING", self.created


class BatchStore:
    """Every batch of the fake project; thread-safe. Durations and limits are attributes a test may change."""

    def __init__(self, clock: FakeClock, files: FileStore) -> None:
        self.clock = clock
        self.files = files
        self.pending_s = 1.0
        self.running_s = 2.0
        self.max_concurrent = MAX_CONCURRENT_BATCHES
        self.max_inline_bytes = MAX_INLINE_BYTES
        self._batches: dict[str, Batch] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every batch."""
        with self._lock:
            self._batches.clear()

    def running_count(self) -> int:
        """Jobs not yet in an ended state (what the concurrency limit counts)."""
        now = self.clock.now()
        with self._lock:
            return sum(1 for b in self._batches.values() if b.state_at(now)[0] not in _ENDED)

    # -- create --------------------------------------------------------------------------------------

    def create(self, model: str, raw: bytes, answer: LineAnswerer, job_fault: str | None, base_url: str) -> Reply:
        """`POST /{v}/models/{m}:batchGenerateContent`: validate, answer every line, answer the operation."""
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return error_reply(WireError(400, f"Invalid JSON payload received. {exc}"))
        batch = pick(body, "batch") if isinstance(body, dict) else None
        if not isinstance(batch, dict):
            return error_reply(WireError(400, "* BatchGenerateContentRequest.batch: batch is not specified\n"))
        config = pick(batch, "inputConfig")
        file_name, requests = pick(config, "fileName"), pick(pick(config, "requests"), "requests")
        if (file_name is None) == (requests is None):
            return error_reply(WireError(400, "* GenerateContentBatch.input_config: exactly one source must be set\n"))
        if self.running_count() >= self.max_concurrent:
            help_detail = {
                "@type": TYPE_PREFIX + "Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            }
            return error_reply(WireError(429, _OVER_QUOTA, [help_detail]))
        if requests is not None:
            if len(raw) > self.max_inline_bytes:
                limit = self.max_inline_bytes
                return error_reply(WireError(400, f"Request payload size exceeds the limit: {limit} bytes."))
            if not isinstance(requests, list) or not requests:
                return error_reply(WireError(400, "* GenerateContentBatch.input_config.requests: requests is empty\n"))
            results = [self._inline_line(model, item, answer) for item in requests]
        else:
            file_id = str(file_name).removeprefix("files/")
            stored = self.files.live(file_id)
            if stored is None:
                return error_reply(no_file(file_id))
            results = [self._file_line(model, line, answer) for line in stored.data.splitlines() if line.strip()]
            if not results:
                return error_reply(WireError(400, f"Input file {file_name} has no requests."))
        made = Batch(
            new_id(_BATCH_ID_LENGTH),
            f"models/{model}",
            pick(batch, "displayName"),
            f"files/{str(file_name).removeprefix('files/')}" if file_name is not None else None,
            results,
            self.clock.now(),
            self.pending_s,
            self.running_s,
            job_fault,
        )
        with self._lock:
            self._batches[made.batch_id] = made
        return Reply(200, self._operation(made, base_url))

    def _inline_line(self, model: str, item: Any, answer: LineAnswerer) -> LineResult:
        metadata = pick(item, "metadata")
        metadata = metadata if isinstance(metadata, dict) else None
        request = pick(item, "request")
        if not isinstance(request, dict):
            return LineResult(None, metadata, error=_status(3, "Request is not specified."))
        return self._answered(LineResult(None, metadata), model, request, answer)

    def _file_line(self, model: str, line: bytes, answer: LineAnswerer) -> LineResult:
        """One JSONL line `{"key", "request"}`; a line that cannot be read becomes that line's error."""
        try:
            parsed = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return LineResult(None, None, error=_status(3, f"Invalid JSON in request line: {exc}"))
        if not isinstance(parsed, dict):
            return LineResult(None, None, error=_status(3, "Invalid JSON in request line: expected an object."))
        key = parsed.get("key")
        result = LineResult(str(key) if key is not None else None, None)
        request = parsed.get("request")
        if not isinstance(request, dict):
            result.error = _status(3, "Request is not specified.")
            return result
        return self._answered(result, model, request, answer)

    @staticmethod
    def _answered(result: LineResult, model: str, request: dict[str, Any], answer: LineAnswerer) -> LineResult:
        # An SDK-style top-level "config" is not a GenerateContentRequest field: the service drops it
        # silently, generationConfig and all (python-genai#1608).
        request = {k: v for k, v in request.items() if k != "config"}
        reply = answer(model, request)
        if reply.status == 200 and reply.body is not None:
            result.response = reply.body
        else:
            error = (reply.body or {}).get("error") or {}
            code = _RPC_CODES.get(str(error.get("status")), 13)
            result.error = _status(code, str(error.get("message") or "Internal error encountered."))
            if error.get("details"):
                result.error["details"] = error["details"]
        return result

    # -- read, cancel, delete --------------------------------------------------------------------------

    def get(self, batch_id: str, base_url: str) -> Reply:
        """`GET /{v}/batches/{id}`."""
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None:
            return error_reply(_not_found())
        return Reply(200, self._operation(batch, base_url))

    def list(self, query: str, base_url: str) -> Reply:
        """`GET /{v}/batches?pageSize&pageToken`: newest first."""
        params = parse_qs(query)
        try:
            size = max(int((params.get("pageSize") or [str(_DEFAULT_PAGE_SIZE)])[0]), 1)
            start = int(base64.urlsafe_b64decode((params.get("pageToken") or [""])[0] or "MA==").decode() or "0")
        except ValueError:
            return error_reply(WireError(400, "Invalid page token or page size."))
        with self._lock:
            ordered = sorted(self._batches.values(), key=lambda b: b.created, reverse=True)
        page = ordered[start : start + size]
        body: dict[str, Any] = {"operations": [self._operation(b, base_url) for b in page]} if page else {}
        if start + size < len(ordered):
            body["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return Reply(200, body)

    def cancel(self, batch_id: str) -> Reply:
        """`POST /{v}/batches/{id}:cancel`: answers `{}`; an ended job cannot be cancelled."""
        now = self.clock.now()
        with self._lock:
            batch = self._batches.get(batch_id)
            if batch is None:
                return error_reply(_not_found())
            if batch.state_at(now)[0] in _ENDED:
                # Wording approximated: no public source quotes this answer.
                ended = WireError(400, f"Batch {batch.name} has already ended.", status="FAILED_PRECONDITION")
                return error_reply(ended)
            batch.cancelled_at = now
        return Reply(200, {})

    def delete(self, batch_id: str) -> Reply:
        """`DELETE /{v}/batches/{id}`: answers `{}` (google.protobuf.Empty)."""
        with self._lock:
            found = self._batches.pop(batch_id, None)
        return Reply(200, {}) if found is not None else error_reply(_not_found())

    # -- the operation body ----------------------------------------------------------------------------

    def _operation(self, batch: Batch, base_url: str) -> dict[str, Any]:
        now = self.clock.now()
        state, since = batch.state_at(now)
        metadata: dict[str, Any] = {"@type": BATCH_TYPE, "model": batch.model}
        if batch.display_name:
            metadata["displayName"] = batch.display_name
        if batch.input_file:
            metadata["inputConfig"] = {"fileName": batch.input_file}
        output = self._output(batch) if state == "BATCH_STATE_SUCCEEDED" else None
        if output is not None:
            metadata["output"] = output
        metadata["createTime"] = rfc3339(batch.created)
        if state in _ENDED:
            metadata["endTime"] = rfc3339(since)
        metadata["updateTime"] = rfc3339(since)
        metadata["batchStats"] = _stats(batch.results, done=output is not None)
        metadata["state"] = state
        metadata["name"] = batch.name
        operation: dict[str, Any] = {"name": batch.name, "metadata": metadata}
        if state in _ENDED:
            operation["done"] = True
            if output is not None:
                operation["response"] = {"@type": OUTPUT_TYPE, **output}
            elif state == "BATCH_STATE_FAILED":
                # Shape of a failed google.longrunning.Operation; no public body of a FAILED batch was found.
                operation["error"] = _status(13, "Batch job failed: an internal error has occurred.")
        return operation

    def _output(self, batch: Batch) -> dict[str, Any]:
        """A file input's results file (written once, when first seen SUCCEEDED) or the inline responses."""
        if batch.input_file is None:
            responses = []
            for result in batch.results:
                item: dict[str, Any] = {"response": result.response} if result.response else {"error": result.error}
                if result.metadata is not None:
                    item["metadata"] = result.metadata
                responses.append(item)
            return {"inlinedResponses": {"inlinedResponses": responses}}
        with self._lock:
            if batch.output_file is None:
                lines = []
                for result in batch.results:
                    line: dict[str, Any] = {"response": result.response} if result.response else {"error": result.error}
                    if result.key is not None:
                        line["key"] = result.key
                    lines.append(json.dumps(line, ensure_ascii=False))
                file_id = f"batch-{batch.batch_id}"
                self.files.add_generated(file_id, ("\n".join(lines) + "\n").encode("utf-8"), "application/jsonl")
                batch.output_file = f"files/{file_id}"
        return {"responsesFile": batch.output_file}


def _status(code: int, message: str) -> dict[str, Any]:
    """A google.rpc.Status as proto JSON."""
    return {"code": code, "message": message}


def _not_found() -> WireError:
    return WireError(404, "Requested entity was not found.")


def _stats(results: list[LineResult], done: bool) -> dict[str, str]:
    """batchStats as the API sends it: int64 counts as strings, zero counts left out."""
    failed = sum(1 for r in results if r.response is None) if done else 0
    counts = {
        "requestCount": len(results),
        "successfulRequestCount": len(results) - failed if done else 0,
        "failedRequestCount": failed,
        "pendingRequestCount": 0 if done else len(results),
    }
    return {name: str(count) for name, count in counts.items() if count}


__all__ = ["FILE_TTL_S", "BatchStore"]
