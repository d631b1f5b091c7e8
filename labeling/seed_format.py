"""The seed scripts' CSV formats: `image_name,description` and `image_name,description,categories`."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from labeling.errors import InputError
from labeling.spreadsheet import restore_cell

SEED_ERROR_PREFIX = "ERROR:"  # the seed wrote failures into the description column


def is_seed_output(header: list[str]) -> bool:
    """True for the header of a seed descriptions CSV (image_name and description columns)."""
    cells = {cell.strip().lower() for cell in header}
    return {"image_name", "description"} <= cells


def split_categories(cell: str | None) -> list[str] | None:
    """The seed joined categories with ", "; an empty cell means not categorized."""
    if cell is None:
        return None
    names = [part.strip() for part in cell.split(",")]
    names = [name for name in names if name]
    return names or None


def parse_description(text: str) -> dict[str, Any]:
    """A structured description from the seed's text: its JSON object when it is one, else {"summary": text}."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, dict):
            return value
    return {"summary": stripped}


def summary_of(description: dict[str, Any]) -> str:
    summary = description.get("summary")
    return summary if isinstance(summary, str) else json.dumps(description, ensure_ascii=False)[:500]


@dataclass
class SeedRow:
    image_name: str
    description: dict[str, Any] | None  # None when the seed recorded an error instead
    categories: list[str] | None
    error: str | None


SEED_FIELD_LIMIT = 4 * 2**20  # a real description is a few thousand characters; csv's default limit is 131,072
csv.field_size_limit(max(csv.field_size_limit(), SEED_FIELD_LIMIT))


def read_seed_rows(data: bytes, source: str) -> list[SeedRow]:
    """Rows of a seed output CSV; "ERROR: ..." descriptions become errors, never descriptions."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{source} is not UTF-8 text: save it as a UTF-8 CSV and import again.") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = {name.strip().lower(): name for name in reader.fieldnames or []}
    if not is_seed_output(list(fields)):
        raise InputError(f"{source} has no image_name and description columns: it is not a seed output CSV.")
    rows: list[SeedRow] = []
    seen: set[str] = set()
    try:
        for record in reader:
            # Our exports prefix formula-like cells with a quote for spreadsheets (labeling.spreadsheet).
            name = restore_cell(record.get(fields["image_name"]) or "").strip()
            if not name or name in seen:
                continue
            seen.add(name)
            text_value = restore_cell(record.get(fields["description"]) or "")
            categories = (
                split_categories(restore_cell(record.get(fields["categories"]) or ""))
                if "categories" in fields
                else None
            )
            if text_value.strip().upper().startswith(SEED_ERROR_PREFIX):
                rows.append(SeedRow(name, None, None, text_value.strip()))
            elif text_value.strip():
                rows.append(SeedRow(name, parse_description(text_value), categories, None))
            else:
                rows.append(SeedRow(name, None, categories, None))
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise InputError(
                f"{source}, line {reader.line_num:,}: a field is longer than {SEED_FIELD_LIMIT:,} "
                "characters, more than any description: check that its quotes are closed."
            ) from None
        raise InputError(
            f"{source} is not a readable CSV near line {reader.line_num} ({exc}): check its quoting."
        ) from None
    return rows
