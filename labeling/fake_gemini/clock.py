"""A controllable clock for the fake's Files API and Batch Mode: real time plus an offset a test advances."""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Callable


class FakeClock:
    """`now()` is `source() + offset`; `advance(s)` moves it forward so that expiry and batch states
    change without sleeping. `source` defaults to `time.time` (seconds since the epoch)."""

    def __init__(self, source: Callable[[], float] = time.time) -> None:
        self._source = source
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds since the epoch, as the fake sees them."""
        with self._lock:
            return self._source() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock `seconds` forward (never back: expiry must not undo itself)."""
        if seconds < 0:
            raise ValueError("The fake clock only moves forward.")
        with self._lock:
            self._offset += seconds

    @property
    def offset_s(self) -> float:
        """How far the clock was advanced in total."""
        with self._lock:
            return self._offset

    def reset(self) -> None:
        """Back to real time."""
        with self._lock:
            self._offset = 0.0


def rfc3339(seconds: float) -> str:
    """A proto-JSON Timestamp, `2025-12-10T18:27:01.407650Z`, as Google formats them (UTC, `Z`)."""
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
