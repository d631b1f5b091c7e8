"""Store verbs for Gemini Batch Mode: the shards of a run and the state each step resumes from."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from labeling.store.base import StoreBase

# A shard in one of these states needs nothing more; any other state is work to resume.
FINAL_SHARD_STATES = ("recorded", "failed")
_UPDATABLE = frozenset(
    {
        "state",
        "upload_url",
        "uploaded_bytes",
        "file_name",
        "batch_name",
        "job_state",
        "result_file",
        "done",
        "failed",
        "error",
        "submitted_at",
        "path",
    }
)
_COLUMNS = (
    "run_id, shard, kind, path, bytes, lines, image_ids, resubmit_of, attempt, state, upload_url, uploaded_bytes, "
    "file_name, batch_name, job_state, result_file, done, failed, error, submitted_at, created_at, updated_at"
)


@dataclass(frozen=True)
class BatchShard:
    """One JSONL file of a run and how far it got (a row of `batch_shards`)."""

    run_id: int
    shard: int
    kind: str
    path: str
    bytes: int
    lines: int
    image_ids: tuple[int, ...]
    resubmit_of: int | None
    attempt: int
    state: str
    upload_url: str | None
    uploaded_bytes: int
    file_name: str | None
    batch_name: str | None
    job_state: str | None
    result_file: str | None
    done: int
    failed: int
    error: str | None
    submitted_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @property
    def final(self) -> bool:
        return self.state in FINAL_SHARD_STATES

    def display_name(self, database_id: str) -> str:
        """The job's (and its input file's) display name: how a job created just before a crash is found again.
        It carries the database's identity: another database's run 1 shard 1 is another job."""
        return f"labeling-{database_id[:16]}-run{self.run_id}-shard{self.shard}"

    def line(self) -> str:
        """Where the shard is, for a person: state, the remote job's state, lines, done and failed."""
        job_state = (self.job_state or "").removeprefix("JOB_STATE_").lower()
        return (
            f"shard {self.shard} ({self.kind}, {self.lines:,} lines, {self.bytes / 1e6:,.1f} MB): {self.state}"
            + (f", job {job_state}" if job_state else "")
            + (f", uploaded {self.uploaded_bytes / max(self.bytes, 1):.0%}" if self.state == "uploading" else "")
            + (f", {self.done:,} done, {self.failed:,} failed" if self.state == "recorded" else "")
            + (f" [resends shard {self.resubmit_of}]" if self.resubmit_of else "")
            + (f" - {self.error}" if self.error else "")
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> BatchShard:
        values = list(row)
        values[6] = tuple(int(i) for i in values[6] or ())
        return cls(*values)


class BatchQueries(StoreBase):
    """Shards are written by the batch executor only; every change is one small committed statement."""

    def next_batch_shard(self, run_id: int) -> int:
        """The number the run's next shard takes (one writer a run: only one process opens the file)."""
        row = self.fetch_one("SELECT coalesce(max(shard), 0) + 1 FROM batch_shards WHERE run_id = ?", [run_id])
        return int(row[0]) if row else 1

    def add_batch_shard(
        self,
        run_id: int,
        shard: int,
        kind: str,
        path: str,
        size: int,
        image_ids: Sequence[int],
        *,
        resubmit_of: int | None = None,
        attempt: int = 1,
    ) -> None:
        """Register a finished JSONL file as shard `shard` of the run (state `written`)."""
        self.cursor().execute(
            "INSERT INTO batch_shards (run_id, shard, kind, path, bytes, lines, image_ids, resubmit_of, attempt, "
            "state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'written')",
            [run_id, shard, kind, path, size, len(image_ids), [int(i) for i in image_ids], resubmit_of, attempt],
        )

    def database_id(self) -> str:
        """This database file's random identity (migration 12), for names it leaves in the Gemini project."""
        row = self.fetch_one("SELECT id FROM database_identity LIMIT 1")
        return str(row[0]) if row else "unknown"

    def batch_shards(self, run_id: int) -> list[BatchShard]:
        """Every shard of a run, in order."""
        rows = self.fetch_all(f"SELECT {_COLUMNS} FROM batch_shards WHERE run_id = ? ORDER BY shard", [run_id])
        return [BatchShard.from_row(row) for row in rows]

    def batch_shard(self, run_id: int, shard: int) -> BatchShard:
        row = self.fetch_one(f"SELECT {_COLUMNS} FROM batch_shards WHERE run_id = ? AND shard = ?", [run_id, shard])
        if row is None:
            raise KeyError(f"run {run_id} has no shard {shard}")
        return BatchShard.from_row(row)

    def update_batch_shard(self, run_id: int, shard: int, **fields: Any) -> None:
        """Set some columns of one shard (and its updated_at) in one statement."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise ValueError(f"not a batch shard column: {', '.join(sorted(unknown))}")
        if not fields:
            return
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self.cursor().execute(
            f"UPDATE batch_shards SET {assignments}, updated_at = current_timestamp WHERE run_id = ? AND shard = ?",
            [*fields.values(), run_id, shard],
        )

    def images_in_open_shards(self, run_id: int) -> set[int]:
        """Images already written to a shard of the run that is not finished: never written twice."""
        rows = self.fetch_all(
            "SELECT DISTINCT unnest(image_ids) FROM batch_shards WHERE run_id = ? AND NOT list_contains(?, state)",
            [run_id, list(FINAL_SHARD_STATES)],
        )
        return {int(row[0]) for row in rows}

    def images_in_flight(self, except_run: int | None = None) -> set[int]:
        """Images in an unfinished shard of any batch run (but `except_run`): their answers are on the way."""
        rows = self.fetch_all(
            "SELECT DISTINCT unnest(image_ids) FROM batch_shards WHERE NOT list_contains(?, state) "
            "AND run_id IS DISTINCT FROM ?",
            [list(FINAL_SHARD_STATES), except_run],
        )
        return {int(row[0]) for row in rows}

    def recorded_in_run(self, run_id: int, image_ids: Iterable[int]) -> set[int]:
        """Which of these images already have an annotation or a failure from this run (recorded exactly once)."""
        ids = [int(i) for i in image_ids]
        if not ids:
            return set()
        rows = self.fetch_all(
            "SELECT image_id FROM annotations WHERE run_id = $run AND list_contains($ids, image_id) "
            "UNION SELECT image_id FROM failures WHERE run_id = $run AND list_contains($ids, image_id)",
            {"run": run_id, "ids": ids},
        )
        return {int(row[0]) for row in rows}

    def outcome_counts(self, run_id: int, image_ids: Iterable[int]) -> tuple[int, int]:
        """Of these images, how many have an annotation from this run (done) and how many only a failure."""
        ids = [int(i) for i in image_ids]
        if not ids:
            return 0, 0
        row = self.fetch_one(
            "WITH done AS (SELECT DISTINCT image_id FROM annotations WHERE run_id = $run "
            "AND list_contains($ids, image_id)), "
            "failed AS (SELECT DISTINCT image_id FROM failures WHERE run_id = $run AND list_contains($ids, image_id) "
            "AND image_id NOT IN (SELECT image_id FROM done)) "
            "SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM failed)",
            {"run": run_id, "ids": ids},
        )
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def current_descriptions(self, image_ids: Iterable[int]) -> dict[int, str]:
        """The current description (JSON text) of each of these images that has one."""
        ids = [int(i) for i in image_ids]
        if not ids:
            return {}
        rows = self.fetch_all(
            "SELECT image_id, description::VARCHAR FROM current_annotations "
            "WHERE list_contains(?, image_id) AND description IS NOT NULL",
            [ids],
        )
        return {int(image_id): str(text) for image_id, text in rows}

    def open_batch_run(self, dataset_ids: Sequence[int], mode: str) -> int | None:
        """The latest run of `mode` over exactly these datasets with a shard still in flight (to resume)."""
        row = self.fetch_one(
            "SELECT r.id FROM runs r WHERE r.kind = ? AND list_sort(r.dataset_ids) = list_sort(?::INTEGER[]) "
            "AND EXISTS (SELECT 1 FROM batch_shards s WHERE s.run_id = r.id AND NOT list_contains(?, s.state)) "
            "ORDER BY r.id DESC LIMIT 1",
            [mode, [int(i) for i in dataset_ids], list(FINAL_SHARD_STATES)],
        )
        return int(row[0]) if row else None
