"""`FakeGemini`: a local HTTP server speaking the Gemini generateContent protocol to the real SDK."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from labeling.errors import ConfigError
from labeling.fake_gemini.batch_faults import BATCH_FAULT_KINDS, JOB_KINDS, check_batch_kind
from labeling.fake_gemini.clock import FakeClock
from labeling.fake_gemini.faults import FaultPlan, FaultPredicate
from labeling.fake_gemini.handler import Server
from labeling.fake_gemini.quota import SlidingWindowQuota
from labeling.fake_gemini.replies import AnswerSettings, Reply, answer_reply, error_reply, first_image_facts
from labeling.fake_gemini.routes import Route, match
from labeling.fake_gemini.service import ApiCall, ResourceService
from labeling.fake_gemini.shapes import NO_KEY, key_refusal, model_not_found, per_minute_quota
from labeling.fake_gemini.surface import bad_enum_value, schema_refusal, thinking_refusal, unknown_fields
from labeling.fake_gemini.vision import ImageFacts
from labeling.fake_gemini.wire import GenerateRequest, WireError, error_body, parse_generate_request

logger = logging.getLogger(__name__)

_ROUTE = re.compile(r"^/(v1|v1beta|v1alpha)/models/([^/:]+):generateContent$")


@dataclass(frozen=True)
class RequestRecord:
    """One request as the server saw and answered it. `status` is 0 when it was never answered (hang)."""

    index: int
    received_at: float  # time.time()
    api_version: str | None
    model: str | None
    has_image: bool
    image_count: int
    image_width: int | None
    image_height: int | None
    image_mime: str | None
    image_bytes: int | None  # length of the first image's decoded bytes
    prompt_chars: int
    status: int
    fault: str | None
    service_tier: str | None  # serviceTier as sent
    schema_sent: bool  # responseSchema or responseJsonSchema
    thinking: dict[str, Any] | None  # generationConfig.thinkingConfig as sent
    media_resolution: str | None
    generation_config_keys: tuple[str, ...]  # as sent, either spelling


@dataclass
class _Seen:
    """What was parsed from a request so far (for the record), whatever its answer."""

    path: str = ""
    api_version: str | None = None
    model: str | None = None
    request: GenerateRequest | None = None
    facts: ImageFacts | None = None


class FakeGemini:
    """A fake Gemini API on 127.0.0.1 that the real google-genai client talks to over HTTP.

    Every public attribute below can be changed while the server runs:
      latency_s      seconds added before every answer (released at once by `stop()`)
      rpm_quota      requests per sliding 60 s window across all requests; 0 = unlimited; over it: 429
      valid_keys     accepted API keys; None = any non-empty key
      known_models   accepted model names; None = any name starting with "gemini-"
      hang_s         how long the "hang" fault holds a connection before closing it unanswered
      retry_delay_s  RetryInfo delay of the injected "http_429" fault (sent with nine decimals)
      thoughts_tokens  thoughtsTokenCount on every answer; None = by model family and thinkingConfig
      cached_tokens  when > 0, cachedContentTokenCount = min(cached_tokens, promptTokenCount)
      max_schema_states  when > 0, a responseSchema "bigger" than this gets schema_too_complex
      bad_key_status 400 (INVALID_ARGUMENT API_KEY_INVALID, what Google sends; the default) or 403
      log_path       when set, one JSON line per request is appended to this file

    The Files API and Batch Mode (see files.py, batches.py) keep their state on `clock` (a `FakeClock`:
    `fake.advance(seconds)` moves it, so files expire after 48 h and batches go PENDING -> RUNNING ->
    SUCCEEDED without sleeping). Their settings, also changeable while running:
      batch_pending_s / batch_running_s  how long a batch stays PENDING, then RUNNING (fake-clock seconds)
      max_concurrent_batches  unended batches a project may have (100); over it a create gets the real 429
      max_inline_batch_bytes  largest inline batch create body (20 MB)
      max_file_bytes / max_storage_bytes  per-file (2 GB) and per-project (20 GB) Files API limits
      upload_interrupt_bytes  bytes an `upload_interrupted` fault lets through before the connection drops
    Every files/batches call is in `api_calls` (and the `log_path` file), whatever its answer.

    Each POST is checked in this order: route (404), API key (400/403), model (404), body (400),
    fields unknown to the API version, enum values, thinking rules, schema size (400), rpm quota
    (429); only a request that passes all of them is admitted, counts against the quota and takes a
    fault (queued, then rules, then random rates). `latency_s` delays every answer.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        latency_s: float = 0.0,
        rpm_quota: int = 0,
        valid_keys: Iterable[str] | None = None,
        known_models: Iterable[str] | None = None,
        fault_rates: Mapping[str, float] | None = None,
        seed: int = 0,
        hang_s: float = 30.0,
        retry_delay_s: float = 1.0,
        thoughts_tokens: int | None = None,
        cached_tokens: int = 0,
        max_schema_states: int = 0,
        bad_key_status: int = 400,
        log_path: str | Path | None = None,
        clock: FakeClock | None = None,
        batch_pending_s: float = 1.0,
        batch_running_s: float = 2.0,
    ) -> None:
        self.host = host
        self.port = port
        self.latency_s = latency_s
        self.rpm_quota = rpm_quota
        self.valid_keys: set[str] | None = set(valid_keys) if valid_keys is not None else None
        self.known_models: set[str] | None = set(known_models) if known_models is not None else None
        self.hang_s = hang_s
        self.retry_delay_s = retry_delay_s
        self.thoughts_tokens = thoughts_tokens
        self.cached_tokens = cached_tokens
        self.max_schema_states = max_schema_states
        self.bad_key_status = bad_key_status
        self.log_path = Path(log_path) if log_path is not None else None
        self.clock = clock or FakeClock()
        self._resources = ResourceService(self.clock, seed)
        self.batch_pending_s, self.batch_running_s = batch_pending_s, batch_running_s
        self.upload_interrupt_bytes = 1024
        generate_rates, job_rates = _split_rates(fault_rates or {})
        self._faults = FaultPlan(generate_rates, seed)
        self._resources.job_faults.set_rates(job_rates)
        self._quota = SlidingWindowQuota()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when no request is being decided
        self._in_flight = 0
        self._records: list[RequestRecord] = []
        self._arrivals = 0
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> str:
        """Bind (port 0 = a free port), serve from a background thread and return the base URL."""
        if self._server is not None:
            return self.base_url
        self._stopping = threading.Event()
        server = Server((self.host, self.port), self)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-gemini", daemon=True
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving, release hung and waiting requests, close every open connection."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._idle:
            # Released hangs and latency waits finish at once; wait so that their records are complete.
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=5)
            connections = list(self._connections)
        for conn in connections:
            # Wakes handler threads blocked reading an idle keep-alive connection.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeGemini:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """`http://host:port` to give `HttpOptions(base_url=...)` or GOOGLE_GEMINI_BASE_URL."""
        return f"http://{self.host}:{self.port}"

    def env(self, api_key: str = "fake-key") -> dict[str, str]:
        """Environment variables that point the google-genai SDK at this server."""
        return {"GOOGLE_GEMINI_BASE_URL": self.base_url, "GEMINI_API_KEY": api_key}

    # -- faults ------------------------------------------------------------------------------------

    def inject(self, kind: str, times: int = 1) -> None:
        """Give the next `times` admitted requests the fault `kind` (see `FAULT_KINDS`), or the next created
        batches / upload chunk a batch fault (see `BATCH_FAULT_KINDS`)."""
        if kind in JOB_KINDS:
            self._resources.job_faults.inject(kind, times)
        elif kind == "upload_interrupted":
            self.interrupt_upload(self.upload_interrupt_bytes)
        else:
            self._faults.inject(kind, times)

    def interrupt_upload(self, after_bytes: int) -> None:
        """Drop the connection of the next upload chunk once the upload holds `after_bytes` bytes."""
        self._resources.files.interrupt_after_bytes = after_bytes

    def fault_for(self, predicate: FaultPredicate, kind: str, times: int | None = None) -> None:
        """Give requests for which `predicate(GenerateRequest)` is true the fault `kind`."""
        self._faults.add_rule(predicate, kind, times)

    @property
    def fault_rates(self) -> dict[str, float]:
        """Random faults {kind: probability}, drawn from an RNG seeded by `seed`; assignable."""
        return self._faults.rates

    @fault_rates.setter
    def fault_rates(self, rates: Mapping[str, float]) -> None:
        generate_rates, job_rates = _split_rates(rates)
        self._faults.set_rates(generate_rates)
        self._resources.job_faults.set_rates(job_rates)

    @property
    def batch_fault_rates(self) -> dict[str, float]:
        """Random batch job faults {kind: probability}, set through `fault_rates`."""
        return self._resources.job_faults.rates

    @property
    def pending_faults(self) -> list[str]:
        """Injected faults not yet served (generateContent ones, then batch job ones)."""
        return self._faults.pending + self._resources.job_faults.pending

    # -- Files API and Batch Mode settings ---------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the fake clock forward: files expire, batches change state, no one sleeps."""
        self.clock.advance(seconds)

    @property
    def batch_pending_s(self) -> float:
        return self._resources.batches.pending_s

    @batch_pending_s.setter
    def batch_pending_s(self, seconds: float) -> None:
        self._resources.batches.pending_s = seconds

    @property
    def batch_running_s(self) -> float:
        return self._resources.batches.running_s

    @batch_running_s.setter
    def batch_running_s(self, seconds: float) -> None:
        self._resources.batches.running_s = seconds

    @property
    def max_concurrent_batches(self) -> int:
        return self._resources.batches.max_concurrent

    @max_concurrent_batches.setter
    def max_concurrent_batches(self, count: int) -> None:
        self._resources.batches.max_concurrent = count

    @property
    def max_inline_batch_bytes(self) -> int:
        return self._resources.batches.max_inline_bytes

    @max_inline_batch_bytes.setter
    def max_inline_batch_bytes(self, size: int) -> None:
        self._resources.batches.max_inline_bytes = size

    @property
    def max_file_bytes(self) -> int:
        return self._resources.files.max_file_bytes

    @max_file_bytes.setter
    def max_file_bytes(self, size: int) -> None:
        self._resources.files.max_file_bytes = size

    @property
    def max_storage_bytes(self) -> int:
        return self._resources.files.max_storage_bytes

    @max_storage_bytes.setter
    def max_storage_bytes(self, size: int) -> None:
        self._resources.files.max_storage_bytes = size

    @property
    def api_calls(self) -> list[ApiCall]:
        """Every Files API / Batch Mode call so far, in answer order."""
        return self._resources.calls

    def api_call_counts(self) -> dict[str, int]:
        """How many calls each method got ({"batches.create": 1, "files.upload": 3, ...})."""
        return dict(Counter(call.method for call in self.api_calls))

    def stored_bytes(self) -> int:
        """Bytes the fake project's live files hold."""
        return self._resources.files.used_bytes()

    # -- observations ------------------------------------------------------------------------------

    @property
    def request_count(self) -> int:
        """Requests received so far (answered or not)."""
        with self._lock:
            return self._arrivals

    @property
    def records(self) -> list[RequestRecord]:
        """A copy of the per-request log, in the order answers were decided."""
        with self._lock:
            return list(self._records)

    def status_counts(self) -> dict[int, int]:
        """How many requests got each HTTP status (0 = never answered)."""
        return dict(Counter(r.status for r in self.records))

    def reset(self) -> None:
        """Forget requests, the quota window and every fault (settings stay)."""
        with self._lock:
            self._records.clear()
            self._arrivals = 0
        self._quota.reset()
        self._faults.clear()
        self._resources.reset()

    # -- request handling (called from handler threads) --------------------------------------------

    def track(self, conn: socket.socket, add: bool) -> None:
        """Remember open connections so that `stop()` can close them (called by the handler)."""
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def handle(self, path: str, headers: Mapping[str, str], body: bytes, method: str = "POST") -> Reply:
        """Decide, delay and record the reply to one request (called from a handler thread)."""
        url = urlsplit(path)
        route = match(method, url.path)
        if route is not None:
            return self._handle_api(route, path, headers, body, method)
        if method != "POST":
            return Reply(404, error_body(404, f"Requested entity was not found: {url.path}"))
        with self._lock:
            self._arrivals += 1
            self._in_flight += 1
            index = self._arrivals
        received_at = time.time()
        seen = _Seen()
        try:
            reply = self._decide(path, headers, body, seen)
        except Exception:  # a bug (or a raising fault predicate) must still get an answer
            logger.exception("fake Gemini failed on %s", path)
            reply = Reply(500, error_body(500, "An internal error has occurred."))
        try:
            if reply.status and self.latency_s > 0 and self._stopping.wait(self.latency_s):
                reply = Reply(0, None, fault=reply.fault)  # stopped while waiting: drop the connection
            self._record(index, received_at, seen, reply)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()
        return reply

    def _handle_api(self, route: Route, path: str, headers: Mapping[str, str], body: bytes, method: str) -> Reply:
        """A Files API or Batch Mode call: answered, delayed by `latency_s` and recorded in `api_calls`."""
        url = urlsplit(path)
        received_at = time.time()
        with self._lock:
            self._in_flight += 1
        key = headers.get("x-goog-api-key") or (parse_qs(url.query).get("key") or [""])[0]

        def refusal(model: str | None) -> WireError | None:
            if model is None:
                return self._refusal(key, "gemini-", route.api_version) if key else WireError(403, NO_KEY)
            return self._refusal(key, model, route.api_version)

        try:
            reply = self._resources.answer(route, url, headers, body, self.base_url, self._answer_line, refusal)
        except Exception:  # a bug must still get an answer
            logger.exception("fake Gemini failed on %s", url.path)
            reply = Reply(500, error_body(500, "An internal error has occurred."))
        try:
            if reply.status and self.latency_s > 0 and self._stopping.wait(self.latency_s):
                reply = Reply(0, None, fault=reply.fault)
            call = ApiCall(received_at, method, url.path, route.method, reply.status, reply.fault)
            self._resources.record(call, self.log_path)
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()
        return reply

    def _answer_line(self, model: str, request: dict[str, Any]) -> Reply:
        """One batch request line, answered as generateContent would answer it (v1beta, no quota)."""
        try:
            parsed = parse_generate_request(json.dumps(request).encode("utf-8"))
            facts = first_image_facts(parsed)
        except WireError as exc:
            return error_reply(exc)
        strict = self._request_refusal(parsed, model, "v1beta")
        if strict is not None:
            return strict
        fault = self._faults.next_fault(parsed)
        if fault in ("hang", "connection_reset"):  # transport faults have no place in a batch: an internal error
            return Reply(500, error_body(500, "An internal error has occurred."), fault=fault)
        settings = AnswerSettings(self.rpm_quota, self.retry_delay_s, self.thoughts_tokens, self.cached_tokens)
        return answer_reply(model, "v1beta", parsed, facts, fault, settings)

    def _decide(self, path: str, headers: Mapping[str, str], body: bytes, seen: _Seen) -> Reply:
        url = urlsplit(path)
        seen.path = url.path  # never the query: it may hold the key
        route = _ROUTE.match(url.path)
        if route is None:
            return Reply(404, error_body(404, f"Requested entity was not found: {url.path}"))
        seen.api_version, seen.model = route.group(1), route.group(2)
        parse_error: WireError | None = None
        try:
            seen.request = parse_generate_request(body)
            seen.facts = first_image_facts(seen.request)
        except WireError as exc:
            parse_error = exc
        key = headers.get("x-goog-api-key") or (parse_qs(url.query).get("key") or [""])[0]
        refusal = self._refusal(key, seen.model, seen.api_version) or parse_error
        if refusal is not None or seen.request is None:
            return error_reply(refusal or WireError(400, "Invalid request."))
        strict = self._request_refusal(seen.request, seen.model, seen.api_version)
        if strict is not None:
            return strict
        wait = self._quota.try_admit(self.rpm_quota)
        if wait > 0:
            return error_reply(per_minute_quota(seen.model, self.rpm_quota, wait))
        fault = self._faults.next_fault(seen.request)
        if fault == "hang":
            self._stopping.wait(self.hang_s)
            return Reply(0, None, fault=fault)
        if fault == "connection_reset":
            return Reply(0, None, fault=fault, reset=True)
        settings = AnswerSettings(self.rpm_quota, self.retry_delay_s, self.thoughts_tokens, self.cached_tokens)
        return answer_reply(seen.model, seen.api_version, seen.request, seen.facts, fault, settings)

    def _refusal(self, key: str, model: str, api_version: str) -> WireError | None:
        """The key or model error Google would answer with, if any."""
        if not key:
            return WireError(403, NO_KEY)
        if self.valid_keys is not None and key not in self.valid_keys:
            return key_refusal(self.bad_key_status)
        known = self.known_models
        if (known is None and not model.startswith("gemini-")) or (known is not None and model not in known):
            return model_not_found(model, api_version)
        return None

    def _request_refusal(self, request: GenerateRequest, model: str, api_version: str) -> Reply | None:
        """The 400 a well-formed body still gets: fields or values this version lacks, thinking, schema size."""
        error = unknown_fields(request, api_version)
        if error is None and api_version != "v1":
            error = bad_enum_value(request) or thinking_refusal(request, model)
        if error is not None:
            return error_reply(error)
        error = schema_refusal(request, self.max_schema_states)
        return error_reply(error, "schema_too_complex") if error is not None else None

    def _record(self, index: int, received_at: float, seen: _Seen, reply: Reply) -> None:
        request, facts = seen.request, seen.facts
        images = request.images if request is not None else []
        record = RequestRecord(
            index=index,
            received_at=received_at,
            api_version=seen.api_version,
            model=seen.model,
            has_image=bool(images),
            image_count=len(images),
            image_width=facts.width if facts else None,
            image_height=facts.height if facts else None,
            image_mime=images[0].mime_type if images else None,
            image_bytes=len(images[0].data) if images else None,
            prompt_chars=len(request.prompt) if request is not None else 0,
            status=reply.status,
            fault=reply.fault,
            service_tier=request.service_tier if request else None,
            schema_sent=bool(request and request.schema is not None),
            thinking=request.thinking if request else None,
            media_resolution=request.media_resolution if request else None,
            generation_config_keys=request.generation_config_keys if request else (),
        )
        with self._lock:
            self._records.append(record)
        if self.log_path is not None:
            self._log(self.log_path, seen.path, record)

    def _log(self, log_path: Path, path: str, record: RequestRecord) -> None:
        """Append the request's JSON line; a log that cannot be written must not fail the answer."""
        when = datetime.datetime.fromtimestamp(record.received_at, datetime.UTC)
        line = json.dumps(
            {
                "time": when.isoformat(timespec="milliseconds"),
                "path": path,
                "api_version": record.api_version,
                "model": record.model,
                "status": record.status,
                "fault": record.fault,
                "image_width": record.image_width,
                "image_height": record.image_height,
                "schema": record.schema_sent,
                "service_tier": record.service_tier,
            }
        )
        self._resources.append_log(log_path, line)


def _split_rates(rates: Mapping[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """Fault rates as (generateContent ones, batch job ones); upload interruptions are injected only."""
    generate = {kind: rate for kind, rate in rates.items() if kind not in BATCH_FAULT_KINDS}
    jobs = {check_batch_kind(kind): rate for kind, rate in rates.items() if kind in JOB_KINDS}
    if "upload_interrupted" in rates:
        raise ConfigError("upload_interrupted cannot be a rate: inject it (FakeGemini.inject or interrupt_upload).")
    return generate, jobs
