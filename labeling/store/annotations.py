"""Store verbs for model annotations: the history of what a model said about each image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from labeling.store.base import StoreBase, registered

ANNOTATION_COLUMNS = (
    "image_id",
    "run_id",
    "kind",
    "model",
    "prompt_version",
    "category_list_version",
    "description",
    "summary",
    "categories",
    "tokens_in",
    "tokens_out",
    "tokens_thinking",
    "cost_usd",
    "simulated",
)


# Work still to do per image for a run: `needs` is fused | describe | categorize, NULL when nothing is left.
# "Described" means an image-based annotation (fused or describe) with this prompt version; "categorized" means
# the current annotation has categories made against this category-list version. A real run never counts
# simulated output (from the example project's fake server) as done.
_WORK_SQL = """
WITH described AS (
    SELECT DISTINCT image_id FROM annotations
    WHERE kind IN ('fused', 'describe') AND prompt_version = $prompt_version AND description IS NOT NULL
      AND (NOT simulated OR $simulated)
),
base AS (
    SELECT i.id AS image_id, i.dataset_id, i.name, i.location, i.status,
           d.image_id IS NOT NULL AS described,
           CASE WHEN NOT c.simulated OR $simulated THEN c.description::VARCHAR END AS description,
           coalesce(c.categories IS NOT NULL AND c.category_list_version = $list_version
                    AND (NOT c.simulated OR $simulated), false) AS categorized
    FROM images i
    LEFT JOIN described d ON d.image_id = i.id
    LEFT JOIN current_annotations c ON c.image_id = i.id
    WHERE list_contains($dataset_ids, i.dataset_id)
      AND ($skip_run IS NULL OR NOT EXISTS (
            SELECT 1 FROM failures f WHERE f.image_id = i.id AND f.run_id = $skip_run AND NOT f.resolved))
      AND (NOT $only_failed OR EXISTS (SELECT 1 FROM failures f WHERE f.image_id = i.id AND NOT f.resolved))
      AND ($image_ids IS NULL OR i.id IN (SELECT unnest($image_ids)))
),
planned AS (
    SELECT *, CASE
        WHEN $mode = 'categorize' THEN
            CASE WHEN description IS NOT NULL AND NOT categorized THEN 'categorize' END
        WHEN NOT described AND status = 'found' THEN CASE WHEN $mode = 'fused' THEN 'fused' ELSE 'describe' END
        WHEN described AND description IS NOT NULL AND NOT categorized THEN 'categorize'
    END AS needs
    FROM base
)
SELECT image_id, dataset_id, name, location, needs, description FROM planned
WHERE needs IS NOT NULL ORDER BY dataset_id, image_id
"""


class AnnotationQueries(StoreBase):
    """Annotations are only ever appended: the latest one per image is current, human labels stay apart."""

    def insert_annotations(self, annotations: pd.DataFrame) -> int:
        """Append many annotations in one statement. Missing optional columns take their defaults."""
        if annotations.empty:
            return 0
        columns = [column for column in ANNOTATION_COLUMNS if column in annotations.columns]
        names = ", ".join(columns)
        with self.transaction() as cur, registered(cur, "incoming_annotations", annotations[columns]):
            cur.execute(f"INSERT INTO annotations ({names}) SELECT {names} FROM incoming_annotations")
        return len(annotations)

    def current_annotations(self, dataset_id: int) -> pd.DataFrame:
        """The latest annotation of each image of a dataset, with the image name."""
        return self.fetch_df(
            "SELECT i.name, a.* FROM images i JOIN current_annotations a ON a.image_id = i.id "
            "WHERE i.dataset_id = ? ORDER BY i.name",
            [dataset_id],
        )

    def insert_failures(self, failures: pd.DataFrame) -> int:
        """Record per-image failures (image_id, run_id, stage, kind, message); never stored as descriptions."""
        if failures.empty:
            return 0
        columns = failures[["image_id", "run_id", "stage", "kind", "message"]]
        with self.transaction() as cur, registered(cur, "incoming_failures", columns):
            cur.execute(
                "INSERT INTO failures (image_id, run_id, stage, kind, message) "
                "SELECT image_id, run_id, stage, kind, message FROM incoming_failures"
            )
        return len(failures)

    def work_list(
        self,
        dataset_ids: list[int],
        mode: str,
        prompt_version: str,
        list_version: int,
        *,
        skip_failed_in_run: int | None = None,
        only_failed: bool = False,
        simulated: bool = False,
        image_ids: Sequence[int] | None = None,
    ) -> pd.DataFrame:
        """Images of the datasets that still need a request, with what they need (derived from the DB alone).

        `mode` is fused, two-pass or categorize. Images that failed in `skip_failed_in_run` are left out
        (resuming a run does not retry its failures); `only_failed` keeps only images with open failures;
        `image_ids` keeps only those images (re-categorizing the images a category-list change affects).
        """
        return self.fetch_df(
            _WORK_SQL,
            {
                "dataset_ids": [int(i) for i in dataset_ids],
                "mode": mode,
                "prompt_version": prompt_version,
                "list_version": list_version,
                "skip_run": skip_failed_in_run,
                "only_failed": only_failed,
                "simulated": simulated,
                "image_ids": None if image_ids is None else [int(i) for i in image_ids],
            },
        )

    def record_batch(
        self,
        run_id: int | None,
        annotations: pd.DataFrame,
        failures: pd.DataFrame,
        facts: pd.DataFrame,
        counts: dict[str, float],
    ) -> None:
        """Write one batch of results in one transaction: annotations (resolving the images' open failures),
        new failures, image facts, and the run's counters (`done`, `failed`, `requests`, `tokens_in`,
        `tokens_out`, `tokens_thinking`, `cost_usd` increments)."""
        with self.transaction() as cur:
            if not annotations.empty:
                columns = [column for column in ANNOTATION_COLUMNS if column in annotations.columns]
                names = ", ".join(columns)
                with registered(cur, "batch_annotations", annotations[columns]):
                    cur.execute(
                        "UPDATE failures SET resolved = true WHERE NOT resolved AND image_id IN "
                        "(SELECT image_id FROM batch_annotations)"
                    )
                    cur.execute(f"INSERT INTO annotations ({names}) SELECT {names} FROM batch_annotations")
            if not failures.empty:
                with registered(cur, "batch_failures", failures[["image_id", "run_id", "stage", "kind", "message"]]):
                    cur.execute(
                        "INSERT INTO failures (image_id, run_id, stage, kind, message) "
                        "SELECT image_id, run_id, stage, kind, message FROM batch_failures"
                    )
            if not facts.empty:
                with registered(cur, "batch_facts", facts[["image_id", "size_bytes", "format", "width", "height"]]):
                    cur.execute(
                        "UPDATE images SET size_bytes = f.size_bytes, format = f.format, width = f.width, "
                        "height = f.height FROM batch_facts f WHERE images.id = f.image_id"
                    )
            if run_id is not None and any(counts.values()):
                cur.execute(
                    "UPDATE runs SET done = done + ?, failed = failed + ?, requests = requests + ?, "
                    "tokens_in = tokens_in + ?, tokens_out = tokens_out + ?, tokens_thinking = tokens_thinking + ?, "
                    "cost_usd = cost_usd + ?, updated_at = current_timestamp WHERE id = ?",
                    [
                        int(counts.get("done", 0)),
                        int(counts.get("failed", 0)),
                        int(counts.get("requests", 0)),
                        int(counts.get("tokens_in", 0)),
                        int(counts.get("tokens_out", 0)),
                        int(counts.get("tokens_thinking", 0)),
                        float(counts.get("cost_usd", 0.0)),
                        run_id,
                    ],
                )

    def current_annotations_of(self, dataset_ids: list[int]) -> pd.DataFrame:
        """name, dataset_id, description (JSON text), categories, kind, model, simulated of described images."""
        return self.fetch_df(
            "SELECT i.name, i.dataset_id, a.description::VARCHAR AS description, a.categories, a.kind, a.model, "
            "a.simulated FROM images i JOIN current_annotations a ON a.image_id = i.id "
            "WHERE list_contains(?, i.dataset_id) ORDER BY i.dataset_id, i.name",
            [[int(i) for i in dataset_ids]],
        )

    def current_categories(self, dataset_id: int, list_version: int) -> dict[str, list[str]]:
        """name -> categories of the images whose current categories were made against `list_version`."""
        rows = self.fetch_all(
            "SELECT i.name, a.categories FROM images i JOIN current_annotations a ON a.image_id = i.id "
            "WHERE i.dataset_id = ? AND a.categories IS NOT NULL AND a.category_list_version = ?",
            [dataset_id, list_version],
        )
        return {str(name): list(categories) for name, categories in rows}

    def failure_counts(self, dataset_ids: list[int]) -> pd.DataFrame:
        """Open failures of the datasets' images grouped by stage and kind: images, an example, last time."""
        return self.fetch_df(
            "SELECT f.stage, f.kind, count(DISTINCT f.image_id)::BIGINT AS images, any_value(f.message) AS example, "
            "max(f.created_at) AS last_seen FROM failures f JOIN images i ON i.id = f.image_id "
            "WHERE NOT f.resolved AND list_contains(?, i.dataset_id) GROUP BY ALL ORDER BY images DESC, kind",
            [[int(i) for i in dataset_ids]],
        )

    def open_failures(self, dataset_ids: list[int]) -> pd.DataFrame:
        """Each open failure with the image name (newest first)."""
        return self.fetch_df(
            "SELECT i.name, f.stage, f.kind, f.message, f.run_id, f.created_at FROM failures f "
            "JOIN images i ON i.id = f.image_id WHERE NOT f.resolved AND list_contains(?, i.dataset_id) "
            "ORDER BY f.created_at DESC",
            [[int(i) for i in dataset_ids]],
        )

    def usage_averages(self, model: str) -> pd.DataFrame:
        """Mean tokens per annotation kind for a model (kind, n, tokens_in, tokens_out, tokens_thinking)."""
        return self.fetch_df(
            "SELECT kind, count(*)::BIGINT AS n, avg(tokens_in) AS tokens_in, avg(tokens_out) AS tokens_out, "
            "avg(tokens_thinking) AS tokens_thinking FROM annotations "
            "WHERE model = ? AND tokens_in > 0 AND NOT simulated GROUP BY kind",
            [model],
        )

    def simulated_datasets(self, names: list[str]) -> list[str]:
        """Which of these datasets hold output of the built-in fake Gemini server (the example project)."""
        rows = self.fetch_all(
            "SELECT d.name FROM datasets d WHERE list_contains(?, d.name) AND EXISTS ("
            "SELECT 1 FROM annotations a JOIN images i ON i.id = a.image_id "
            "WHERE a.simulated AND i.dataset_id = d.id) ORDER BY d.name",
            [names],
        )
        return [row[0] for row in rows]
