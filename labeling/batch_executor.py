"""The Batch Mode executor: a run's answers from Gemini batch jobs instead of synchronous requests.

One of the ways a run gets its answers (labeling.jobs.Executor), beside the worker threads. The Job owns the
work list, control, progress and recording as for any run; this executor writes the work as JSONL shards
(labeling.batch_shards), uploads each one resumably (labeling.batch_upload), creates one batch job a shard
through the SDK, polls the jobs, and reads each result file (labeling.batch_results) into the Outcomes the
recorder writes. Every step starts from the shard's row in `batch_shards`, so a process killed anywhere resumes
where it was when the same command runs again:

    written    -> uploading   an upload session was opened (its URL is stored)
    uploading  -> uploaded    every byte is on the server (resumed from the offset the server reports)
    uploaded   -> creating    about to create the job (a crash here: the job is looked up by display name
    creating   -> submitted     before one is created, so a shard never gets two jobs)
    submitted  -> succeeded   the job is done (its result file is named)
    submitted  -> ended       the job failed, expired or was cancelled
    succeeded / ended -> recorded   answers recorded once each; lines without an answer go out again as a new
                                    shard (at most MAX_ATTEMPTS times, then they fail); remote files deleted

At most `batch_max_jobs` shards hold a remote file or job at once (the Files API keeps 20 GB a project).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx2
from google.genai import errors

from labeling.annotators.base import RetryableError
from labeling.annotators.gemini import GeminiAnnotator
from labeling.batch_results import read_results, stage_of
from labeling.batch_shards import LineMaker, ShardWriter, shard_folder, write_work
from labeling.batch_upload import ResumableUploader, UploadGone
from labeling.errors import AnnotatorError
from labeling.pacing import Hold, backoff_delay
from labeling.planning import per_request
from labeling.recorder import Outcome
from labeling.store.batches import BatchShard

if TYPE_CHECKING:
    from labeling.jobs import Job

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 3  # a line goes out at most this many times (an expired or failed job, a transient line error)
HOLDING = ("uploading", "uploaded", "creating", "submitted", "succeeded", "ended")  # a remote file or job
ENQUEUED = ("uploading", "uploaded", "creating", "submitted")  # its job holds (or will hold) enqueued tokens
SUCCEEDED = ("JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED")
UNSUCCESSFUL = ("JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_EXPIRED")
_TRANSIENT_LIMIT = 10  # transient errors in a row (network, 5xx) before the run stops, resumable
_LIST_LIMIT = 1000  # jobs looked through for one created just before a crash


class BatchExecutor:
    """Drives a run's shards through the states above until each is recorded or the job stops."""

    def __init__(self, job: Job, workers: int) -> None:
        self.job = job
        self.store = job.store
        self.settings = job.settings
        self.run_id = job.run_id
        self.workers = workers
        self.folder = shard_folder(job.settings, job.run_id, job.store.database_id())
        self._stop = job.stop_event
        self._running = job.running_event
        self._last_poll: dict[int, float] = {}
        self._tokens_per_line: dict[str, float] = {}
        self._database_id = job.store.database_id()
        self._transient = 0
        self._uploader: ResumableUploader | None = None
        self._annotator: GeminiAnnotator | None = None

    # -- the Executor protocol ---------------------------------------------------------------------------

    def holds(self) -> list[Hold]:
        return []  # a batch has no shared request rate to wait out

    def resumed(self) -> None:
        """Nothing to reset: a paused batch run only stopped looking at its jobs."""

    def execute(self) -> None:
        annotator = self.job.annotator
        if not isinstance(annotator, GeminiAnnotator):
            self.job.fail(AnnotatorError("Batch Mode needs the gemini provider: set provider: gemini."))
            return
        self._annotator = annotator
        self.price = self.settings.price_for(annotator.model, batch=True)
        try:
            if self._write_new_shards():
                self._drive()
            if self.job.cancelled_by_user:
                self._cancel_remote()
        except AnnotatorError as exc:
            self.job.fail(exc)
        finally:
            if self._uploader is not None:
                self._uploader.close()

    # -- writing -------------------------------------------------------------------------------------------

    def _write_new_shards(self) -> bool:
        """The job's work items not already in a shard of the run, written as new shards; False when stopped."""
        items = []
        while (item := self.job.take()) is not None:
            items.append(item)
        in_flight = self.store.images_in_open_shards(self.run_id)
        todo = [item for item in items if item.image_id not in in_flight]
        if not todo:
            return not self._stop.is_set()
        assert self._annotator is not None
        writer = ShardWriter(self.store, self.run_id, self.folder, self._shard_limit())
        lines = LineMaker(self._annotator, self.job.categories, self.settings.max_categories)
        written = write_work(
            todo,
            lines=lines,
            writer=writer,
            sources=self.job.sources,
            settings=self.settings,
            workers=self.workers,
            record=self.job.record,
            stop=self._stop,
        )
        log.info("run %s: wrote shards %s", self.run_id, writer.registered)
        return written

    def _shard_limit(self) -> int:
        return max(int(self.settings.batch_shard_mb * 1_000_000), 1)

    # -- the loop ------------------------------------------------------------------------------------------

    def _drive(self) -> None:
        while not self._stop.is_set():
            self._running.wait()  # paused: look at nothing until resumed
            if self._stop.is_set():
                return
            shards = self.store.batch_shards(self.run_id)
            live = [shard for shard in shards if not shard.final]
            if not live:
                return
            holding = sum(shard.state in HOLDING for shard in live)
            enqueued = sum(self._tokens(shard) for shard in live if shard.state in ENQUEUED)
            progressed = full = False
            for shard in live:
                if self._stop.is_set():
                    return
                if shard.state == "written" and (
                    holding >= self.settings.batch_max_jobs or not self._fits(enqueued, shard)
                ):
                    continue  # wait for a slot: the project's storage, job and token limits are shared
                if full and shard.state == "uploaded":
                    continue  # the project just refused a job: the others' polls still go on
                try:
                    moved = self._step(shard, shards)
                except RetryableError as exc:
                    if exc.kind == "quota" and any(s.state == "submitted" for s in live):
                        # Too many jobs or enqueued tokens for the project: a running job's end frees room.
                        log.info("batch run %s: %s; waiting for a running job to end", self.run_id, exc)
                        full = True
                        continue
                    self._note_transient(exc)
                    break
                if moved:
                    self._transient = 0  # a step went through (an upload chunk, a create, a download)
                if moved and shard.state == "written":
                    holding += 1
                    enqueued += self._tokens(shard)
                progressed |= moved
            if not progressed:
                self._stop.wait(self._idle_seconds(live))

    def _tokens(self, shard: BatchShard) -> float:
        """Input tokens the shard's job enqueues: its lines times the run's expected tokens per request."""
        if shard.kind not in self._tokens_per_line:
            model = self._annotator.model if self._annotator else self.settings.caption_model
            self._tokens_per_line[shard.kind] = per_request(
                self.store, self.settings, model, shard.kind, self.job.categories
            ).tokens_in
        return shard.lines * self._tokens_per_line[shard.kind]

    def _fits(self, enqueued: float, shard: BatchShard) -> bool:
        """Whether the shard's job fits the enqueued-token budget (one job always may: nothing else would run)."""
        budget = self.settings.batch_max_enqueued_tokens
        return not budget or not enqueued or enqueued + self._tokens(shard) <= budget

    def _idle_seconds(self, live: list[BatchShard]) -> float:
        """Until the next shard is due for a look (never longer than the poll interval)."""
        poll = self.settings.batch_poll_seconds
        now = time.monotonic()
        due = [self._last_poll.get(s.shard, 0.0) + poll - now for s in live if s.state == "submitted"]
        return min([poll, *due]) if due else max(min(poll, 1.0), 0.05)

    def _note_transient(self, error: RetryableError) -> None:
        self._transient += 1
        if self._transient >= _TRANSIENT_LIMIT:
            raise AnnotatorError(
                f"Gemini Batch Mode kept failing ({error.kind}: {error}): check the network and "
                "https://aistudio.google.com/status, then run the same command again to resume."
            )
        delay = backoff_delay(
            self._transient, self.settings.retry_backoff_seconds, error.retry_after, self.settings.max_backoff_seconds
        )
        log.info("batch run %s: %s; trying again in %.1f s", self.run_id, error, delay)
        self._stop.wait(delay)

    def _step(self, shard: BatchShard, shards: list[BatchShard]) -> bool:
        """One step of one shard; True when it moved on (so the loop does not wait)."""
        steps: dict[str, Callable[[BatchShard], bool]] = {
            "written": self._start_upload,
            "uploading": self._upload,
            "uploaded": self._create,
            "creating": self._create,
            "submitted": self._poll,
        }
        if shard.state in ("succeeded", "ended"):
            return self._collect(shard, shards)
        step = steps.get(shard.state)
        if step is None:
            raise AnnotatorError(f"Shard {shard.shard} of run {self.run_id} is in an unknown state {shard.state!r}.")
        return step(shard)

    def _set(self, shard: BatchShard, **fields: Any) -> None:
        self.store.update_batch_shard(self.run_id, shard.shard, **fields)

    # -- upload --------------------------------------------------------------------------------------------

    @property
    def uploader(self) -> ResumableUploader:
        if self._uploader is None:
            self._uploader = ResumableUploader(self.settings)
        return self._uploader

    def _start_upload(self, shard: BatchShard) -> bool:
        url = self.uploader.start(shard.bytes, shard.display_name(self._database_id))
        self._set(shard, state="uploading", upload_url=url, uploaded_bytes=0)
        return True

    def _upload(self, shard: BatchShard) -> bool:
        assert shard.upload_url is not None
        try:
            status = self.uploader.query(shard.upload_url)
            if status.status == "final":
                name = (status.file or {}).get("name")
                if name:  # finished before the last kill, the answer was lost
                    self._set(shard, state="uploaded", file_name=name, uploaded_bytes=shard.bytes)
                    return True
                raise UploadGone("the upload is final but the server names no file")
            file = self.uploader.send(
                shard.upload_url,
                Path(shard.path),
                status.received,
                confirmed=lambda offset: self._set(shard, uploaded_bytes=offset),
                stop=self._stop,
            )
        except UploadGone as exc:
            log.info("shard %s: %s; uploading it again", shard.shard, exc)
            self._set(shard, state="written", upload_url=None, uploaded_bytes=0)
            return True
        if file is None:
            return False  # stopped between chunks: the next run continues from the stored offset
        name = file.get("name")
        if not name:
            raise AnnotatorError("The Files API finished an upload without naming the file: check gemini_base_url.")
        self._set(shard, state="uploaded", file_name=name, uploaded_bytes=shard.bytes)
        return True

    # -- the job -------------------------------------------------------------------------------------------

    def _create(self, shard: BatchShard) -> bool:
        assert self._annotator is not None and shard.file_name is not None
        client = self._annotator.client
        name = shard.display_name(self._database_id)
        # Only after a crash or an unclear answer can a job exist that we did not hear about: look for it then.
        found = self._find_job(name) if shard.state == "creating" else None
        if found is None:
            self._set(shard, state="creating")
            try:
                found = self._sdk(
                    lambda: client.batches.create(
                        model=self._annotator.model if self._annotator else "",
                        src=shard.file_name,
                        config={"display_name": name},
                    )
                )
            except RetryableError as exc:
                if exc.kind == "quota":  # refused outright: no job was made, so the next try needs no search
                    self._set(shard, state="uploaded")
                raise
            except _NotFound:
                # The input file expired (48 h) or was deleted while the shard waited: upload it again.
                log.info("run %s shard %s: its input file is gone; uploading again", self.run_id, shard.shard)
                self._set(shard, state="written", upload_url=None, uploaded_bytes=0, file_name=None)
                return True
        self._set(
            shard,
            state="submitted",
            batch_name=found.name,
            job_state=_state(found),
            submitted_at=dt.datetime.now(dt.UTC).replace(tzinfo=None),
        )
        self._last_poll[shard.shard] = time.monotonic()
        return True

    def _find_job(self, display_name: str) -> Any:
        assert self._annotator is not None
        client = self._annotator.client

        def look() -> Any:
            for seen, job in enumerate(client.batches.list(config={"page_size": 100})):
                if job.display_name == display_name:
                    return job
                if seen >= _LIST_LIMIT:
                    break
            return None

        return self._sdk(look)

    def _poll(self, shard: BatchShard) -> bool:
        assert self._annotator is not None and shard.batch_name is not None
        now = time.monotonic()
        if now - self._last_poll.get(shard.shard, 0.0) < self.settings.batch_poll_seconds:
            return False
        self._last_poll[shard.shard] = now
        client = self._annotator.client
        try:
            job = self._sdk(lambda: client.batches.get(name=shard.batch_name))
        except _NotFound:
            self._set(shard, state="ended", job_state="NOT_FOUND", error="the batch job is gone")
            return True
        state = _state(job)
        if state in SUCCEEDED or state in UNSUCCESSFUL:
            dest = getattr(job, "dest", None)
            error = getattr(job, "error", None)
            self._set(
                shard,
                state="succeeded" if state in SUCCEEDED else "ended",
                job_state=state,
                result_file=getattr(dest, "file_name", None),
                error=getattr(error, "message", None) if error is not None else None,
            )
            return True
        if state != shard.job_state:
            self._set(shard, job_state=state)
        self._report_if_stuck(shard, state)
        return False

    def _report_if_stuck(self, shard: BatchShard, state: str) -> None:
        if shard.submitted_at is None or not self.settings.batch_stuck_hours:
            return
        age = dt.datetime.now(dt.UTC).replace(tzinfo=None) - shard.submitted_at
        hours = age.total_seconds() / 3600
        if hours >= self.settings.batch_stuck_hours and not (shard.error or "").startswith("stuck"):
            message = (
                f"stuck: {state} for {hours:.0f} h (more than batch.stuck_hours); still polled. Cancel it in AI "
                "Studio to have its lines sent again."
            )
            log.warning("run %s shard %s %s", self.run_id, shard.shard, message)
            self._set(shard, error=message)

    # -- results -------------------------------------------------------------------------------------------

    def _collect(self, shard: BatchShard, shards: list[BatchShard]) -> bool:
        """Record the answers of a finished job once each, send the unanswered lines again, clean up."""
        assert self._annotator is not None
        client = self._annotator.client
        results = self.folder / f"shard-{shard.shard:05d}.results.jsonl"
        if shard.result_file and not results.exists():
            part = results.with_name(results.name + ".part")
            try:
                self._sdk(lambda: client.files.download(file=shard.result_file, destination=str(part)))
            except _NotFound:
                log.warning("run %s shard %s: the result file %s is gone", self.run_id, shard.shard, shard.result_file)
            else:
                os.replace(part, results)
        ids = set(shard.image_ids)
        answered = self.store.recorded_in_run(self.run_id, ids)  # recorded before a crash: never twice
        # A job the person cancelled was not the service failing: its lines go again without using up an attempt.
        cancelled = (shard.job_state or "").endswith("CANCELLED")
        last_attempt = shard.attempt >= MAX_ATTEMPTS and not cancelled
        if results.exists():
            descriptions = self.store.current_descriptions(ids - answered) if shard.kind == "categorize" else {}
            for line in read_results(
                results,
                kind=shard.kind,
                expected=ids,
                skip=answered,
                annotator=self._annotator,
                categories=self.job.categories,
                max_categories=self.settings.max_categories,
                descriptions=descriptions,
                price=self.price,
                last_attempt=last_attempt,
            ):
                if line.outcome is not None:
                    self.job.count("requests")
                    self.job.record(line.outcome)
                    answered.add(line.image_id)
        missing = ids - answered
        if missing:
            self._resend_or_fail(shard, shards, missing, last_attempt)
        if not self.job.flush_records():
            return False
        self._delete_remote(shard)
        done, failed = self.store.outcome_counts(self.run_id, ids)
        self._set(shard, state="recorded", done=done, failed=failed)
        for path in (Path(shard.path), results):
            path.unlink(missing_ok=True)
        return True

    def _resend_or_fail(self, shard: BatchShard, shards: list[BatchShard], missing: set[int], last: bool) -> None:
        """Lines without an answer: a new shard with just those lines, or, after MAX_ATTEMPTS, failures."""
        elsewhere = {i for other in shards if other.shard != shard.shard and not other.final for i in other.image_ids}
        missing -= elsewhere  # already sent again before a crash
        if not missing:
            return
        source = Path(shard.path)
        reason = (shard.job_state or "missing").removeprefix("JOB_STATE_").lower()
        if last or not source.exists():
            for image_id in sorted(missing):
                message = (
                    f"No answer after {shard.attempt} batch job(s) (the last one ended {reason}"
                    + (f": {shard.error}" if shard.error else "")
                    + "); run again with --retry-failed."
                )
                self.job.record(Outcome(image_id, failure=(stage_of(shard.kind), f"batch_{reason}", message)))
            return
        writer = ShardWriter(
            self.store,
            self.run_id,
            self.folder,
            self._shard_limit(),
            attempt=shard.attempt + (0 if (shard.job_state or "").endswith("CANCELLED") else 1),
            resubmit_of=shard.shard,
        )
        with source.open("rb") as handle:
            for raw in handle:
                key = _key_of(raw)
                if key is not None and key in missing:
                    writer.add(shard.kind, key, raw.decode("utf-8"))
        writer.close()
        log.info(
            "run %s shard %s: %d lines sent again as %s", self.run_id, shard.shard, len(missing), writer.registered
        )

    def _cancel_remote(self) -> None:
        """Cancel the run's jobs in flight: Cancel stops the spending too. A resume resends what has no answer."""
        assert self._annotator is not None
        client = self._annotator.client
        for shard in self.store.batch_shards(self.run_id):
            if shard.state != "submitted" or not shard.batch_name:
                continue
            name = shard.batch_name
            try:
                self._sdk(lambda name=name: client.batches.cancel(name=name))  # type: ignore[misc]
            except (RetryableError, _NotFound, AnnotatorError) as exc:  # best effort: the job may have just ended
                log.warning("batch run %s: could not cancel %s: %s", self.run_id, name, exc)
            else:
                log.info("batch run %s: cancelled %s", self.run_id, name)

    def _delete_remote(self, shard: BatchShard) -> None:
        """The input file (and the results) leave the project's 20 GB of storage once recorded."""
        assert self._annotator is not None
        client = self._annotator.client
        for name in (shard.file_name, shard.result_file):
            if not name:
                continue
            try:
                self._sdk(functools.partial(client.files.delete, name=name))
            except (_NotFound, RetryableError, AnnotatorError) as exc:  # it expires in 48 h anyway
                log.info("could not delete %s: %s", name, exc)

    # -- SDK calls -----------------------------------------------------------------------------------------

    def _sdk(self, call: Callable[[], T]) -> T:
        """One SDK call, its errors as this module's kinds: transient (RetryableError), gone, or fatal."""
        try:
            answer = call()
            self._transient = 0  # the service answered: a run of transient errors is over
            return answer
        except errors.APIError as exc:
            code = int(exc.code or 0)
            # A file deleted or expired answers 403 "... or it may not exist", not 404.
            if code == 404 or (code == 403 and "may not exist" in str(exc.message)):
                raise _NotFound(str(exc)) from exc
            if code == 429:
                raise RetryableError(f"Gemini answered 429 ({exc.message})", "quota") from exc
            if code in (408, 499) or code >= 500:
                raise RetryableError(f"Gemini answered {code} ({exc.message})", "server_error") from exc
            raise AnnotatorError(
                f"Gemini Batch Mode refused a request ({code} {exc.status}: {exc.message}): check the key, the "
                "model and gemini_api_version, then run the same command again to resume."
            ) from exc
        except httpx2.TimeoutException as exc:
            raise RetryableError(f"A Batch Mode request timed out ({type(exc).__name__}).", "timeout") from exc
        except httpx2.TransportError as exc:
            raise RetryableError(
                f"The connection to Gemini failed ({type(exc).__name__}: {exc}).", "transport"
            ) from exc


class _NotFound(Exception):
    """The job or file is no longer on the server."""


def _state(job: Any) -> str:
    state = getattr(job, "state", None)
    return str(getattr(state, "value", state) or "JOB_STATE_UNSPECIFIED")


def _key_of(raw: bytes) -> int | None:
    """The key of one of our lines without parsing the whole line (they all begin `{"key":"<id>"`)."""
    head = raw[:40]
    start = head.find(b'"key":"')
    if start < 0:
        return None
    start += 7
    end = head.find(b'"', start)
    try:
        return int(head[start:end])
    except ValueError:
        return None
