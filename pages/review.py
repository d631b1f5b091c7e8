"""Review: a paged gallery of thumbnails with filters and bulk actions, and a keyboard-driven focus view.

Deep links: /review?dataset=NAME&image=NAME opens that image (the URL follows the focus view, so a reload
comes back to it). Model output and file names are shown with st.text / st.dataframe / common.plain only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import streamlit as st

from labeling import review
from labeling.errors import ConflictError, LabelingError, NotFoundError
from labeling.review import (
    FACT_FILTERS,
    NO_CATEGORY,
    SORT_LABELS,
    STATE_LABELS,
    FocusRecord,
    ReviewFilter,
)
from labeling.vocabulary import LABEL_SOURCES, SOURCE_TITLES
from pages import common

ANY = "(any)"
PAGE_SIZES = (12, 24, 48)
GRID_COLUMNS = 4
SHORTCUTS = {"save": "Ctrl+S", "save_next": "Ctrl+Enter", "previous": "K", "skip": "J", "gallery": "G"}
VIEWS = ("Gallery", "Progress & agreement", "Edit log")
_FILTER_DEFAULTS: dict[str, Any] = {
    "rv_state": "all",
    "rv_category": ANY,
    "rv_source": "effective",
    "rv_text": "",
    "rv_sort": "name",
    "rv_disagree": False,
    "rv_fact": "any",
    "rv_size": 24,
}


pictures = common.pictures


def _state() -> Any:
    return st.session_state


# ---- state: filter, focus, deep links ---------------------------------------------------------------------------


def _notice(kind: str, message: str) -> None:
    """A message shown at the top of the next run (actions usually rerun right after)."""
    _state()["rv_notice"] = (kind, message)


def _show_notice() -> None:
    notice = _state().pop("rv_notice", None)
    if notice:
        kind, message = notice
        {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(common.plain(message))


def _open(image_id: int) -> None:
    """Show one image in the focus view, remembering the version read (saves are based on it)."""
    state = _state()
    try:
        record = review.focus(common.store(), int(image_id))
    except LabelingError as exc:
        _notice("error", str(exc))
        return
    state["rv_focus"] = record.image_id
    state["rv_record"] = record
    state.pop("rv_conflict", None)
    state.pop("rv_discard", None)
    saved = dict(state.get("rv_filter") or {})
    if saved.get("rv_dataset") != record.dataset:
        saved["rv_dataset"] = record.dataset
        state["rv_filter"] = saved


def _close() -> None:
    state = _state()
    for key in ("rv_focus", "rv_record", "rv_conflict", "rv_discard"):
        state.pop(key, None)


def _start_from_link(names: list[str]) -> None:
    """On a session's first run, take the dataset and image from the URL."""
    state = _state()
    if state.get("rv_linked"):
        return
    state["rv_linked"] = True
    dataset = st.query_params.get("dataset")
    image = st.query_params.get("image")
    if dataset and dataset in names:
        state["rv_filter"] = {**(state.get("rv_filter") or {}), "rv_dataset": dataset}
        state.pop("rv_dataset", None)
    elif dataset:
        _notice("error", f"There is no dataset named {dataset!r}: pick one below.")
        return
    if dataset and image:
        try:
            _open(review.locate(common.store(), dataset, image))
        except NotFoundError as exc:
            _notice("error", str(exc))


def _sync_link() -> None:
    """Keep ?dataset=&image= in the URL in step with what is shown, so a reload returns here."""
    state = _state()
    dataset = (state.get("rv_filter") or {}).get("rv_dataset")
    record: FocusRecord | None = state.get("rv_record") if state.get("rv_focus") is not None else None
    wanted = {"dataset": record.dataset if record else dataset, "image": record.name if record else None}
    for key, value in wanted.items():
        if value is None:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get(key) != value:
            st.query_params[key] = value


def _seed_filters(names: list[str]) -> None:
    """Filter widgets vanish while the focus view is open; bring their values back from our own copy."""
    state = _state()
    saved = state.get("rv_filter") or {}
    for key, default in {"rv_dataset": names[0], **_FILTER_DEFAULTS}.items():
        if key not in state:
            state[key] = saved.get(key, default)
    if state["rv_dataset"] not in names:
        state["rv_dataset"] = names[0]


def _filter_from(values: dict[str, Any]) -> ReviewFilter:
    category = values.get("rv_category", ANY)
    return ReviewFilter(
        dataset=values.get("rv_dataset"),
        category=None if category == ANY else category,
        category_source=values.get("rv_source", "effective"),
        state=values.get("rv_state", "all"),
        disagreement=bool(values.get("rv_disagree")),
        text=values.get("rv_text", ""),
        sort=values.get("rv_sort", "name"),
        fact=values.get("rv_fact", "any"),
    )


def _saved_filter(names: list[str]) -> ReviewFilter:
    values = {"rv_dataset": names[0], **_FILTER_DEFAULTS, **(_state().get("rv_filter") or {})}
    return _filter_from(values)


def _reset_page() -> None:
    _state().pop("rv_page", None)  # back to page 1 (dropping the state, not setting it, keeps Streamlit quiet)


# ---- the gallery --------------------------------------------------------------------------------------------------


def _filters(names: list[str], categories: list[str]) -> ReviewFilter:
    state = _state()
    options = [ANY, *categories, NO_CATEGORY]
    if state.get("rv_category") not in options:
        state["rv_category"] = ANY
    top = st.columns([2, 2, 2, 2, 3, 2])
    top[0].selectbox("Dataset", names, format_func=common.visible, key="rv_dataset", on_change=_reset_page)
    top[1].selectbox(
        "Status", list(STATE_LABELS), format_func=STATE_LABELS.__getitem__, key="rv_state", on_change=_reset_page
    )
    top[2].selectbox("Category", options, format_func=common.visible, key="rv_category", on_change=_reset_page)
    top[3].selectbox(
        "Category by", LABEL_SOURCES, format_func=SOURCE_TITLES.__getitem__, key="rv_source", on_change=_reset_page
    )
    top[4].text_input(
        "Search names and descriptions",
        key="rv_text",
        on_change=_reset_page,
        placeholder="words in a file name, summary or description",
    )
    top[5].selectbox(
        "Sort", list(SORT_LABELS), format_func=SORT_LABELS.__getitem__, key="rv_sort", on_change=_reset_page
    )
    row = st.columns([4, 3, 2, 3])
    row[0].checkbox("Only disagreements (reviewer ≠ model categories)", key="rv_disagree", on_change=_reset_page)
    row[1].selectbox(
        "Technical fact",
        list(FACT_FILTERS),
        format_func=lambda name: FACT_FILTERS[name][0],
        key="rv_fact",
        on_change=_reset_page,
        help="From the scan (Audit page or `labeling scan`): format, metadata, provenance, duplicates.",
    )
    row[2].selectbox("Per page", PAGE_SIZES, key="rv_size", on_change=_reset_page)
    values = {key: state[key] for key in ("rv_dataset", *_FILTER_DEFAULTS)}
    state["rv_filter"] = values
    return _filter_from(values)


def _counts_line(counts: dict[str, int], total: int) -> str:
    parts = [f"{STATE_LABELS[name]}: {counts.get(name, 0):,}" for name in STATE_LABELS]
    parts.append(f"Disagreements: {counts.get('disagreement', 0):,}")
    return f"{total:,} matching  ·  " + "  ·  ".join(parts)


def _toggle_selected(image_id: int) -> None:
    selected: set[int] = _state().setdefault("rv_selected", set())
    selected.symmetric_difference_update({image_id})


BULK_LIMIT = 100_000  # most images one bulk action may select


def _bulk_bar(store: Any, who: str, page_ids: list[int], categories: list[str], flt: ReviewFilter, total: int) -> None:
    state = _state()
    selected: set[int] = state.setdefault("rv_selected", set())
    with st.expander(f"Bulk actions: {len(selected):,} selected", expanded=bool(selected)):
        with st.container(horizontal=True):
            if st.button("Select this page", key="rv_select_page"):
                selected.update(page_ids)
                st.rerun()
            if st.button(f"Select all {min(total, BULK_LIMIT):,} matching", key="rv_select_all", disabled=not total):
                ids = common.run_or_error(lambda: store.gallery_ids(flt, limit=BULK_LIMIT))
                if ids is not None:
                    selected.update(ids)
                    st.rerun()
            if st.button("Clear selection", key="rv_clear_selection", disabled=not selected):
                selected.clear()
                st.rerun()
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
                _notice("success", f"{label} {changed:,} of {len(ids):,} selected images (the others already were).")
                st.rerun()


def _listed(value: Any) -> list[str] | None:
    """A list column's cell from a DataFrame (array, list, or NA) as a list, or None."""
    if value is None or isinstance(value, float) or value is pd.NA:
        return None
    return [str(item) for item in value]


def _tile(row: dict[str, Any], picture: Any) -> None:
    image_id = int(row["image_id"])
    with st.container(border=True):
        st.image(picture.data, width="stretch")
        lines = [str(row["name"])]
        if picture.placeholder:
            lines.append(f"Image unavailable: {picture.reason}")
        summary = row.get("summary")
        if isinstance(summary, str) and summary:
            lines.append(summary if len(summary) <= 140 else summary[:139] + "…")
        edited = _listed(row.get("human_categories")) is not None or bool(row.get("description_edited"))
        lines.append(("✎ " if edited else "") + (", ".join(_listed(row.get("categories")) or []) or "no categories"))
        status = (
            "✓ reviewed" + (f" by {row['reviewer']}" if row.get("reviewer") else "")
            if row["reviewed"]
            else "not reviewed"
        )
        lines.append(status + (" · failed" if row.get("failed") else ""))
        st.text(common.visible("\n".join(lines)))
        _state()[f"rv_sel_{image_id}"] = image_id in _state().setdefault("rv_selected", set())
        left, right = st.columns(2)
        left.checkbox("Select", key=f"rv_sel_{image_id}", on_change=_toggle_selected, args=(image_id,))
        right.button("Open", key=f"rv_open_{image_id}", on_click=_open, args=(image_id,))


def _gallery(store: Any, names: list[str], who: str) -> None:
    categories = review.category_options(store)
    flt = _filters(names, categories)
    state = _state()
    requested = int(state.get("rv_page") or 1)
    page = common.run_or_error(lambda: review.gallery(store, flt, page=requested, page_size=int(state["rv_size"])))
    if page is None:
        return
    st.caption(_counts_line(page.counts, page.total))
    rows: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in page.rows.to_dict("records")]
    _bulk_bar(store, who, [int(r["image_id"]) for r in rows], categories, flt, page.total)
    if not rows:
        st.info("No images match these filters.")
    pictures_ = pictures().thumbnails(rows)
    for start in range(0, len(rows), GRID_COLUMNS):
        for column, row, picture in zip(
            st.columns(GRID_COLUMNS),
            rows[start : start + GRID_COLUMNS],
            pictures_[start : start + GRID_COLUMNS],
            strict=False,
        ):
            with column:
                _tile(row, picture)
    default = 1
    if page.page != requested:  # the set shrank under the page shown: show its last page
        state.pop("rv_page", None)
        default = page.page
    if page.pages > 1:
        st.pagination(page.pages, default=default, key="rv_page")
    st.caption(f"Page {page.page} of {page.pages}")


# ---- the focus view -----------------------------------------------------------------------------------------------


def _toggle_category(key: str, name: str) -> None:
    _state()[key] = review.toggle_category(list(_state().get(key) or []), name)


def _form_values(record: FocusRecord, prefix: str) -> dict[str, Any]:
    state = _state()
    fields = review.description_fields(record.description)
    return {
        "fields": {key: state.get(f"{prefix}_field_{i}", text) for i, (key, text) in enumerate(fields)},
        "categories": list(state.get(f"{prefix}_cats", record.categories or [])),
        "reviewed": bool(state.get(f"{prefix}_reviewed", True)),
    }


def _save(store: Any, record: FocusRecord, who: str, values: dict[str, Any], over_version: int | None = None) -> bool:
    try:
        result = review.save(store, record, reviewer=who, over_version=over_version, **values)
    except ConflictError as exc:
        current = store.review_record(record.image_id).version
        _state()["rv_conflict"] = {"image_id": record.image_id, "version": current, "message": str(exc)}
        st.rerun()  # show the refusal above the form, which keeps the reviewer's edits
    except LabelingError as exc:
        st.error(common.plain(exc))
        return False
    _state().pop("rv_conflict", None)
    _notice(
        "success",
        f"Saved {record.name} (version {result.version}): {', '.join(result.changed)}."
        if result.changed
        else f"{record.name}: nothing changed.",
    )
    return True


def _navigate(store: Any, record: FocusRecord, flt: ReviewFilter, step: int) -> None:
    target = common.run_or_error(lambda: review.neighbor(store, flt, record.image_id, step))
    if target is None:
        _notice("info", "That was the " + ("last" if step > 0 else "first") + " image of this filter.")
        _open(record.image_id)
    else:
        _open(target)


def _focus(store: Any, names: list[str], who: str) -> None:
    state = _state()
    record: FocusRecord | None = state.get("rv_record")
    if record is None or record.image_id != state.get("rv_focus"):
        _open(int(state["rv_focus"]))
        record = state.get("rv_record")
        if record is None:
            _close()
            st.rerun()
    assert record is not None
    flt = _saved_filter(names)
    prefix = f"rv_{record.image_id}_{record.version}"
    st.text(common.visible(f"{record.dataset} / {record.name}"))
    fresh = common.run_or_error(lambda: review.focus(store, record.image_id))
    if fresh is not None and fresh.version != record.version and "rv_conflict" not in state:
        st.warning(
            common.plain(
                f"{fresh.reviewer or 'Someone'} saved this image after you opened it (version "
                f"{record.version} -> {fresh.version}). Saving will show you their change first."
            )
        )
    conflict = state.get("rv_conflict")
    if conflict and conflict["image_id"] == record.image_id:
        st.error(common.plain(conflict["message"]))
        left, right = st.columns(2)
        if left.button("Load the latest version (drop my edits)", key="rv_conflict_load"):
            _open(record.image_id)
            st.rerun()
        if right.button("Save mine over theirs", key="rv_conflict_force") and _save(
            store, record, who, _form_values(record, prefix), over_version=conflict["version"]
        ):
            _open(record.image_id)
            st.rerun()

    image_side, form_side = st.columns([3, 2])
    with image_side:
        full = st.toggle("Full resolution", key=f"rv_full_{record.image_id}")
        picture = pictures().original(record.image) if full else pictures().preview(record.image)
        st.image(picture.data, width="stretch" if not full else "content")
        if picture.placeholder:
            st.warning(common.plain(f"Image unavailable: {picture.reason}"))
        for failure in record.failures:
            st.text(common.visible(f"Failed at {failure.stage} ({failure.kind}): {failure.message}"))
        st.caption("What the model said, beside what the reviewer set")
        st.dataframe(review.comparison(record), hide_index=True, width="stretch")
        if record.model_name:
            st.text(common.visible(f"Model: {record.model_name}"))
        with st.expander("Technical facts"):
            facts = review.fact_lines(record.facts, record.copies)
            if facts.empty:
                st.text("Not scanned yet: scan the dataset on the Audit page or with `labeling scan`.")
            else:
                st.dataframe(facts, hide_index=True, width="stretch", height=common.table_height(len(facts), most=40))
    with form_side:
        _focus_form(store, record, flt, who, prefix)
        with st.expander("History of this image"):
            _history(store, who, image_id=record.image_id, limit=10)


def _focus_form(store: Any, record: FocusRecord, flt: ReviewFilter, who: str, prefix: str) -> None:
    state = _state()
    options = review.category_options(store, record.categories, record.model_categories)
    status = (f"Reviewed by {record.reviewer or 'someone'}" if record.reviewed else "Not reviewed yet") + (
        f" · human label version {record.version}" if record.version else " · model output only"
    )
    st.text(common.visible(status))
    with st.form(f"{prefix}_form", enter_to_submit=False, border=False):
        for i, (key, text) in enumerate(review.description_fields(record.description)):
            st.text_area(
                common.plain(key), value=text, key=f"{prefix}_field_{i}", height=120 if key == review.SUMMARY else 80
            )
        st.multiselect(
            "Categories",
            options,
            default=[c for c in record.categories or [] if c in options],
            format_func=common.visible,
            key=f"{prefix}_cats",
        )
        st.checkbox("Mark as reviewed", value=True, key=f"{prefix}_reviewed")
        with st.container(horizontal=True):
            save = st.form_submit_button("Save", shortcut=SHORTCUTS["save"], type="primary")
            save_next = st.form_submit_button("Save & next", shortcut=SHORTCUTS["save_next"])
            previous = st.form_submit_button("Previous", shortcut=SHORTCUTS["previous"])
            skip = st.form_submit_button("Skip", shortcut=SHORTCUTS["skip"])
            back = st.form_submit_button("Gallery", shortcut=SHORTCUTS["gallery"])
        st.caption("Keys 1-9 toggle these categories (when not typing in a field)")
        with st.container(horizontal=True):
            for number, name in enumerate(options[:9], start=1):
                st.form_submit_button(
                    common.plain(name),
                    shortcut=str(number),
                    type="tertiary",
                    key=f"{prefix}_toggle_{number}",
                    on_click=_toggle_category,
                    args=(f"{prefix}_cats", name),
                )
    values = _form_values(record, prefix)
    if save or save_next:
        target = common.run_or_error(lambda: review.neighbor(store, flt, record.image_id, 1)) if save_next else None
        if _save(store, record, who, values):
            if save_next and target is not None:
                _open(target)
            else:
                if save_next:
                    _notice("info", "Saved. That was the last image of this filter.")
                _open(record.image_id)
            st.rerun()
    if previous or skip or back:
        try:
            pending = review.changes(record, fields=values["fields"], categories=values["categories"])
        except LabelingError:
            pending = {"description": True}
        if pending and state.get("rv_discard") != record.image_id:
            state["rv_discard"] = record.image_id
            st.warning(
                "Unsaved changes to " + " and ".join(pending) + ": press the same key again to leave "
                f"without saving, or save with {SHORTCUTS['save']}."
            )
            return
        if back:
            _close()
        else:
            _navigate(store, record, flt, -1 if previous else 1)
        st.rerun()


# ---- progress, agreement, edit log -------------------------------------------------------------------------------


def _progress(store: Any, dataset: str) -> None:
    st.subheader("Review progress")
    progress = review.progress(store)
    st.dataframe(
        progress,
        hide_index=True,
        width="stretch",
        column_config={
            "share": st.column_config.ProgressColumn("reviewed share", min_value=0.0, max_value=1.0, format="percent"),
        },
    )
    st.subheader("Model vs reviewers, per category")
    st.caption(
        "On reviewed images of the selected dataset: precision = of the images the model put in a "
        "category, the share the reviewers kept there; recall = of the images the reviewers put in a "
        "category, the share the model had found. Empty means undefined (no such images yet)."
    )
    table = review.agreement(store, dataset)
    if table.empty:
        st.info("No reviewed images with model categories in this dataset yet.")
        return
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        column_config={
            "precision": st.column_config.NumberColumn(format="percent"),
            "recall": st.column_config.NumberColumn(format="percent"),
        },
    )


def _history(
    store: Any, who: str, *, dataset: str | None = None, image_id: int | None = None, limit: int = 100
) -> None:
    history = review.edit_history(store, dataset=dataset, image_id=image_id, limit=limit)
    if history.empty:
        st.text("No edits yet.")
        return
    st.dataframe(history.drop(columns=["image_id"]), hide_index=True, width="stretch")
    undoable = history[~history["undone"].astype(bool)]
    if undoable.empty:
        return
    labels = {
        int(edit_id): common.visible(f"#{edit_id} {image}: {change}")
        for edit_id, image, change in zip(undoable["id"], undoable["image"], undoable["change"], strict=True)
    }
    key = f"rv_undo_{image_id if image_id is not None else 'all'}"
    chosen = st.selectbox("Edit to undo", list(labels), format_func=labels.__getitem__, key=key)
    if st.button("Undo this edit", key=f"{key}_button"):
        version = common.run_or_error(lambda: review.undo(store, int(chosen), who))
        if version is not None:
            _notice("success", f"Undid edit #{chosen} (now version {version}).")
            if image_id is not None:
                _open(image_id)
            st.rerun()


def _dataset_picker(names: list[str]) -> str:
    """The dataset selector alone (progress and edit-log views), kept in step with the gallery's filter."""
    state = _state()
    dataset = str(st.selectbox("Dataset", names, format_func=common.visible, key="rv_dataset", on_change=_reset_page))
    state["rv_filter"] = {**(state.get("rv_filter") or {}), "rv_dataset": dataset}
    return dataset


# ---- the page -----------------------------------------------------------------------------------------------------


def main() -> None:
    st.title("Review")
    store = common.store()
    names = store.dataset_names()
    if not names:
        st.info(
            "No datasets yet: import one on the Datasets page (a seed output CSV brings its descriptions "
            "and categories along)."
        )
        return
    _start_from_link(names)
    _seed_filters(names)
    who = common.reviewer()
    if not who:
        st.warning(
            "Set your name in the sidebar (or `reviewer` in config.yaml): until then edits are recorded as anonymous."
        )
    _show_notice()
    current = _state().get("rv_dataset")
    if isinstance(current, str):
        common.simulated_notice([current])
    if _state().get("rv_focus") is not None:
        _focus(store, names, who or "anonymous")
    else:
        view = st.segmented_control("View", VIEWS, default=VIEWS[0], key="rv_view") or VIEWS[0]
        if view == VIEWS[0]:
            _gallery(store, names, who or "anonymous")
        else:
            dataset = _dataset_picker(names)
            if view == VIEWS[1]:
                _progress(store, dataset)
            else:
                _history(store, who or "anonymous", dataset=dataset)
    _sync_link()


main()
