"""Recording a run's results: typed outcomes in, batched transactions out.

Any executor (the worker threads today, a batch job's downloaded results next) hands the recorder one
`Outcome` per image; one writer thread commits them in batches at most `FLUSH_SECONDS` apart, together with
the run's counters, so a process killed at any moment loses only the last batch, and the next run derives its
work from what was committed.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from labeling.annotators.base import Annotation, Usage
from labeling.errors import WriteConflict
from labeling.store import Store

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0  # results reach DuckDB at most about this long after they arrive (a commit costs ~25 ms)
MAX_BATCH = 500
WRITE_ATTEMPTS = 5
_STOP = object()


@dataclass
class Outcome:
    """Everything one image produced, handed to the recorder in one piece."""

    image_id: int
    annotations: list[Annotation] = field(default_factory=list)
    failure: tuple[str, str, str] | None = None  # stage, kind, message
    facts: tuple[int, str, int, int] | None = None  # size_bytes, format, width, height
    requests: int = 0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0

    @property
    def done(self) -> bool:
        return self.failure is None


class Recorder:
    """One writer thread per run. `written(counts, cost)` hears of each committed batch; `failed(error)` of a
    batch that could not be written (the run must stop: what follows would be lost too)."""

    def __init__(
        self,
        store: Store,
        run_id: int,
        *,
        list_version: int,
        simulated: bool,
        db_lock: threading.Lock,
        written: Callable[[Counter[str], float], None],
        failed: Callable[[Exception], None],
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._list_version = list_version
        self._simulated = simulated
        self._db_lock = db_lock  # the run row is written here and by status changes, never at once
        self._written = written
        self._failed = failed
        self._write_failed = False  # a batch could not be written: nothing after it counts as committed
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=f"job-{run_id}-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, outcome: Outcome) -> None:
        self._queue.put(outcome)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything put so far is committed; False on timeout or when a write failed. Batch Mode
        waits for this before it marks a shard recorded and deletes its files (answers already paid for)."""
        written = threading.Event()
        self._queue.put(written)
        return written.wait(timeout) and not self._write_failed

    def close(self) -> None:
        """Write what is left and end the writer thread."""
        self._queue.put(_STOP)
        self._thread.join()

    def _loop(self) -> None:
        pending: list[Outcome] = []
        last_flush = time.monotonic()
        while True:
            try:
                item = self._queue.get(timeout=0.1)
            except queue.Empty:
                item = None
            stopping = item is _STOP
            flushing = isinstance(item, threading.Event)
            if isinstance(item, Outcome):
                pending.append(item)
            if pending and (
                stopping or flushing or len(pending) >= MAX_BATCH or time.monotonic() - last_flush >= FLUSH_SECONDS
            ):
                self._flush(pending)
                pending = []
                last_flush = time.monotonic()
            if flushing:
                item.set()
            if stopping:
                return

    def _flush(self, outcomes: list[Outcome]) -> None:
        annotations, failures, facts = [], [], []
        counts: Counter[str] = Counter()
        cost = 0.0
        for outcome in outcomes:
            for annotation in outcome.annotations:
                annotations.append(self._annotation_row(outcome.image_id, annotation))
            if outcome.failure is not None:
                stage, kind, message = outcome.failure
                failures.append(
                    {
                        "image_id": outcome.image_id,
                        "run_id": self._run_id,
                        "stage": stage,
                        "kind": kind,
                        "message": message[:2000],
                    }
                )
            if outcome.facts is not None:
                size, fmt, width, height = outcome.facts
                facts.append(
                    {"image_id": outcome.image_id, "size_bytes": size, "format": fmt, "width": width, "height": height}
                )
            counts["done" if outcome.done else "failed"] += 1
            counts["requests"] += outcome.requests
            counts["tokens_in"] += outcome.usage.prompt
            counts["tokens_out"] += outcome.usage.candidates
            counts["tokens_thinking"] += outcome.usage.thoughts
            cost += outcome.cost_usd
        frame = pd.DataFrame(annotations)
        if not frame.empty:
            frame["categories"] = frame["categories"].astype("object")
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                with self._db_lock:
                    self._store.record_batch(
                        self._run_id, frame, pd.DataFrame(failures), pd.DataFrame(facts), {**counts, "cost_usd": cost}
                    )
                break
            except WriteConflict as exc:
                # Another writer touched the same rows (say, a re-import updating these images): try again.
                if attempt == WRITE_ATTEMPTS:
                    self._fail(exc)
                    return
                time.sleep(0.1 * attempt)
            except Exception as exc:
                self._fail(exc)
                return
        self._written(counts, cost)

    def _fail(self, error: Exception) -> None:
        log.error("writing results of run %s failed", self._run_id, exc_info=error)
        self._write_failed = True
        self._failed(error)

    def _annotation_row(self, image_id: int, annotation: Annotation) -> dict[str, Any]:
        return {
            "image_id": image_id,
            "run_id": self._run_id,
            "kind": annotation.kind,
            "model": annotation.model,
            "prompt_version": annotation.prompt_version,
            "category_list_version": self._list_version if annotation.categories is not None else None,
            "description": json.dumps(annotation.description, ensure_ascii=False)
            if annotation.description is not None
            else None,
            "summary": annotation.summary,
            "categories": annotation.categories,
            "tokens_in": annotation.usage.prompt,
            "tokens_out": annotation.usage.candidates,
            "tokens_thinking": annotation.usage.thoughts,
            "cost_usd": annotation.cost_usd,
            "simulated": self._simulated,
        }
