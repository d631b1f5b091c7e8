"""Store verbs for the category list and its versions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from labeling.store.base import StoreBase


@dataclass(frozen=True)
class Category:
    name: str
    definition: str = ""
    active: bool = True


class CategoryQueries(StoreBase):
    """The category list in force; every change makes a new version, stored with every annotation."""

    def categories(self, include_inactive: bool = False) -> list[Category]:
        sql = "SELECT name, definition, active FROM categories"
        if not include_inactive:
            sql += " WHERE active"
        return [Category(*row) for row in self.fetch_all(sql + " ORDER BY position, name")]

    def active_categories(self) -> list[Category]:
        return self.categories()

    def category_list_version(self) -> int:
        row = self.fetch_one("SELECT coalesce(max(version), 0) FROM category_versions")
        return int(row[0]) if row else 0

    def save_category_list(self, categories: Sequence[Category], note: str = "") -> int:
        """Replace the whole list (order kept) and record it as a new version; returns the version."""
        with self.transaction() as cur:
            cur.execute("DELETE FROM categories")
            cur.executemany("INSERT INTO categories (name, definition, active, position) VALUES (?, ?, ?, ?)",
                            [[c.name, c.definition, c.active, i] for i, c in enumerate(categories)])
            rows = cur.execute("SELECT coalesce(max(version), 0) + 1 FROM category_versions").fetchall()
            version = int(rows[0][0])
            snapshot = json.dumps([{"name": c.name, "definition": c.definition, "active": c.active}
                                   for c in categories], ensure_ascii=False)
            cur.execute("INSERT INTO category_versions (version, note, categories) VALUES (?, ?, ?)",
                        [version, note, snapshot])
        return version
