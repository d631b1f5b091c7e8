"""A fake `labeling.pacing.Clock` for tests: time moves only when a test advances it (or, if asked, when
somebody waits on it), and timers fire as it passes them, so no test waits on the wall clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from labeling.pacing import Clock


@dataclass
class _Timer:
    due: float
    function: Callable[[], None]
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """`now` is the monotonic time; the wall clock is `wall_start` (epoch seconds) when `now` was 1000.

    `waits_advance`: a wait moves the clock by its timeout (a lone caller sleeping); otherwise a wait returns
    when the event is set or a test has advanced the clock past its timeout.
    """

    def __init__(self, wall_start: float = 1e9 + 1000.0, *, waits_advance: bool = False) -> None:
        self.now = 1000.0
        self._wall_offset = wall_start - self.now
        self.waits_advance = waits_advance
        self.waited: list[float] = []
        self._timers: list[_Timer] = []
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        return self.now

    def wall(self) -> float:
        return self.now + self._wall_offset

    def wait(self, event: threading.Event, seconds: float) -> bool:
        self.waited.append(seconds)
        if self.waits_advance:
            self.advance(seconds)
            return event.is_set()
        deadline = self.now + seconds
        while not event.wait(0.01):  # a short real poll: the test thread moves the time
            if self.now >= deadline:
                return False
        return True

    def call_later(self, delay: float, function: Callable[[], None]) -> _Timer:
        timer = _Timer(self.now + delay, function)
        with self._lock:
            self._timers.append(timer)
        return timer

    def advance(self, seconds: float) -> None:
        """Move the time forward and run, in this thread, the timers it passed."""
        with self._lock:
            self.now += seconds
            due = [t for t in self._timers if t.due <= self.now]
            self._timers = [t for t in self._timers if t.due > self.now]
        for timer in due:
            if not timer.cancelled:
                timer.function()

    def clock(self) -> Clock:
        return Clock(monotonic=self.monotonic, wall=self.wall, wait=self.wait, call_later=self.call_later)
