"""The shared rate limit and holds, driven by an injected clock: no test waits on the wall clock."""

from __future__ import annotations

import itertools
import threading

from labeling.pacing import RateLimiter
from tests.fake_clock import FakeClock


def test_requests_are_spaced_by_the_rate_without_bursts() -> None:
    time = FakeClock(waits_advance=True)  # a lone caller: each wait moves the time
    limiter = RateLimiter(120, clock=time.clock())  # one every 0.5 s
    stop = threading.Event()
    starts = []
    for _ in range(4):
        assert limiter.acquire(stop)
        starts.append(time.now)
    assert [round(b - a, 3) for a, b in itertools.pairwise(starts)] == [0.5, 0.5, 0.5]


def test_a_hold_makes_every_caller_wait_until_it_ends_and_release_ends_it() -> None:
    time = FakeClock(waits_advance=True)  # a lone caller: each wait moves the time
    limiter = RateLimiter(0, clock=time.clock())
    stop = threading.Event()
    limiter.hold(10.0, "quota")
    assert limiter.holding("quota") and [h.reason for h in limiter.holds()] == ["quota"]
    assert limiter.acquire(stop)
    assert time.now >= 1010.0 and not limiter.holding("quota")
    limiter.hold(3600.0, "daily_quota")
    limiter.release("daily_quota")
    before = time.now
    assert limiter.acquire(stop) and time.now == before


def test_a_stop_during_a_hold_ends_the_wait() -> None:
    time = FakeClock(waits_advance=True)  # a lone caller: each wait moves the time
    limiter = RateLimiter(0, clock=time.clock())
    stop = threading.Event()
    stop.set()
    limiter.hold(60.0)
    assert not limiter.acquire(stop)
    assert sum(time.waited) <= 0.5  # one poll step, not the whole hold
