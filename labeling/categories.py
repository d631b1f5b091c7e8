"""The category list's domain types: what a category is and what a change of the list did.

No store, no SDK: annotators, prompts and pages use these without loading either.
"""

from __future__ import annotations

from dataclasses import dataclass

from labeling.errors import InputError

UNKNOWN = "unknown"  # what the model answers when nothing in the list fits; never a list entry itself
MAX_NAME_LENGTH = 80


@dataclass(frozen=True)
class Category:
    name: str
    definition: str = ""
    active: bool = True


@dataclass(frozen=True)
class ListChange:
    """What one change of the list did."""

    version: int
    note: str
    human_labels_changed: int = 0  # human labels rewritten by a rename or merge


def clean_category_name(name: str) -> str:
    """A usable category name, trimmed; raises InputError saying what is wrong."""
    cleaned = " ".join(str(name).split())
    if not cleaned:
        raise InputError("A category needs a name.")
    if "," in cleaned:
        # The seed's CSVs join categories with ", ": a comma inside a name would split it in two.
        raise InputError(f"Category names cannot contain commas ({cleaned!r}): the CSV formats separate "
                         "categories with commas. Use 'and' or a slash instead.")
    if cleaned.lower() == UNKNOWN:
        raise InputError(f"{UNKNOWN!r} is reserved: the model answers it when nothing in the list fits.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InputError(f"The category name {cleaned[:40]!r}... is {len(cleaned)} characters long: keep names "
                         f"under {MAX_NAME_LENGTH} and put the detail in the definition.")
    return cleaned
