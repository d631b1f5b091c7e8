"""Store verbs for human review: the gallery query, the focus record, saves with optimistic concurrency,
the edit log with undo, bulk edits, review progress and model-vs-human agreement.

Human labels live apart from model output (`human_labels`); a column left NULL there means "the model's value
stands". Every human change bumps the row's `version` and writes one `edit_log` row per field in the same
transaction, so a stale save is refused and any edit can be undone.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from labeling.errors import ConflictError, InputError, NotFoundError, WriteConflict
from labeling.records import Failure, HumanLabel, ModelLabel, ReviewRecord
from labeling.store.base import StoreBase
from labeling.vocabulary import LABEL_SOURCES

if TYPE_CHECKING:
    import pandas as pd

REVIEW_STATES = ("all", "not_reviewed", "reviewed", "failed", "missing_image")
_UNKNOWN = "unknown"  # labeling.taxonomy.UNKNOWN (importing taxonomy here would be circular)
NO_CATEGORY = "(none)"  # category filter value: images without any category under the chosen source
EDIT_FIELDS = ("description", "categories", "reviewed")

# Sort name -> key expressions over the gallery rows (each non-NULL), ascending unless flagged; id breaks ties.
SORTS: dict[str, tuple[tuple[str, bool], ...]] = {
    "name": (("name", False),),
    "name_desc": (("name", True),),
    "recently_edited": (("coalesce(epoch_us(updated_at), 0)", True), ("name", False)),
    "listed": (),  # import order
}


# Technical-fact filter name -> (what the page shows, predicate over image_facts; None: no filter).
FACT_FILTERS: dict[str, tuple[str, str | None]] = {
    "any": ("Any", None),
    "jpeg": ("JPEG files", "format IN ('JPEG', 'MPO')"),
    "png": ("PNG files", "format = 'PNG'"),
    "webp": ("WebP files", "format = 'WEBP'"),
    "other_format": ("Other formats", "format NOT IN ('JPEG', 'MPO', 'PNG', 'WEBP')"),
    "text_metadata": ("Text metadata (PNG text keys, comments)", "len(text_keys) > 0"),
    "generator": ("Generator settings in the file", "generator IS NOT NULL"),
    "c2pa": ("C2PA manifest", "c2pa"),
    "exif_camera": ("EXIF camera make", "exif_make IS NOT NULL"),
    "duplicate": ("Duplicates (Audit)", "image_id IN (SELECT image_id FROM duplicate_groups)"),
    "leakage": (
        "Leaked to another label (Audit)",
        "image_id IN (SELECT image_id FROM duplicate_groups WHERE leakage)",
    ),
    "unreadable": ("Unreadable in the scan", "error IS NOT NULL"),
    "not_scanned": ("Not scanned yet", None),
}


@dataclass(frozen=True)
class ReviewFilter:
    """What the gallery shows. Every field narrows the set; the defaults show everything in name order."""

    dataset: str | None = None
    category: str | None = None  # a category name, NO_CATEGORY, or None for any
    category_source: str = "effective"  # model | human | effective
    state: str = "all"  # one of REVIEW_STATES
    disagreement: bool = False  # only images whose human categories differ from the model's
    text: str = ""  # case-insensitive substring of the file name, summary or description
    sort: str = "name"  # one of SORTS
    fact: str = "any"  # one of FACT_FILTERS: a technical fact from the scan
    images_only: bool = False  # leave out names without an image (missing, ambiguous, refused), unless state asks

    def __post_init__(self) -> None:
        if self.fact not in FACT_FILTERS:
            raise InputError(f"Unknown technical-fact filter {self.fact!r}: use one of {', '.join(FACT_FILTERS)}.")
        if self.category_source not in LABEL_SOURCES:
            raise InputError(
                f"Unknown category source {self.category_source!r}: use one of {', '.join(LABEL_SOURCES)}."
            )
        if self.state not in REVIEW_STATES:
            raise InputError(f"Unknown review state {self.state!r}: use one of {', '.join(REVIEW_STATES)}.")
        if self.sort not in SORTS:
            raise InputError(f"Unknown sort {self.sort!r}: use one of {', '.join(SORTS)}.")


@dataclass(frozen=True)
class GalleryPage:
    """One page of the gallery and the counts of the whole filtered set."""

    rows: pd.DataFrame  # image_id, dataset, name, status, location, summary, categories, model/human categories...
    total: int  # images matching the whole filter
    page: int  # 1-based, clamped to the pages that exist
    page_size: int
    counts: dict[str, int] = field(default_factory=dict)  # per state, over the filter without state/disagreement

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()  # a save argument left out: that field is not touched
_ABSENT: Any = _Unset()  # a description key one side does not have (unlike a key holding null)


@dataclass(frozen=True)
class UndoResult:
    """What `undo_edit` wrote back: one edit, or every image of the bulk action the edit belongs to."""

    edit_id: int  # the edit undone: a single edit's id, or the bulk action's entry id (its first row)
    images: int  # images written back
    skipped: int = 0  # images of a bulk action changed again since: they keep their newer value
    version: int | None = None  # a single edit's image's new version (None for a bulk action)
    bulk: bool = False

    def summary(self) -> str:
        """One line for the page: what was undone, and what was left alone."""
        if not self.bulk:
            return f"Undid edit #{self.edit_id} (the image is now version {self.version})."
        text = f"Undid bulk edit #{self.edit_id} on {_count(self.images, 'image')}"
        if self.skipped:
            text += f"; {_count(self.skipped, 'image')} changed again since kept the newer value"
        return text + "."


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _names(names: Iterable[str]) -> str:
    """`ana`, `ana and bob`, `ana, bob and carl`."""
    listed = list(names)
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]


# An image without a human label: every field follows the model (read only, never changed in place).
_NO_LABEL: dict[str, Any] = {"description": None, "categories": None, "reviewed": False, "version": 0}


def _json(value: Any) -> str | None:
    # In the order given (never sorted): exports show the fields in the order the model wrote them.
    return None if value is None else json.dumps(value, ensure_ascii=False)


def _load(value: Any) -> Any:
    """A JSON column's value as Python (DuckDB returns JSON as text)."""
    if value is None:
        return None
    if isinstance(value, str):
        return json.loads(value)
    return value


def _categories(value: Any) -> list[str] | None:
    return None if value is None else [str(item) for item in value]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(value: Any, limit: int = 80) -> str:
    if value is _ABSENT:
        return "(none)"
    return _cut(json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value), limit)


def shown(value: Any, limit: int = 60) -> str:
    """A value as a reviewer reads it in one short table cell: text on one line, names joined, yes/no."""
    if value is _ABSENT or value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return _cut(" ".join(value.split()) or "(empty)", limit)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return _cut(", ".join(value) or "(none)", limit)
    return _cut(json.dumps(value, ensure_ascii=False), limit)


def field_paths(before: Any, after: Any, path: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """(dotted path, before, after) of each value that differs between two descriptions, in their own field
    order (before's keys, then keys only `after` has). Objects are followed (`scene.environment`), lists are
    compared whole (`objects`); a key one side lacks reads as `(none)`. Key order alone is no difference."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: list[tuple[str, Any, Any]] = []
        for key in dict.fromkeys([*before, *after]):
            found += field_paths(before.get(key, _ABSENT), after.get(key, _ABSENT), (*path, str(key)))
        return found
    return [] if before == after else [(".".join(path), before, after)]


def describe_change(field_name: str, before: Any, after: Any) -> str:
    """One line saying what an edit changed; NULL (the model's value) reads as `model's`."""
    if field_name == "description" and isinstance(before, dict) and isinstance(after, dict):
        parts = [f"{path} {_short(old, 40)} -> {_short(new, 40)}" for path, old, new in field_paths(before, after)]
        return "description: " + ("; ".join(parts) if parts else "unchanged")
    if field_name == "reviewed":
        return f"reviewed: {shown(before)} -> {shown(after)}"
    shown_before = "model's" if before is None and field_name != "reviewed" else _short(before)
    shown_after = "model's" if after is None and field_name != "reviewed" else _short(after)
    return f"{field_name}: {shown_before} -> {shown_after}"


@contextmanager
def _conflicts(message: str) -> Iterator[None]:
    """Say what a write-write conflict (two writers on one row at once) means for this save."""
    try:
        yield
    except WriteConflict:
        raise ConflictError(message) from None


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, with its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# Lower-cased words of a description (every top-level value, JSON-decoded) plus the summary, for substring search.
_SEARCH_TEXT = "lower(concat_ws(' ', {summary}, array_to_string(json_extract_string({description}, '$.*'), ' ')))"

# The narrow rows the gallery filters, counts and sorts: images with their human label, failure and
# model-vs-human disagreement flags. Category and text filters are semi-joins on `label_state` (issue 6: the
# latest annotation per image and its categories read through the category aliases, kept in step by
# `sync_label_tally`) and `review_text`; wide columns (summaries, lists) are read for one page only.
_ROWS = """
WITH failed AS (SELECT DISTINCT image_id FROM failures WHERE NOT resolved),
disagree AS (
    SELECT image_id FROM label_state
    WHERE {state_scope} has_human AND human_categories IS NOT NULL AND model_categories IS NOT NULL
      AND list_sort(human_categories) IS DISTINCT FROM list_sort(model_categories)),
rows AS (
    SELECT i.id AS image_id, i.dataset_id, i.name, i.status,
           coalesce(h.reviewed, false) AS reviewed, h.updated_at, h.description IS NOT NULL AS description_edited,
           f.image_id IS NOT NULL AS failed, d.image_id IS NOT NULL AS disagreement
    FROM images i
    LEFT JOIN human_labels h ON h.image_id = i.id
    LEFT JOIN failed f ON f.image_id = i.id
    LEFT JOIN disagree d ON d.image_id = i.id
    {scope}
)"""

# Wide columns for one page of images; every table is filtered by the ids in its scan ({ids}: "?, ?, ...").
_DETAILS = """
SELECT i.id AS image_id, i.dataset_id, d.name AS dataset, i.name, i.status, i.location,
       coalesce(h.summary, a.summary) AS summary,
       coalesce(h.categories, s.model_categories) AS categories,
       s.model_categories, h.categories AS human_categories,
       h.description IS NOT NULL AS description_edited, coalesce(h.reviewed, false) AS reviewed, h.reviewer,
       h.updated_at, coalesce(h.version, 0) AS version, f.image_id IS NOT NULL AS failed,
       s.annotation_id IS NOT NULL AS annotated
FROM images i JOIN datasets d ON d.id = i.dataset_id
LEFT JOIN (SELECT image_id, annotation_id, model_categories FROM label_state WHERE image_id IN ({ids})) s
    ON s.image_id = i.id
LEFT JOIN (SELECT id, summary FROM annotations WHERE image_id IN ({ids})) a ON a.id = s.annotation_id
LEFT JOIN (SELECT * FROM human_labels WHERE image_id IN ({ids})) h ON h.image_id = i.id
LEFT JOIN (SELECT DISTINCT image_id FROM failures WHERE NOT resolved AND image_id IN ({ids})) f ON f.image_id = i.id
WHERE i.id IN ({ids})
"""

_HUMAN_WORDS = _SEARCH_TEXT.format(summary="summary", description="description")

# The fields a bulk action changes: edit-log field -> (human_labels column, its SQL type).
_BULK_FIELDS = {"categories": ("categories", "VARCHAR[]"), "reviewed": ("reviewed", "BOOLEAN")}

# The edit log as entries, newest first ({where} over edit_log e JOIN images i; then the limit): a single edit
# is one entry, a bulk action is one entry for all its rows, whichever of its images the filter matched.
_EDIT_ENTRIES = """
WITH matched AS (SELECT e.id, e.bulk_id FROM edit_log e JOIN images i ON i.id = e.image_id{where}),
entries AS (
    SELECT min(id) AS id, max(id) AS last_id, bulk_id FROM matched
    GROUP BY bulk_id, CASE WHEN bulk_id IS NULL THEN id END ORDER BY last_id DESC LIMIT ?),
entry_rows AS (
    SELECT n.id AS entry, n.last_id, e.* FROM entries n JOIN edit_log e ON e.id = n.id WHERE n.bulk_id IS NULL
    UNION ALL
    SELECT n.id AS entry, n.last_id, e.* FROM entries n JOIN edit_log e ON e.bulk_id = n.bulk_id)
SELECT r.entry AS id,
       CASE WHEN r.bulk_id IS NULL THEN any_value(r.image_id) END AS image_id,
       string_agg(DISTINCT d.name, ', ' ORDER BY d.name) AS dataset,
       CASE WHEN r.bulk_id IS NULL THEN any_value(i.name)
            ELSE format('{{:,}} image', count(*)) || CASE WHEN count(*) = 1 THEN '' ELSE 's' END END AS name,
       any_value(r.reviewer) AS reviewer, any_value(r.field) AS field,
       CASE WHEN r.bulk_id IS NULL THEN any_value(CAST(r.before AS VARCHAR)) END AS before,
       CASE WHEN r.bulk_id IS NULL THEN any_value(CAST(r.after AS VARCHAR)) END AS after,
       max(r.edited_at) AS edited_at, bool_or(r.undone) AS undone,
       CASE WHEN r.bulk_id IS NULL THEN any_value(r.version) END AS version,
       r.bulk_id, count(*) AS images, any_value(r.bulk_action) AS action
FROM entry_rows r JOIN images i ON i.id = r.image_id JOIN datasets d ON d.id = i.dataset_id
GROUP BY r.entry, r.last_id, r.bulk_id ORDER BY r.last_id DESC"""

# One image's own edit-log rows, newest first, each with the size and action of its bulk action (if any).
_IMAGE_EDITS = """
SELECT e.id, e.image_id, d.name AS dataset, i.name, e.reviewer, e.field, CAST(e.before AS VARCHAR) AS before,
       CAST(e.after AS VARCHAR) AS after, e.edited_at, e.undone, e.version, e.bulk_id,
       CASE WHEN e.bulk_id IS NULL THEN 1
            ELSE (SELECT count(*) FROM edit_log b WHERE b.bulk_id = e.bulk_id) END AS images,
       e.bulk_action AS action
FROM edit_log e JOIN images i ON i.id = e.image_id JOIN datasets d ON d.id = i.dataset_id{where}
ORDER BY e.id DESC LIMIT ?"""


class _Query:
    """A gallery query under construction: the rows CTE for one dataset (or all) and WHERE clauses with their
    named parameters."""

    def __init__(self, dataset_id: int | None) -> None:
        self.params: dict[str, Any] = {}
        if dataset_id is None:
            self.scope, self.state_scope = "", ""
        else:
            self.scope, self.state_scope = "WHERE i.dataset_id = $dataset_id", "dataset_id = $dataset_id AND"
            self.params["dataset_id"] = dataset_id
        self.base = _ROWS.format(scope=self.scope, state_scope=self.state_scope)
        self.where: list[str] = []

    def add(self, clause: str, **params: Any) -> None:
        self.where.append(clause)
        self.params.update(params)

    def where_sql(self, extra: Sequence[str] = ()) -> str:
        clauses = [*self.where, *extra]
        return " WHERE " + " AND ".join(clauses) if clauses else ""

    def category(self, source: str, category: str) -> None:
        # the same meanings as Compare and Export (labeling.vocabulary): human = reviewed images only
        having = f"SELECT image_id FROM label_state WHERE {self.state_scope} "
        if source == "human":
            having += "reviewed AND "
        column = "model_categories" if source == "model" else "coalesce(human_categories, model_categories)"
        if category == NO_CATEGORY:
            self.add(f"image_id NOT IN ({having} coalesce(len({column}), 0) > 0)")
        else:
            self.add(f"image_id IN ({having} list_contains({column}, $category))", category=category)

    def text(self, text: str) -> None:
        self.add(
            "(name ILIKE $name_like ESCAPE '\\' "
            f"OR image_id IN (SELECT image_id FROM human_labels WHERE description IS NOT NULL "
            f"                AND {_HUMAN_WORDS} LIKE $words_like ESCAPE '\\') "
            "OR (NOT description_edited AND image_id IN ("
            "    SELECT image_id FROM review_text WHERE words LIKE $words_like ESCAPE '\\')))",
            name_like=_like(text),
            words_like=_like(text.lower()),
        )


_STATE_SQL = {
    "all": "true",
    "not_reviewed": "NOT reviewed",
    "reviewed": "reviewed",
    "failed": "failed",
    "missing_image": "status <> 'found' AND status <> 'unlinked'",
}


def _matching_sql(flt: ReviewFilter) -> str:
    """The review-state part of a filter (the gallery counts each state before applying it)."""
    parts = [_STATE_SQL[flt.state]]
    if flt.disagreement:
        parts.append("disagreement")
    if flt.images_only and flt.state != "missing_image":
        parts.append(f"NOT ({_STATE_SQL['missing_image']})")
    return " AND ".join(parts)


# A process holds the DuckDB file alone, so a lock per process keeps two syncs of review_text apart.
_TEXT_SYNC_LOCK = threading.Lock()


class ReviewQueries(StoreBase):
    """Human review: reading the gallery and one image, and every write a reviewer makes."""

    # ---- derived state ---------------------------------------------------------------------------------------

    def sync_review_text(self) -> None:
        """Bring `review_text` (the search words of every image's latest annotation) in step; cheap when nothing
        changed. Readers go through `sync_derived`, which owns every derived table."""
        with _TEXT_SYNC_LOCK, self.transaction() as tx:
            marks = tx.execute("SELECT last_annotation_id, annotations_seen FROM review_text_marks").fetchall()
            old_mark = int(marks[0][0]) if marks else 0
            newest, seen = (
                int(v)
                for v in tx.execute(
                    "SELECT (SELECT coalesce(max(id), 0) FROM annotations), "
                    "(SELECT count(*) FROM annotations WHERE id <= ?)",
                    [old_mark],
                ).fetchall()[0]
            )
            if marks and seen == int(marks[0][1]) and newest == old_mark:
                return
            words = _SEARCH_TEXT.format(summary="a.summary", description="a.description")
            latest = (
                f"SELECT a.image_id, a.id, {words} FROM annotations a WHERE a.id IN "
                "(SELECT max(id) FROM annotations WHERE id > $since AND id <= $mark GROUP BY image_id)"
            )
            if not marks or seen != int(marks[0][1]):
                # Deleted datasets or annotations committed late: index everything again.
                tx.execute("DELETE FROM review_text")
                tx.execute(f"INSERT INTO review_text {latest}", {"since": 0, "mark": newest})
            else:  # annotations are append-only: only images with annotations past the mark changed
                tx.execute(
                    "DELETE FROM review_text WHERE image_id IN "
                    "(SELECT image_id FROM annotations WHERE id > $since AND id <= $mark)",
                    {"since": old_mark, "mark": newest},
                )
                tx.execute(f"INSERT INTO review_text {latest}", {"since": old_mark, "mark": newest})
            tx.execute("DELETE FROM review_text_marks")
            tx.execute(
                "INSERT INTO review_text_marks SELECT ?, count(*) FROM annotations WHERE id <= ?", [newest, newest]
            )

    # ---- the gallery -------------------------------------------------------------------------------------------

    def _review_dataset_id(self, name: str | None) -> int | None:
        if name is None:
            return None
        row = self.fetch_one("SELECT id FROM datasets WHERE name = ?", [name])
        if row is None:
            known = ", ".join(r[0] for r in self.fetch_all("SELECT name FROM datasets ORDER BY name")) or "none yet"
            raise NotFoundError(f"There is no dataset named {name!r} (datasets: {known}): check the name.")
        return int(row[0])

    def _gallery_query(self, flt: ReviewFilter, *, with_state: bool = True) -> _Query:
        query = _Query(self._review_dataset_id(flt.dataset))
        if flt.category:
            query.category(flt.category_source, flt.category)
        if flt.text.strip():
            query.text(flt.text.strip())
        if flt.fact == "not_scanned":
            query.add("image_id NOT IN (SELECT image_id FROM image_facts)")
        elif (predicate := FACT_FILTERS[flt.fact][1]) is not None:
            query.add(f"image_id IN (SELECT image_id FROM image_facts WHERE {predicate})")
        if with_state:
            query.add(_matching_sql(flt))
        return query

    @staticmethod
    def _order_sql(sort: str) -> str:
        keys = [f"{expr} {'DESC' if desc else 'ASC'}" for expr, desc in SORTS[sort]]
        return " ORDER BY " + ", ".join([*keys, "image_id ASC"])

    def gallery(self, flt: ReviewFilter, page: int = 1, page_size: int = 24) -> GalleryPage:
        """One page of images matching `flt` in its sort order, with the total and per-state counts.

        One statement filters once (narrow rows, materialized), then counts and picks the page from that."""
        if page_size < 1:
            raise InputError("The page size must be 1 or more.")
        self.sync_derived()
        page = max(1, page)
        counts, ids = self._counts_and_page(flt, page, page_size)
        pages = max(1, -(-counts["matching"] // page_size))
        if page > pages:  # past the end (the set shrank): show the last page
            page = pages
            counts, ids = self._counts_and_page(flt, page, page_size)
        return GalleryPage(
            rows=self.gallery_rows(ids), total=counts["matching"], page=page, page_size=page_size, counts=counts
        )

    def _counts_and_page(self, flt: ReviewFilter, page: int, page_size: int) -> tuple[dict[str, int], list[int]]:
        query = self._gallery_query(flt, with_state=False)
        matching = _matching_sql(flt)
        states = ", ".join(f"count(*) FILTER (WHERE {sql})::BIGINT AS {name}" for name, sql in _STATE_SQL.items())
        order = self._order_sql(flt.sort)
        sql = f"""{query.base},
            filtered AS MATERIALIZED (SELECT * FROM rows{query.where_sql()}),
            counts AS (SELECT {states}, count(*) FILTER (WHERE disagreement)::BIGINT AS disagreement,
                              count(*) FILTER (WHERE {matching})::BIGINT AS matching FROM filtered),
            picked AS (SELECT * FROM filtered WHERE {matching}{order} LIMIT $limit OFFSET $offset),
            page AS (SELECT image_id, row_number() OVER ({order.strip()}) AS position FROM picked)
            SELECT c.*, p.image_id FROM counts c LEFT JOIN page p ON true ORDER BY p.position"""
        rows = self.fetch_all(sql, {**query.params, "limit": page_size, "offset": (page - 1) * page_size})
        names = [*_STATE_SQL, "disagreement", "matching"]
        counts = dict(zip(names, (int(v) for v in rows[0][: len(names)]), strict=True))
        return counts, [int(row[-1]) for row in rows if row[-1] is not None]

    def gallery_rows(self, image_ids: Sequence[int]) -> pd.DataFrame:
        """Gallery rows of some images, in the order given: image_id, dataset, name, status, location, summary,
        categories (effective), model_categories, human_categories, reviewed, reviewer, version, failed, ..."""
        ids = [int(i) for i in image_ids]
        if not ids:
            ids = [-1]  # no image has it: an empty frame with the columns
        marks = ", ".join("?" * len(ids))
        frame = self.fetch_df(_DETAILS.format(ids=marks), ids * _DETAILS.count("{ids}"))
        order = {image_id: position for position, image_id in enumerate(ids)}
        return frame.sort_values("image_id", key=lambda column: column.map(order)).reset_index(drop=True)

    def gallery_ids(self, flt: ReviewFilter, limit: int = 100_000) -> list[int]:
        """Every image id the filter keeps, in its order (for bulk actions on a whole filter)."""
        self.sync_derived()
        query = self._gallery_query(flt)
        sql = f"{query.base} SELECT image_id FROM rows{query.where_sql()}{self._order_sql(flt.sort)} LIMIT $limit"
        return [int(row[0]) for row in self.fetch_all(sql, {**query.params, "limit": limit})]

    def neighbor(self, flt: ReviewFilter, image_id: int, step: int) -> int | None:
        """The image after (step=1) or before (step=-1) `image_id` in the filter's order, or None at the end.

        Works by sort position, so it still finds the next one after the current image left the filter
        (e.g. it was just marked reviewed while the filter shows unreviewed images)."""
        if step not in (1, -1):
            raise InputError("step must be 1 (next) or -1 (previous).")
        previous, following = self.neighbors(flt, image_id)
        return following if step == 1 else previous

    def neighbors(self, flt: ReviewFilter, image_id: int) -> tuple[int | None, int | None]:
        """(previous, next) around `image_id` in the filter's order: one pass over the filter for both."""
        self.sync_derived()
        keys = [*SORTS[flt.sort], ("image_id", False)]
        exprs = ", ".join(f"{expr} AS k{i}" for i, (expr, _) in enumerate(keys))
        base = _ROWS.format(scope="WHERE i.id = $image_id", state_scope="")
        current = self.fetch_one(f"{base} SELECT {exprs} FROM rows", {"image_id": image_id})
        if current is None:
            raise NotFoundError(f"Image #{image_id} does not exist (deleted with its dataset?).")
        query = self._gallery_query(flt)

        def side(step: int) -> str:
            ors = []
            for i, (expr, desc) in enumerate(keys):
                forward = (step == 1) != desc
                equal = [f"{keys[j][0]} = $k{j}" for j in range(i)]
                ors.append("(" + " AND ".join([*equal, f"{expr} {'>' if forward else '<'} $k{i}"]) + ")")
            order = ", ".join(f"{expr} {'DESC' if (desc == (step == 1)) else 'ASC'}" for expr, desc in keys)
            return f"(SELECT image_id FROM filtered WHERE {' OR '.join(ors)} ORDER BY {order} LIMIT 1)"

        sql = (
            f"{query.base}, filtered AS MATERIALIZED (SELECT * FROM rows{query.where_sql()}) "
            f"SELECT {side(-1)}, {side(1)}"
        )
        row = self.fetch_one(sql, {**query.params, **{f"k{i}": value for i, value in enumerate(current)}})
        assert row is not None  # a SELECT of two scalar subqueries always has its row
        return (None if row[0] is None else int(row[0])), (None if row[1] is None else int(row[1]))

    def image_id_by_name(self, dataset: str, name: str) -> int:
        """The id of an image of a dataset by its listed name (deep links name images this way)."""
        dataset_id = self._review_dataset_id(dataset)
        row = self.fetch_one("SELECT id FROM images WHERE dataset_id = ? AND name = ?", [dataset_id, name])
        if row is None:
            raise NotFoundError(f"Dataset {dataset!r} has no image named {name!r}: check the link.")
        return int(row[0])

    # ---- one image -----------------------------------------------------------------------------------------------

    def review_record(self, image_id: int) -> ReviewRecord:
        """Everything the focus view shows about one image: its row, the latest model annotation, the human
        label (or None), the effective values, and unresolved failures. JSON comes back as Python values."""
        row = self.fetch_one(
            """
            SELECT i.id, i.dataset_id, d.name, d.label, i.name, i.status, i.location, i.detail, i.size_bytes,
                   i.width, i.height
            FROM images i JOIN datasets d ON d.id = i.dataset_id WHERE i.id = ?""",
            [image_id],
        )
        if row is None:
            raise NotFoundError(f"Image #{image_id} does not exist (deleted with its dataset?).")
        found = self.fetch_all(
            """
            SELECT a.id, a.kind, a.model, a.prompt_version, a.description, a.summary,
                   resolve_category_aliases(a.categories, a.category_list_version, m.alias_map), a.created_at,
                   a.run_id
            FROM annotations a, (SELECT category_alias_map() AS alias_map) m
            WHERE a.image_id = ? ORDER BY a.id DESC LIMIT 1""",
            [image_id],
        )
        model = None
        if found:
            m = found[0]
            model = ModelLabel(m[0], m[1], m[2], m[3], _load(m[4]), m[5], _categories(m[6]), m[7], m[8])
        set_by_human = self.fetch_all(
            """
            SELECT description, summary, categories, reviewed, reviewer, version, updated_at
            FROM human_labels WHERE image_id = ?""",
            [image_id],
        )
        human = None
        if set_by_human:
            h = set_by_human[0]
            human = HumanLabel(_load(h[0]), h[1], _categories(h[2]), bool(h[3]), h[4], int(h[5]), h[6])
        failures = [
            Failure(*r)
            for r in self.fetch_all(
                "SELECT stage, kind, message, created_at FROM failures WHERE image_id = ? AND NOT resolved ORDER BY id",
                [image_id],
            )
        ]
        image_id, dataset_id, dataset, label, name, status, location, detail, size, width, height = row
        return ReviewRecord(
            image_id,
            dataset_id,
            dataset,
            label,
            name,
            status,
            location,
            detail,
            size,
            width,
            height,
            model,
            human,
            failures,
        )

    # ---- saving --------------------------------------------------------------------------------------------------

    def save_label(
        self,
        image_id: int,
        *,
        expected_version: int,
        reviewer: str,
        description: Any = UNSET,
        categories: Any = UNSET,
        reviewed: Any = UNSET,
    ) -> int:
        """Write the reviewer's values for the fields given (None = back to the model's value) and return the
        new version. `expected_version` is the version the reviewer read (0: no human label yet); if somebody
        saved since, nothing is written and ConflictError says what they changed. Unchanged fields write nothing.
        """
        wanted: dict[str, Any] = {}
        if description is not UNSET:
            if description is not None and not isinstance(description, dict):
                raise InputError("A description must be a JSON object (field -> value).")
            wanted["description"] = description
        if categories is not UNSET:
            wanted["categories"] = None if categories is None else [str(c) for c in categories]
        if reviewed is not UNSET:
            wanted["reviewed"] = bool(reviewed)
        try:
            with (
                _conflicts(
                    f"Somebody saved image #{image_id} at the same moment: open it again to see "
                    "their change, then save yours."
                ),
                self.transaction() as cur,
            ):
                current = self._human_row(cur, image_id)
                version = current["version"] if current else 0
                if version != expected_version:
                    raise self._stale(cur, image_id, expected_version, current or _NO_LABEL)
                before = current or {"description": None, "categories": None, "reviewed": False}
                changes = {k: v for k, v in wanted.items() if v != before[k]}
                if not changes:
                    return version
                after = {**before, **changes}
                new_version = version + 1
                self._write_label(cur, image_id, after, reviewer, new_version, exists=current is not None)
                self._log(
                    cur,
                    [(image_id, reviewer, name, before[name], value, new_version) for name, value in changes.items()],
                )
                return new_version
        except duckdb.ConstraintException:
            raise ConflictError(
                f"Somebody saved image #{image_id} first: open it again to see their change, then save yours."
            ) from None

    @staticmethod
    def _human_row(cur: duckdb.DuckDBPyConnection, image_id: int) -> dict[str, Any] | None:
        rows = cur.execute(
            "SELECT description, categories, reviewed, version FROM human_labels WHERE image_id = ?", [image_id]
        ).fetchall()
        if not rows:
            exists = cur.execute("SELECT count(*) FROM images WHERE id = ?", [image_id]).fetchall()[0][0]
            if not exists:
                raise NotFoundError(f"Image #{image_id} does not exist (deleted with its dataset?).")
            return None
        description, categories, reviewed, version = rows[0]
        return {
            "description": _load(description),
            "categories": _categories(categories),
            "reviewed": bool(reviewed),
            "version": int(version),
        }

    @staticmethod
    def _write_label(
        cur: duckdb.DuckDBPyConnection,
        image_id: int,
        values: dict[str, Any],
        reviewer: str,
        version: int,
        *,
        exists: bool,
    ) -> None:
        description = values["description"]
        summary = description.get("summary") if isinstance(description, dict) else None
        summary = summary if isinstance(summary, str) or summary is None else json.dumps(summary)
        params = [_json(description), summary, values["categories"], values["reviewed"], reviewer, version]
        if exists:
            cur.execute(
                "UPDATE human_labels SET description = ?, summary = ?, categories = ?, reviewed = ?, "
                "reviewer = ?, version = ?, updated_at = current_timestamp WHERE image_id = ?",
                [*params, image_id],
            )
        else:
            cur.execute(
                "INSERT INTO human_labels (description, summary, categories, reviewed, reviewer, version, "
                "image_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [*params, image_id],
            )

    @staticmethod
    def _log(cur: duckdb.DuckDBPyConnection, edits: Sequence[tuple[int, str, str, Any, Any, int]]) -> None:
        """Edit-log rows for one save or undo (a handful of fields: one multi-row VALUES statement)."""
        if not edits:
            return
        values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(edits))
        params: list[Any] = []
        for image_id, reviewer, name, before, after, version in edits:
            params.extend([int(image_id), reviewer, name, _json(before), _json(after), int(version)])
        cur.execute(f"INSERT INTO edit_log (image_id, reviewer, field, before, after, version) VALUES {values}", params)

    def _stale(
        self, cur: duckdb.DuckDBPyConnection, image_id: int, read: int, current: dict[str, Any]
    ) -> ConflictError:
        """The refusal of a save based on version `read`: who saved the image since, and each field they
        changed with its value when the reviewer opened it and its value now (also as `changes`, for a table)."""
        rows = cur.execute(
            "SELECT reviewer, field, before, edited_at FROM edit_log "
            "WHERE image_id = ? AND coalesce(version, 0) > ? ORDER BY id",
            [image_id, read],
        ).fetchall()
        name = cur.execute("SELECT name FROM images WHERE id = ?", [image_id]).fetchall()[0][0]
        who = "another reviewer"
        if rows:
            who = f"{_names(dict.fromkeys(r[0] or 'someone' for r in rows))} at {rows[-1][3]:%H:%M:%S}"
        opened: dict[str, Any] = {}
        for _, field_name, before, _ in rows:
            opened.setdefault(field_name, _load(before))  # the first edit since holds the value they opened
        changes = self._opened_vs_now(cur, image_id, opened, current)
        if changes:
            what = "Changed: " + "; ".join(f"{path}: {then} -> {now}" for path, then, now in changes) + "."
        else:
            what = "Their changes are not in the edit log." if not rows else "Their changes add up to no difference."
        return ConflictError(
            f"Not saved: {name} was changed by {who} after you opened it (you read version {read}, it is now "
            f"version {current['version']}). {what} Your edits are still in the form: load the latest version "
            "and apply them again, or save yours over theirs.",
            changes=changes,
        )

    def _opened_vs_now(
        self, cur: duckdb.DuckDBPyConnection, image_id: int, opened: dict[str, Any], current: dict[str, Any]
    ) -> list[tuple[str, str, str]]:
        """(field, then, now) for each field in `opened` whose value differs now; a description by nested path.
        A human value of NULL is read as the model's, which is what the reviewer saw."""
        model = self._model_values(cur, image_id)
        found: list[tuple[str, str, str]] = []
        for name in EDIT_FIELDS:
            if name not in opened:
                continue
            then, now = opened[name], current[name]
            if name != "reviewed":
                then, now = (model[name] if value is None else value for value in (then, now))
            if name == "description" and isinstance(then or {}, dict) and isinstance(now or {}, dict):
                found += [(path, shown(a), shown(b)) for path, a, b in field_paths(then or {}, now or {})]
            elif then != now:
                found.append((name, shown(then), shown(now)))
        return found

    @staticmethod
    def _model_values(cur: duckdb.DuckDBPyConnection, image_id: int) -> dict[str, Any]:
        """The latest model description and categories (read through the category aliases) of one image."""
        rows = cur.execute(
            """
            SELECT a.description, resolve_category_aliases(a.categories, a.category_list_version, m.alias_map)
            FROM annotations a, (SELECT category_alias_map() AS alias_map) m
            WHERE a.image_id = ? ORDER BY a.id DESC LIMIT 1""",
            [image_id],
        ).fetchall()
        description, categories = rows[0] if rows else (None, None)
        return {"description": _load(description), "categories": _categories(categories)}

    # ---- the edit log and undo -----------------------------------------------------------------------------------

    def edit_log(self, *, dataset: str | None = None, image_id: int | None = None, limit: int = 50) -> pd.DataFrame:
        """Recent edits, newest first, a bulk action as ONE entry. Columns: id, image_id, dataset, name, reviewer,
        field, before, after, edited_at, undone, version, bulk_id, images, action, model_description.

        A single edit: before/after are JSON text (NULL: the model's value), images is 1, bulk_id and action are
        NULL. A bulk action: id is its first row's (`undo_edit(id)` undoes all of it), name reads "1,234
        images", image_id, before, after and version are NULL, dataset lists its datasets, undone is true once
        it was undone. With `image_id`: that image's own rows, a bulk action's row among them (with the bulk's
        bulk_id, images and action). model_description: the image's latest model description (JSON text) on a
        description edit from or back to the model's value, else NULL."""
        clauses, params = [], []
        if dataset is not None:
            clauses.append("i.dataset_id = ?")
            params.append(self._review_dataset_id(dataset))
        if image_id is not None:
            clauses.append("e.image_id = ?")
            params.append(image_id)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        sql = _IMAGE_EDITS if image_id is not None else _EDIT_ENTRIES
        frame = self.fetch_df(sql.format(where=where), [*params, limit])
        frame = frame.astype({"image_id": "Int64", "version": "Int64", "bulk_id": "Int64", "images": "int64"})
        frame["model_description"] = self._model_descriptions(frame)
        return frame

    def _model_descriptions(self, log: pd.DataFrame) -> list[str | None]:
        """Per edit-log row: the image's latest model description (JSON text) where a description edit has the
        model's value (NULL) on one side, so the history can name the fields it changed; else None."""
        wanted = (
            (log["field"] == "description") & log["image_id"].notna() & (log["before"].isna() | log["after"].isna())
        )
        ids = sorted({int(i) for i in log.loc[wanted, "image_id"]})
        found: dict[int, str] = {}
        if ids:
            marks = ", ".join("?" * len(ids))
            rows = self.fetch_all(
                "SELECT image_id, description::VARCHAR FROM annotations WHERE id IN "
                f"(SELECT max(id) FROM annotations WHERE image_id IN ({marks}) GROUP BY image_id)",
                ids,
            )
            found = {int(image_id): text for image_id, text in rows}
        return [found.get(int(i)) if w else None for i, w in zip(log["image_id"], wanted, strict=True)]

    def undo_edit(self, edit_id: int, reviewer: str) -> UndoResult:
        """Undo an edit: its `before` value is written back as a new edit and the original is marked undone.

        An edit of a bulk action undoes the whole action in one transaction (one new bulk entry); its images
        changed again since keep their newer value and are counted as skipped. A single edit whose field changed
        since, or a bulk action whose images all did, is refused with ConflictError."""
        with (
            _conflicts("Somebody changed that image at the same moment: try the undo again."),
            self.transaction() as cur,
        ):
            rows = cur.execute(
                "SELECT image_id, field, before, after, undone, bulk_id FROM edit_log WHERE id = ?", [edit_id]
            ).fetchall()
            if not rows:
                raise NotFoundError(f"There is no edit #{edit_id}.")
            image_id, name, before, after, undone, bulk_id = rows[0]
            if bulk_id is not None:
                return self._undo_bulk(cur, int(bulk_id), reviewer)
            if undone:
                raise ConflictError(f"Edit #{edit_id} was undone already.")
            current = self._human_row(cur, image_id)
            state = current or _NO_LABEL
            if state[name] != _load(after):
                raise ConflictError(
                    f"Cannot undo edit #{edit_id}: {name} was changed again since "
                    f"(now {_short(state[name])}). Undo the later edit first."
                )
            new_version = state["version"] + 1
            values = {**state, name: _load(before)}
            self._write_label(cur, image_id, values, reviewer, new_version, exists=current is not None)
            self._log(cur, [(image_id, reviewer, name, state[name], values[name], new_version)])
            cur.execute("UPDATE edit_log SET undone = true WHERE id = ?", [edit_id])
            return UndoResult(edit_id=edit_id, images=1, version=int(new_version))

    def _undo_bulk(self, cur: duckdb.DuckDBPyConnection, bulk_id: int, reviewer: str) -> UndoResult:
        """Write back the before value of every image of a bulk action that still holds the action's value."""
        entry, field_name, action, pending = cur.execute(
            "SELECT min(id), any_value(field), any_value(bulk_action), count(*) FILTER (WHERE NOT undone) "
            "FROM edit_log WHERE bulk_id = ?",
            [bulk_id],
        ).fetchall()[0]
        if not pending:
            raise ConflictError(f"Bulk edit #{entry} ({action}) was undone already.")
        column, kind = _BULK_FIELDS[field_name]
        undo_id = cur.execute("SELECT nextval('bulk_edit_ids')").fetchall()[0][0]
        params = {"bulk": bulk_id, "undo": undo_id, "reviewer": reviewer, "action": f"undid #{entry}: {action}"}
        # The undo is a bulk action of its own (undoing it redoes the action); images changed since are skipped.
        restored = cur.execute(
            f"""
            INSERT INTO edit_log (image_id, reviewer, field, before, after, version, bulk_id, bulk_action)
            SELECT e.image_id, $reviewer, e.field, e.after, e.before, h.version + 1, $undo, $action
            FROM edit_log e JOIN human_labels h ON h.image_id = e.image_id
            WHERE e.bulk_id = $bulk AND NOT e.undone AND h.{column} IS NOT DISTINCT FROM e.after::{kind}""",
            params,
        ).fetchall()[0][0]
        if not restored:
            raise ConflictError(
                f"Cannot undo bulk edit #{entry} ({action}): its {_count(pending, 'image')} not yet undone "
                "changed again since. Undo the later edits first."
            )
        cur.execute(
            f"""
            UPDATE human_labels SET {column} = u.after::{kind}, reviewer = $reviewer, version = u.version,
                updated_at = current_timestamp
            FROM edit_log u WHERE u.bulk_id = $undo AND human_labels.image_id = u.image_id""",
            {"undo": undo_id, "reviewer": reviewer},
        )
        cur.execute(
            "UPDATE edit_log SET undone = true WHERE bulk_id = $bulk AND NOT undone "
            "AND image_id IN (SELECT image_id FROM edit_log WHERE bulk_id = $undo)",
            {"bulk": bulk_id, "undo": undo_id},
        )
        return UndoResult(edit_id=int(entry), images=int(restored), skipped=int(pending - restored), bulk=True)

    # ---- bulk ------------------------------------------------------------------------------------------------------

    def bulk_categories(self, image_ids: Iterable[int], category: str, *, add: bool, reviewer: str) -> int:
        """Add (or remove) one category on many images in one transaction; returns how many changed.

        Adding a real category drops `unknown`. Each changed image gets a new version; the action is one entry
        in the edit log (one row per image under one bulk id) and undoes as one."""
        category = category.strip()
        if not category:
            raise InputError("Name the category to add or remove.")
        if add:
            # A real category replaces `unknown` (which means that nothing in the list fits).
            kept = "effective" if category == _UNKNOWN else f"list_filter(effective, lambda c: c <> '{_UNKNOWN}')"
            after, changed = f"list_append({kept}, ?)", "NOT list_contains(effective, ?)"
        else:
            after, changed = "list_filter(effective, lambda c: c <> ?)", "list_contains(effective, ?)"
        return self._bulk(
            image_ids,
            reviewer,
            "categories",
            f"{'added' if add else 'removed'} category {category!r}",
            f"SELECT image_id, human_categories AS before, {after} AS after, version FROM current WHERE {changed}",
            [category, category],
        )

    def bulk_mark_reviewed(self, image_ids: Iterable[int], *, reviewer: str, reviewed: bool = True) -> int:
        """Set the reviewed flag of many images in one transaction (one edit-log entry); returns how many changed."""
        return self._bulk(
            image_ids,
            reviewer,
            "reviewed",
            "marked reviewed" if reviewed else "marked not reviewed",
            "SELECT image_id, is_reviewed AS before, ?::BOOLEAN AS after, version FROM current WHERE is_reviewed <> ?",
            [reviewed, reviewed],
        )

    def _bulk(
        self, image_ids: Iterable[int], reviewer: str, field_name: str, action: str, select: str, params: list[Any]
    ) -> int:
        import pandas as pd

        ids = pd.DataFrame({"image_id": sorted({int(i) for i in image_ids})}, dtype="int64")
        if ids.empty:
            return 0
        column = _BULK_FIELDS[field_name][0]
        cur = self.cursor()
        # Registered outside the transaction: unregistering inside an aborted one would hide the real error.
        cur.register("bulk_ids", ids)
        try:
            with (
                _conflicts(
                    "Another reviewer changed some of these images at the same moment: run the bulk action again."
                ),
                self.transaction() as tx,
            ):
                changes = tx.execute(
                    f"""
                    WITH latest AS (
                        SELECT max(a.id) AS id FROM annotations a
                        WHERE a.image_id IN (SELECT image_id FROM bulk_ids) GROUP BY a.image_id),
                    current AS (
                        SELECT b.image_id, h.categories AS human_categories,
                               coalesce(h.categories, resolve_category_aliases(a.categories, a.category_list_version,
                                                                               m.alias_map), []) AS effective,
                               coalesce(h.reviewed, false) AS is_reviewed, coalesce(h.version, 0) AS version
                        FROM bulk_ids b CROSS JOIN (SELECT category_alias_map() AS alias_map) m
                        JOIN images i ON i.id = b.image_id
                        LEFT JOIN human_labels h ON h.image_id = b.image_id
                        LEFT JOIN annotations a ON a.image_id = b.image_id AND a.id IN (SELECT id FROM latest))
                    {select}""",
                    params,
                ).df()
                if changes.empty:
                    return 0
                changes["new_version"] = changes["version"] + 1
                tx.register("bulk_changes", changes)
                tx.execute(
                    f"""
                    INSERT INTO human_labels (image_id, {column}, reviewer, version)
                    SELECT image_id, after, ?, new_version FROM bulk_changes
                    ON CONFLICT (image_id) DO UPDATE SET {column} = excluded.{column},
                        reviewer = excluded.reviewer, version = excluded.version, updated_at = now()""",
                    [reviewer],
                )
                # One bulk id for every row: the edit log lists the action once and undoes it as one.
                bulk_id = tx.execute("SELECT nextval('bulk_edit_ids')").fetchall()[0][0]
                tx.execute(
                    """
                    INSERT INTO edit_log (image_id, reviewer, field, before, after, version, bulk_id, bulk_action)
                    SELECT image_id, ?, ?, to_json(before), to_json(after), new_version, ?, ? FROM bulk_changes""",
                    [reviewer, field_name, bulk_id, action],
                )
                return len(changes)
        finally:
            cur.unregister("bulk_changes")
            cur.unregister("bulk_ids")

    # ---- progress and agreement --------------------------------------------------------------------------------

    def review_progress(self) -> pd.DataFrame:
        """Per dataset: images, annotated, reviewed, edited by a human, and the share reviewed."""
        self.sync_derived()
        return self.fetch_df("""
            SELECT d.name AS dataset, count(i.id)::BIGINT AS images,
                   count(s.annotation_id)::BIGINT AS annotated,
                   count(*) FILTER (WHERE h.reviewed)::BIGINT AS reviewed,
                   count(*) FILTER (WHERE h.description IS NOT NULL OR h.categories IS NOT NULL)::BIGINT
                       AS human_edited,
                   coalesce(count(*) FILTER (WHERE h.reviewed) / nullif(count(i.id), 0), 0)::DOUBLE AS share
            FROM datasets d LEFT JOIN images i ON i.dataset_id = d.id
            LEFT JOIN label_state s ON s.image_id = i.id
            LEFT JOIN human_labels h ON h.image_id = i.id
            GROUP BY d.name ORDER BY d.name""")

    def category_agreement(self, dataset: str | None = None) -> pd.DataFrame:
        """Per category, how the model's categories compare with the reviewers' on reviewed images.

        The reviewer's answer is the effective one: a reviewed image whose categories were left alone counts as
        the reviewer agreeing with the model. Columns: category, reviewed, tp, fp, fn, precision, recall
        (NULL when undefined: the model never said it / the reviewers never said it)."""
        scope, params = "", []
        if dataset is not None:
            scope = "AND i.dataset_id = ?"
            params.append(self._review_dataset_id(dataset))
        self.sync_derived()
        return self.fetch_df(
            f"""
            WITH pairs AS (
                SELECT s.model_categories AS model, coalesce(h.categories, s.model_categories) AS human
                FROM human_labels h JOIN images i ON i.id = h.image_id
                JOIN label_state s ON s.image_id = h.image_id
                WHERE h.reviewed AND s.model_categories IS NOT NULL {scope}),
            names AS (SELECT DISTINCT unnest(list_concat(model, human)) AS category FROM pairs),
            counts AS (
                SELECT n.category,
                       count(*) FILTER (WHERE list_contains(p.model, n.category)
                                        AND list_contains(p.human, n.category))::BIGINT AS tp,
                       count(*) FILTER (WHERE list_contains(p.model, n.category)
                                        AND NOT list_contains(p.human, n.category))::BIGINT AS fp,
                       count(*) FILTER (WHERE NOT list_contains(p.model, n.category)
                                        AND list_contains(p.human, n.category))::BIGINT AS fn,
                       count(*)::BIGINT AS reviewed
                FROM names n CROSS JOIN pairs p GROUP BY n.category)
            SELECT category, reviewed, tp, fp, fn,
                   tp / nullif(tp + fp, 0) AS precision, tp / nullif(tp + fn, 0) AS recall
            FROM counts ORDER BY tp + fn DESC, category""",
            params,
        )
