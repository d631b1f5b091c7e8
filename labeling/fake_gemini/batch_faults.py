"""Faults of the Files API and Batch Mode: whole jobs that fail, expire or never start, and cut uploads.

Per-line batch errors need no kind of their own: every line is answered by the generateContent logic, so
the generateContent faults (`http_500`, `safety`, ... injected, by rule or at a rate) reach lines too, and a
line given an error fault gets that error as its google.rpc.Status.
"""

from __future__ import annotations

import random
import threading
from collections import deque
from collections.abc import Mapping

from labeling.errors import ConfigError

# Every batch-level fault kind, with what the client sees.
BATCH_FAULT_KINDS: dict[str, str] = {
    "batch_failed": "the next batch runs, then ends BATCH_STATE_FAILED (done, an error, no output)",
    "batch_expired": "the next batch runs until 48 h after its creation, then BATCH_STATE_EXPIRED without results",
    "batch_stuck_pending": "the next batch stays BATCH_STATE_PENDING for ever",
    "upload_interrupted": "the next upload chunk keeps FakeGemini.upload_interrupt_bytes bytes, then the "
    "connection drops unanswered; query the upload URL and resume from its offset",
}
JOB_KINDS = frozenset({"batch_failed", "batch_expired", "batch_stuck_pending"})


def check_batch_kind(kind: str) -> str:
    """Return `kind` or raise `ConfigError` naming the batch fault kinds."""
    if kind not in BATCH_FAULT_KINDS:
        raise ConfigError(f"Unknown batch fault kind {kind!r}: use one of {', '.join(BATCH_FAULT_KINDS)}.")
    return kind


class JobFaultPlan:
    """The fault of each created batch job: queued ones first, then seeded random rates."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._queue: deque[str] = deque()
        self._rates: dict[str, float] = {}
        self._rng = random.Random(seed)

    def inject(self, kind: str, times: int = 1) -> None:
        """Give the next `times` created jobs the fault `kind`."""
        if kind not in JOB_KINDS:
            raise ConfigError(f"{kind!r} is not a batch job fault: use one of {', '.join(sorted(JOB_KINDS))}.")
        with self._lock:
            self._queue.extend([kind] * times)

    def set_rates(self, rates: Mapping[str, float]) -> None:
        """Replace the random rates {kind: probability} of job faults."""
        for kind, rate in rates.items():
            if kind not in JOB_KINDS or not 0 <= rate <= 1:
                raise ConfigError(f"Bad batch job fault rate {kind}={rate}.")
        with self._lock:
            self._rates = dict(rates)

    @property
    def rates(self) -> dict[str, float]:
        with self._lock:
            return dict(self._rates)

    @property
    def pending(self) -> list[str]:
        with self._lock:
            return list(self._queue)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._rates = {}

    def next_fault(self) -> str | None:
        """The fault of the job being created, consuming a queued one."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
            if not self._rates:
                return None
            draw = self._rng.random()
            for kind, rate in self._rates.items():
                if draw < rate:
                    return kind
                draw -= rate
            return None
