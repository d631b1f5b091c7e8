"""The captioning runner: worker threads, one shared rate limit, retries, pause/cancel, batched writes, resume.

A `Job` works through a list of images derived from the database (`Store.work_list`): every image found
without a description for the current prompt version, or without categories for the current category list.
Workers read each image through its dataset's `ImageSource`, prepare it (`labeling.images.prepare`), write
the review thumbnail, and call the annotator. Each image's outcome goes to the run's `Recorder`
(labeling.recorder), which commits them in batches; planning and estimates live in labeling.planning, the
shared rate limit and backoff in labeling.pacing.

Errors: quota (429) and overload (503) answers put a shared hold on every worker (the server's delay, else a
capped exponential backoff) for as long as they last, up to `max_hold_minutes`; a daily quota pauses the run
until midnight Pacific, when it resumes by itself. Other `RetryableError`s are retried per image with backoff;
`ResponseFailure`s, image and source errors become per-image failures; an `AnnotatorError` (bad key, unknown
model, invalid request) stops the run. Only one worker starts until the first answer arrives, so a configuration
error costs one request, not one per worker.

`JobManager` owns the jobs of a process (the app keeps one in `st.cache_resource`), so a page can start,
pause, resume, cancel and poll a job that outlives the page, the session and the browser tab.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from labeling import images
from labeling.annotators.base import Annotation, Annotator, ResponseFailure, RetryableError
from labeling.annotators.providers import create_annotator
from labeling.annotators.quota import daily_quota_message, next_daily_reset, quota_is_zero
from labeling.categories import Category
from labeling.dataset_sources import source_for_dataset
from labeling.errors import AnnotatorError, ConflictError, ImageError, LabelingError, SourceError
from labeling.pacing import Hold, RateLimiter, backoff_delay
from labeling.planning import JobRequest, WorkItem, plan, work_items
from labeling.recorder import Outcome, Recorder
from labeling.records import Dataset
from labeling.settings import Settings
from labeling.sources import ImageSource
from labeling.store import Store
from labeling.thumbnails import THUMB_SIZE, write_thumbnail
from labeling.vocabulary import MODES

log = logging.getLogger(__name__)

EMPTY_RETRIES = 2  # an empty answer is intermittent: a retry usually succeeds
SHEDDING = ("quota", "overloaded")  # the service asks everyone to slow down: a shared hold, not a per-image retry
DAILY_RESUME_MARGIN_SECONDS = 60.0  # resume a minute after midnight Pacific, once the quota has surely reset
RATE_WINDOW_SECONDS = 30.0

AnnotatorFactory = Callable[[Settings, str, int], Annotator]


# --- requests and progress ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """A consistent snapshot of a job, safe to read from any thread."""

    run_id: int
    mode: str
    status: str  # starting | running | paused | cancelled | completed | failed | interrupted
    message: str
    simulated: bool
    datasets: tuple[str, ...]
    model: str
    total: int
    done: int
    failed: int
    requests: int
    retries: int
    rate_limited: int  # 429 answers
    tokens_in: int
    tokens_out: int
    tokens_thinking: int
    cost_usd: float
    elapsed_s: float
    images_per_s: float
    eta_s: float | None
    failures_by_kind: dict[str, int] = field(default_factory=dict)
    holds: tuple[Hold, ...] = ()
    notices: tuple[str, ...] = ()  # one-time messages (a schema fallback, an unknown model)
    price_known: bool = True

    @property
    def finished(self) -> bool:
        return self.status in ("cancelled", "completed", "failed", "interrupted")

    @property
    def remaining(self) -> int:
        return max(self.total - self.done - self.failed, 0)


class _Stopped(Exception):
    """The job is stopping: leave the current image unrecorded (it stays in the work list)."""


# --- the job ------------------------------------------------------------------------------------------


class Job:
    """One run over one or more datasets. Create it through `JobManager.start`."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        request: JobRequest,
        annotator: Annotator,
        run_id: int,
        items: list[WorkItem],
        sources: dict[int, ImageSource | None],
        categories: Sequence[Category],
        list_version: int,
        counts: dict[str, Any],
    ) -> None:
        self.store = store
        self.settings = settings
        self.request = request
        self.annotator = annotator
        self.run_id = run_id
        self.simulated = annotator.simulated
        self._items = items
        self._sources = sources
        self._categories = list(categories)
        self._list_version = list_version
        self._workers_count = request.num_workers or settings.num_workers
        rpm = settings.requests_per_minute if request.requests_per_minute is None else request.requests_per_minute
        self.limiter = RateLimiter(rpm)
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()  # run-row writes from the writer and from status changes never overlap
        self._next_item = 0
        self._status = "starting"
        self._message = ""
        self._counts: Counter[str] = Counter({k: v for k, v in counts.items() if k != "cost_usd"})
        self._cost = float(counts.get("cost_usd", 0.0))
        self._failure_kinds: Counter[str] = Counter()
        self._completions: deque[float] = deque()
        self._started = time.monotonic()
        self._ended_at: float | None = None
        self._paused_total = 0.0
        self._paused_at: float | None = None
        self._consecutive_transient = 0
        self._consecutive_internal = 0
        self._shed_streak = 0  # quota/overload answers since the last success: the shared backoff grows with it
        self._shedding_since: float | None = None
        self._resume_timer: threading.Timer | None = None
        self._auto_resumed = False  # resumed by the daily timer, and no answer since
        self._gate = threading.Event()  # set at the first answer: only then do the other workers start
        self._stop = threading.Event()  # cancel, interrupt or fatal: workers leave after their current call
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._fatal: LabelingError | None = None
        self._end_status: str | None = None
        self._recorder = Recorder(
            store,
            run_id,
            list_version=list_version,
            simulated=self.simulated,
            db_lock=self._db_lock,
            written=self._written,
            failed=self._fail_write,
        )
        self._thread = threading.Thread(target=self._run, name=f"job-{run_id}", daemon=True)
        self._done = threading.Event()

    # -- control (any thread) ------------------------------------------------------------------------

    def start(self) -> Job:
        self._thread.start()
        return self

    def pause(self) -> None:
        """Workers finish their current request, then wait; nothing is lost."""
        with self._lock:
            if self._status != "running" or self._stop.is_set():  # a cancel or a fatal error came first
                return
            self._status = "paused"
            self._paused_at = time.monotonic()
            self._running.clear()  # under the lock: a cancel cannot set it in between and be undone
        self._set_db_status("paused")

    def resume(self) -> None:
        with self._lock:
            if self._status != "paused":
                return
            self._status = "running"
            self._message = ""
            if self._paused_at is not None:
                self._paused_total += time.monotonic() - self._paused_at
                self._paused_at = None
            timer, self._resume_timer = self._resume_timer, None
            self._shed_streak, self._shedding_since = 0, None  # time spent paused is not time overloaded
        if timer is not None:
            timer.cancel()
        self.limiter.release("daily_quota")
        self._running.set()
        self._set_db_status("running")

    def cancel(self, *, interrupted: bool = False) -> None:
        """Stop after the current requests; what finished is written; the run can be resumed later."""
        with self._lock:
            if self._end_status is None:
                self._end_status = "interrupted" if interrupted else "cancelled"
            timer, self._resume_timer = self._resume_timer, None
            self._stop.set()
            self._running.set()
        if timer is not None:
            timer.cancel()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished, written everything and its thread has ended; False on timeout.

        The thread's end matters: its DuckDB cursor is destroyed as the thread exits, and a process that exits
        while a daemon thread is inside that C++ destructor aborts ("FATAL: exception not rethrown", exit 134).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._done.wait(timeout):
            return False
        if threading.current_thread() is not self._thread:
            self._thread.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
        return not self._thread.is_alive() or threading.current_thread() is self._thread

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    @property
    def error(self) -> LabelingError | None:
        """The error that stopped the run, if one did."""
        return self._fatal

    def progress(self) -> Progress:
        with self._lock:
            now = self._ended_at or time.monotonic()  # a finished run's clock and rate stand still
            counts = dict(self._counts)
            paused = self._paused_total + (now - self._paused_at if self._paused_at is not None else 0.0)
            elapsed = max(now - self._started - paused, 0.0)
            while self._completions and self._completions[0] < now - RATE_WINDOW_SECONDS:
                self._completions.popleft()
            window = min(RATE_WINDOW_SECONDS, elapsed)
            rate = len(self._completions) / window if window > 0.5 else 0.0
            status, message, cost = self._status, self._message, self._cost
            failures = dict(self._failure_kinds)
        total, done, failed = counts.get("total", 0), counts.get("done", 0), counts.get("failed", 0)
        remaining = max(total - done - failed, 0)
        eta = remaining / rate if rate > 0 and status == "running" else (0.0 if remaining == 0 else None)
        return Progress(
            run_id=self.run_id,
            mode=self.request.mode,
            status=status,
            message=message,
            simulated=self.simulated,
            datasets=self.request.datasets,
            model=self.annotator.model,
            total=total,
            done=done,
            failed=failed,
            requests=counts.get("requests", 0),
            retries=counts.get("retries", 0),
            rate_limited=counts.get("rate_limited", 0),
            tokens_in=counts.get("tokens_in", 0),
            tokens_out=counts.get("tokens_out", 0),
            tokens_thinking=counts.get("tokens_thinking", 0),
            cost_usd=cost,
            elapsed_s=elapsed,
            images_per_s=rate,
            eta_s=eta,
            failures_by_kind=failures,
            holds=tuple(self.limiter.holds()) if status in ("running", "paused") else (),
            notices=tuple(self.annotator.notices()),
            price_known=self.annotator.price_known,
        )

    # -- the run (job thread) ------------------------------------------------------------------------

    def _run(self) -> None:
        images.DECODE_BUDGET.resize(self.settings.decode_budget_megapixels)
        self._recorder.start()
        with self._lock:
            self._status = "running"
        self._set_db_status("running")
        workers = [
            threading.Thread(target=self._work_loop, args=(i == 0,), name=f"job-{self.run_id}-worker-{i}", daemon=True)
            for i in range(min(self._workers_count, max(len(self._items), 1)))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        self._recorder.close()
        try:
            self.annotator.close()
        except Exception:  # closing a pool must never hide the run's outcome
            log.debug("closing the annotator failed", exc_info=True)
        self._finish()

    def _finish(self) -> None:
        progress = self.progress()
        if self._fatal is not None:
            status, message = "failed", str(self._fatal)
        elif self._end_status is not None:
            status = self._end_status
            message = (
                f"Stopped after {progress.done:,} of {progress.total:,} images; resume it (or run the "
                "same command again) to continue."
            )
        else:
            status = "completed"
            message = f"{progress.done:,} images done, {progress.failed:,} failed."
            if progress.failed:
                message += ' Retry the failed ones with "retry failed" (--retry-failed).'
        with self._lock:
            self._status, self._message = status, message
            self._ended_at = time.monotonic()
        self._set_db_status(status, message)
        self._done.set()

    def _set_db_status(self, status: str, message: str | None = None) -> None:
        try:
            with self._db_lock:
                self.store.set_run_status(self.run_id, status, message)
        except Exception:  # the status is also in memory; a locked or closed DB must not kill the thread
            log.exception("could not record the status of run %s", self.run_id)

    def _set_fatal(self, error: LabelingError) -> None:
        with self._lock:
            if self._fatal is None:
                self._fatal = error
                self._message = str(error)
        log.info("run %s stops: %s", self.run_id, error)  # the page or the CLI shows it; the log file keeps it
        with self._lock:
            self._stop.set()
            self._running.set()
        self._gate.set()

    # -- workers -------------------------------------------------------------------------------------

    def _take(self) -> WorkItem | None:
        with self._lock:
            if self._next_item >= len(self._items):
                return None
            item = self._items[self._next_item]
            self._next_item += 1
            return item

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
            item = self._take()
            if item is None:
                return
            try:
                outcome = self._process(item)
            except _Stopped:
                return
            except AnnotatorError as exc:
                self._set_fatal(exc)
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
            self._record(outcome)

    def _record(self, outcome: Outcome) -> None:
        now = time.monotonic()
        with self._lock:
            if outcome.failure is None or outcome.failure[1] != "internal":
                self._consecutive_internal = 0
            self._counts["done" if outcome.done else "failed"] += 1
            self._completions.append(now)
            if outcome.failure is not None:
                self._failure_kinds[outcome.failure[1]] += 1
        self._recorder.put(outcome)

    def _written(self, counts: Counter[str], cost: float) -> None:
        """A batch reached the database: its tokens and cost count from now on (done/failed already did)."""
        with self._lock:
            for name in ("tokens_in", "tokens_out", "tokens_thinking"):
                self._counts[name] += counts[name]
            self._cost += cost

    def _fail_write(self, error: Exception) -> None:
        self._set_fatal(
            LabelingError(
                f"Results could not be written to the database ({error}): the run stopped; "
                "fix the problem and run again to resume."
            )
        )

    def _process(self, item: WorkItem) -> Outcome:
        outcome = Outcome(item.image_id)
        if item.needs == "categorize":
            description = json.loads(item.description or "{}")
            self._annotate(
                outcome,
                "categorize",
                lambda: self.annotator.categorize(description, self._categories, self.settings.max_categories),
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
                    prepared.data, prepared.mime_type, self._categories, self.settings.max_categories
                ),
            )
            return outcome
        described = self._annotate(outcome, "model", lambda: self.annotator.describe(prepared.data, prepared.mime_type))
        if described is not None and described.description is not None:
            description = described.description
            self._annotate(
                outcome,
                "categorize",
                lambda: self.annotator.categorize(description, self._categories, self.settings.max_categories),
            )
        return outcome

    def _prepare(self, item: WorkItem, outcome: Outcome) -> images.PreparedImage | None:
        source = self._sources.get(item.dataset_id)
        if source is None or not item.location:
            outcome.failure = (
                "read",
                "no_source",
                "The dataset has no image source for this name: import it again with a folder or an S3 prefix.",
            )
            return None
        try:
            data = source.read(item.location)
        except SourceError as exc:
            if getattr(exc, "fatal", False):  # S3 credentials, permissions, bucket: a person must act
                raise AnnotatorError(str(exc)) from exc
            outcome.failure = ("read", "transient" if getattr(exc, "transient", False) else "unreadable", str(exc))
            return None
        try:
            prepared = images.prepare(data, max_size=self.settings.image_max_size, thumb_size=THUMB_SIZE)
        except ImageError as exc:
            outcome.failure = ("prepare", exc.kind, str(exc))
            return None
        outcome.facts = (
            prepared.size_bytes,
            prepared.original_format,
            prepared.original_width,
            prepared.original_height,
        )
        write_thumbnail(self.settings.cache_dir, item.image_id, prepared.thumbnail)
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
        self._set_fatal(
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
            self._set_fatal(
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
            self._count("requests")
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
        self.resume()

    def _count_extra(self, outcome: Outcome) -> None:
        """Probes and re-sends the annotator made on its own count as requests, and cost what they cost."""
        requests, usage, cost = self.annotator.drain_extra()
        if requests:
            outcome.requests += requests
            self._count("requests", requests)
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
            self._count("rate_limited")
        if exc.kind == "daily_quota":
            self._pause_for_daily_quota(exc)
            return
        if exc.kind in SHEDDING:
            self._count("retries")
            self._shed(exc)
            return
        budget = "empty" if exc.kind == "empty" else "other"
        attempts[budget] += 1
        if attempts[budget] > (EMPTY_RETRIES if budget == "empty" else self.settings.max_retries):
            raise exc
        self._count("retries")
        delay = backoff_delay(
            attempts[budget], self.settings.retry_backoff_seconds, exc.retry_after, self.settings.max_backoff_seconds
        )
        log.info("retrying image %s in %.1f s after %s", image_id, delay, exc)
        if self._stop.wait(delay):
            raise _Stopped from exc

    def _shed(self, exc: RetryableError) -> None:
        """A shared hold for every worker: the server's delay, else a backoff that grows while it lasts."""
        now = time.monotonic()
        with self._lock:
            if not self.limiter.holding(exc.kind):  # answers to requests sent during one hold count once
                self._shed_streak += 1
            streak = self._shed_streak
            since = self._shedding_since = self._shedding_since or now
        limit = self.settings.max_hold_minutes * 60
        if limit and now - since > limit:  # 0: wait for as long as it takes
            self._set_fatal(
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
        reset = next_daily_reset()
        message = daily_quota_message(self.annotator.model, reset)
        delay = max(reset.timestamp() - time.time(), 0.0) + DAILY_RESUME_MARGIN_SECONDS
        with self._lock:
            if self._status != "running" or self._stop.is_set():  # paused by another worker, or stopping
                return
            # A quota of zero that is still there after the reset is not used up: another day would not help.
            no_quota = self._auto_resumed and quota_is_zero(str(exc))
            if not no_quota:
                self._status, self._message = "paused", message
                self._paused_at = time.monotonic()
                self._shed_streak, self._shedding_since = 0, None
                self._running.clear()  # before the hold: no worker reserves a slot at midnight
                timer = self._resume_timer = threading.Timer(delay, self._resume_after_reset)
        if no_quota:
            self._set_fatal(
                AnnotatorError(
                    f"This key has no quota for {self.annotator.model} (the 429 still says limit: 0 after the daily "
                    f"reset: {exc}): enable billing for the key's project, or choose another model."
                )
            )
            raise _Stopped from exc
        timer.daemon = True
        self.limiter.hold(delay, "daily_quota")
        timer.start()
        log.info("run %s: %s", self.run_id, message)  # the page and the CLI show it
        self._set_db_status("paused", message)

    def _sleep_between_requests(self) -> None:
        """The seed's per-request throttle: each worker pauses after each request (cut short by a stop)."""
        if self.settings.per_request_sleep_seconds:
            self._stop.wait(self.settings.per_request_sleep_seconds)

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount


def default_annotator(settings: Settings, model: str, workers: int) -> Annotator:
    """The configured provider's annotator (the provider's SDK loads here, when a run starts)."""
    return create_annotator(settings, model=model, workers=workers)


# --- the manager --------------------------------------------------------------------------------------


class JobManager:
    """The jobs of this process. Only one process can open the DuckDB file, so captioning runs left `running`
    by a process that died are marked interrupted when the manager is created."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}
        # Mirrors too: no mirror of this process has started yet, and no other process can hold the file.
        store.interrupt_stale_runs((*MODES, "mirror"))

    def start(
        self,
        request: JobRequest,
        *,
        settings: Settings | None = None,
        annotator_factory: AnnotatorFactory | None = None,
        simulated: bool = False,
    ) -> Job:
        """Plan and start a run; raises ConflictError if a running job already works on one of the datasets."""
        settings = settings or self.settings
        rows, work, list_version = plan(self.store, request, simulated=simulated)
        names = {r.name for r in rows}
        with self._lock:
            for job in self._jobs.values():
                busy = names & set(job.request.datasets)
                if not job.finished and busy:
                    raise ConflictError(
                        f"Run #{job.run_id} is already working on {', '.join(sorted(busy))}: "
                        "wait for it, or pause or cancel it first."
                    )
            model = request.model or settings.caption_model
            workers = request.num_workers or settings.num_workers
            rpm = settings.requests_per_minute if request.requests_per_minute is None else request.requests_per_minute
            annotator = (annotator_factory or default_annotator)(settings, model, workers)
            if simulated:
                annotator.simulated = True
            counts = self._counts_for(request, rows, len(work), annotator, list_version, workers, rpm, settings)
            run_id = int(counts.pop("run_id"))
            sources = {r.id: source_for_dataset(r, settings) for r in rows}
            job = Job(
                self.store,
                settings,
                request,
                annotator,
                run_id,
                work_items(work),
                sources,
                self.store.categories(),
                list_version,
                counts,
            )
            self._jobs[run_id] = job
        return job.start()

    def _counts_for(
        self,
        request: JobRequest,
        rows: list[Dataset],
        work: int,
        annotator: Annotator,
        list_version: int,
        workers: int,
        rpm: int,
        settings: Settings,
    ) -> dict[str, Any]:
        """Create the run row (or reopen the resumed one) and return its starting counters."""
        if request.resume_run is not None:
            run = self.store.run(request.resume_run)
            previous = {
                k: getattr(run, k)
                for k in ("done", "failed", "requests", "tokens_in", "tokens_out", "tokens_thinking", "cost_usd")
            }
            total = run.done + run.failed + work
            self.store.set_run_total(request.resume_run, total)
            return {**previous, "total": total, "run_id": request.resume_run}
        public = settings.public_dict()
        run_settings = {
            "mode": request.mode,
            "model": annotator.model,
            "datasets": [r.name for r in rows],
            "num_workers": workers,
            "requests_per_minute": rpm,
            "retry_failed": request.retry_failed,
            "image_ids": list(request.image_ids) if request.image_ids is not None else None,
            "prompt_version": annotator.prompt_version,
            "category_list_version": list_version,
            "max_categories": settings.max_categories,
            "image_max_size": settings.image_max_size,
            "gemini_base_url": public.get("gemini_base_url", ""),
            "simulated": annotator.simulated,
        }
        run_id = self.store.create_run(
            request.mode,
            [r.id for r in rows],
            run_settings,
            total=work,
            simulated=annotator.simulated,
            status="running",
        )
        return {"total": work, "run_id": run_id}

    def resume(self, run_id: int, **options: Any) -> Job:
        """Resume a paused job of this process, or continue a stopped run (same settings, same run id)."""
        with self._lock:
            job = self._jobs.get(run_id)
        if job is not None and not job.finished:
            job.resume()
            return job
        run = self.store.run(run_id)
        stored = run.settings
        request = JobRequest(
            datasets=tuple(stored.get("datasets") or ()),
            mode=str(stored.get("mode", run.kind)),
            model=stored.get("model"),
            num_workers=stored.get("num_workers"),
            requests_per_minute=stored.get("requests_per_minute"),
            retry_failed=bool(stored.get("retry_failed")),
            resume_run=run_id,
            image_ids=tuple(stored["image_ids"]) if stored.get("image_ids") is not None else None,
        )
        return self.start(request, **options)

    def job(self, run_id: int) -> Job | None:
        with self._lock:
            return self._jobs.get(run_id)

    def jobs(self) -> list[Job]:
        """Every job this process started, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: job.run_id, reverse=True)

    def active(self) -> list[Job]:
        return [job for job in self.jobs() if not job.finished]

    def pause(self, run_id: int) -> None:
        job = self.job(run_id)
        if job is not None:
            job.pause()

    def cancel(self, run_id: int) -> None:
        job = self.job(run_id)
        if job is not None:
            job.cancel()

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel every job and wait for their last writes."""
        for job in self.active():
            job.cancel(interrupted=True)
        deadline = time.monotonic() + timeout
        for job in self.jobs():
            job.wait(max(deadline - time.monotonic(), 0.0))


def iter_progress(job: Job, interval: float = 0.25) -> Iterator[Progress]:
    """Snapshots of a job every `interval` seconds until it has finished (the last one is final)."""
    while not job.wait(interval):
        yield job.progress()
    yield job.progress()
