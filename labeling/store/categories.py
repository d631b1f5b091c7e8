"""Store verbs for the category list: its versions, edits, renames and merges, and what the data says about it.

Every change makes a new list version (a snapshot in `category_versions`); the version in force is stored with
every annotation. Renames and merges carry through to human labels (rewritten, one edit-log row per image) and
to model labels through `category_aliases` (migration 7): model history is never rewritten, the
`current_annotations` view reads old names as their new ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import duckdb

if TYPE_CHECKING:
    import pandas as pd

from labeling.categories import Category, ListChange, clean_category_name
from labeling.errors import ConflictError, InputError, NotFoundError
from labeling.store.base import StoreBase, registered

HUMAN_EDITOR = "category list"  # the edit-log reviewer when the person changing the list gave no name
TERMS_SAMPLE = 20_000  # described images whose terms are counted (a sample beyond)


def _snapshot(categories: Sequence[Category]) -> str:
    return json.dumps(
        [{"name": c.name, "definition": c.definition, "active": c.active} for c in categories], ensure_ascii=False
    )


def _from_snapshot(text: Any) -> list[Category]:
    items = json.loads(text) if isinstance(text, str) else (text or [])
    return [Category(str(i["name"]), str(i.get("definition") or ""), bool(i.get("active", True))) for i in items]


# Human labels carrying any of $olds, with $olds replaced by $new (duplicates dropped, first place kept).
_HUMAN_RENAMES_SQL = """
SELECT image_id, categories AS before, list_filter(mapped, lambda x, i: list_position(mapped, x) = i) AS after,
       version + 1 AS new_version
FROM (SELECT image_id, categories, version,
             list_transform(categories, lambda c: CASE WHEN list_contains($olds, c) THEN $new ELSE c END) AS mapped
      FROM human_labels WHERE list_has_any(categories, $olds))
"""

# Terms from the effective descriptions (human where set, else the latest model's) of the chosen datasets.
_TERMS_SQL = r"""
WITH described AS (
    SELECT e.image_id, e.description FROM effective_labels e
    WHERE e.description IS NOT NULL AND ($ids IS NULL OR list_contains($ids, e.dataset_id))
    ORDER BY hash(e.image_id), e.image_id LIMIT $max_images
),
terms AS (
    SELECT image_id, 'object' AS field, unnest(json_extract_string(description, '$.objects[*].name')) AS term
    FROM described
    UNION ALL
    SELECT image_id, 'scene word', unnest(regexp_split_to_array(
        lower(coalesce(json_extract_string(description, '$.scene.environment'), '')), '[^[:alpha:]]+'))
    FROM described
    UNION ALL
    SELECT image_id, 'setting', json_extract_string(description, '$.scene.indoor_outdoor') FROM described
    UNION ALL
    SELECT image_id, 'genre', json_extract_string(description, '$.style.genre') FROM described
),
cleaned AS (
    SELECT image_id, field, lower(trim(term)) AS term FROM terms
    WHERE term IS NOT NULL AND length(trim(term)) > 0
      AND NOT (field = 'scene word' AND (length(term) < 3 OR list_contains($stopwords, term)))
),
counted AS (
    SELECT field, term, count(DISTINCT image_id) AS images FROM cleaned GROUP BY ALL
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY field ORDER BY images DESC, term) AS rank FROM counted
)
SELECT field, term, images::BIGINT AS images,
       images / (SELECT greatest(count(*), 1) FROM described)::DOUBLE AS share
FROM ranked WHERE rank <= $limit
ORDER BY list_position(['object', 'scene word', 'setting', 'genre'], field), images DESC, term
"""

# Words too common to say anything about a scene.
SCENE_STOPWORDS = (
    "the",
    "and",
    "with",
    "for",
    "from",
    "into",
    "onto",
    "near",
    "its",
    "their",
    "some",
    "very",
    "area",
    "setting",
    "scene",
    "background",
    "view",
    "toned",
    "simulated",
    "image",
    "open",
    "interior",
    "exterior",
    "unclear",
    "none",
)


class CategoryQueries(StoreBase):
    """The category list in force; every change makes a new version, stored with every annotation."""

    # ---- reading -----------------------------------------------------------------------------------------------

    def categories(self, include_inactive: bool = False) -> list[Category]:
        sql = "SELECT name, definition, active FROM categories"
        if not include_inactive:
            sql += " WHERE active"
        return [Category(*row) for row in self.fetch_all(sql + " ORDER BY position, name")]

    def category_list_version(self) -> int:
        row = self.fetch_one("SELECT coalesce(max(version), 0) FROM category_versions")
        return int(row[0]) if row else 0

    def category_versions(self) -> pd.DataFrame:
        """Every version, newest first: version, note, created_at, active (count), names (active, in order)."""
        frame = self.fetch_df(
            "SELECT version, note, created_at, categories::VARCHAR AS snapshot "
            "FROM category_versions ORDER BY version DESC"
        )
        lists = [_from_snapshot(text) for text in frame.pop("snapshot")]
        frame["active"] = [sum(c.active for c in items) for items in lists]
        frame["names"] = [", ".join(c.name for c in items if c.active) for items in lists]
        return frame

    def category_list_at(self, version: int) -> list[Category]:
        """The whole list (inactive ones too) as it was at `version`."""
        row = self.fetch_one("SELECT categories::VARCHAR FROM category_versions WHERE version = ?", [version])
        if row is None:
            raise NotFoundError(f"There is no category list version {version}: see `labeling categories history`.")
        return _from_snapshot(row[0])

    def category_aliases(self) -> pd.DataFrame:
        """old_name, new_name, since_version, created_at: how model labels made before a rename or merge read."""
        return self.fetch_df(
            "SELECT old_name, new_name, since_version, created_at FROM category_aliases "
            "ORDER BY since_version, old_name"
        )

    def category_usage(self) -> pd.DataFrame:
        """Per category name found in labels: model_images (latest model annotations, aliases applied) and
        human_images (human labels), including names no longer in the list."""
        return self.fetch_df("""
            WITH model AS (SELECT name, count(*) AS n FROM (
                               SELECT unnest(list_distinct(categories)) AS name FROM current_annotations
                               WHERE categories IS NOT NULL) GROUP BY ALL),
                 human AS (SELECT name, count(*) AS n FROM (
                               SELECT unnest(list_distinct(categories)) AS name FROM human_labels
                               WHERE categories IS NOT NULL) GROUP BY ALL)
            SELECT coalesce(model.name, human.name) AS name, coalesce(model.n, 0)::BIGINT AS model_images,
                   coalesce(human.n, 0)::BIGINT AS human_images
            FROM model FULL JOIN human ON model.name = human.name ORDER BY model_images DESC, name""")

    def run_category_counts(self, run_id: int) -> pd.DataFrame:
        """category, images: how many of the images a run categorized (and no later run redid) carry each."""
        return self.fetch_df(
            """SELECT name AS category, count(*)::BIGINT AS images FROM (
                   SELECT unnest(list_distinct(categories)) AS name FROM current_annotations
                   WHERE run_id = ? AND categories IS NOT NULL)
               GROUP BY ALL ORDER BY images DESC, category""",
            [run_id],
        )

    # ---- whole-list changes ------------------------------------------------------------------------------------

    def save_category_list(self, categories: Sequence[Category], note: str = "") -> int:
        """Replace the whole list (order kept) and record it as a new version; returns the version."""
        with self.transaction() as cur:
            return self._save_list(cur, categories, note)

    def _save_list(self, cur: duckdb.DuckDBPyConnection, categories: Sequence[Category], note: str) -> int:
        seen: set[str] = set()
        for category in categories:
            key = category.name.lower()
            if key in seen:
                raise InputError(f"The category {category.name!r} is listed twice (names ignore case).")
            seen.add(key)
        cur.execute("DELETE FROM categories")
        if categories:
            cur.executemany(
                "INSERT INTO categories (name, definition, active, position) VALUES (?, ?, ?, ?)",
                [[c.name, c.definition, c.active, i] for i, c in enumerate(categories)],
            )
        rows = cur.execute("SELECT coalesce(max(version), 0) + 1 FROM category_versions").fetchall()
        version = int(rows[0][0])
        cur.execute(
            "INSERT INTO category_versions (version, note, categories) VALUES (?, ?, ?)",
            [version, note, _snapshot(categories)],
        )
        return version

    def _current_list(self, cur: duckdb.DuckDBPyConnection) -> list[Category]:
        rows = cur.execute("SELECT name, definition, active FROM categories ORDER BY position, name").fetchall()
        return [Category(*row) for row in rows]

    @staticmethod
    def _find(categories: Sequence[Category], name: str) -> int:
        key = name.strip().lower()
        for i, category in enumerate(categories):
            if category.name.lower() == key:
                return i
        known = ", ".join(c.name for c in categories) or "none"
        raise NotFoundError(f"There is no category {name!r} in the list (categories: {known}).")

    @staticmethod
    def _check_free(categories: Sequence[Category], name: str, ignore: str | None = None) -> None:
        for category in categories:
            if category.name.lower() == name.lower() and category.name != ignore:
                state = "" if category.active else " (deactivated: activate it instead)"
                raise ConflictError(
                    f"The list already has a category {category.name!r}{state}; to fold one "
                    "category into another, merge them."
                )

    # ---- one-category verbs ------------------------------------------------------------------------------------

    def add_category(self, name: str, definition: str = "", *, position: int | None = None) -> ListChange:
        """Add an active category (at the end unless `position` is given)."""
        name = clean_category_name(name)
        with self.transaction() as cur:
            current = self._current_list(cur)
            self._check_free(current, name)
            place = len(current) if position is None else max(0, min(position, len(current)))
            current.insert(place, Category(name, definition.strip(), True))
            note = f"add {name!r}"
            return ListChange(self._save_list(cur, current, note), note)

    def set_category_definition(self, name: str, definition: str) -> ListChange:
        """Change what a category means (the definition goes into the prompt)."""
        with self.transaction() as cur:
            current = self._current_list(cur)
            i = self._find(current, name)
            old = current[i]
            if old.definition == definition.strip():
                return ListChange(self._version(cur), "unchanged")
            current[i] = Category(old.name, definition.strip(), old.active)
            note = f"define {old.name!r}"
            return ListChange(self._save_list(cur, current, note), note)

    def set_category_active(self, name: str, active: bool) -> ListChange:
        """Deactivate (leave out of the prompt, keep the definition) or activate a category."""
        with self.transaction() as cur:
            current = self._current_list(cur)
            i = self._find(current, name)
            old = current[i]
            if old.active == active:
                return ListChange(self._version(cur), "unchanged")
            current[i] = Category(old.name, old.definition, active)
            note = f"{'activate' if active else 'deactivate'} {old.name!r}"
            return ListChange(self._save_list(cur, current, note), note)

    def delete_category(self, name: str) -> ListChange:
        """Remove a category and its definition from the list (older versions keep them).

        Labels that carry it are left as they are: re-categorize the affected images to replace it.
        """
        with self.transaction() as cur:
            current = self._current_list(cur)
            old = current.pop(self._find(current, name))
            note = f"delete {old.name!r}"
            return ListChange(self._save_list(cur, current, note), note)

    def move_category(self, name: str, position: int) -> ListChange:
        """Put a category at `position` (0 = first): the order is the order in the prompt."""
        with self.transaction() as cur:
            current = self._current_list(cur)
            moved = current.pop(self._find(current, name))
            current.insert(max(0, min(position, len(current))), moved)
            note = f"move {moved.name!r} to position {position + 1}"
            return ListChange(self._save_list(cur, current, note), note)

    def rename_category(
        self, old_name: str, new_name: str, *, reviewer: str = "", definition: str | None = None
    ) -> ListChange:
        """Rename a category; human labels are rewritten (edit-logged), model labels read the new name."""
        new_name = clean_category_name(new_name)
        with self.transaction() as cur:
            current = self._current_list(cur)
            i = self._find(current, old_name)
            old = current[i]
            if old.name == new_name and definition is None:
                return ListChange(self._version(cur), "unchanged")
            self._check_free(current, new_name, ignore=old.name)
            current[i] = Category(new_name, old.definition if definition is None else definition.strip(), old.active)
            note = f"rename {old.name!r} -> {new_name!r}"
            version = self._save_list(cur, current, note)
            changed = (
                self._carry(
                    cur, [old.name], new_name, version, reviewer, f"renamed category {old.name!r} to {new_name!r}"
                )
                if old.name != new_name
                else 0
            )
            return ListChange(version, note, changed)

    def merge_categories(
        self, sources: Sequence[str], target: str, *, reviewer: str = "", definition: str | None = None
    ) -> ListChange:
        """Fold `sources` into `target` (which stays, with its definition unless one is given); the sources
        leave the list. Human labels are rewritten (edit-logged), model labels read the target's name."""
        with self.transaction() as cur:
            current = self._current_list(cur)
            kept = current[self._find(current, target)]
            names = []
            for source in dict.fromkeys(sources):
                found = current[self._find(current, source)]
                if found.name == kept.name:
                    continue
                names.append(found.name)
            if not names:
                raise InputError("Choose at least one category other than the target to merge into it.")
            merged = [c for c in current if c.name not in names]
            i = self._find(merged, kept.name)
            merged[i] = Category(kept.name, kept.definition if definition is None else definition.strip(), True)
            note = f"merge {', '.join(map(repr, names))} into {kept.name!r}"
            version = self._save_list(cur, merged, note)
            folded = ", ".join(repr(name) for name in names)
            changed = self._carry(cur, names, kept.name, version, reviewer, f"merged {folded} into {kept.name!r}")
            return ListChange(version, note, changed)

    def _version(self, cur: duckdb.DuckDBPyConnection) -> int:
        rows = cur.execute("SELECT coalesce(max(version), 0) FROM category_versions").fetchall()
        return int(rows[0][0])

    def _carry(
        self, cur: duckdb.DuckDBPyConnection, olds: list[str], new: str, version: int, reviewer: str, action: str
    ) -> int:
        """Aliases for model labels (chains collapsed) and rewritten human labels, logged as one bulk edit named
        `action`; returns human labels changed."""
        cur.execute(
            "UPDATE category_aliases SET new_name = $new WHERE list_contains($olds, new_name)",
            {"new": new, "olds": olds},
        )
        cur.execute("DELETE FROM category_aliases WHERE old_name = new_name")
        cur.executemany(
            "INSERT INTO category_aliases (old_name, new_name, since_version) VALUES (?, ?, ?)",
            [[old, new, version] for old in olds],
        )
        changes = cur.execute(_HUMAN_RENAMES_SQL, {"olds": olds, "new": new}).df()
        if changes.empty:
            return 0
        with registered(cur, "category_changes", changes):
            cur.execute(
                "UPDATE human_labels SET categories = c.after, version = c.new_version, "
                "updated_at = current_timestamp FROM category_changes c "
                "WHERE human_labels.image_id = c.image_id"
            )
            # One bulk id for the whole rename: the edit log lists it once and undoes it as one.
            bulk_id = cur.execute("SELECT nextval('bulk_edit_ids')").fetchall()[0][0]
            cur.execute(
                "INSERT INTO edit_log (image_id, reviewer, field, before, after, version, bulk_id, bulk_action) "
                "SELECT image_id, ?, 'categories', to_json(before), to_json(after), new_version, ?, ? "
                "FROM category_changes",
                [reviewer.strip() or HUMAN_EDITOR, bulk_id, action],
            )
        return len(changes)

    # ---- what the data holds -----------------------------------------------------------------------------------

    def description_terms(
        self, dataset_ids: Sequence[int] | None = None, limit: int = 25, *, max_images: int = TERMS_SAMPLE
    ) -> pd.DataFrame:
        """The most frequent object names, scene words, settings and genres in the structured descriptions.

        Columns field, term, images (distinct images mentioning it), share (of the images counted). Reads the
        effective description (the reviewer's where set) of the chosen datasets (all when None); beyond
        `max_images` described images, a repeatable pseudo-random sample of that many (JSON parsing is the cost).
        """
        ids = None if dataset_ids is None else [int(i) for i in dataset_ids]
        return self.fetch_df(
            _TERMS_SQL,
            {"ids": ids, "limit": int(limit), "stopwords": list(SCENE_STOPWORDS), "max_images": int(max_images)},
        )

    def labels_fingerprint(self) -> tuple[int, int, int, str]:
        """Changes whenever model or human labels or the category list change (cheap: a few aggregates)."""
        row = self.fetch_one("""
            SELECT (SELECT coalesce(max(id), 0) FROM annotations), (SELECT count(*) FROM human_labels),
                   (SELECT coalesce(max(version), 0) FROM category_versions),
                   (SELECT coalesce(max(updated_at)::VARCHAR, '') FROM human_labels)""")
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2]), str(row[3])

    def described_count(self, dataset_ids: Sequence[int] | None = None) -> int:
        """Images with a description (effective) in the chosen datasets."""
        ids = None if dataset_ids is None else [int(i) for i in dataset_ids]
        row = self.fetch_one(
            "SELECT count(*) FROM effective_labels WHERE description IS NOT NULL "
            "AND ($ids IS NULL OR list_contains($ids, dataset_id))",
            {"ids": ids},
        )
        return int(row[0]) if row else 0

    def description_sample(self, dataset_ids: Sequence[int] | None, size: int, seed: int = 0) -> list[dict[str, Any]]:
        """Up to `size` effective descriptions spread over the chosen datasets (a repeatable pseudo-random
        pick for one seed): image_id, dataset, description (parsed)."""
        ids = None if dataset_ids is None else [int(i) for i in dataset_ids]
        rows = self.fetch_all(
            """
            SELECT e.image_id, d.name, e.description::VARCHAR FROM effective_labels e
            JOIN datasets d ON d.id = e.dataset_id
            WHERE e.description IS NOT NULL AND ($ids IS NULL OR list_contains($ids, e.dataset_id))
            ORDER BY hash(e.image_id, $seed), e.image_id LIMIT $size""",
            {"ids": ids, "seed": int(seed), "size": int(size)},
        )
        return [{"image_id": int(r[0]), "dataset": r[1], "description": json.loads(r[2])} for r in rows]

    # ---- which images a change may affect ----------------------------------------------------------------------

    def categorization_state(self, dataset_ids: Sequence[int]) -> pd.DataFrame:
        """Per list version among the datasets' described images: images, and how many have no categories.

        Columns list_version (NULL: categorized outside the app, e.g. a seed import), images, uncategorized.
        """
        return self.fetch_df(
            """
            SELECT a.category_list_version AS list_version, count(*)::BIGINT AS images,
                   count(*) FILTER (WHERE a.categories IS NULL)::BIGINT AS uncategorized
            FROM images i JOIN current_annotations a ON a.image_id = i.id
            WHERE list_contains($ids, i.dataset_id) AND a.description IS NOT NULL
            GROUP BY ALL ORDER BY list_version NULLS FIRST""",
            {"ids": [int(i) for i in dataset_ids]},
        )

    def images_to_recategorize(
        self,
        dataset_ids: Sequence[int],
        version: int | None,
        *,
        every: bool = False,
        names: Sequence[str] = (),
        outside_of: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Described images of the datasets whose current annotation was categorized against `version`
        (None: an unknown list) and that have no categories, or (`every`) any, or carry one of `names` (as
        stored or as read through the aliases), or (`outside_of`) a category not in that list.
        Columns image_id, dataset_id, name, categories (as read)."""
        return self.fetch_df(
            """
            SELECT i.id AS image_id, i.dataset_id, i.name, a.categories
            FROM images i JOIN current_annotations a ON a.image_id = i.id
            WHERE list_contains($ids, i.dataset_id) AND a.description IS NOT NULL
              AND a.category_list_version IS NOT DISTINCT FROM $version
              AND (a.categories IS NULL OR $every OR list_has_any(a.categories, $names)
                   OR list_has_any(a.stored_categories, $names)
                   OR ($outside IS NOT NULL AND NOT list_has_all($outside, a.categories)))
            ORDER BY i.id""",
            {
                "ids": [int(i) for i in dataset_ids],
                "version": version,
                "every": every,
                "names": list(names),
                "outside": None if outside_of is None else list(outside_of),
            },
        )
