"""Batch Mode's input: work items as JSONL request lines, streamed to shard files under a size limit.

Each line is `{"key": "<image_id>", "request": {...}}` with the request in the REST nesting the Gemini annotator
builds (`GeminiAnnotator.rest_request`: contents with the image as inlineData, systemInstruction,
generationConfig with responseSchema), so a batch asks exactly what a synchronous request would. Images are
prepared as for a synchronous request (`images.prepare`, the thumbnail cached, the facts stored), by worker
threads; lines go to disk as they come, a shard at a time, so a run of any size never sits in memory. A shard is
registered in `batch_shards` only once its file is complete; a kill before that leaves a `.part` file that the
next run overwrites, and its images are simply written again.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from labeling.annotators import prompts
from labeling.annotators.gemini import GeminiAnnotator
from labeling.categories import Category
from labeling.errors import AnnotatorError
from labeling.planning import WorkItem
from labeling.pool import Done, run_pool
from labeling.preparation import prepare_item
from labeling.recorder import Outcome
from labeling.settings import Settings
from labeling.sources import ImageSource
from labeling.store import Store

IMAGE_KINDS = ("fused", "describe")
_MARK = "@@labeling-image-data@@"  # where a line's base64 goes in its kind's JSON template


def shard_folder(settings: Settings, run_id: int, database_id: str) -> Path:
    """Where a run's shard and result files live on this machine (per database: a cache folder may be shared)."""
    return Path(settings.cache_dir) / "batch" / database_id[:16] / f"run-{int(run_id)}"


class LineMaker:
    """JSONL lines of one run. The JSON around the image is the same for every line of a kind: it is encoded
    once and the key and base64 spliced in, so writing costs little more than the base64 itself."""

    def __init__(self, annotator: GeminiAnnotator, categories: Sequence[Category], max_categories: int) -> None:
        self._annotator = annotator
        self._categories = list(categories)
        self._max = max_categories
        self._templates: dict[tuple[str, str], tuple[str, str]] = {}

    def prompt(self, kind: str, description: dict[str, Any] | None = None) -> prompts.Prompt:
        enum = self._annotator.category_enum
        if kind == "fused":
            return prompts.fused_prompt(self._categories, self._max, enum)
        if kind == "describe":
            return prompts.describe_prompt()
        return prompts.categorize_prompt(description or {}, self._categories, self._max, enum)

    def image_line(self, kind: str, image_id: int, data_b64: str, mime_type: str) -> str:
        head, tail = self._template(kind, mime_type)
        return f'{{"key":"{int(image_id)}","request":{head}{data_b64}{tail}}}\n'

    def text_line(self, image_id: int, description: dict[str, Any]) -> str:
        request = self._annotator.rest_request(self.prompt("categorize", description))
        body = json.dumps({"key": str(int(image_id)), "request": request}, ensure_ascii=False, separators=(",", ":"))
        return body + "\n"

    def _template(self, kind: str, mime_type: str) -> tuple[str, str]:
        found = self._templates.get((kind, mime_type))
        if found is None:
            request = self._annotator.rest_request(self.prompt(kind), b"", mime_type)
            request["contents"][0]["parts"][0]["inlineData"]["data"] = _MARK
            text = json.dumps(request, ensure_ascii=False, separators=(",", ":"))
            head, tail = text.split(_MARK)
            found = self._templates[(kind, mime_type)] = (head, tail)
        return found


@dataclass
class _OpenShard:
    kind: str
    number: int
    path: Path
    handle: Any
    size: int = 0
    ids: list[int] = field(default_factory=list)
    facts: list[dict[str, Any]] = field(default_factory=list)


class ShardWriter:
    """Appends lines to one open shard per kind; a line that would pass `limit_bytes` starts the next shard.
    Each finished file is flushed to disk, renamed into place, and registered (with its images' facts) at once."""

    def __init__(
        self,
        store: Store,
        run_id: int,
        folder: Path,
        limit_bytes: int,
        *,
        attempt: int = 1,
        resubmit_of: int | None = None,
    ) -> None:
        self._store = store
        self._run_id = run_id
        self._folder = folder
        self._limit = max(int(limit_bytes), 1)
        self._attempt = attempt
        self._resubmit_of = resubmit_of
        self._open: dict[str, _OpenShard] = {}
        self._next = store.next_batch_shard(run_id)
        self.registered: list[int] = []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, kind: str, image_id: int, line: str, facts: dict[str, Any] | None = None) -> None:
        data = line.encode("utf-8")
        shard = self._open.get(kind)
        if shard is not None and shard.ids and shard.size + len(data) > self._limit:
            self._finish(shard)
            shard = None
        if shard is None:
            shard = self._start(kind)
        shard.handle.write(data)
        shard.size += len(data)
        shard.ids.append(int(image_id))
        if facts is not None:
            shard.facts.append(facts)

    def close(self) -> list[int]:
        """Finish every open shard; the numbers of all shards this writer registered."""
        for shard in list(self._open.values()):
            self._finish(shard)
        return self.registered

    def abandon(self) -> None:
        """Stop without registering the open shards (a stop mid-write): their images are written next time."""
        for shard in list(self._open.values()):
            shard.handle.close()
            shard.path.with_name(shard.path.name + ".part").unlink(missing_ok=True)
        self._open.clear()

    def _start(self, kind: str) -> _OpenShard:
        number, self._next = self._next, self._next + 1
        path = self._folder / f"shard-{number:05d}.jsonl"
        handle = path.with_name(path.name + ".part").open("wb")
        shard = self._open[kind] = _OpenShard(kind, number, path, handle)
        return shard

    def _finish(self, shard: _OpenShard) -> None:
        del self._open[shard.kind]
        shard.handle.flush()
        os.fsync(shard.handle.fileno())  # registered means on disk: a crash after this finds the whole file
        shard.handle.close()
        if not shard.ids:
            shard.path.with_name(shard.path.name + ".part").unlink(missing_ok=True)
            return
        os.replace(shard.path.with_name(shard.path.name + ".part"), shard.path)
        if shard.facts:
            self._store.record_batch(None, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(shard.facts), {})
        self._store.add_batch_shard(
            self._run_id,
            shard.number,
            shard.kind,
            str(shard.path),
            shard.size,
            shard.ids,
            resubmit_of=self._resubmit_of,
            attempt=self._attempt,
        )
        self.registered.append(shard.number)


@dataclass(frozen=True)
class _Prepared:
    item: WorkItem
    data_b64: str | None = None
    mime_type: str = "image/jpeg"
    facts: dict[str, Any] | None = None
    failure: tuple[str, str, str] | None = None


def _prepare(item: WorkItem, sources: dict[int, ImageSource | None], settings: Settings) -> _Prepared:
    """Read and prepare one image exactly as a synchronous request would (labeling.preparation)."""
    prepared = prepare_item(item, sources.get(item.dataset_id), settings)
    if isinstance(prepared, tuple):
        return _Prepared(item, failure=prepared)
    facts = {
        "image_id": item.image_id,
        "size_bytes": prepared.size_bytes,
        "format": prepared.original_format,
        "width": prepared.original_width,
        "height": prepared.original_height,
    }
    return _Prepared(item, base64.b64encode(prepared.data).decode("ascii"), prepared.mime_type, facts)


def write_work(
    items: Sequence[WorkItem],
    *,
    lines: LineMaker,
    writer: ShardWriter,
    sources: dict[int, ImageSource | None],
    settings: Settings,
    workers: int,
    record: Callable[[Outcome], None],
    stop: threading.Event,
) -> bool:
    """Write every item as a line (preparing images on `workers` threads); items that cannot be read or prepared
    go to `record` as failures at once. True when all were written and the shards registered; False when `stop`
    was set first (the open shards are dropped: their images are written again next time)."""
    for item in items:
        if item.needs == "categorize" and not stop.is_set():
            description = json.loads(item.description or "{}")
            writer.add("categorize", item.image_id, lines.text_line(item.image_id, description))
    pictures = [item for item in items if item.needs in IMAGE_KINDS]
    local_stop = threading.Event()  # run_pool sets its own stop when it ends; the job's must stay as it is
    fatal: list[BaseException] = []

    def on_done(done: Done[WorkItem, _Prepared]) -> None:
        if done.error is not None:
            if isinstance(done.error, AnnotatorError):
                fatal.append(done.error)
                local_stop.set()
                return
            record(_unexpected(done.item, done.error))
            return
        prepared = done.value
        assert prepared is not None
        if prepared.failure is not None:
            record(Outcome(prepared.item.image_id, failure=prepared.failure))
            return
        assert prepared.data_b64 is not None
        line = lines.image_line(prepared.item.needs, prepared.item.image_id, prepared.data_b64, prepared.mime_type)
        writer.add(prepared.item.needs, prepared.item.image_id, line, prepared.facts)

    def tick() -> None:
        if stop.is_set():
            local_stop.set()

    if pictures:
        run_pool(
            pictures,
            lambda item: _prepare(item, sources, settings),
            on_done,
            workers=workers,
            stop=local_stop,
            tick=tick,
            name="batch-prepare",
        )
    if fatal:
        writer.abandon()
        raise fatal[0]
    if stop.is_set():
        writer.abandon()
        return False
    writer.close()
    return True


def _unexpected(item: WorkItem, error: BaseException) -> Outcome:
    return Outcome(
        item.image_id,
        failure=(
            "internal",
            "internal",
            f"Unexpected error on {item.name} ({type(error).__name__}: {error}): the image was skipped; "
            "the traceback is in the log (run with -v); please report it.",
        ),
    )
