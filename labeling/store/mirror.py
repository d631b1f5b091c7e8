"""Store verbs for mirrors of S3 prefixes to local folders: finished items and the run rows of mirror jobs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from labeling.store.base import StoreBase, registered

MIRROR_ITEM_COLUMNS = ("path", "size_bytes", "etag", "status", "error")


class MirrorQueries(StoreBase):
    """`mirror_items` remembers, per output folder, which files a mirror finished (and at which ETag)."""

    def mirror_done(self, output_dir: str) -> dict[str, tuple[int, str]]:
        """{path: (size, etag)} of the files a mirror into `output_dir` finished."""
        rows = self.fetch_all(
            "SELECT path, size_bytes, etag FROM mirror_items WHERE output_dir = ? AND status = 'done'", [output_dir]
        )
        return {path: (int(size or 0), etag or "") for path, size, etag in rows}

    def record_mirror_items(self, output_dir: str, source_uri: str, run_id: int | None, items: pd.DataFrame) -> None:
        """Upsert finished or failed items (columns path, size_bytes, etag, status, error) in one statement."""
        if items.empty:
            return
        frame = items[list(MIRROR_ITEM_COLUMNS)].drop_duplicates("path", keep="last")
        cur = self.cursor()
        with registered(cur, "incoming_mirror_items", frame), self.transaction() as tx:
            tx.execute(
                """
                    INSERT INTO mirror_items (output_dir, path, source_uri, size_bytes, etag, status, error, run_id)
                    SELECT ?, path, ?, size_bytes, etag, status, error, ? FROM incoming_mirror_items
                    ON CONFLICT (output_dir, path) DO UPDATE SET
                        source_uri = excluded.source_uri, size_bytes = excluded.size_bytes, etag = excluded.etag,
                        status = excluded.status, error = excluded.error, run_id = excluded.run_id,
                        updated_at = now()""",
                [output_dir, source_uri, run_id],
            )

    def mirror_failures(self, output_dir: str) -> pd.DataFrame:
        """Items whose last attempt failed (path, error), in path order."""
        return self.fetch_df(
            "SELECT path, error FROM mirror_items WHERE output_dir = ? AND status = 'failed' ORDER BY path",
            [output_dir],
        )

    def start_mirror_run(self, settings: dict[str, Any], total: int, dataset_ids: list[int] | None = None) -> int:
        """A `runs` row of kind 'mirror'; earlier mirror runs into the same folder left 'running' by a killed
        process are marked 'interrupted' first."""
        with self.transaction() as cur:
            cur.execute(
                "UPDATE runs SET status = 'interrupted', updated_at = current_timestamp "
                "WHERE kind = 'mirror' AND status = 'running' "
                "AND json_extract_string(settings, '$.output_dir') = ?",
                [settings.get("output_dir")],
            )
            created = cur.execute(
                "INSERT INTO runs (kind, dataset_ids, settings, status, total) VALUES ('mirror', ?, ?, 'running', ?) "
                "RETURNING id",
                [dataset_ids or [], json.dumps(settings), total],
            ).fetchall()
        return int(created[0][0])

    def update_mirror_run(
        self, run_id: int, *, done: int, failed: int, status: str | None = None, message: str | None = None
    ) -> None:
        """Progress of a mirror run; a final `status` (completed, failed, interrupted) also sets finished_at."""
        finished = status is not None and status != "running"
        self.cursor().execute(
            "UPDATE runs SET done = ?, failed = ?, status = coalesce(?, status), message = coalesce(?, message), "
            "updated_at = current_timestamp, "
            "finished_at = CASE WHEN ? THEN current_timestamp ELSE finished_at END WHERE id = ?",
            [done, failed, status, message, finished, run_id],
        )

    def mirror_run(self, run_id: int) -> dict[str, Any]:
        """The run row (status, total, done, failed, message, settings as a dict)."""
        frame = self.fetch_df(
            "SELECT id, kind, status, total, done, failed, message, settings FROM runs WHERE id = ?", [run_id]
        )
        record = dict(frame.iloc[0]) if not frame.empty else {}
        if record.get("settings"):
            record["settings"] = json.loads(record["settings"])
        return record
