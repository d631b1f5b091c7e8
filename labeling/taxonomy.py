"""The category list: the default shipped in data/, reading the seed's unique_categories.csv format."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from labeling.errors import InputError
from labeling.store import Store
from labeling.store.categories import Category

DEFAULT_CATEGORIES_FILE = Path(__file__).resolve().parent.parent / "data" / "default_categories.csv"
UNKNOWN = "unknown"  # what the model answers when nothing in the list fits; never a list entry itself


def parse_category_csv(data: bytes, source: str = "the category CSV") -> list[Category]:
    """Categories from a `Category[,Definition]` CSV (the seed's unique_categories.csv has only `Category`)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{source} is not UTF-8 text: save it as a UTF-8 CSV.") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = {name.strip().lower(): name for name in reader.fieldnames or []}
    if "category" not in fields:
        raise InputError(f"{source} has no `Category` column: the first line must be `Category` "
                         "(optionally `Category,Definition`).")
    categories: dict[str, Category] = {}
    for row in reader:
        name = (row.get(fields["category"]) or "").strip()
        if not name or name.lower() == UNKNOWN or name in categories:
            continue
        definition = (row.get(fields["definition"]) or "").strip() if "definition" in fields else ""
        categories[name] = Category(name, definition)
    if not categories:
        raise InputError(f"{source} lists no categories.")
    return list(categories.values())


def ensure_categories(store: Store) -> list[Category]:
    """The active list; a new database starts with the default list from data/default_categories.csv."""
    if store.category_list_version() == 0:
        defaults = parse_category_csv(DEFAULT_CATEGORIES_FILE.read_bytes(), str(DEFAULT_CATEGORIES_FILE))
        store.save_category_list(defaults, note="default list")
    return store.active_categories()
