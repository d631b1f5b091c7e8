"""The captioning runner: a Job per run, with pause / resume / cancel, progress, recording and resume.

A `Job` works through a list of images derived from the database (`labeling.planning`): every image found
without a description for the current prompt version, or without categories for the current category list.
Its `Executor` gets the answers: `labeling.sync_executor.SyncExecutor`, worker threads on the synchronous
API with the shared rate limit, holds and retries, or `labeling.batch_executor.BatchExecutor`, Gemini Batch
Mode (JSONL shards, uploaded, submitted and polled; `JobRequest.executor == "batch"`). Each
image's outcome goes to the run's `Recorder` (labeling.recorder), which commits them in batches with the run's
counters, so a process killed at any moment loses only the last batch and the next run derives its work from
what was committed.

`JobManager` owns the jobs of a process (the app keeps one in `st.cache_resource`), so a page can start,
pause, resume, cancel and poll a job that outlives the page, the session and the browser tab.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from labeling import images
from labeling.annotators.base import Annotator
from labeling.annotators.providers import create_annotator
from labeling.categories import Category
from labeling.dataset_sources import source_for_dataset
from labeling.errors import AnnotatorError, ConflictError, LabelingError
from labeling.pacing import REAL_CLOCK, Clock, Hold, Timer
from labeling.planning import JobRequest, WorkItem, plan, work_items
from labeling.recorder import Outcome, Recorder
from labeling.records import Dataset
from labeling.settings import Settings
from labeling.sources import ImageSource
from labeling.store import Store
from labeling.sync_executor import SyncExecutor
from labeling.vocabulary import RUN_KINDS
from labeling.wording import count

log = logging.getLogger(__name__)

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


class Executor(Protocol):
    """A way to get a run's answers: it takes work items from the job (`take`), hands each image's Outcome
    to `record`, and returns when the list is done or `stop_event` is set. The synchronous worker threads
    (labeling.sync_executor) are one; Gemini Batch Mode (labeling.batch_executor) is the other."""

    def execute(self) -> None: ...

    def holds(self) -> list[Hold]:
        """Waits the service imposed that are in force (shown on the progress card)."""
        ...

    def resumed(self) -> None:
        """The run was resumed after a pause."""
        ...


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
        clock: Clock = REAL_CLOCK,
    ) -> None:
        self.store = store
        self.clock = clock  # the executor's pacing and the daily-quota resume timer read it
        self.settings = settings
        self.request = request
        self.annotator = annotator
        self.run_id = run_id
        self.simulated = annotator.simulated
        self._items = items
        self.sources = sources
        self.categories = list(categories)
        self._list_version = list_version
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()  # run-row writes from the writer and from status changes never overlap
        self._next_item = 0
        self._status = "starting"
        self._message = ""
        self._counts: Counter[str] = Counter({k: v for k, v in counts.items() if k != "cost_usd"})
        self._handled_before = self._counts["done"] + self._counts["failed"]  # a resumed run's earlier images
        self._cost = float(counts.get("cost_usd", 0.0))
        self._failure_kinds: Counter[str] = Counter()
        self._completions: deque[float] = deque()
        self._started = time.monotonic()
        self._ended_at: float | None = None
        self._paused_total = 0.0
        self._paused_at: float | None = None
        self._resume_timer: Timer | None = None
        self.stop_event = self._stop = threading.Event()  # cancel, interrupt or fatal: executors stop sending
        self.running_event = self._running = threading.Event()  # cleared while paused
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
        rpm = settings.requests_per_minute if request.requests_per_minute is None else request.requests_per_minute
        workers = request.num_workers or settings.num_workers
        self.executor: Executor
        if request.batch:
            from labeling.batch_executor import BatchExecutor  # its modules load only for batch runs

            self.executor = BatchExecutor(self, workers)
        else:
            self.executor = SyncExecutor(self, workers, rpm)
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
        if timer is not None:
            timer.cancel()
        self.executor.resumed()
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

    @property
    def cancelled_by_user(self) -> bool:
        """A person pressed Cancel (not Ctrl+C or a shutdown, which leave remote work running to resume)."""
        with self._lock:
            return self._end_status == "cancelled"

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
            ended = self._ended_at is not None
        total, done, failed = counts.get("total", 0), counts.get("done", 0), counts.get("failed", 0)
        if ended:  # a finished run's rate: what it handled over the time it was active, not the last window
            handled = done + failed - self._handled_before
            rate = handled / elapsed if elapsed > 0 else 0.0
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
            holds=tuple(self.executor.holds()) if status in ("running", "paused") else (),
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
        try:
            self.executor.execute()
        except Exception as exc:  # a bug or an unexpected error must end the run, never leave it hanging
            log.exception("run %s: the executor failed", self.run_id)
            self.fail(
                AnnotatorError(
                    f"The run stopped on an unexpected error ({type(exc).__name__}: {exc}): "
                    "see logs/labeling.log, then resume it to continue."
                )
            )
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
                f"Stopped after {progress.done:,} of {count(progress.total, 'image')}; resume it (or run the "
                "same command again) to continue."
            )
        else:
            status = "completed"
            message = f"{count(progress.done, 'image')} done, {progress.failed:,} failed."
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

    def fail(self, error: LabelingError) -> None:
        """Stop the run with `error` (bad key, a database that cannot be written, ...): it ends as failed."""
        with self._lock:
            if self._fatal is None:
                self._fatal = error
                self._message = str(error)
        log.info("run %s stops: %s", self.run_id, error)  # the page or the CLI shows it; the log file keeps it
        with self._lock:
            self._stop.set()
            self._running.set()

    # -- what an executor uses (its threads) ---------------------------------------------------------

    def take(self) -> WorkItem | None:
        with self._lock:
            if self._next_item >= len(self._items):
                return None
            item = self._items[self._next_item]
            self._next_item += 1
            return item

    def items_left(self) -> int:
        with self._lock:
            return len(self._items) - self._next_item

    @property
    def running(self) -> bool:
        """Running, neither paused nor stopping."""
        with self._lock:
            return self._status == "running" and not self._stop.is_set()

    def pause_until(self, delay: float, message: str, resume: Callable[[], None]) -> bool:
        """Pause by itself (the daily quota is used up) and call `resume` in `delay` seconds; False when the run
        was not running (another worker paused it first, or it is stopping)."""
        with self._lock:
            if self._status != "running" or self._stop.is_set():
                return False
            self._status, self._message = "paused", message
            self._paused_at = time.monotonic()
            self._running.clear()
            self._resume_timer = self.clock.call_later(delay, resume)  # `resume` takes the lock: it waits for us
        log.info("run %s: %s", self.run_id, message)  # the page and the CLI show it
        self._set_db_status("paused", message)
        return True

    def record(self, outcome: Outcome) -> None:
        now = time.monotonic()
        with self._lock:
            self._counts["done" if outcome.done else "failed"] += 1
            self._completions.append(now)
            if outcome.failure is not None:
                self._failure_kinds[outcome.failure[1]] += 1
        self._recorder.put(outcome)

    def flush_records(self, timeout: float | None = None) -> bool:
        """Block until every outcome recorded so far is committed (Batch Mode, before it deletes a shard)."""
        return self._recorder.flush(timeout)

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def _written(self, counts: Counter[str], cost: float) -> None:
        """A batch reached the database: its tokens and cost count from now on (done/failed already did)."""
        with self._lock:
            for name in ("tokens_in", "tokens_out", "tokens_thinking"):
                self._counts[name] += counts[name]
            self._cost += cost

    def _fail_write(self, error: Exception) -> None:
        self.fail(
            LabelingError(
                f"Results could not be written to the database ({error}): the run stopped; "
                "fix the problem and run again to resume."
            )
        )


def default_annotator(settings: Settings, model: str, workers: int) -> Annotator:
    """The configured provider's annotator (the provider's SDK loads here, when a run starts)."""
    return create_annotator(settings, model=model, workers=workers)


# --- the manager --------------------------------------------------------------------------------------


class JobManager:
    """The jobs of this process. Only one process can open the DuckDB file, so captioning runs left `running`
    by a process that died are marked interrupted when the manager is created."""

    def __init__(
        self, store: Store, settings: Settings, *, interrupt_stale: bool = True, clock: Clock = REAL_CLOCK
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock  # the runs' pacing and daily-quota timer: tests pass a fake one
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}
        if interrupt_stale:  # the app does it once when it opens the file, before a command can start a run
            store.interrupt_stale_runs(RUN_KINDS)

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
                self.clock,
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
            "executor": request.executor,
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
            executor=str(stored.get("executor") or "sync"),
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
