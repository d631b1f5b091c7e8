"""Reviewing images, UI-free: the gallery filter, the focus record, editing helpers, saving, navigation, undo.

Pages and tests drive review through these functions; every SQL statement stays in `labeling.store.review`.
A save writes only the fields the reviewer changed (compared with what they were shown); everything else keeps
following the model. The effective label is the human value where one is set, else the latest model output.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

from labeling import description_form
from labeling.records import Failure
from labeling.store import Store
from labeling.store.review import (
    FACT_FILTERS,
    NO_CATEGORY,
    REVIEW_STATES,
    SORTS,
    UNSET,
    GalleryPage,
    ReviewFilter,
    UndoResult,
    describe_change,
)
from labeling.taxonomy import UNKNOWN, ensure_categories

STATE_LABELS = {
    "all": "All",
    "not_reviewed": "Not reviewed",
    "reviewed": "Reviewed",
    "failed": "Failed",
    "missing_image": "Image missing",
}
SORT_LABELS = {
    "name": "Name A-Z",
    "name_desc": "Name Z-A",
    "recently_edited": "Recently edited",
    "listed": "Import order",
}
SUMMARY = "summary"
_LIST_SEPARATOR = ", "

__all__ = [
    "FACT_FILTERS",
    "NO_CATEGORY",
    "REVIEW_STATES",
    "SORTS",
    "SORT_LABELS",
    "STATE_LABELS",
    "FocusRecord",
    "GalleryPage",
    "ReviewFilter",
    "SaveResult",
    "agreement",
    "category_options",
    "changes",
    "comparison",
    "describe_change",
    "edit_history",
    "focus",
    "gallery",
    "locate",
    "neighbor",
    "neighbors",
    "normalize_categories",
    "progress",
    "save",
    "toggle_category",
    "undo",
]


@dataclass(frozen=True)
class FocusRecord:
    """One image as the focus view shows it, as of the version the reviewer read."""

    image_id: int
    dataset: str
    name: str
    status: str
    location: str | None
    version: int  # of the human label; 0 when there is none yet
    reviewed: bool
    reviewer: str | None
    updated_at: datetime | None
    description: dict[str, Any] | None  # effective (human over model)
    categories: list[str] | None  # effective
    model_description: dict[str, Any] | None
    model_categories: list[str] | None
    model_name: str | None
    human_description: dict[str, Any] | None
    human_categories: list[str] | None
    failures: list[Failure] = field(default_factory=list)
    facts: dict[str, Any] | None = None  # the scan's technical facts (None: not scanned)
    copies: list[tuple[str, str, str, bool]] = field(
        default_factory=list
    )  # duplicate group: dataset, name, kind, leakage

    @property
    def image(self) -> dict[str, Any]:
        """What `thumbnails.Pictures` needs to find the file."""
        return {"image_id": self.image_id, "dataset": self.dataset, "status": self.status, "location": self.location}


@dataclass(frozen=True)
class SaveResult:
    version: int
    changed: list[str]  # the fields written: description, categories, reviewed


def focus(store: Store, image_id: int) -> FocusRecord:
    """The focus record of one image (NotFoundError if it is gone)."""
    record = store.review_record(image_id)
    model, human = record.model, record.human
    return FocusRecord(
        image_id=record.image_id,
        dataset=record.dataset,
        name=record.name,
        status=record.status,
        location=record.location,
        version=record.version,
        reviewed=record.reviewed,
        reviewer=human.reviewer if human else None,
        updated_at=human.updated_at if human else None,
        description=_as_dict(record.description),
        categories=record.categories,
        model_description=_as_dict(model.description if model else None),
        model_categories=model.categories if model else None,
        model_name=model.model if model else None,
        human_description=_as_dict(human.description if human else None),
        human_categories=human.categories if human else None,
        failures=list(record.failures),
        facts=store.facts_of_image(record.image_id),
        copies=store.duplicate_copies(record.image_id),
    )


def _as_dict(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return value if isinstance(value, dict) else {SUMMARY: str(value)}


def locate(store: Store, dataset: str, name: str) -> int:
    """The image id a deep link `?dataset=NAME&image=NAME` points at (NotFoundError if none)."""
    return store.image_id_by_name(dataset, name)


def gallery(store: Store, flt: ReviewFilter, page: int = 1, page_size: int = 24) -> GalleryPage:
    """One page of the gallery (rows in the filter's order) with the filtered counts."""
    return store.gallery(flt, page=page, page_size=page_size)


def neighbors(store: Store, flt: ReviewFilter, image_id: int) -> tuple[int | None, int | None]:
    """(previous, next) around an image in the filter's order, found together (the focus view prefetches both)."""
    return store.neighbors(flt, image_id)


def neighbor(store: Store, flt: ReviewFilter, image_id: int, step: int) -> int | None:
    """Next (1) or previous (-1) image in the filter's order; None at either end."""
    return store.neighbor(flt, image_id, step)


# ---- editing helpers ------------------------------------------------------------------------------------------


def _is_plain_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) and "," not in item for item in value)


def normalize_categories(categories: Iterable[str]) -> list[str]:
    """Distinct names in the order chosen; `unknown` goes away once a real category is chosen."""
    chosen = list(dict.fromkeys(str(c).strip() for c in categories if str(c).strip()))
    if len(chosen) > 1 and UNKNOWN in chosen:
        chosen.remove(UNKNOWN)
    return chosen


def toggle_category(categories: Sequence[str], name: str) -> list[str]:
    """The list with `name` added (at the end) or removed: what the 1-9 keys do."""
    if name in categories:
        return [c for c in categories if c != name]
    return normalize_categories([*categories, name])


def category_options(store: Store, *extra: Iterable[str] | None) -> list[str]:
    """The active category list plus `unknown`, plus any other names the image already carries (so an
    off-list or retired category still shows and can be removed)."""
    names = [category.name for category in ensure_categories(store)]
    names.append(UNKNOWN)
    for values in extra:
        for value in values or []:
            if value not in names:
                names.append(value)
    return names


# ---- saving, undo, history ----------------------------------------------------------------------------------------


class _Unchanged:
    """`changes(description=...)` left out: the description was not edited."""


UNCHANGED: Any = _Unchanged()


def changes(
    record: FocusRecord,
    *,
    description: Mapping[str, Any] | _Unchanged | None = UNCHANGED,
    categories: Sequence[str] | None = None,
    reviewed: bool | None = None,
) -> dict[str, Any]:
    """What the reviewer changed relative to `record` (what they were shown): field name -> new value.

    `description` is the whole edited description (description_form.apply or the raw-JSON view). Reordering
    categories or keys is not a change; a description or category list equal to what was shown is not written,
    so it keeps following the model."""
    found: dict[str, Any] = {}
    if not isinstance(description, _Unchanged) and not description_form.same(description, record.description):
        found["description"] = dict(description) if description else None
    if categories is not None:
        chosen = normalize_categories(categories)
        if sorted(chosen) != sorted(record.categories or []):
            found["categories"] = chosen
    if reviewed is not None and bool(reviewed) != record.reviewed:
        found["reviewed"] = bool(reviewed)
    return found


def save(
    store: Store,
    record: FocusRecord,
    *,
    reviewer: str,
    description: Mapping[str, Any] | _Unchanged | None = UNCHANGED,
    categories: Sequence[str] | None = None,
    reviewed: bool | None = None,
    over_version: int | None = None,
) -> SaveResult:
    """Save what the reviewer changed relative to `record` (what they were shown).

    `description` (the whole edited description, see `changes`) is stored with its fields and keys in the
    order given. The save is based on `record.version`; if somebody saved since, ConflictError says what they
    changed (`.changes`: field, then, now) and nothing is written. `over_version` (the version now stored, taken
    from that conflict) saves the changed fields over theirs on purpose.
    """
    found = changes(record, description=description, categories=categories, reviewed=reviewed)
    version = store.save_label(
        record.image_id,
        reviewer=reviewer.strip() or "anonymous",
        expected_version=record.version if over_version is None else over_version,
        description=found.get("description", UNSET),
        categories=found.get("categories", UNSET),
        reviewed=found.get("reviewed", UNSET),
    )
    return SaveResult(version=version, changed=list(found))


def comparison(record: FocusRecord) -> pd.DataFrame:
    """What the model said beside what the reviewer set, one row per description field plus categories and
    the reviewed flag (`model's` where the reviewer kept the model's value)."""
    model = record.model_description or {}
    human = record.human_description
    rows = []
    for key in dict.fromkeys([*model, *(human or {})]):
        model_text = _text(model.get(key)) if key in model else ""
        human_text = "model's" if human is None else (_text(human.get(key)) if key in human else "(removed)")
        rows.append((key, model_text, human_text))
    rows.append(
        (
            "categories",
            ", ".join(record.model_categories or []) or "(none)",
            "model's" if record.human_categories is None else ", ".join(record.human_categories) or "(none)",
        )
    )
    rows.append(("reviewed", "", f"yes, by {record.reviewer or 'someone'}" if record.reviewed else "no"))
    return pd.DataFrame(rows, columns=["field", "model", "reviewer"])


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if _is_plain_list(value):
        return _LIST_SEPARATOR.join(value)
    return json.dumps(value, ensure_ascii=False)


def undo(store: Store, edit_id: int, reviewer: str) -> UndoResult:
    """Undo one edit, or the whole bulk action it belongs to (before values written back as new edits).

    The result says how many images were written back, how many of a bulk action were skipped because they
    changed again since, and (single edits) the image's new version; `summary()` is a line to show."""
    return store.undo_edit(edit_id, reviewer.strip() or "anonymous")


_HISTORY_COLUMNS = ["id", "image_id", "when", "reviewer", "dataset", "image", "change", "undone", "images"]


def edit_history(
    store: Store, *, dataset: str | None = None, image_id: int | None = None, limit: int = 50
) -> pd.DataFrame:
    """Recent edits, newest first, readable: id, image_id, when, reviewer, dataset, image, change, undone, images.

    A bulk action is one row (image "1,234 images", change "added category 'cats'", image_id <NA>); in one
    image's history its row says it belongs to a bulk action, and undoing it undoes the whole action."""
    log = store.edit_log(dataset=dataset, image_id=image_id, limit=limit)
    if log.empty:
        return pd.DataFrame(columns=_HISTORY_COLUMNS)
    return pd.DataFrame(
        {
            "id": log["id"],
            "image_id": log["image_id"],
            "when": log["edited_at"].dt.strftime("%Y-%m-%d %H:%M:%S"),
            "reviewer": log["reviewer"],
            "dataset": log["dataset"],
            "image": log["name"],
            "change": [_change_text(row) for row in log.itertuples()],
            "undone": log["undone"],
            "images": log["images"],
        }
    )


def _change_text(row: Any) -> str:
    """What one edit-log entry changed, as a line; a bulk action by what it did."""
    if pd.isna(row.bulk_id):
        return _edit_text(row)
    if pd.isna(row.image_id):  # the bulk action's own entry
        return str(row.action)
    images = f"{row.images:,} image{'' if row.images == 1 else 's'}"
    return f"{_edit_text(row)} (part of a bulk edit of {images}: {row.action}; undoing it undoes the whole bulk edit)"


def _edit_text(row: Any) -> str:
    """One edit as a line; a description edit from or back to the model's value names the fields that differ
    from the model's (latest) description."""
    before, after = _json_value(row.before), _json_value(row.after)
    model = _json_value(getattr(row, "model_description", None))
    if row.field != "description" or not isinstance(model, dict):
        return describe_change(str(row.field), before, after)
    text = describe_change(str(row.field), model if before is None else before, model if after is None else after)
    return text + (" (back to the model's)" if after is None else "")


def _json_value(text: Any) -> Any:
    if text is None or (not isinstance(text, list | dict) and pd.isna(text)):
        return None
    return json.loads(text) if isinstance(text, str) else text


def agreement(store: Store, dataset: str | None = None) -> pd.DataFrame:
    """Model-vs-reviewer agreement per category on reviewed images: category, reviewed, tp, fp, fn, precision,
    recall. precision and recall are floats, NaN where undefined (the model never said the category: no
    precision; the reviewers never did: no recall), never 0: show NaN as "—"."""
    return store.category_agreement(dataset)


def progress(store: Store) -> pd.DataFrame:
    """Reviewed / total per dataset."""
    return store.review_progress()


# The focus view's technical facts: (label, column), in reading order; empty values are left out.
_FACT_LINES = (
    ("Format", "format"),
    ("Size", "size"),
    ("File size", "size_bytes"),
    ("Bytes per pixel", "bytes_per_pixel"),
    ("Mode", "mode"),
    ("Frames", "frames"),
    ("JPEG quality", "jpeg_quality"),
    ("JPEG subsampling", "jpeg_subsampling"),
    ("Progressive", "jpeg_progressive"),
    ("Camera", "camera"),
    ("Software", "exif_software"),
    ("Taken", "exif_datetime_original"),
    ("GPS", "exif_gps"),
    ("ICC profile", "icc_description"),
    ("XMP", "xmp"),
    ("Text metadata", "text_keys"),
    ("Generator", "generator"),
    ("C2PA manifest", "c2pa"),
    ("C2PA generator", "c2pa_generator"),
    ("SHA-256", "sha256"),
    ("Unreadable", "error"),
)


def fact_lines(facts: dict[str, Any] | None, copies: Sequence[tuple[str, str, str, bool]] = ()) -> pd.DataFrame:
    """The focus view's facts table (fact, value as text): the scan's facts, then the image's duplicate copies."""
    copy_rows = [
        ("Leaked copy" if leakage else "Duplicate", f"{dataset}: {name} ({kind})")
        for dataset, name, kind, leakage in copies
    ]
    if not facts:
        return pd.DataFrame(copy_rows, columns=["fact", "value"])
    values = dict(facts)
    if values.get("width") and values.get("height"):
        values["size"] = f"{values['width']} x {values['height']} px"
    if values.get("size_bytes") is not None:
        values["size_bytes"] = f"{int(values['size_bytes']):,} bytes"
    if values.get("bytes_per_pixel") is not None:
        values["bytes_per_pixel"] = f"{float(values['bytes_per_pixel']):.2f}"
    if values.get("jpeg_quality") is not None:
        custom = " (custom table, nearest)" if values.get("jpeg_table") == "custom" else ""
        values["jpeg_quality"] = f"{values['jpeg_quality']}{custom}"
    make, model = (str(values.get(k) or "").strip() for k in ("exif_make", "exif_model"))
    camera = model if make and model.lower().startswith(make.lower()) else f"{make} {model}".strip()
    values["camera"] = camera or None
    if values.get("icc") and not values.get("icc_description"):
        values["icc_description"] = "yes"
    values["text_keys"] = ", ".join(values.get("text_keys") or []) or None
    rows = []
    for label, column in _FACT_LINES:
        value = values.get(column)
        if value is None or value == "" or value is False:
            continue
        rows.append((label, "yes" if value is True else str(value)))
    return pd.DataFrame([*rows, *copy_rows], columns=["fact", "value"])
