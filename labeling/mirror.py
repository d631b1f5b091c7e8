"""Mirroring an S3 prefix to a local folder, as the seed's download.py did, done right.

- Parallel: worker threads share the source's one boto3 client, whose pool is sized to the workers.
- Atomic: each object is written to a temp file in its folder, then renamed; a kill leaves no half file under a
  real name (temp files of a killed run are removed by the next run).
- Resumable from the database: `mirror_items` records what finished (in batches, one statement each); a file
  already in the folder with the listed size is never fetched again, so a run stopped by Ctrl+C, kill -9 or an
  expired SSO session picks up where it stopped.
- Safe: a key that would land outside the folder (`..`, absolute) is refused and reported.
- Observable: a log per run in OUTPUT_DIR/logs/download_YYYYMMDD_HHMMSS.log, a tqdm bar, a progress callback.

Batch rule (`plan_batch`, the seed's batch_download auto-configuration): a CSV named `REAL_<anything>.csv` or
`GEN_<anything>.csv` becomes dataset `REAL_<anything>` with label REAL, prefix `datalake_training/REAL/` and
output folder `<output_root>/REAL/` (GEN likewise); the prefix template can be changed; other files are skipped.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from labeling.errors import InputError, SourceError
from labeling.files import is_temp_file, write_atomically
from labeling.names import rejection_reason
from labeling.pool import Done, run_pool
from labeling.s3 import S3Error, S3Source
from labeling.s3_analysis import PlannedFile, S3Analysis
from labeling.sources import safe_join
from labeling.store import Store
from labeling.vocabulary import DATALAKE_PREFIX_TEMPLATE, MIRROR_WORKERS
from labeling.wording import count

ITEM_RETRIES = 2  # on top of botocore's own retries: a throttled or dropped object is tried again after a pause
FLUSH_SECONDS = 2.0
FLUSH_ITEMS = 2000
PROGRESS_SECONDS = 0.2  # progress callbacks (a page's bar) at most this often, and once at the end
BATCH_LABELS = ("REAL", "GEN")


@dataclass(frozen=True)
class MirrorProgress:
    done: int
    failed: int
    total: int
    bytes_done: int
    current: str = ""


@dataclass
class MirrorReport:
    """What one mirror run did. `failures` are (key, message); they are retried by the next run."""

    output_dir: str
    planned: int
    fetched: int = 0
    failed: int = 0
    already_local: int = 0
    bytes_fetched: int = 0
    seconds: float = 0.0
    run_id: int | None = None
    log_file: str | None = None
    status: str = "running"
    message: str | None = None
    failures: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "output_dir": self.output_dir,
            "planned": self.planned,
            "fetched": self.fetched,
            "failed": self.failed,
            "already_local": self.already_local,
            "bytes_fetched": self.bytes_fetched,
            "seconds": round(self.seconds, 3),
            "run_id": self.run_id,
            "log_file": self.log_file,
            "status": self.status,
            "message": self.message,
        }


class MirrorStopped(SourceError):
    """A run stopped by an error that needs a person (credentials, permissions, bucket); its report is kept."""

    def __init__(self, message: str, report: MirrorReport) -> None:
        super().__init__(message)
        self.report = report


class _RunLog:
    """The per-run log file in OUTPUT_DIR/logs/. Written by the coordinating thread only."""

    def __init__(self, output_dir: Path) -> None:
        folder = output_dir / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
        path = folder / f"download_{stamp}.log"
        counter = 1
        while path.exists():  # two runs in the same second keep separate logs
            counter += 1
            path = folder / f"download_{stamp}_{counter}.log"
        self.path = path
        self._handle: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed by close())

    def write(self, message: str) -> None:
        self._handle.write(f"{datetime.now().isoformat(timespec='seconds')} {message}\n")

    def flush(self) -> None:
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


def remove_temp_files(output_dir: Path) -> int:
    """Delete the temp files a killed run left in `output_dir`; returns how many."""
    removed = 0
    if not output_dir.is_dir():
        return 0
    for folder, _, files in os.walk(output_dir):
        for name in files:
            if is_temp_file(name):
                Path(folder, name).unlink(missing_ok=True)
                removed += 1
    return removed


class _Targets:
    """Where each key lands under the root, refusing `..`, absolute keys and folder links leading outside.

    Each folder is resolved once (not every file): the check costs a dict lookup per object.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._folders: dict[str, Path] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str) -> Path:
        folder, _, name = key.rpartition("/")
        with self._lock:
            resolved = self._folders.get(folder)
        if resolved is None:
            resolved = safe_join(self.root, folder) if folder else self.root
            with self._lock:
                self._folders[folder] = resolved
        problem = rejection_reason(key)
        if problem or name in {"", ".", ".."}:
            raise SourceError(
                f"Refused the key {key!r}: it {problem or 'has no file name'}, so it could point outside {self.root}."
            )
        return resolved / name


def _fetch(source: S3Source, targets: _Targets, item: PlannedFile, stop: threading.Event) -> tuple[int, str]:
    """Fetch one object into its place under the root; (bytes written, ETag)."""
    target = targets(item.key)
    for attempt in range(ITEM_RETRIES + 1):
        try:
            blob = source.get(item.key)
            break
        except S3Error as exc:
            if not exc.transient or attempt == ITEM_RETRIES or stop.is_set():
                raise
            time.sleep(2.0 * 2**attempt)
    write_atomically(target, blob.data)
    return len(blob.data), blob.etag


def mirror(
    source: S3Source,
    analysis: S3Analysis,
    *,
    store: Store | None = None,
    workers: int = MIRROR_WORKERS,
    progress: Callable[[MirrorProgress], None] | None = None,
    show_bar: bool = False,
    cancel: threading.Event | None = None,
    dataset_ids: list[int] | None = None,
) -> MirrorReport:
    """Fetch `analysis.to_fetch` into `analysis.output_dir` with `workers` threads.

    Raises MirrorStopped (with the report) when an error needs a person; KeyboardInterrupt is re-raised after the
    finished items are recorded. Failed objects are recorded and tried again by the next run. `progress` is called
    from the calling thread (safe for Streamlit elements).
    """
    if analysis.output_dir is None:
        raise InputError("Analyze with an output folder before mirroring (analyze(..., output_dir=...)).")
    root = Path(analysis.output_dir)
    try:
        root.mkdir(parents=True, exist_ok=True)
        run_log = _RunLog(root)
    except OSError as exc:
        raise InputError(f"Cannot write into {root} ({exc.strerror}): check the folder and its permissions.") from None
    cancel = cancel or threading.Event()
    stop = threading.Event()
    plan = list(analysis.to_fetch)
    report = MirrorReport(output_dir=str(root), planned=len(plan), already_local=len(analysis.already_local))
    report.log_file = str(run_log.path)
    removed = remove_temp_files(root)
    for line in analysis.summary_lines():
        run_log.write(line)
    if removed:
        run_log.write(f"removed {removed} temp files left by an interrupted run")
    run_settings = {"output_dir": str(root), "source_uri": source.uri, "workers": workers, **source.options}
    if store is not None:
        report.run_id = store.start_mirror_run(run_settings, total=len(plan), dataset_ids=dataset_ids)
        _record(
            store,
            str(root),
            source.uri,
            report.run_id,
            [(item.key, item.size, item.etag, "done", None) for item in analysis.unrecorded_local],
        )
    run_log.write(f"run {report.run_id}: fetching {len(plan):,} objects with {workers} workers")

    bar = _progress_bar(len(plan)) if show_bar else None
    started = time.perf_counter()
    targets = _Targets(root)
    batch: list[tuple[str, int | None, str | None, str, str | None]] = []
    clock = {"flush": time.monotonic(), "progress": time.monotonic()}
    fatal: S3Error | None = None
    interrupted = False

    def flush_when_due() -> None:
        if cancel.is_set():
            stop.set()
        if (
            store is not None
            and batch
            and (len(batch) >= FLUSH_ITEMS or time.monotonic() - clock["flush"] >= FLUSH_SECONDS)
        ):
            _record(store, str(root), source.uri, report.run_id, batch)
            store.update_mirror_run(_run_id(report), done=report.fetched, failed=report.failed)
            batch.clear()
            clock["flush"] = time.monotonic()
            run_log.flush()

    def finished(done: Done[PlannedFile, tuple[int, str]]) -> None:
        nonlocal fatal
        problem = _handle((done.item, done.value, done.error), report, batch, run_log)
        if isinstance(problem, S3Error):
            fatal = fatal or problem
            stop.set()
        elif problem is not None:
            raise problem
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(done.item.key[-40:], refresh=False)
        count = report.fetched + report.failed
        if progress is not None and (time.monotonic() - clock["progress"] >= PROGRESS_SECONDS or count == len(plan)):
            clock["progress"] = time.monotonic()
            progress(MirrorProgress(report.fetched, report.failed, len(plan), report.bytes_fetched, done.item.key))

    try:
        run_pool(
            plan,
            lambda item: _fetch(source, targets, item, stop),
            finished,
            workers=workers,
            stop=stop,
            tick=flush_when_due,
            name="mirror",
        )
    except KeyboardInterrupt:
        interrupted = True
        cancel.set()
        raise
    finally:
        report.seconds = time.perf_counter() - started
        if bar is not None:
            bar.close()
        if fatal is not None:
            report.status, report.message = "failed", str(fatal)
        elif interrupted:
            report.status, report.message = "interrupted", "stopped by the user"
        elif cancel.is_set():
            report.status, report.message = "cancelled", "cancelled"
        else:
            report.status = "completed"
        if store is not None:
            _record(store, str(root), source.uri, report.run_id, batch)
            store.update_mirror_run(
                _run_id(report), done=report.fetched, failed=report.failed, status=report.status, message=report.message
            )
        run_log.write(
            f"{report.status}: fetched {report.fetched:,} ({report.bytes_fetched:,} bytes), "
            f"failed {report.failed:,}, already local {report.already_local:,}, "
            f"{report.seconds:.1f} s" + (f"; {report.message}" if report.message else "")
        )
        run_log.close()
    if fatal is not None:
        raise MirrorStopped(
            f"{fatal} Stopped after {report.fetched:,} of {count(len(plan), 'file')}; finished files "
            "are kept and will not be fetched again.",
            report,
        )
    return report


_Row = tuple[str, int | None, str | None, str, str | None]  # path, size, ETag, status, error


def _handle(
    result: tuple[PlannedFile, tuple[int, str] | None, BaseException | None],
    report: MirrorReport,
    batch: list[_Row],
    run_log: _RunLog,
) -> BaseException | None:
    """Count and log one finished object; returns a fatal S3Error or an unexpected error for the caller."""
    item, fetched, error = result
    if error is None and fetched is not None:
        size, etag = fetched
        report.fetched += 1
        report.bytes_fetched += size
        batch.append((item.key, size, etag, "done", None))
        run_log.write(f"fetched {item.key} ({size:,} bytes)")
        return None
    if isinstance(error, S3Error) and error.fatal:
        return error  # not this object's fault: it stays unfinished, not failed
    if isinstance(error, SourceError | OSError):
        message = str(error) if isinstance(error, SourceError) else f"cannot write the file ({error})"
        report.failed += 1
        report.failures.append((item.key, message))
        batch.append((item.key, None, None, "failed", message))
        run_log.write(f"FAILED {item.key}: {message}")
        return None
    return error


def _run_id(report: MirrorReport) -> int:
    assert report.run_id is not None
    return report.run_id


def _record(
    store: Store,
    output_dir: str,
    source_uri: str,
    run_id: int | None,
    rows: list[tuple[str, int | None, str | None, str, str | None]],
) -> None:
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=["path", "size_bytes", "etag", "status", "error"])
    frame["size_bytes"] = frame["size_bytes"].astype("Int64")
    frame = frame.astype({"path": "object", "etag": "object", "status": "object", "error": "object"})
    store.record_mirror_items(output_dir, source_uri, run_id, frame)


def _progress_bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="file", dynamic_ncols=True, desc="Downloading")


@dataclass(frozen=True)
class BatchJob:
    """One CSV of a batch download, configured from its file name."""

    csv_file: Path
    dataset: str
    label: str
    prefix: str
    output_dir: Path


_BATCH_NAME = re.compile(r"^(?P<label>REAL|GEN)_(?P<rest>.+)\.(csv|txt)$", re.IGNORECASE)


def plan_batch(
    csv_dir: str | os.PathLike[str],
    output_root: str | os.PathLike[str] = ".",
    prefix_template: str = DATALAKE_PREFIX_TEMPLATE,
) -> tuple[list[BatchJob], list[str]]:
    """Jobs for every `REAL_*.csv` / `GEN_*.csv` in `csv_dir` (sorted), and the names of the files skipped."""
    folder = Path(csv_dir).expanduser()
    if not folder.is_dir():
        raise InputError(f"The CSV folder {folder} does not exist or is not a folder: check --csv-dir.")
    if "{label}" not in prefix_template:
        raise InputError("The prefix template must contain {label}, e.g. datalake_training/{label}/.")
    jobs: list[BatchJob] = []
    skipped: list[str] = []
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        found = _BATCH_NAME.match(path.name)
        if not found:
            skipped.append(path.name)
            continue
        label = found["label"].upper()
        jobs.append(
            BatchJob(
                csv_file=path,
                dataset=f"{label}_{found['rest']}",
                label=label,
                prefix=prefix_template.format(label=label),
                output_dir=Path(output_root).expanduser() / label,
            )
        )
    return jobs, skipped
