"""A requests-per-minute quota over a sliding 60-second window, shared by all requests."""

from __future__ import annotations

import threading
import time
from collections import deque

WINDOW_S = 60.0


class SlidingWindowQuota:
    """Admits at most `rpm` requests in any 60 s; tells a refused caller when a slot frees."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._admitted: deque[float] = deque()

    def try_admit(self, rpm: int, now: float | None = None) -> float:
        """Admit one request and return 0.0, or return the seconds until a slot frees (> 0).

        `rpm` <= 0 means no quota. Refused requests do not use up the quota, as with Google's.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._admitted and self._admitted[0] <= now - WINDOW_S:
                self._admitted.popleft()
            if rpm > 0 and len(self._admitted) >= rpm:
                # The slot frees when the request that filled the window leaves it.
                oldest = self._admitted[len(self._admitted) - rpm]
                return max(oldest + WINDOW_S - now, 0.001)
            self._admitted.append(now)
            return 0.0

    def reset(self) -> None:
        """Forget every admitted request."""
        with self._lock:
            self._admitted.clear()
