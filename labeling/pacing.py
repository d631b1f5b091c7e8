"""Pacing requests across worker threads: one shared rate, holds the service imposes, and retry backoff.

Time comes from an injectable clock (`monotonic`, `wall`, `wait`, which sleeps until an event or a timeout,
and `call_later`, which runs a function after a delay), so tests drive holds, pacing and the daily-quota pause
without waiting on the wall clock.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

MAX_BACKOFF_SECONDS = 60.0
HOLD_POLL_SECONDS = 0.5


class Timer(Protocol):
    """A call scheduled by `Clock.call_later`."""

    def cancel(self) -> None: ...


def start_timer(delay: float, function: Callable[[], None]) -> Timer:
    """Call `function` in `delay` seconds on a daemon thread (it must not keep the process alive)."""
    timer = threading.Timer(delay, function)
    timer.daemon = True
    timer.start()
    return timer


@dataclass(frozen=True)
class Clock:
    """Where pacing reads the time and how it waits; the default is the real one."""

    monotonic: Callable[[], float] = time.monotonic
    wall: Callable[[], float] = time.time
    wait: Callable[[threading.Event, float], bool] = threading.Event.wait  # True when the event was set
    call_later: Callable[[float, Callable[[], None]], Timer] = start_timer


REAL_CLOCK = Clock()


@dataclass(frozen=True)
class Hold:
    """Every worker waits until `until` (epoch seconds) because the service said so."""

    reason: str  # quota | overloaded | daily_quota
    until: float
    message: str

    def line(self, now: float | None = None) -> str:
        """ "Waiting: ... until 14:03:07 (in 25 s)" in local time (`now`: epoch seconds, default the clock's)."""
        left = max(self.until - (time.time() if now is None else now), 0.0)
        clock = dt.datetime.fromtimestamp(self.until).strftime("%H:%M:%S" if left < 86_400 else "%Y-%m-%d %H:%M")
        span = f"{left:.0f} s" if left < 120 else (f"{left / 60:.0f} min" if left < 5400 else f"{left / 3600:.1f} h")
        return f"Waiting: {self.message} until {clock} (in {span})."


HOLD_MESSAGES = {
    "quota": "the per-minute quota is used up",
    "overloaded": "Gemini is overloaded",
    "daily_quota": "the daily quota is used up",
}


class RateLimiter:
    """One request every 60/rpm seconds across all workers (no bursts), plus holds the server can impose.

    `rpm` 0 means no pacing; holds (429 retry delays, overload backoff) apply either way.
    """

    def __init__(self, requests_per_minute: int, clock: Clock = REAL_CLOCK) -> None:
        self._clock = clock
        self.interval = 60.0 / requests_per_minute if requests_per_minute > 0 else 0.0
        self._lock = threading.Lock()
        self._next = 0.0
        self._hold_until = 0.0
        self._holds: dict[str, float] = {}  # reason -> monotonic end

    def acquire(self, stop: threading.Event) -> bool:
        """Wait out any hold, then for this caller's slot; False if `stop` was set while waiting."""
        while True:  # in short steps: a hold may be released (Resume) or extended while we wait
            with self._lock:
                held = self._hold_until - self._clock.monotonic()
            if held <= 0:
                break
            if self._clock.wait(stop, min(held, HOLD_POLL_SECONDS)):
                return False
        with self._lock:  # holds never push the pacing schedule: a slot is reserved only once they are over
            now = self._clock.monotonic()
            slot = max(now, self._next)
            if self.interval:
                self._next = slot + self.interval
        wait = slot - self._clock.monotonic()
        return not (wait > 0 and self._clock.wait(stop, wait)) and not stop.is_set()

    def hold(self, seconds: float, reason: str = "quota") -> None:
        """No new request from any worker for `seconds` (the server said when to come back)."""
        with self._lock:
            end = self._clock.monotonic() + seconds
            self._hold_until = max(self._hold_until, end)
            self._holds[reason] = max(self._holds.get(reason, 0.0), end)

    def release(self, reason: str) -> None:
        """End the hold for `reason` now (a person pressed Resume)."""
        with self._lock:
            self._holds.pop(reason, None)
            self._hold_until = max(self._holds.values(), default=0.0)

    def holding(self, reason: str) -> bool:
        """Whether a hold for `reason` is still in force."""
        with self._lock:
            return self._holds.get(reason, 0.0) > self._clock.monotonic()

    def holds(self) -> list[Hold]:
        """The holds in force, with their end as wall-clock time."""
        now, wall = self._clock.monotonic(), self._clock.wall()
        with self._lock:
            return [
                Hold(reason, wall + end - now, HOLD_MESSAGES.get(reason, reason))
                for reason, end in sorted(self._holds.items())
                if end > now
            ]


def backoff_delay(attempt: int, base: float, server_delay: float | None, cap: float = MAX_BACKOFF_SECONDS) -> float:
    """Seconds before retry number `attempt` (1, 2, ...): exponential with jitter, never below the server's."""
    if server_delay is not None:
        # Google rounds retryDelay down to whole seconds: add up to a second so the retry lands after it.
        return server_delay + random.uniform(0.05, 1.0)
    exponential = min(base * (2 ** (attempt - 1)), cap)
    return exponential * random.uniform(0.5, 1.5)
