"""Store verbs for runs: one row per captioning, categorizing or mirror job, with its counts and cost."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from labeling.errors import NotFoundError
from labeling.records import Run
from labeling.store.base import StoreBase
from labeling.vocabulary import RUN_STATUSES

FINISHED_STATUSES = ("cancelled", "completed", "failed", "interrupted")


class RunQueries(StoreBase):
    """Runs are created by the job runner and updated as it goes; pages only read them."""

    def active_runs(self) -> pd.DataFrame:
        """Runs still running or paused, newest first."""
        return self.fetch_df(
            "SELECT id, kind, status, total, done, failed, cost_usd, started_at, simulated FROM runs "
            "WHERE status IN ('running', 'paused') ORDER BY id DESC"
        )

    def create_run(
        self,
        kind: str,
        dataset_ids: list[int],
        settings: dict[str, Any],
        *,
        total: int = 0,
        simulated: bool = False,
        status: str = "running",
    ) -> int:
        """A new run row; `settings` must hold public settings only (never the API key)."""
        row = self.fetch_one(
            "INSERT INTO runs (kind, dataset_ids, settings, status, simulated, total) VALUES (?, ?, ?, ?, ?, ?) "
            "RETURNING id",
            [kind, [int(i) for i in dataset_ids], json.dumps(settings, default=str), status, simulated, total],
        )
        assert row is not None
        return int(row[0])

    def set_run_status(self, run_id: int, status: str, message: str | None = None) -> None:
        """Change a run's status; a finished status also stamps finished_at, running clears it."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        self.cursor().execute(
            "UPDATE runs SET status = ?, message = coalesce(?, message), updated_at = current_timestamp, "
            "finished_at = CASE WHEN ? THEN current_timestamp ELSE NULL END WHERE id = ?",
            [status, message, status in FINISHED_STATUSES, run_id],
        )

    def set_run_total(self, run_id: int, total: int) -> None:
        self.cursor().execute("UPDATE runs SET total = ?, updated_at = current_timestamp WHERE id = ?", [total, run_id])

    def run(self, run_id: int) -> Run:
        """One run, settings parsed."""
        row = self.fetch_one(f"SELECT {Run.columns()} FROM runs WHERE id = ?", [run_id])
        if row is None:
            raise NotFoundError(f"There is no run #{run_id}: pick one from the run history.")
        return Run.from_row(row)

    def runs(self, limit: int = 100, kinds: tuple[str, ...] | None = None) -> pd.DataFrame:
        """Run history, newest first, with the dataset names."""
        return self.fetch_df(
            "SELECT r.id, r.kind, r.status, r.simulated, "
            "(SELECT string_agg(d.name, ', ' ORDER BY d.name) FROM datasets d "
            " WHERE list_contains(r.dataset_ids, d.id)) AS datasets, "
            "r.total, r.done, r.failed, r.requests, r.tokens_in, r.tokens_out, r.tokens_thinking, r.cost_usd, "
            "json_extract_string(r.settings, '$.model') AS model, r.message, r.started_at, r.finished_at "
            "FROM runs r WHERE ? IS NULL OR list_contains(?, r.kind) ORDER BY r.id DESC LIMIT ?",
            [None if kinds is None else list(kinds), None if kinds is None else list(kinds), limit],
        )

    def run_states(self, limit: int = 100, kinds: tuple[str, ...] | None = None) -> list[tuple[int, str, int, int]]:
        """(id, status, done, failed) of the newest runs: the small read a page polls to see whether any moved."""
        rows = self.fetch_all(
            "SELECT id, status, done, failed FROM runs WHERE ? IS NULL OR list_contains(?, kind) "
            "ORDER BY id DESC LIMIT ?",
            [None if kinds is None else list(kinds), None if kinds is None else list(kinds), limit],
        )
        return [(int(i), str(status), int(done), int(failed)) for i, status, done, failed in rows]

    def interrupt_stale_runs(self, kinds: tuple[str, ...], keep: list[int] | None = None) -> int:
        """Mark runs of these kinds left running or paused by a process that died (kill -9, crash) as interrupted.

        Only one process can open the DuckDB file, so any such run not in `keep` (this process's own) is stale.
        """
        keep_ids = [int(i) for i in keep or []]
        rows = self.fetch_all(
            "UPDATE runs SET status = 'interrupted', updated_at = current_timestamp, "
            "message = coalesce(message, 'The process running it stopped; resume it to continue.') "
            "WHERE status IN ('running', 'paused') AND list_contains(?, kind) AND NOT list_contains(?, id) "
            "RETURNING id",
            [list(kinds), keep_ids],
        )
        return len(rows)

    def run_failures(self, run_id: int) -> pd.DataFrame:
        """A run's open failures grouped by stage and kind, with an example message."""
        return self.fetch_df(
            "SELECT stage, kind, count(DISTINCT image_id)::BIGINT AS images, any_value(message) AS example "
            "FROM failures WHERE run_id = ? AND NOT resolved GROUP BY ALL ORDER BY images DESC, kind",
            [run_id],
        )

    def usage_by_dataset(self) -> pd.DataFrame:
        """Per dataset: model annotations, tokens and cost over the whole history (simulated ones apart)."""
        return self.fetch_df(
            "SELECT d.name AS dataset, a.simulated, count(*)::BIGINT AS annotations, "
            "sum(a.tokens_in)::BIGINT AS tokens_in, sum(a.tokens_out)::BIGINT AS tokens_out, "
            "sum(a.tokens_thinking)::BIGINT AS tokens_thinking, sum(a.cost_usd) AS cost_usd "
            "FROM annotations a JOIN images i ON i.id = a.image_id JOIN datasets d ON d.id = i.dataset_id "
            "WHERE a.model <> 'seed-import' GROUP BY ALL ORDER BY dataset, a.simulated"
        )
