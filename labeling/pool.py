"""One small worker pool: threads take items from a shared plan, the calling thread receives the results.

Shared by mirroring and per-image analyses (and the shape the captioning runner's workers follow). Results
come back on the thread that called `run_pool`, so a caller can update a Streamlit element or a progress bar,
count, batch and write without locks. `stop` ends the run after the items in flight; Ctrl+C in the caller
stops the workers too, and every result that arrived is still handed over before the exception goes on.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

POLL_SECONDS = 0.5


class Done(Generic[T, R]):
    """One item's result, or the exception its work raised."""

    __slots__ = ("error", "item", "value")

    def __init__(self, item: T, value: R | None, error: Exception | None) -> None:
        self.item, self.value, self.error = item, value, error


def run_pool(
    items: Iterable[T],
    work: Callable[[T], R],
    on_done: Callable[[Done[T, R]], None],
    *,
    workers: int,
    stop: threading.Event,
    tick: Callable[[], None] | None = None,
    name: str = "pool",
) -> None:
    """Run `work` on every item with up to `workers` threads until done or `stop` is set.

    `on_done` gets each result on this thread; `tick`, if given, runs between results at least every
    POLL_SECONDS (to flush a batch, or to set `stop` when a person cancelled).
    """
    pending: deque[T] = deque(items)
    results: queue.SimpleQueue[Done[T, R] | None] = queue.SimpleQueue()

    def loop() -> None:
        try:
            while not stop.is_set():
                try:
                    item = pending.popleft()  # atomic: the workers share one plan
                except IndexError:
                    return
                try:
                    results.put(Done(item, work(item), None))
                except Exception as exc:  # about this item: the caller decides what it means
                    results.put(Done(item, None, exc))
        finally:
            results.put(None)  # this worker is done

    threads = [
        threading.Thread(target=loop, name=f"{name}-{number}", daemon=True)
        for number in range(max(1, min(workers, len(pending))))
    ]
    try:
        for thread in threads:
            thread.start()
        running = len(threads)
        while running:
            try:
                done = results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                done = None
                if tick is not None:
                    tick()
                continue
            if done is None:
                running -= 1
                continue
            on_done(done)
            if tick is not None:
                tick()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        while True:  # results that arrived after the loop stopped (Ctrl+C, an error in on_done) count too
            try:
                leftover = results.get_nowait()
            except queue.Empty:
                break
            if leftover is not None:
                on_done(leftover)
