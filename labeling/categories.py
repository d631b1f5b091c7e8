"""The category list's domain types: what a category is and what a change of the list did.

No store, no SDK: annotators, prompts and pages use these without loading either.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from labeling.errors import InputError

UNKNOWN = "unknown"  # what the model answers when nothing in the list fits; never a list entry itself
MAX_NAME_LENGTH = 80
# Gemini answers 400 "too many states" for schemas whose enums are too big (~100+ values or long strings):
# beyond either bound the categories go out as plain strings, checked against the list on our side.
ENUM_MAX_NAMES = 60
ENUM_MAX_CHARS = 1500


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
        raise InputError(
            f"Category names cannot contain commas ({cleaned!r}): the CSV formats separate "
            "categories with commas. Use 'and' or a slash instead."
        )
    if cleaned.lower() == UNKNOWN:
        raise InputError(f"{UNKNOWN!r} is reserved: the model answers it when nothing in the list fits.")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise InputError(
            f"The category name {cleaned[:40]!r}... is {len(cleaned)} characters long: keep names "
            f"under {MAX_NAME_LENGTH} and put the detail in the definition."
        )
    return cleaned


# ---- the response schema ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaPlan:
    """How the allowed categories go into a response schema."""

    names: tuple[str, ...]  # the allowed answers (active names, then unknown)
    enum: bool  # True: a JSON-schema enum; False: plain strings validated against `names` on our side

    @property
    def message(self) -> str:
        """What to tell the user ("" when the enum is used)."""
        if self.enum:
            return ""
        chars = sum(len(n) for n in self.names)
        return (
            f"The list has {len(self.names) - 1} categories ({chars:,} characters): too long for one enum in "
            f"Gemini's structured output (limit here {ENUM_MAX_NAMES} names or {ENUM_MAX_CHARS:,} characters), "
            "so categories are requested as plain text and checked against the list; an answer outside the "
            "list becomes a per-image failure (off_list) to retry. Shorten or merge categories to go back to "
            "the enum."
        )


def schema_plan(names: Sequence[str]) -> SchemaPlan:
    """An enum while the list is short enough, else validated strings (Gemini's "too many states" limit)."""
    allowed = tuple(dict.fromkeys(names))
    fits = len(allowed) <= ENUM_MAX_NAMES + 1 and sum(len(n) for n in allowed) <= ENUM_MAX_CHARS
    return SchemaPlan(allowed, fits)


def schema_enum(names: Sequence[str]) -> list[str] | None:
    """The enum to put in a response schema for these allowed names, or None for plain (validated) strings.

    The hook for `labeling.annotators.prompts`: `enum=schema_enum(category_names(categories))`.
    """
    plan = schema_plan(names)
    return list(plan.names) if plan.enum else None


def list_plan(categories: Sequence[Category]) -> SchemaPlan:
    """The schema plan for a list of categories (active ones, then unknown)."""
    names = [c.name for c in categories if c.active and c.name.lower() != UNKNOWN]
    return schema_plan([*names, UNKNOWN])
