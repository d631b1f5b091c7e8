"""The synchronous executor: worker threads that send one request per image to the annotator, as it answers.

One of the ways a run gets its answers (labeling.jobs.Executor): the Job owns the work list, the control
(pause, resume, cancel), progress and recording; this executor owns what is particular to the synchronous API:
its worker threads, the shared rate limit and holds, per-image retries with backoff, the gate that lets one
worker go first until the service has answered, and the streaks that mean the service, not the image, is at
fault. Gemini Batch Mode will be a second executor beside it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

from labeling import images
from labeling.annotators.base import Annotation, ResponseFailure, RetryableError
from labeling.annotators.quota import daily_quota_message, next_daily_reset, quota_is_zero
from labeling.errors import AnnotatorError, LabelingError
from labeling.pacing import Hold, RateLimiter, backoff_delay
from labeling.planning import WorkItem
from labeling.preparation import prepare_item
from labeling.recorder import Outcome

if TYPE_CHECKING:
    from labeling.jobs import Job

log = logging.getLogger(__name__)

EMPTY_RETRIES = 2  # an empty answer is intermittent: a retry usually succeeds
SHEDDING = ("quota", "overloaded")  # the service asks everyone to slow down: a shared hold, not a per-image retry
DAILY_RESUME_MARGIN_SECONDS = 60.0  # resume a minute after midnight Pacific, once the quota has surely reset


class _Stopped(Exception):
    """The job is stopping: leave the current image unrecorded (it stays in the work list)."""


class SyncExecutor:
    """Worker threads over the job's work list; `execute` returns when the list is done or the job stops."""

    def __init__(self, job: Job, workers: int, requests_per_minute: int) -> None:
        self.job = job
        self.settings = job.settings
        self.annotator = job.annotator
        self._clock = job.clock
        self.limiter = RateLimiter(requests_per_minute, job.clock)
        self._workers_count = workers
        self._stop = job.stop_event  # cancel, interrupt or fatal: workers leave after their current call
        self._running = job.running_event  # cleared while paused
        self._lock = threading.Lock()
        self._gate = threading.Event()  # set at the first answer: only then do the other workers start
        self._consecutive_transient = 0
        self._consecutive_internal = 0
        self._shed_streak = 0  # quota/overload answers since the last success: the shared backoff grows with it
        self._shedding_since: float | None = None
        self._auto_resumed = False  # resumed by the daily timer, and no answer since

    def execute(self) -> None:
        workers = [
            threading.Thread(
                target=self._work_loop, args=(i == 0,), name=f"job-{self.job.run_id}-worker-{i}", daemon=True
            )
            for i in range(min(self._workers_count, max(self.job.items_left(), 1)))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def holds(self) -> list[Hold]:
        """Waits the service imposed that are still in force."""
        return self.limiter.holds()

    def resumed(self) -> None:
        """A person (or the daily timer) resumed the run: time spent paused is not time overloaded."""
        with self._lock:
            self._shed_streak, self._shedding_since = 0, None
        self.limiter.release("daily_quota")

    def succeeded(self) -> None:
        """An image came back without an internal error: the streak of unexpected errors is broken."""
        with self._lock:
            self._consecutive_internal = 0

    def _work_loop(self, first: bool) -> None:
        try:
            if first or self._wait_for_gate():
                self._work()
        finally:
            if first:
                self._gate.set()  # the first worker ran out of work before any answer: let the others go

    def _wait_for_gate(self) -> bool:
        """Wait for the run's first answer (or its end); True when there is work to do."""
        while not self._gate.wait(0.1):
            if self._stop.is_set():
                return False
        return not self._stop.is_set()

    def _work(self) -> None:
        while not self._stop.is_set():
            self._running.wait()
            if self._stop.is_set():
                return
            item = self.job.take()
            if item is None:
                return
            try:
                outcome = self._process(item)
            except _Stopped:
                return
            except AnnotatorError as exc:
                self.job.fail(exc)
                return
            except Exception as exc:  # unexpected, but about this image: it fails alone, the run goes on
                log.exception("unexpected error on image %s (%s)", item.image_id, item.name)
                outcome = Outcome(
                    item.image_id,
                    failure=(
                        "internal",
                        "internal",
                        (
                            f"Unexpected error on {item.name} ({type(exc).__name__}: {exc}): the image was skipped; "
                            "the traceback is in the log (run with -v); please report it."
                        ),
                    ),
                )
                if self._note_internal_failure(exc):
                    return
            if outcome.failure is None or outcome.failure[1] != "internal":
                self.succeeded()
            self.job.record(outcome)

    def _process(self, item: WorkItem) -> Outcome:
        outcome = Outcome(item.image_id)
        if item.needs == "categorize":
            description = json.loads(item.description or "{}")
            self._annotate(
                outcome,
                "categorize",
                lambda: self.annotator.categorize(description, self.job.categories, self.settings.max_categories),
            )
            return outcome
        prepared = self._prepare(item, outcome)
        if prepared is None:
            return outcome
        if item.needs == "fused":
            self._annotate(
                outcome,
                "model",
                lambda: self.annotator.describe_and_categorize(
                    prepared.data, prepared.mime_type, self.job.categories, self.settings.max_categories
                ),
            )
            return outcome
        described = self._annotate(outcome, "model", lambda: self.annotator.describe(prepared.data, prepared.mime_type))
        if described is not None and described.description is not None:
            description = described.description
            self._annotate(
                outcome,
                "categorize",
                lambda: self.annotator.categorize(description, self.job.categories, self.settings.max_categories),
            )
        return outcome

    def _prepare(self, item: WorkItem, outcome: Outcome) -> images.PreparedImage | None:
        prepared = prepare_item(item, self.job.sources.get(item.dataset_id), self.settings)
        if isinstance(prepared, tuple):
            outcome.failure = prepared
            return None
        outcome.facts = (
            prepared.size_bytes,
            prepared.original_format,
            prepared.original_width,
            prepared.original_height,
        )
        return prepared

    def _annotate(self, outcome: Outcome, stage: str, call: Callable[[], Annotation]) -> Annotation | None:
        """One model call with retries; its result or failure goes into `outcome`."""
        try:
            annotation = self._call(outcome, call)
        except ResponseFailure as exc:
            outcome.usage += exc.usage
            outcome.cost_usd += exc.cost_usd
            outcome.failure = (stage, exc.kind, str(exc))
            return None
        except RetryableError as exc:  # its usage was counted by `_call`
            outcome.failure = (stage, exc.kind, f"Gave up after retries: {exc}")
            if exc.kind != "empty":  # an empty answer is about this image, not the service
                self._note_transient_failure(exc)
            return None
        self._consecutive_transient = 0
        outcome.usage += annotation.usage
        outcome.cost_usd += annotation.cost_usd
        outcome.annotations.append(annotation)
        return annotation

    def _note_internal_failure(self, error: Exception) -> bool:
        """The same unexpected error on many images in a row is a bug, not bad files: stop, and say so."""
        with self._lock:
            self._consecutive_internal += 1
            streak = self._consecutive_internal
        if streak < max(20, 4 * self._workers_count):
            return False
        self.job.fail(
            LabelingError(
                f"The last {streak} images all failed with an unexpected error "
                f"({type(error).__name__}: {error}): the run stopped; please report it."
            )
        )
        return True

    def _note_transient_failure(self, error: RetryableError) -> None:
        """Many images in a row giving up on transient errors means the service is down: stop, do not burn."""
        with self._lock:
            self._consecutive_transient += 1
            streak = self._consecutive_transient
        if streak >= max(8, 2 * self._workers_count):
            self.job.fail(
                AnnotatorError(
                    f"Gemini kept failing for {streak} images in a row ({error.kind}: {error}): check the network, "
                    "the quota and https://aistudio.google.com/status, then run again to resume."
                )
            )

    def _call(self, outcome: Outcome, call: Callable[[], Annotation]) -> Annotation:
        attempts: Counter[str] = Counter()
        while True:
            self._running.wait()
            if self._stop.is_set() or not self.limiter.acquire(self._stop):
                raise _Stopped
            outcome.requests += 1
            self.job.count("requests")
            try:
                annotation = call()
            except RetryableError as exc:
                outcome.usage += exc.usage
                outcome.cost_usd += exc.cost_usd
                self._before_retry(exc, attempts, outcome.image_id)
                continue
            except ResponseFailure:
                self._answered()
                raise
            finally:
                self._count_extra(outcome)
                self._sleep_between_requests()
            self._answered()
            return annotation

    def _resume_after_reset(self) -> None:
        with self._lock:
            self._auto_resumed = True
        self.job.resume()

    def _count_extra(self, outcome: Outcome) -> None:
        """Probes and re-sends the annotator made on its own count as requests, and cost what they cost."""
        requests, usage, cost = self.annotator.drain_extra()
        if requests:
            outcome.requests += requests
            self.job.count("requests", requests)
        outcome.usage += usage
        outcome.cost_usd += cost

    def _answered(self) -> None:
        """The service answered: open the gate for the other workers and end any shedding streak."""
        self._gate.set()
        with self._lock:
            self._shed_streak = 0
            self._shedding_since = None
            self._auto_resumed = False

    def _before_retry(self, exc: RetryableError, attempts: Counter[str], image_id: int) -> None:
        """Wait as `exc` asks before the same request goes again, or raise when this image should give up."""
        if exc.kind in ("quota", "daily_quota"):
            self.job.count("rate_limited")
        if exc.kind == "daily_quota":
            self._pause_for_daily_quota(exc)
            return
        if exc.kind in SHEDDING:
            self.job.count("retries")
            self._shed(exc)
            return
        budget = "empty" if exc.kind == "empty" else "other"
        attempts[budget] += 1
        if attempts[budget] > (EMPTY_RETRIES if budget == "empty" else self.settings.max_retries):
            raise exc
        self.job.count("retries")
        delay = backoff_delay(
            attempts[budget], self.settings.retry_backoff_seconds, exc.retry_after, self.settings.max_backoff_seconds
        )
        log.info("retrying image %s in %.1f s after %s", image_id, delay, exc)
        if self._stop.wait(delay):
            raise _Stopped from exc

    def _shed(self, exc: RetryableError) -> None:
        """A shared hold for every worker: the server's delay, else a backoff that grows while it lasts."""
        now = self._clock.monotonic()
        with self._lock:
            if not self.limiter.holding(exc.kind):  # answers to requests sent during one hold count once
                self._shed_streak += 1
            streak = self._shed_streak
            since = self._shedding_since = self._shedding_since or now
        limit = self.settings.max_hold_minutes * 60
        if limit and now - since > limit:  # 0: wait for as long as it takes
            self.job.fail(
                AnnotatorError(
                    f"Gemini kept answering {exc.kind} for {limit / 60:.0f} minutes ({exc}): the run stopped; resume "
                    "it later, lower the workers or requests per minute, or choose the batch or flex tier."
                )
            )
            raise _Stopped from exc
        delay = backoff_delay(
            streak, self.settings.retry_backoff_seconds, exc.retry_after, self.settings.max_backoff_seconds
        )
        self.limiter.hold(delay, exc.kind)
        log.info("%s: every worker waits %.1f s (%s)", exc.kind, delay, exc)

    def _pause_for_daily_quota(self, exc: RetryableError) -> None:
        """Pause the run until the daily quota resets (midnight Pacific), then resume by itself."""
        now = dt.datetime.fromtimestamp(self._clock.wall(), dt.UTC)
        reset = next_daily_reset(now)
        message = daily_quota_message(self.annotator.model, reset, now)
        delay = max((reset - now).total_seconds(), 0.0) + DAILY_RESUME_MARGIN_SECONDS
        if not self.job.running:  # paused by another worker, or stopping
            return
        # A quota of zero that is still there after the reset is not used up: another day would not help.
        with self._lock:
            no_quota = self._auto_resumed and quota_is_zero(str(exc))
            self._shed_streak, self._shedding_since = 0, None
        if no_quota:
            self.job.fail(
                AnnotatorError(
                    f"This key has no quota for {self.annotator.model} (the 429 still says limit: 0 after the daily "
                    f"reset: {exc}): enable billing for the key's project, or choose another model."
                )
            )
            raise _Stopped from exc
        # The hold first, so whoever sees the run paused sees why; no worker reserves a slot while it lasts.
        self.limiter.hold(delay, "daily_quota")
        self.job.pause_until(delay, message, self._resume_after_reset)

    def _sleep_between_requests(self) -> None:
        """The seed's per-request throttle: each worker pauses after each request (cut short by a stop)."""
        if self.settings.per_request_sleep_seconds:
            self._stop.wait(self.settings.per_request_sleep_seconds)
