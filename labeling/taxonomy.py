"""The category list: the default shipped in data/, the seed's CSV formats, edits from a table, and how the list
goes into a response schema (an enum while it is short enough, validated strings beyond).

Formats (as the seed wrote them, with `csv.writer`: minimal quoting, "\\r\\n" line ends, UTF-8):
- `unique_categories.csv`: one column, header `Category` (ours may add a `Definition` column).
- `categorized_overview.csv` (input of `extract-categories`): a `Categories` column of comma-separated names.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Sequence
from pathlib import Path

from labeling.categories import (
    UNKNOWN,
    Category,
    ListChange,
    clean_category_name,
)
from labeling.errors import InputError
from labeling.spreadsheet import restore_cell, safe_rows
from labeling.store import Store
from labeling.vocabulary import CATEGORY_IMPORT_MODES

DEFAULT_CATEGORIES_FILE = Path(__file__).resolve().parent.parent / "data" / "default_categories.csv"

__all__ = [
    "DEFAULT_CATEGORIES_FILE",
    "apply_table_edit",
    "category_csv",
    "ensure_categories",
    "extract_categories",
    "import_categories",
    "parse_category_csv",
    "unique_categories_csv",
]


def _text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{source} is not UTF-8 text: save it as a UTF-8 CSV.") from None


def parse_category_csv(data: bytes, source: str = "the category CSV") -> list[Category]:
    """Categories from a `Category[,Definition]` CSV (the seed's unique_categories.csv has only `Category`).

    Blank names, `unknown` and repeats (ignoring case) are skipped; a name the list cannot hold (a comma, too
    long) is refused with the line it is on.
    """
    reader = csv.DictReader(io.StringIO(_text(data, source), newline=""))
    fields = {name.strip().lower(): name for name in reader.fieldnames or []}
    if "category" not in fields:
        raise InputError(
            f"{source} has no `Category` column: the first line must be `Category` (optionally `Category,Definition`)."
        )
    categories: dict[str, Category] = {}
    for row in reader:
        raw = restore_cell((row.get(fields["category"]) or "").strip())  # our exports quote formula cells
        if not raw or raw.lower() == UNKNOWN or raw.lower() in categories:
            continue
        try:
            name = clean_category_name(raw)
        except InputError as exc:
            raise InputError(f"{source}, line {reader.line_num}: {exc}") from None
        definition = restore_cell((row.get(fields["definition"]) or "").strip()) if "definition" in fields else ""
        categories[name.lower()] = Category(name, definition)
    if not categories:
        raise InputError(f"{source} lists no categories.")
    return list(categories.values())


def _write_rows(rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)  # the seed's writer: minimal quoting, "\r\n" line ends
    writer.writerows(safe_rows(rows))
    return buffer.getvalue().encode("utf-8")


def category_csv(categories: Sequence[Category], *, definitions: bool = False) -> bytes:
    """The list as the seed's unique_categories.csv (`Category`), or `Category,Definition`; list order kept."""
    if definitions:
        return _write_rows([["Category", "Definition"], *[[c.name, c.definition] for c in categories]])
    return _write_rows([["Category"], *[[c.name] for c in categories]])


def extract_categories(data: bytes, source: str = "the input CSV") -> list[str]:
    """The seed's extract_categories.py: the unique, trimmed, non-empty values of the `Categories` column
    (comma-separated names), sorted as Python sorts strings."""
    reader = csv.reader(io.StringIO(_text(data, source), newline=""))
    header = next(reader, None)
    if header is None or "Categories" not in header:
        raise InputError(
            f"{source} has no `Categories` column in its first line (the seed's categorized_overview.csv format)."
        )
    index = header.index("Categories")
    found: set[str] = set()
    for row in reader:
        if row and len(row) > index:
            found.update(part.strip() for part in row[index].split(","))
    found.discard("")
    return sorted(found)


def unique_categories_csv(names: Sequence[str]) -> bytes:
    """`Category` and one name per line, exactly as the seed wrote unique_categories.csv."""
    return _write_rows([["Category"], *[[name] for name in names]])


_DEFAULT_LIST = threading.Lock()  # the app's threads (pages, commands run through it) create the list once


def ensure_categories(store: Store) -> list[Category]:
    """The active list; a new database starts with the default list from data/default_categories.csv."""
    with _DEFAULT_LIST:
        if store.category_list_version() == 0:
            defaults = parse_category_csv(DEFAULT_CATEGORIES_FILE.read_bytes(), str(DEFAULT_CATEGORIES_FILE))
            store.save_category_list(defaults, note="default list")
    return store.categories()


def import_categories(
    store: Store, categories: Sequence[Category], *, mode: str = "replace", source: str = "CSV"
) -> ListChange:
    """Adopt categories from a file or from suggestions, as one new version.

    replace: the given categories become the active list, in their order; categories not given stay in the list
    deactivated (definitions kept, so they can come back). add: only names not in the list yet are appended.
    A definition left empty keeps the one the list has.
    """
    if mode not in CATEGORY_IMPORT_MODES:
        raise InputError(f"Unknown import mode {mode!r}: use one of {', '.join(CATEGORY_IMPORT_MODES)}.")
    ensure_categories(store)
    current = store.categories(include_inactive=True)
    by_key = {c.name.lower(): c for c in current}
    incoming: dict[str, Category] = {}
    for category in categories:
        name = clean_category_name(category.name)
        if name.lower() in incoming:
            continue
        known = by_key.get(name.lower())
        definition = category.definition.strip() or (known.definition if known else "")
        incoming[name.lower()] = Category(known.name if known else name, definition, True)
    if not incoming:
        raise InputError("There are no categories to import.")
    if mode == "add":
        added = [c for key, c in incoming.items() if key not in by_key]
        result = [*current, *added]
        note = f"import from {source} (add {len(added)})"
    else:
        kept = [Category(c.name, c.definition, False) for c in current if c.name.lower() not in incoming]
        result = [*incoming.values(), *kept]
        note = f"import from {source} (replace: {len(incoming)} active)"
    if result == current:
        return ListChange(store.category_list_version(), "unchanged")
    return ListChange(store.save_category_list(result, note), note)


def apply_table_edit(store: Store, edited: Sequence[Category]) -> ListChange:
    """Save definitions, active flags and order edited in a table of the whole list (names as they are: renames
    go through `rename_category` so labels follow). One new version, or "unchanged"."""
    current = store.categories(include_inactive=True)
    by_name = {c.name: c for c in current}
    names = [c.name for c in edited]
    if sorted(names) != sorted(by_name):
        raise InputError(
            "The table no longer matches the list (it was changed meanwhile, or rows were added or "
            "removed here): reload the page, and use Add / Rename / Delete for those changes."
        )
    result = [Category(c.name, c.definition.strip(), bool(c.active)) for c in edited]
    if result == current:
        return ListChange(store.category_list_version(), "unchanged")
    changed = [c.name for c in result if by_name[c.name] != c]
    what = ", ".join(map(repr, changed[:5])) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    note = f"edit {what}" if changed else "reorder"
    return ListChange(store.save_category_list(result, note), note)
