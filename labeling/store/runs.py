"""Store verbs for runs: one row per captioning, categorizing or mirror job, with its counts and cost."""

from __future__ import annotations

import pandas as pd

from labeling.store.base import StoreBase


class RunQueries(StoreBase):
    """Runs are created by the job runner and updated as it goes; pages only read them."""

    def active_runs(self) -> pd.DataFrame:
        """Runs still running or paused, newest first."""
        return self.fetch_df(
            "SELECT id, kind, status, total, done, failed, cost_usd, started_at FROM runs "
            "WHERE status IN ('running', 'paused') ORDER BY id DESC")
