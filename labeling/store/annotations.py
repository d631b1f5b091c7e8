"""Store verbs for model annotations: the history of what a model said about each image."""

from __future__ import annotations

import pandas as pd

from labeling.store.base import StoreBase

ANNOTATION_COLUMNS = ("image_id", "run_id", "kind", "model", "prompt_version", "category_list_version",
                      "description", "summary", "categories", "tokens_in", "tokens_out", "tokens_thinking",
                      "cost_usd", "simulated")


class AnnotationQueries(StoreBase):
    """Annotations are only ever appended: the latest one per image is current, human labels stay apart."""

    def insert_annotations(self, annotations: pd.DataFrame) -> int:
        """Append many annotations in one statement. Missing optional columns take their defaults."""
        if annotations.empty:
            return 0
        columns = [column for column in ANNOTATION_COLUMNS if column in annotations.columns]
        names = ", ".join(columns)
        with self.transaction() as cur:
            cur.register("incoming_annotations", annotations[columns])
            try:
                cur.execute(f"INSERT INTO annotations ({names}) SELECT {names} FROM incoming_annotations")
            finally:
                cur.unregister("incoming_annotations")
        return len(annotations)

    def current_annotations(self, dataset_id: int) -> pd.DataFrame:
        """The latest annotation of each image of a dataset, with the image name."""
        return self.fetch_df(
            "SELECT i.name, a.* FROM images i JOIN current_annotations a ON a.image_id = i.id "
            "WHERE i.dataset_id = ? ORDER BY i.name", [dataset_id])

    def insert_failures(self, failures: pd.DataFrame) -> int:
        """Record per-image failures (image_id, run_id, stage, kind, message); never stored as descriptions."""
        if failures.empty:
            return 0
        with self.transaction() as cur:
            cur.register("incoming_failures", failures[["image_id", "run_id", "stage", "kind", "message"]])
            try:
                cur.execute("INSERT INTO failures (image_id, run_id, stage, kind, message) "
                            "SELECT image_id, run_id, stage, kind, message FROM incoming_failures")
            finally:
                cur.unregister("incoming_failures")
        return len(failures)
