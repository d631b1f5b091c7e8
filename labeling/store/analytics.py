"""Store verbs for comparing and exporting labels: per-category counts and seed-format exports, all in SQL.

A *label source* says whose categories count:
- "model": the latest model annotation of each image (`current_annotations`).
- "human": human-reviewed images only (`human_labels.reviewed`); each takes the reviewer's categories where the
  reviewer set them, else the model's: a NULL human value means "the reviewer kept the model's value" (see the
  schema), and marking the image reviewed confirms it.
- "effective": the `effective_labels` view: the human value where one is set, else the model's.

An image is *labelled* under a source when its categories there are not NULL (an empty list still counts: the
image was categorized and carries none). A distribution's `total` is the number of labelled images.

Speed: recomputing "the latest annotation of every image" costs seconds at millions of images, so the store keeps
derived tables (migration 6): `label_state` (one row per labelled image: its current annotation id and category
lists) and `label_tally` (label_state counted per distinct combination of dataset, lists and reviewed flag, a few
hundred rows). `sync_label_tally` brings them in step before every read: new annotations (ids past the mark) and
changed human labels (found by a fingerprint, then a diff) update only the images they touch; anything it cannot
explain (a deleted dataset, an annotation committed late) triggers a full rebuild. This relies on annotations
being append-only, as `AnnotationQueries` promises.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    import pandas as pd

from labeling.errors import InputError, NotFoundError
from labeling.spreadsheet import FORMULA_PATTERN
from labeling.store.base import StoreBase
from labeling.vocabulary import EXPORT_FORMATS, LabelSource, checked_source

EXPORT_COLUMNS = ("image_name", "description", "categories")
EXPORT_EXTRA_COLUMNS = ("dataset", "label_source", "reviewed", "model_categories", "human_categories", "reviewer")

# One sync at a time per process: two threads updating the tally at once would count a change twice.
_SYNC_LOCK = threading.Lock()

# ---------------------------------------------------------------------------------------------- label sources

# Per source over label_tally rows: the categories that count, and which rows are labelled.
_TALLY_SOURCE = {
    "model": ("model_categories", "model_categories IS NOT NULL"),
    "human": (
        "coalesce(human_categories, model_categories)",
        "reviewed AND coalesce(human_categories, model_categories) IS NOT NULL",
    ),
    "effective": (
        "coalesce(human_categories, model_categories)",
        "coalesce(human_categories, model_categories) IS NOT NULL",
    ),
}

# Counts per (dataset, category) from the tally: a few hundred rows, so deduping and unnesting the lists is cheap.
_DISTRIBUTION_SQL = """
WITH picked AS (
    SELECT id, name, list_position($names, name) AS position FROM datasets WHERE list_contains($names, name)
),
lists AS (
    SELECT dataset_id, {categories} AS categories, sum(images) AS images
    FROM label_tally WHERE list_contains($ids, dataset_id) AND {labelled} GROUP BY ALL
),
totals AS (SELECT dataset_id, sum(images) AS total FROM lists GROUP BY ALL),
counts AS (
    SELECT dataset_id, category, sum(images) AS count
    FROM (SELECT dataset_id, unnest(list_distinct(categories)) AS category, images FROM lists)
    WHERE category IS NOT NULL GROUP BY ALL
)
SELECT p.name AS dataset, c.category, coalesce(c.count, 0)::BIGINT AS count, coalesce(t.total, 0)::BIGINT AS total
FROM picked p LEFT JOIN totals t ON t.dataset_id = p.id LEFT JOIN counts c ON c.dataset_id = p.id
ORDER BY p.position, count DESC, c.category
"""

# The same relation straight from the schema's views: the reference the tally is tested against (slow at scale).
_VIEW_LABELS_SQL = {
    "model": """
        SELECT i.dataset_id, i.id AS image_id, a.categories
        FROM images i JOIN current_annotations a ON a.image_id = i.id
        WHERE list_contains($ids, i.dataset_id) AND a.categories IS NOT NULL""",
    "human": """
        SELECT i.dataset_id, i.id AS image_id, coalesce(h.categories, a.categories) AS categories
        FROM images i JOIN human_labels h ON h.image_id = i.id AND h.reviewed
        LEFT JOIN current_annotations a ON a.image_id = i.id
        WHERE list_contains($ids, i.dataset_id) AND coalesce(h.categories, a.categories) IS NOT NULL""",
    "effective": """
        SELECT dataset_id, image_id, categories FROM effective_labels
        WHERE list_contains($ids, dataset_id) AND categories IS NOT NULL""",
}
_VIEW_DISTRIBUTION_SQL = """
WITH picked AS (
    SELECT id, name, list_position($names, name) AS position FROM datasets WHERE list_contains($names, name)
),
labelled AS ({labels}),
totals AS (SELECT dataset_id, count(*) AS total FROM labelled GROUP BY ALL),
counts AS (
    SELECT dataset_id, category, count(DISTINCT image_id) AS count
    FROM (SELECT dataset_id, image_id, unnest(categories) AS category FROM labelled)
    WHERE category IS NOT NULL GROUP BY ALL
)
SELECT p.name AS dataset, c.category, coalesce(c.count, 0)::BIGINT AS count, coalesce(t.total, 0)::BIGINT AS total
FROM picked p LEFT JOIN totals t ON t.dataset_id = p.id LEFT JOIN counts c ON c.dataset_id = p.id
ORDER BY p.position, count DESC, c.category
"""

# ------------------------------------------------------------------------------------------------ the tally

_HUMAN_HASH = "coalesce(sum(hash(image_id, categories, reviewed)), 0)"
_ALIASES_HASH = "(SELECT coalesce(sum(hash(old_name, new_name, since_version)), 0) FROM category_aliases)"
_FINGERPRINT_SQL = f"""
SELECT (SELECT coalesce(max(id), 0) FROM annotations),
       (SELECT count(*) FROM annotations WHERE id <= $mark),
       (SELECT count(*) FROM human_labels),
       (SELECT {_HUMAN_HASH} FROM human_labels),
       {_ALIASES_HASH}
"""

# The latest annotation per image among some annotations, its categories read through the category aliases the
# way the current_annotations view reads them (migration 7's macros).
_LATEST_SQL = """
SELECT l.image_id, l.annotation_id,
       resolve_category_aliases(l.categories, l.list_version, m.alias_map) AS categories
FROM (SELECT image_id, max(id) AS annotation_id, arg_max_null(categories, id) AS categories,
             arg_max_null(category_list_version, id) AS list_version
      FROM annotations WHERE {where} GROUP BY image_id) l,
     (SELECT category_alias_map() AS alias_map) m
"""

_REBUILD_STATE_SQL = f"""
INSERT INTO label_state
SELECT i.id, i.dataset_id, a.annotation_id, a.categories, h.image_id IS NOT NULL, h.categories,
       coalesce(h.reviewed, false)
FROM ({_LATEST_SQL.format(where="id <= $mark")}) a
FULL JOIN human_labels h ON h.image_id = a.image_id
JOIN images i ON i.id = coalesce(a.image_id, h.image_id)
"""

_TALLY_KEY = "dataset_id, model_categories, human_categories, reviewed"

_HUMAN_CHANGES_SQL = """
SELECT coalesce(h.image_id, s.image_id) AS image_id
FROM human_labels h
FULL JOIN (SELECT image_id, human_categories, reviewed FROM label_state WHERE has_human) s ON s.image_id = h.image_id
WHERE h.image_id IS NULL OR s.image_id IS NULL
   OR h.categories IS DISTINCT FROM s.human_categories OR h.reviewed IS DISTINCT FROM s.reviewed
"""

# Fresh state for the changed images: a newer annotation replaces the one the state knew; the human part is reread.
_FRESH_STATE_SQL = f"""
SELECT i.id AS image_id, i.dataset_id,
       coalesce(n.annotation_id, o.annotation_id) AS annotation_id,
       CASE WHEN n.image_id IS NOT NULL THEN n.categories ELSE o.model_categories END AS model_categories,
       h.image_id IS NOT NULL AS has_human, h.categories AS human_categories, coalesce(h.reviewed, false) AS reviewed
FROM (SELECT DISTINCT image_id FROM tally_changed) c
JOIN images i ON i.id = c.image_id
LEFT JOIN ({_LATEST_SQL.format(where="id > $old_mark AND id <= $mark")}) n ON n.image_id = c.image_id
LEFT JOIN tally_old o ON o.image_id = c.image_id
LEFT JOIN human_labels h ON h.image_id = c.image_id
WHERE coalesce(n.annotation_id, o.annotation_id) IS NOT NULL OR h.image_id IS NOT NULL
"""

# -------------------------------------------------------------------------------------------------- exports

# Per image of one dataset (id $id) that has a label under the source, from label_state (synced first).
_EXPORT_LABELS_SQL = {
    "model": """
        SELECT i.name, a.description, s.model_categories AS categories, s.model_categories,
               h.categories AS human_categories,
               s.reviewed, h.reviewer
        FROM label_state s JOIN images i ON i.id = s.image_id JOIN annotations a ON a.id = s.annotation_id
        LEFT JOIN human_labels h ON h.image_id = s.image_id
        WHERE s.dataset_id = $id""",
    "human": """
        SELECT i.name, coalesce(h.description, a.description) AS description,
               coalesce(h.categories, s.model_categories) AS categories, s.model_categories,
               h.categories AS human_categories, s.reviewed, h.reviewer
        FROM label_state s JOIN images i ON i.id = s.image_id JOIN human_labels h ON h.image_id = s.image_id
        LEFT JOIN annotations a ON a.id = s.annotation_id
        WHERE s.dataset_id = $id AND s.reviewed""",
    "effective": """
        SELECT i.name, coalesce(h.description, a.description) AS description,
               coalesce(h.categories, s.model_categories) AS categories, s.model_categories,
               h.categories AS human_categories, s.reviewed, h.reviewer
        FROM label_state s JOIN images i ON i.id = s.image_id
        LEFT JOIN annotations a ON a.id = s.annotation_id LEFT JOIN human_labels h ON h.image_id = s.image_id
        WHERE s.dataset_id = $id""",
}

# Which images an export holds: a description or at least one category (a row with neither would not import).
_EXPORTED = "(description IS NOT NULL OR len(categories) > 0)"
# Python's str.strip() whitespace (the seed importer strips descriptions), for the plain-text check below.
_PY_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f\x{85}\pZ]"
# A description that is {"summary": text} and nothing else came from a plain-text description: export the text
# itself, as the seed wrote it, when importing it again gives back the same object; otherwise its JSON text. The
# prefix/suffix test skips the JSON parsing for every other description, such as the model's (whose last field,
# quality, is an object); a miss only means JSON text, which imports back the same.
_DESCRIPTION_SQL = f"""
CASE WHEN NOT (starts_with(description::VARCHAR, '{{"summary":') AND ends_with(description::VARCHAR, '"}}'))
     THEN description::VARCHAR
     WHEN json_keys(description) = ['summary'] AND json_type(description, '$.summary') = 'VARCHAR'
          AND (description ->> 'summary') <> ''
          AND NOT regexp_matches(description ->> 'summary', '^{_PY_SPACE}|{_PY_SPACE}$|^\\{{|^(?i:error:)')
     THEN description ->> 'summary'
     ELSE description::VARCHAR END"""


def _joined(column: str) -> str:
    """A category list as the seed wrote it: names joined by ", " (NULL and an empty list give an empty cell)."""
    return f"array_to_string({column}, ', ')"


def _cell(column: str) -> str:
    """A CSV text cell: empty text as an empty cell, a cell a spreadsheet would run as a formula prefixed with '."""
    value = f"nullif({column}, '')"
    pattern = FORMULA_PATTERN.replace("'", "''")
    return f"CASE WHEN regexp_matches({value}, '{pattern}') THEN '''' || {value} ELSE {value} END"


def _export_select(source: LabelSource, *, csv: bool, extra_columns: bool, only_names: bool = False) -> str:
    """The export query: values computed once in the inner select, CSV cells finished in the outer one."""
    inner = [
        ("image_name", "name"),
        ("description", _DESCRIPTION_SQL),
        ("categories", _joined("categories") if csv else "categories"),
    ]
    if not csv:
        inner.append(("label_source", "$source"))
    if extra_columns:
        inner += [
            ("dataset", "$dataset"),
            ("label_source", "$source"),
            ("reviewed", "reviewed"),
            ("model_categories", _joined("model_categories") if csv else "model_categories"),
            ("human_categories", _joined("human_categories") if csv else "human_categories"),
            ("reviewer", "reviewer"),
        ]
    columns = list(dict(inner).items())  # label_source once, in its first place
    plain = {"label_source", "reviewed"}
    outer = [name if not csv or name in plain else f"{_cell(name)} AS {name}" for name, _ in columns]
    values = ", ".join(f"{sql} AS {name}" for name, sql in columns)
    return (
        f"SELECT {', '.join(outer)} FROM (SELECT name AS sort_name, {values} "
        f"FROM ({_EXPORT_LABELS_SQL[source]}) labelled "
        f"WHERE {_EXPORTED}{' AND list_contains($names, name)' if only_names else ''}) ORDER BY sort_name"
    )


class AnalyticsQueries(StoreBase):
    """Category distributions for the Compare page and CLI, and label exports (CSV in the seed's format, Parquet)."""

    def category_distribution(self, datasets: Sequence[str], source: LabelSource = "effective") -> pd.DataFrame:
        """Per (dataset, category): how many labelled images carry the category, and the dataset's total.

        Columns dataset, category, count, total (the distribution frame of `labeling.stats`); datasets in the
        order given, then categories by count (descending) and name. A dataset without labelled images (or
        without any category) still has one row, with category NULL, count 0 and its total. Multi-label: an
        image adds one to each of its distinct categories.
        """
        names, ids = self._dataset_ids(datasets)
        categories, labelled = _TALLY_SOURCE[checked_source(source)]
        self.sync_derived()
        sql = _DISTRIBUTION_SQL.format(categories=categories, labelled=labelled)
        return self.fetch_df(sql, {"names": names, "ids": ids}).astype({"count": "int64", "total": "int64"})

    def category_distribution_from_views(
        self, datasets: Sequence[str], source: LabelSource = "effective"
    ) -> pd.DataFrame:
        """The same frame as `category_distribution`, computed from the schema's views without the tally.

        The reference the tally is checked against (tests, benchmark); seconds at a million images.
        """
        names, ids = self._dataset_ids(datasets)
        sql = _VIEW_DISTRIBUTION_SQL.format(labels=_VIEW_LABELS_SQL[checked_source(source)])
        return self.fetch_df(sql, {"names": names, "ids": ids}).astype({"count": "int64", "total": "int64"})

    # ---- the tally ---------------------------------------------------------------------------------------------

    def sync_label_tally(self, *, rebuild: bool = False) -> str:
        """Bring label_state and label_tally in step with annotations and human labels.

        Returns what it did: "unchanged", "updated" (only the images that changed) or "rebuilt". Cheap when
        nothing changed (a fingerprint of a few aggregates); a rebuild reads every annotation once.
        """
        with _SYNC_LOCK, self.transaction() as cur:
            marks = cur.execute(
                "SELECT last_annotation_id, annotations_seen, human_rows, human_hash, aliases_hash "
                "FROM label_tally_marks"
            ).fetchall()
            old_mark = int(marks[0][0]) if marks else 0
            found = cur.execute(_FINGERPRINT_SQL, {"mark": old_mark}).fetchall()[0]
            newest, seen, human_rows, human_hash, aliases_hash = (int(value) for value in found)
            # Deleted or late-committed annotations, or renamed categories: recount everything.
            if rebuild or not marks or seen != int(marks[0][1]) or aliases_hash != int(marks[0][4]):
                self._rebuild_tally(cur, newest)
                return "rebuilt"
            human_changed = (human_rows, human_hash) != (int(marks[0][2]), int(marks[0][3]))
            if newest == old_mark and not human_changed:
                return "unchanged"
            self._update_tally(cur, old_mark, newest, human_changed)
            return "updated"

    def _rebuild_tally(self, cur: duckdb.DuckDBPyConnection, mark: int) -> None:
        cur.execute("DELETE FROM label_state")
        cur.execute(_REBUILD_STATE_SQL, {"mark": mark})
        cur.execute("DELETE FROM label_tally")
        cur.execute(f"INSERT INTO label_tally SELECT {_TALLY_KEY}, count(*) FROM label_state GROUP BY ALL")
        self._save_marks(cur, mark)

    def _update_tally(self, cur: duckdb.DuckDBPyConnection, old_mark: int, mark: int, human_changed: bool) -> None:
        human = _HUMAN_CHANGES_SQL if human_changed else "SELECT NULL::BIGINT AS image_id WHERE false"
        cur.execute(
            f"""CREATE OR REPLACE TEMP TABLE tally_changed AS
            SELECT image_id FROM annotations WHERE id > $old_mark AND id <= $mark UNION ({human})""",
            {"old_mark": old_mark, "mark": mark},
        )
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE tally_old AS SELECT * FROM label_state "
            "WHERE image_id IN (SELECT image_id FROM tally_changed)"
        )
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE tally_new AS {_FRESH_STATE_SQL}", {"old_mark": old_mark, "mark": mark}
        )
        cur.execute("DELETE FROM label_state WHERE image_id IN (SELECT image_id FROM tally_changed)")
        cur.execute("INSERT INTO label_state SELECT * FROM tally_new")
        # New tally = old tally - the changed images' old combinations + their new ones.
        cur.execute(f"""CREATE OR REPLACE TEMP TABLE tally_merged AS
            SELECT {_TALLY_KEY}, sum(images)::BIGINT AS images FROM (
                SELECT {_TALLY_KEY}, images FROM label_tally
                UNION ALL SELECT {_TALLY_KEY}, -count(*) FROM tally_old GROUP BY ALL
                UNION ALL SELECT {_TALLY_KEY}, count(*) FROM tally_new GROUP BY ALL)
            GROUP BY ALL HAVING sum(images) <> 0""")
        cur.execute("DELETE FROM label_tally")
        cur.execute("INSERT INTO label_tally SELECT * FROM tally_merged")
        self._save_marks(cur, mark)
        # Temp tables (this connection only) are replaced on the next update; after an error they are left over
        # untouched, since nothing may run in an aborted transaction but its rollback.
        for table in ("tally_changed", "tally_old", "tally_new", "tally_merged"):
            cur.execute(f"DROP TABLE {table}")

    @staticmethod
    def _save_marks(cur: duckdb.DuckDBPyConnection, mark: int) -> None:
        cur.execute("DELETE FROM label_tally_marks")
        cur.execute(
            f"""INSERT INTO label_tally_marks
            SELECT $mark, (SELECT count(*) FROM annotations WHERE id <= $mark), count(*), {_HUMAN_HASH},
                   {_ALIASES_HASH}
            FROM human_labels""",
            {"mark": mark},
        )

    # ---- exports -----------------------------------------------------------------------------------------------

    def export_labels(
        self,
        dataset: str,
        path: str | Path,
        *,
        source: LabelSource = "effective",
        fmt: str = "csv",
        extra_columns: bool = False,
        names: Sequence[str] | None = None,
    ) -> int:
        """Write one dataset's labelled images to `path` with DuckDB's COPY; returns the number of rows.

        CSV: `image_name,description,categories` as the seed wrote it (categories joined by ", ", minimal
        quoting, UTF-8, "\\n" line ends), cells a spreadsheet would run as formulas prefixed with a single quote;
        `extra_columns` appends dataset, label_source, reviewed, model_categories, human_categories, reviewer.
        Parquet: the same columns with category lists as lists, always with label_source, and `label_source`
        in the file's key-value metadata. Rows: the images with a description or at least one category under
        `source`, by image name; with `names`, only those images (a debiased subset).
        """
        source = checked_source(source)
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"Unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}.")
        _, ids = self._dataset_ids([dataset])
        self.sync_derived()
        select = _export_select(source, csv=fmt == "csv", extra_columns=extra_columns, only_names=names is not None)
        if fmt == "csv":
            options = "FORMAT csv, HEADER true, DELIMITER ',', QUOTE '\"', ESCAPE '\"', NEW_LINE '\\n'"
        else:
            # The value is one of LABEL_SOURCES (checked above), never user text.
            options = f"FORMAT parquet, COMPRESSION zstd, KV_METADATA {{label_source: '{source}'}}"
        # COPY takes no parameter for its target: the path goes in as a quoted literal.
        target = "'" + str(Path(path)).replace("'", "''") + "'"
        params = _used({"id": ids[0], "dataset": dataset, "source": source, "names": list(names or [])}, select)
        try:
            rows = self.cursor().execute(f"COPY ({select}) TO {target} ({options})", params).fetchall()
        except duckdb.IOException as exc:
            raise InputError(f"Cannot write {path} ({exc}): check the folder exists and is writable.") from None
        return int(rows[0][0]) if rows else 0

    def export_frame(
        self,
        dataset: str,
        *,
        source: LabelSource = "effective",
        extra_columns: bool = False,
        csv: bool = True,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """The rows `export_labels` writes (the first `limit` of them), as a DataFrame: previews and tests."""
        source = checked_source(source)
        _, ids = self._dataset_ids([dataset])
        self.sync_derived()
        select = _export_select(source, csv=csv, extra_columns=extra_columns)
        params = _used({"id": ids[0], "dataset": dataset, "source": source}, select)
        if limit is not None:
            select += " LIMIT $limit"
            params["limit"] = int(limit)
        return self.fetch_df(select, params)

    def image_labels(self, dataset: str, source: LabelSource = "effective") -> pd.DataFrame:
        """Per labelled image of one dataset under `source`: image_id, name and categories (a list)."""
        source = checked_source(source)
        _, ids = self._dataset_ids([dataset])
        self.sync_derived()
        select = _EXPORT_LABELS_SQL[source].replace("SELECT i.name,", "SELECT i.id AS image_id, i.name,", 1)
        return self.fetch_df(
            f"SELECT image_id, name, categories FROM ({select}) labelled WHERE len(categories) > 0 ORDER BY image_id",
            {"id": ids[0]},
        )

    def export_row_count(self, dataset: str, source: LabelSource = "effective") -> int:
        """How many rows an export of the dataset under `source` holds (labelled or described images)."""
        source = checked_source(source)
        _, ids = self._dataset_ids([dataset])
        self.sync_derived()
        row = self.fetch_one(
            f"SELECT count(*) FROM ({_EXPORT_LABELS_SQL[source]}) labelled WHERE {_EXPORTED}", {"id": ids[0]}
        )
        return int(row[0]) if row else 0

    def dataset_labels(self) -> dict[str, str]:
        """Dataset name -> label (REAL, GEN, ...; "" when none), by name: cheap, unlike the dataset summaries."""
        return {
            str(name): str(label or "")
            for name, label in self.fetch_all("SELECT name, label FROM datasets ORDER BY name")
        }

    # ---- helpers -----------------------------------------------------------------------------------------------

    def _dataset_ids(self, datasets: Sequence[str]) -> tuple[list[str], list[int]]:
        names = list(dict.fromkeys(datasets))  # the first mention keeps its place
        if not names:
            raise InputError("Choose at least one dataset.")
        found = dict(self.fetch_all("SELECT name, id FROM datasets WHERE list_contains(?, name)", [names]))
        unknown = [name for name in names if name not in found]
        if unknown:
            known = ", ".join(row[0] for row in self.fetch_all("SELECT name FROM datasets ORDER BY name"))
            raise NotFoundError(
                f"There is no dataset named {unknown[0]!r} (datasets: {known or 'none yet'}): "
                "check the name or import it first."
            )
        return names, [int(found[name]) for name in names]


def _used(params: dict[str, Any], sql: str) -> dict[str, Any]:
    """Only the named parameters the statement uses: DuckDB refuses extra ones."""
    return {name: value for name, value in params.items() if f"${name}" in sql}
