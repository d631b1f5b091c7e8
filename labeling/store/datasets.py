"""Store verbs for datasets and their images."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

from labeling.errors import NotFoundError
from labeling.records import Dataset, DatasetSummary
from labeling.store.base import StoreBase, registered

_SUMMARY_SQL = """
WITH failed AS (SELECT DISTINCT image_id FROM failures WHERE NOT resolved),
per_image AS (
    SELECT i.dataset_id, i.status,
           a.description IS NOT NULL AS described,
           coalesce(len(coalesce(h.categories, a.categories)), 0) > 0 AS categorized,
           coalesce(h.reviewed, false) AS reviewed,
           f.image_id IS NOT NULL AS failed
    FROM images i
    LEFT JOIN current_annotations a ON a.image_id = i.id
    LEFT JOIN human_labels h ON h.image_id = i.id
    LEFT JOIN failed f ON f.image_id = i.id
)
SELECT d.id, d.name, d.label, d.source_kind, d.source_uri, d.list_file,
       count(p.status)::BIGINT AS listed,
       count(*) FILTER (WHERE p.status = 'found')::BIGINT AS found,
       count(*) FILTER (WHERE p.status = 'missing')::BIGINT AS missing,
       count(*) FILTER (WHERE p.status = 'ambiguous')::BIGINT AS ambiguous,
       count(*) FILTER (WHERE p.status = 'rejected')::BIGINT AS rejected,
       count(*) FILTER (WHERE p.status = 'unlinked')::BIGINT AS unlinked,
       d.duplicates::BIGINT AS duplicates,
       count(*) FILTER (WHERE p.described)::BIGINT AS described,
       count(*) FILTER (WHERE p.categorized)::BIGINT AS categorized,
       count(*) FILTER (WHERE p.reviewed)::BIGINT AS reviewed,
       count(*) FILTER (WHERE p.failed)::BIGINT AS failed,
       d.created_at, d.updated_at
FROM datasets d LEFT JOIN per_image p ON p.dataset_id = d.id
{where}
GROUP BY ALL
ORDER BY d.name
"""


class DatasetQueries(StoreBase):
    """Datasets (a named list of images with one source) and the images they list."""

    def save_dataset(
        self,
        name: str,
        *,
        label: str,
        source_kind: str,
        source_uri: str = "",
        source_options: dict[str, Any] | None = None,
        list_file: str | None = None,
    ) -> int:
        """Create the dataset or update its label and source; returns its id."""
        options = json.dumps(source_options) if source_options else None
        with self.transaction() as cur:
            found = cur.execute("SELECT id FROM datasets WHERE name = ?", [name]).fetchall()
            row = found[0] if found else None
            if row:
                cur.execute(
                    "UPDATE datasets SET label = ?, source_kind = ?, source_uri = ?, source_options = ?, "
                    "list_file = coalesce(?, list_file), updated_at = current_timestamp WHERE id = ?",
                    [label, source_kind, source_uri, options, list_file, row[0]],
                )
                return int(row[0])
            created = cur.execute(
                "INSERT INTO datasets (name, label, source_kind, source_uri, source_options, list_file) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [name, label, source_kind, source_uri, options, list_file],
            ).fetchall()
            return int(created[0][0])

    def set_duplicates(self, dataset_id: int, duplicates: int) -> None:
        self.cursor().execute("UPDATE datasets SET duplicates = ? WHERE id = ?", [duplicates, dataset_id])

    def upsert_images(self, dataset_id: int, images: pd.DataFrame) -> int:
        """Insert or refresh images from a frame with columns name, location, status, detail.

        Names already in the dataset keep their id (and so their annotations and labels); only a changed
        location or status is written. Returns how many names were new.
        """
        frame = images[["name", "location", "status", "detail"]]
        with self.transaction() as cur, registered(cur, "incoming_images", frame):
            cur.execute(
                """
                    UPDATE images SET location = n.location, status = n.status, detail = n.detail,
                        size_bytes = CASE WHEN images.location IS DISTINCT FROM n.location
                                          THEN NULL ELSE images.size_bytes END
                    FROM incoming_images n
                    WHERE images.dataset_id = ? AND images.name = n.name
                      AND (images.status IS DISTINCT FROM n.status
                           OR images.location IS DISTINCT FROM n.location
                           OR images.detail IS DISTINCT FROM n.detail)""",
                [dataset_id],
            )
            inserted = cur.execute(
                """
                    INSERT INTO images (dataset_id, name, location, status, detail)
                    SELECT ?, n.name, n.location, n.status, n.detail FROM incoming_images n
                    ANTI JOIN (SELECT name FROM images WHERE dataset_id = ?) i ON i.name = n.name""",
                [dataset_id, dataset_id],
            ).fetchone()
            return int(inserted[0]) if inserted else 0  # DuckDB answers an INSERT with its row count

    def dataset_summaries(self) -> list[DatasetSummary]:
        """Every dataset with its counts (listed, found, missing, ..., described, categorized, reviewed), by name."""
        return [DatasetSummary.from_row(row) for row in self.fetch_all(_SUMMARY_SQL.format(where=""))]

    def dataset_summary(self, name: str) -> DatasetSummary:
        rows = self.fetch_all(_SUMMARY_SQL.format(where="WHERE d.name = ?"), [name])
        if not rows:
            raise self._unknown_dataset(name)
        return DatasetSummary.from_row(rows[0])

    def dataset_id(self, name: str) -> int:
        row = self.fetch_one("SELECT id FROM datasets WHERE name = ?", [name])
        if row is None:
            raise self._unknown_dataset(name)
        return int(row[0])

    def dataset(self, name: str) -> Dataset:
        """The dataset named `name`; NotFoundError listing the known ones when there is none."""
        row = self.fetch_one(f"SELECT {Dataset.columns()} FROM datasets WHERE name = ?", [name])
        if row is None:
            raise self._unknown_dataset(name)
        return Dataset.from_row(row)

    def dataset_names(self) -> list[str]:
        return [row[0] for row in self.fetch_all("SELECT name FROM datasets ORDER BY name")]

    def _unknown_dataset(self, name: str) -> NotFoundError:
        known = ", ".join(self.dataset_names()) or "none yet"
        return NotFoundError(
            f"There is no dataset named {name!r} (datasets: {known}): check the name or import it first."
        )

    def images_with_status(self, dataset_id: int, status: str, limit: int | None = None) -> pd.DataFrame:
        """Images of one status (name, location, detail), in name order; the import report's lists."""
        sql = "SELECT name, location, detail FROM images WHERE dataset_id = ? AND status = ? ORDER BY name"
        params: list[Any] = [dataset_id, status]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return self.fetch_df(sql, params)

    def found_images(self, dataset_id: int) -> pd.DataFrame:
        """The dataset's found images (image_id, name), in import order."""
        return self.fetch_df(
            "SELECT id AS image_id, name FROM images WHERE dataset_id = ? AND status = 'found' ORDER BY id",
            [dataset_id],
        )

    def image_ids_by_name(self, dataset_id: int) -> pd.DataFrame:
        return self.fetch_df("SELECT id AS image_id, name FROM images WHERE dataset_id = ?", [dataset_id])

    def name_choices(self, dataset: str) -> dict[str, str]:
        """The file picked for each ambiguous name of `dataset` (name -> location); {} for a new dataset."""
        rows = self.fetch_all(
            "SELECT c.name, c.location FROM name_choices c JOIN datasets d ON d.id = c.dataset_id WHERE d.name = ?",
            [dataset],
        )
        return dict(rows)

    def choose_location(self, dataset_id: int, name: str, location: str, chosen_by: str, detail: str) -> None:
        """Record `location` as the file an ambiguous `name` means, and make the image found there now."""
        with self.transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO name_choices (dataset_id, name, location, chosen_by) VALUES (?, ?, ?, ?)",
                [dataset_id, name, location, chosen_by],
            )
            cur.execute(
                "UPDATE images SET status = 'found', location = ?, detail = ?, size_bytes = NULL "
                "WHERE dataset_id = ? AND name = ?",
                [location, detail, dataset_id, name],
            )

    def image_status(self, dataset_id: int, name: str) -> tuple[str, str | None] | None:
        """(status, detail) of one listed name; None when the dataset does not list it."""
        row = self.fetch_one("SELECT status, detail FROM images WHERE dataset_id = ? AND name = ?", [dataset_id, name])
        return (str(row[0]), row[1]) if row else None

    def delete_dataset(self, name: str) -> None:
        """Delete a dataset with its images, annotations, labels, edit log, failures and name choices."""
        dataset_id = self.dataset_id(name)
        with self.transaction() as cur:
            image_ids = "(SELECT id FROM images WHERE dataset_id = ?)"
            for table in ("annotations", "human_labels", "edit_log", "failures", "image_facts", "duplicate_groups"):
                cur.execute(f"DELETE FROM {table} WHERE image_id IN {image_ids}", [dataset_id])
            cur.execute("DELETE FROM images WHERE dataset_id = ?", [dataset_id])
            cur.execute("DELETE FROM name_choices WHERE dataset_id = ?", [dataset_id])
            cur.execute("DELETE FROM datasets WHERE id = ?", [dataset_id])
