"""The fake project's Files API and Batch Mode: dispatches each matched call and records it for tests."""

from __future__ import annotations

import datetime
import json
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult

from labeling.fake_gemini.batch_faults import job_fault_plan
from labeling.fake_gemini.batches import BatchStore, LineAnswerer
from labeling.fake_gemini.clock import FakeClock
from labeling.fake_gemini.files import FileStore
from labeling.fake_gemini.replies import Reply, error_reply
from labeling.fake_gemini.routes import Route
from labeling.fake_gemini.wire import WireError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApiCall:
    """One Files API or Batch Mode call as the server answered it (status 0: the connection was dropped)."""

    received_at: float  # time.time(), not the fake clock
    http_method: str
    path: str  # without the query
    method: str  # files.upload, files.get, batches.create, ...
    status: int
    fault: str | None


class ResourceService:
    """Files and batches of the fake project, on one controllable clock."""

    def __init__(self, clock: FakeClock, seed: int = 0) -> None:
        self.clock = clock
        self.files = FileStore(clock)
        self.batches = BatchStore(clock, self.files)
        self.job_faults = job_fault_plan(seed)
        self._calls: list[ApiCall] = []
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()

    @property
    def calls(self) -> list[ApiCall]:
        """A copy of the call log, in answer order."""
        with self._lock:
            return list(self._calls)

    def reset(self) -> None:
        """Forget calls, files, batches, job faults and clock advances."""
        with self._lock:
            self._calls.clear()
        self.files.clear()
        self.batches.clear()
        self.job_faults.clear()
        self.clock.reset()

    def answer(
        self,
        route: Route,
        url: SplitResult,
        headers: Mapping[str, str],
        body: bytes,
        base_url: str,
        line_answerer: LineAnswerer,
        refusal: Callable[[str | None], WireError | None],
    ) -> Reply:
        """The reply to one matched call; `refusal(model)` is the key (and model) check of generateContent."""
        if route.method == "files.upload" and "upload_id=" in url.query:
            # The upload URL itself authorises the session, as Google's does (the SDK sends no key there).
            return self.files.upload_chunk(url.query, headers, body, base_url, route.api_version)
        model = route.target if route.method == "batches.create" else None
        refused = refusal(model)
        if refused is not None:
            return error_reply(refused)
        target, version = route.target or "", route.api_version
        if route.method == "files.upload":
            return self.files.start_upload(headers, body, base_url, version)
        if route.method == "files.list":
            return self.files.list(url.query, base_url, version)
        if route.method == "files.get":
            return self.files.get(target, base_url, version)
        if route.method == "files.delete":
            return self.files.delete(target)
        if route.method == "files.download":
            if "alt=media" not in url.query:
                return self.files.get(target, base_url, version)  # without alt=media: the File resource
            return self.files.download(target)
        if route.method == "batches.create":
            return self.batches.create(target, body, line_answerer, self.job_faults.next_fault(), base_url)
        if route.method == "batches.list":
            return self.batches.list(url.query, base_url)
        if route.method == "batches.get":
            return self.batches.get(target, base_url)
        if route.method == "batches.cancel":
            return self.batches.cancel(target)
        return self.batches.delete(target)

    def record(self, call: ApiCall, log_path: Path | None) -> None:
        """Keep the call and append its JSON line to `log_path`; a log that cannot be written is only logged."""
        with self._lock:
            self._calls.append(call)
        if log_path is None:
            return
        when = datetime.datetime.fromtimestamp(call.received_at, datetime.UTC)
        line = json.dumps(
            {
                "time": when.isoformat(timespec="milliseconds"),
                "method": call.http_method,
                "path": call.path,
                "api_method": call.method,
                "status": call.status,
                "fault": call.fault,
            }
        )
        self.append_log(log_path, line)

    def append_log(self, log_path: Path, line: str) -> None:
        """Append one JSON line to the request log: the one writer of that file (generateContent and the
        Files/Batch calls share it), so lines never interleave."""
        try:
            with self._log_lock, log_path.open("a", encoding="utf-8") as log:
                log.write(line + "\n")
        except OSError:
            logger.warning("fake Gemini cannot append to its log %s", log_path, exc_info=True)
