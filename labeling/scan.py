"""The scan pass: per-image technical facts (labeling.file_facts: file, JPEG, metadata, C2PA, pixels, hashes)
into `image_facts`.

Resumable and parallel like captioning: the work list is every found image without facts of the current
`FACTS_VERSION`, read through the dataset's source (a folder or S3) on the shared worker pool, and results
are committed in batches, so a re-run scans only new images and a killed run loses at most one batch.
One unreadable or undecodable file records its reason and fails alone; credentials or a missing bucket stop
the scan with what to do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from labeling.dataset_sources import source_for_dataset
from labeling.errors import InputError, SourceError
from labeling.file_facts import file_facts
from labeling.images import DECODE_BUDGET
from labeling.pool import Done, run_pool
from labeling.settings import Settings
from labeling.sources import ImageSource
from labeling.store import Store
from labeling.store.facts import FactRow
from labeling.wording import count

FACTS_VERSION = "2026-12.2"  # bump when a fact is added or computed differently: every image is scanned again
FLUSH_ROWS = 500
FLUSH_SECONDS = 1.0


@dataclass(frozen=True)
class ScanProgress:
    scanned: int
    failed: int
    total: int


@dataclass
class ScanReport:
    dataset: str
    total: int  # images this run had to scan
    scanned: int = 0
    failed: int = 0  # no facts: unreadable or not an image (the reason is in image_facts.error)
    already: int = 0  # found images with facts of this version from an earlier run
    seconds: float = 0.0
    stopped: bool = False

    def line(self) -> str:
        return (
            f"Scanned {self.scanned:,} of {count(self.total, 'image')} of {self.dataset} in {self.seconds:.1f} s"
            f" ({self.failed:,} without facts; {self.already:,} already scanned)"
            + ("; stopped: run it again to go on." if self.stopped else ".")
        )


def facts_of(image_id: int, data: bytes) -> FactRow:
    """The facts of one file's bytes (labeling.file_facts); an image that cannot be read records why."""
    return file_facts(image_id, FACTS_VERSION, data)


def scan_dataset(
    store: Store,
    settings: Settings,
    dataset: str,
    *,
    workers: int | None = None,
    stop: threading.Event | None = None,
    progress: Callable[[ScanProgress], None] | None = None,
) -> ScanReport:
    """Scan the dataset's images that have no facts yet; `progress` is called on this thread."""
    record = store.dataset(dataset)
    source = source_for_dataset(record, settings)
    if source is None:
        raise InputError(
            f"The dataset {dataset} has no image folder or bucket: import it again with one "
            "(--images-dir or --s3-uri) to scan its files."
        )
    DECODE_BUDGET.resize(settings.decode_budget_megapixels)  # each image's one small decode waits for room
    work = store.facts_to_scan(record.id, FACTS_VERSION)
    found = store.dataset_summary(dataset).found
    report = ScanReport(dataset, len(work), already=max(found - len(work), 0))
    stop = stop or threading.Event()
    batch: list[FactRow] = []
    fatal: list[SourceError] = []
    last = {"flush": time.monotonic()}
    started = time.perf_counter()

    def flush(force: bool = False) -> None:
        if batch and (force or len(batch) >= FLUSH_ROWS or time.monotonic() - last["flush"] >= FLUSH_SECONDS):
            store.record_facts(batch)
            batch.clear()
            last["flush"] = time.monotonic()

    def done(result: Done[tuple[int, str], FactRow]) -> None:
        image_id, _ = result.item
        if isinstance(result.error, SourceError) and getattr(result.error, "fatal", False):
            fatal.append(result.error)  # not this file's fault: it stays unscanned
            stop.set()
            return
        row = result.value if result.error is None else FactRow(image_id, FACTS_VERSION, error=str(result.error))
        assert row is not None
        batch.append(row)
        report.scanned += 1
        report.failed += row.error is not None
        flush()
        if progress is not None:
            progress(ScanProgress(report.scanned, report.failed, report.total))

    try:
        run_pool(
            work,
            lambda item: _scan_one(source, item),
            done,
            workers=workers or settings.num_workers,
            stop=stop,
            tick=flush,
            name="scan",
        )
    finally:
        flush(force=True)
        report.seconds = time.perf_counter() - started
        report.stopped = report.scanned < report.total
    if fatal:
        raise fatal[0]
    return report


def _scan_one(source: ImageSource, item: tuple[int, str]) -> FactRow:
    image_id, location = item
    return facts_of(image_id, source.read(location))
