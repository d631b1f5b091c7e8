"""Review's gallery: filters, counts, bulk actions and a page of tiles (a click opens, a tick selects)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from labeling import review
from labeling.review import FACT_FILTERS, NO_CATEGORY, SORT_LABELS, STATE_LABELS, ReviewFilter
from labeling.vocabulary import LABEL_SOURCES, SOURCE_TITLES
from pages import common, widgets
from pages.review_state import (
    ANY,
    filter_from,
    filter_values,
    notice,
    open_image,
    page_key,
    rerun,
    reset_page,
    state,
    widget_key,
)

PAGE_SIZES = (24, 48, 96)
BULK_LIMIT = 100_000  # most images one bulk action may select
_TILES_KEY = "rv_tiles"


def _filters(names: list[str], categories: list[str]) -> ReviewFilter:
    saved = filter_values(names)
    options = [ANY, *categories, NO_CATEGORY]
    if saved["rv_category"] not in options:
        saved["rv_category"] = ANY

    def choose(column: Any, label: str, name: str, choices: list[Any], **extra: Any) -> Any:
        index = choices.index(saved[name]) if saved[name] in choices else 0
        return column.selectbox(label, choices, index=index, key=widget_key(name), on_change=reset_page, **extra)

    top = st.columns([2, 2, 2, 2, 3, 2])
    values: dict[str, Any] = {"rv_dataset": choose(top[0], "Dataset", "rv_dataset", names, format_func=common.visible)}
    values["rv_state"] = choose(top[1], "Status", "rv_state", list(STATE_LABELS), format_func=STATE_LABELS.get)
    values["rv_category"] = choose(top[2], "Category", "rv_category", options, format_func=common.visible)
    values["rv_source"] = choose(top[3], "Category by", "rv_source", list(LABEL_SOURCES), format_func=SOURCE_TITLES.get)
    values["rv_text"] = top[4].text_input(
        "Search names and descriptions",
        value=saved["rv_text"],
        key=widget_key("rv_text"),
        on_change=reset_page,
        placeholder="e.g. harbor, or img_0042",
    )
    values["rv_sort"] = choose(top[5], "Sort", "rv_sort", list(SORT_LABELS), format_func=SORT_LABELS.get)
    row = st.columns([4, 3, 3, 2])
    values["rv_disagree"] = row[0].checkbox(
        "Only disagreements (reviewer ≠ model categories)",
        value=bool(saved["rv_disagree"]),
        key=widget_key("rv_disagree"),
        on_change=reset_page,
    )
    values["rv_fact"] = choose(
        row[1],
        "Technical fact",
        "rv_fact",
        list(FACT_FILTERS),
        format_func=lambda name: FACT_FILTERS[name][0],
        help="From the scan (Audit page or `labeling scan`): format, metadata, provenance, duplicates.",
    )
    values["rv_unavailable"] = row[2].checkbox(
        "Show names without an image",
        value=bool(saved["rv_unavailable"]),
        key=widget_key("rv_unavailable"),
        on_change=reset_page,
        help="Listed names that are missing from the folder or bucket, ambiguous, or refused as unsafe.",
    )
    values["rv_size"] = choose(row[3], "Per page", "rv_size", list(PAGE_SIZES))
    state()["rv_filter"] = {**saved, **values}
    return filter_from(values)


def _counts_line(counts: dict[str, int], total: int, flt: ReviewFilter) -> str:
    parts = [f"{STATE_LABELS[name]}: {counts.get(name, 0):,}" for name in STATE_LABELS]
    parts.append(f"Disagreements: {counts.get('disagreement', 0):,}")
    line = f"{total:,} matching  ·  " + "  ·  ".join(parts)
    hidden = counts.get("missing_image", 0)
    if flt.images_only and flt.state != "missing_image" and hidden:
        line += f"  ·  {hidden:,} {'name' if hidden == 1 else 'names'} without an image hidden"
    return line


def _bulk_bar(store: Any, who: str, page_ids: list[int], categories: list[str], flt: ReviewFilter, total: int) -> None:
    current = state()
    selected: set[int] = current.setdefault("rv_selected", set())
    with st.expander(f"Bulk actions: {len(selected):,} selected", expanded=bool(selected)):
        with st.container(horizontal=True):
            if st.button("Select this page", key="rv_select_page"):
                selected.update(page_ids)
                rerun()
            if st.button(f"Select all {min(total, BULK_LIMIT):,} matching", key="rv_select_all", disabled=not total):
                ids = common.run_or_error(lambda: store.gallery_ids(flt, limit=BULK_LIMIT))
                if ids is not None:
                    selected.update(ids)
                    rerun()
            if st.button("Clear selection", key="rv_clear_selection", disabled=not selected):
                selected.clear()
                rerun()
        choice = st.selectbox("Category", categories, format_func=common.visible, key="rv_bulk_category")
        actions = st.columns(4)
        action: tuple[str, Callable[[], int]] | None = None
        ids = sorted(selected)
        if actions[0].button("Add category", key="rv_bulk_add", disabled=not selected):
            action = (f"Added {choice!r} to", lambda: store.bulk_categories(ids, choice, add=True, reviewer=who))
        if actions[1].button("Remove category", key="rv_bulk_remove", disabled=not selected):
            action = (f"Removed {choice!r} from", lambda: store.bulk_categories(ids, choice, add=False, reviewer=who))
        if actions[2].button("Mark reviewed", key="rv_bulk_reviewed", disabled=not selected):
            action = ("Marked reviewed:", lambda: store.bulk_mark_reviewed(ids, reviewer=who))
        if actions[3].button("Mark not reviewed", key="rv_bulk_unreviewed", disabled=not selected):
            action = ("Marked not reviewed:", lambda: store.bulk_mark_reviewed(ids, reviewer=who, reviewed=False))
        if action:
            label, run = action
            changed = common.run_or_error(run)
            if changed is not None:
                notice(
                    "success",
                    f"{label} {changed:,} of {len(ids):,} selected images (the others already were). "
                    "Undo it as one action in the Edit log view.",
                )
                rerun()


def _listed(value: Any) -> list[str] | None:
    """A list column's cell from a DataFrame (array, list, or NA) as a list, or None."""
    if value is None or isinstance(value, float) or value is pd.NA:
        return None
    return [str(item) for item in value]


def _tile(row: dict[str, Any], selected: set[int]) -> dict[str, Any]:
    image_id = int(row["image_id"])
    lines = [str(row["name"])]
    if row.get("status") != "found":
        lines.append(f"No image: {row.get('status')}")
    summary = row.get("summary")
    if isinstance(summary, str) and summary:
        lines.append(summary if len(summary) <= 140 else summary[:139] + "…")
    edited = _listed(row.get("human_categories")) is not None or bool(row.get("description_edited"))
    lines.append(("✎ " if edited else "") + (", ".join(_listed(row.get("categories")) or []) or "no categories"))
    status = "✓ reviewed" + (f" by {row['reviewer']}" if row.get("reviewer") else "") if row["reviewed"] else ""
    status = status or "not reviewed"
    lines.append(status + (" · failed" if row.get("failed") else ""))
    return {
        "id": image_id,
        "src": common.picture_url("thumb", image_id),
        "name": common.visible(str(row["name"])),
        "lines": [common.visible(line) for line in lines],
        "selected": image_id in selected,
    }


def _picked(event: str) -> int | None:
    """The image id a tile event names (the component sends it as a number)."""
    value = (state().get(_TILES_KEY) or {}).get(event)
    return int(value) if isinstance(value, int | float) else None


def _open_tile() -> None:
    image_id = _picked("open")
    if image_id is not None:
        open_image(image_id)


def _toggle_tile() -> None:
    image_id = _picked("toggle")
    if image_id is not None:
        state().setdefault("rv_selected", set()).symmetric_difference_update({image_id})


def show(store: Any, names: list[str], who: str) -> None:
    categories = review.category_options(store)
    flt = _filters(names, categories)
    current = state()
    requested = int(current.get(page_key()) or current.get("rv_page") or 1)
    size = int(current["rv_filter"]["rv_size"])
    page = common.run_or_error(lambda: review.gallery(store, flt, page=requested, page_size=size))
    if page is None:
        return
    st.caption(common.plain(_counts_line(page.counts, page.total, flt)))
    rows: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in page.rows.to_dict("records")]
    _bulk_bar(store, who, [int(r["image_id"]) for r in rows], categories, flt, page.total)
    if not rows:
        st.info("No images match these filters.")
    selected: set[int] = current.setdefault("rv_selected", set())
    widgets.gallery([_tile(row, selected) for row in rows], key=_TILES_KEY, on_open=_open_tile, on_toggle=_toggle_tile)
    current["rv_page"] = page.page  # kept while an image is open; the set may have shrunk under it
    if page.pages > 1:
        st.pagination(page.pages, default=page.page, key=page_key())
    st.caption(f"Page {page.page} of {page.pages}  ·  click a tile to open it  ·  ? lists the shortcuts")
