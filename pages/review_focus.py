"""Review's focus view: the image with zoom and its facts, the structured editor, categories from the keyboard,
and navigation that never drops unsaved edits without asking."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from labeling import review
from labeling.errors import ConflictError, LabelingError
from labeling.review import FocusRecord, ReviewFilter
from pages import common, review_editor, widgets
from pages.review_log import history
from pages.review_state import close, notice, open_image, rerun, saved_filter, state

SHORTCUTS = {"save": "Ctrl+S", "save_next": "Ctrl+Enter", "previous": "K", "skip": "J", "gallery": "G"}
FINDER_KEY = "rv_find"
EDITOR_KEY = "rv_editor"
SHORTCUT_LIST = (
    ("Ctrl+S", "Save"),
    ("Ctrl+Enter", "Save and open the next image"),
    ("J / K", "Next / previous image (asks first if there are unsaved changes)"),
    ("G", "Back to the gallery (asks first if there are unsaved changes)"),
    ("1 - 9", "Toggle the first nine categories"),
    ("C", "Find any category: type to filter, Enter toggles it"),
    ("Wheel, double-click, drag", "Zoom (up to 100%) and pan the image"),
    ("?", "Show or hide this list"),
)
_NO_PICK = ""
_FACT_SUMMARY = ("Size", "Format", "File size", "JPEG quality")


def _cats_key(prefix: str) -> str:
    return f"{prefix}_cats"


def _toggle_category(key: str, name: str) -> None:
    state()[key] = review.toggle_category(list(state().get(key) or []), name)


def _toggle_found(key: str) -> None:
    name = state().get(FINDER_KEY)
    if name:
        _toggle_category(key, str(name))
    state()[FINDER_KEY] = _NO_PICK  # ready for the next one


def _categories(record: FocusRecord, options: list[str], prefix: str) -> list[str]:
    key = _cats_key(prefix)
    if key not in state():
        state()[key] = [c for c in record.categories or [] if c in options]
    st.multiselect("Categories", options, format_func=common.visible, key=key)
    st.selectbox(
        "Find a category (C, then type; Enter toggles it)",
        [_NO_PICK, *options],
        format_func=lambda name: "type to filter…" if name == _NO_PICK else common.visible(name),
        key=FINDER_KEY,
        on_change=_toggle_found,
        args=(key,),
    )
    with st.container(horizontal=True, gap="small"):
        for number, name in enumerate(options[:9], start=1):
            st.button(
                common.plain(name),
                shortcut=str(number),
                type="tertiary",
                key=f"{prefix}_toggle_{number}",
                on_click=_toggle_category,
                args=(key, name),
            )
    return list(state().get(key) or [])


def _neighbors(store: Any, record: FocusRecord, flt: ReviewFilter) -> tuple[int | None, int | None]:
    """(previous, next) of the image shown, found once per view: prefetched now, J/K/Save & next use them."""
    known = state().get("rv_ahead")
    if known and known[0] == (record.image_id, flt):
        return known[1]
    found = common.run_or_error(lambda: review.neighbors(store, flt, record.image_id)) or (None, None)
    state()["rv_ahead"] = ((record.image_id, flt), found)
    return found


def _step(store: Any, record: FocusRecord, flt: ReviewFilter, step: int) -> int | None:
    previous, following = _neighbors(store, record, flt)
    return following if step > 0 else previous


def _facts_line(record: FocusRecord) -> str:
    facts = review.fact_lines(record.facts)
    if facts.empty:
        return "Not scanned yet: the Audit page or `labeling scan` reads its format, quality and metadata."
    shown = dict(zip(facts["fact"], facts["value"], strict=True))
    return "  ·  ".join(f"{label}: {shown[label]}" for label in _FACT_SUMMARY if label in shown)


def _image_side(store: Any, record: FocusRecord, flt: ReviewFilter) -> None:
    ahead = _neighbors(store, record, flt)
    size = None
    if record.facts and record.facts.get("width") and record.facts.get("height"):
        size = (int(record.facts["width"]), int(record.facts["height"]))
    widgets.viewer(
        key="rv_viewer",
        image_key=f"{record.image_id}",
        preview=common.picture_url("preview", record.image_id),
        original=common.picture_url("original", record.image_id),
        name=common.visible(record.name),
        size=size,
        prefetch=[common.picture_url("preview", image_id) for image_id in ahead if image_id is not None],
    )
    st.caption(common.plain(_facts_line(record)))
    if record.status != "found":
        st.warning(common.plain(f"No image for this name: {record.status}."))
    for failure in record.failures:
        st.text(common.visible(f"Failed at {failure.stage} ({failure.kind}): {failure.message}"))
    st.caption("What the model said, beside what the reviewer set")
    st.dataframe(
        review.comparison(record),
        hide_index=True,
        width="stretch",
        column_config={
            "field": st.column_config.TextColumn("field", width="small"),
            "model": st.column_config.TextColumn("model", width="medium"),
            "reviewer": st.column_config.TextColumn("reviewer", width="medium"),
        },
    )
    if record.model_name:
        st.text(common.visible(f"Model: {record.model_name}"))
    with st.expander("All technical facts"):
        facts = review.fact_lines(record.facts, record.copies)
        if facts.empty:
            st.text("Not scanned yet: scan the dataset on the Audit page or with `labeling scan`.")
        else:
            st.dataframe(facts, hide_index=True, width="stretch", height=common.table_height(len(facts), most=40))


def _conflict(store: Any, record: FocusRecord, who: str) -> None:
    conflict = state().get("rv_conflict")
    if not conflict or conflict["image_id"] != record.image_id:
        return
    st.error(common.plain(conflict["message"]))
    if conflict.get("changes"):
        st.dataframe(
            pd.DataFrame(conflict["changes"], columns=["field", "when you opened it", "now"]),
            hide_index=True,
            width="stretch",
        )
    left, right = st.columns(2)
    if left.button("Load the latest version (drop my edits)", key="rv_conflict_load"):
        open_image(record.image_id)
        rerun()
    pending = state().get("rv_last_values")
    forced = right.button("Save mine over theirs", key="rv_conflict_force", disabled=not pending)
    if forced and pending:
        if _save(store, record, who, pending, over_version=conflict["version"]):
            open_image(record.image_id)
        rerun()


def _save(
    store: Any,
    record: FocusRecord,
    who: str,
    values: dict[str, Any],
    over_version: int | None = None,
    *,
    whole_app: bool = False,
) -> bool:
    """Save; a refusal is kept for the run to show above the form. `whole_app`: called from the name dialog."""
    try:
        result = review.save(store, record, reviewer=who, over_version=over_version, **values)
    except ConflictError as exc:
        current = store.review_record(record.image_id).version
        state()["rv_conflict"] = {
            "image_id": record.image_id,
            "version": current,
            "message": str(exc),
            "changes": list(getattr(exc, "changes", []) or []),
        }
        state()["rv_last_values"] = values
        state().pop("rv_pending_save", None)
        if whole_app:
            st.rerun()  # from the name dialog: its own rerun would redraw only the dialog
        return False  # the run shows the refusal above the form, which keeps the reviewer's edits
    except LabelingError as exc:
        state()["rv_form_error"] = str(exc)
        return False
    state().pop("rv_conflict", None)
    if (state().get("rv_filter") or {}).get("rv_sort") == "recently_edited":
        state().pop("rv_ahead", None)  # the save moved the image to the top of this sort
    notice(
        "success",
        f"Saved {record.name} (version {result.version}): {', '.join(result.changed)}."
        if result.changed
        else f"{record.name}: nothing changed.",
    )
    return True


def _after_save(record: FocusRecord, target: int | None, next_wanted: bool) -> None:
    if next_wanted and target is not None:
        open_image(target)
    else:
        if next_wanted:
            notice("info", "Saved. That was the last image of this filter.")
        open_image(record.image_id)


@st.dialog("Who is reviewing?")
def _ask_name() -> None:
    pending = state().get("rv_pending_save")
    st.write("Your name is recorded with every edit. It is kept in this browser for next time.")
    name = st.text_input("Your name", key="rv_name_asked", placeholder="e.g. Ada")
    if not st.button("Save with this name", type="primary") or not pending:
        return
    if not (name or "").strip():
        st.warning("Type your name first.")
        return
    common.set_reviewer(name)
    record: FocusRecord = state()["rv_record"]
    if _save(common.store(), record, name.strip(), pending["values"], whole_app=True):
        state().pop("rv_pending_save", None)
        if pending["next"] and pending["target"] is not None:
            open_image(pending["target"])
        else:
            open_image(record.image_id)
    st.rerun()  # the whole app: the sidebar shows the name from now on


def _leave(store: Any, record: FocusRecord, flt: ReviewFilter, step: int) -> None:
    if step == 0:
        close()
        return
    target = _step(store, record, flt, step)
    if target is None:
        notice("info", "That was the " + ("last" if step > 0 else "first") + " image of this filter.")
        open_image(record.image_id)
    else:
        open_image(target)


def _pending(record: FocusRecord, values: dict[str, Any]) -> list[str]:
    try:
        return list(review.changes(record, description=values["description"], categories=values["categories"]))
    except LabelingError:
        return ["description"]


def show(store: Any, names: list[str], who: str) -> None:
    current = state()
    record: FocusRecord | None = current.get("rv_record")
    if record is None or record.image_id != current.get("rv_focus"):
        open_image(int(current["rv_focus"]))
        record = current.get("rv_record")
        if record is None:
            close()
            rerun()
    assert record is not None
    flt = saved_filter(names)
    prefix = f"rv_{record.image_id}_{record.version}_{current.get('rv_visit', 0)}"
    status = (f"Reviewed by {record.reviewer or 'someone'}" if record.reviewed else "Not reviewed yet") + (
        f" · human label version {record.version}" if record.version else " · model output only"
    )
    st.text(common.visible(f"{record.dataset} / {record.name}  ·  {status}"))
    # Just opened: what is shown is what is stored. Later reruns look for a save by someone else.
    just_opened = current.pop("rv_just_opened", None) == record.image_id
    fresh = None if just_opened else common.run_or_error(lambda: review.focus(store, record.image_id))
    if fresh is not None and fresh.version != record.version and "rv_conflict" not in current:
        st.warning(
            common.plain(
                f"{fresh.reviewer or 'Someone'} saved this image after you opened it (version "
                f"{record.version} -> {fresh.version}). Saving will show you their change first."
            )
        )
    _conflict(store, record, who)
    image_side, form_side = st.columns([3, 2])
    with image_side:
        _image_side(store, record, flt)
    with form_side:
        _form_side(store, record, flt, who, prefix)
        if st.toggle("History of this image", key=f"{prefix}_history"):  # read only when asked for
            history(store, who, image_id=record.image_id, limit=10)


def _form_side(store: Any, record: FocusRecord, flt: ReviewFilter, who: str, prefix: str) -> None:
    current = state()
    options = review.category_options(store, record.categories, record.model_categories)
    categories = _categories(record, options, prefix)
    raw = review_editor.mode_toggle(prefix)
    with st.container(key=EDITOR_KEY), st.form(f"{prefix}_form", enter_to_submit=False, border=False):
        review_editor.form(record, prefix, raw)
        st.checkbox("Mark as reviewed", value=True, key=f"{prefix}_reviewed")
        with st.container(horizontal=True):
            for kind, label in (
                ("save", "Save"),
                ("save_next", "Save & next"),
                ("previous", "Previous"),
                ("skip", "Skip"),
                ("gallery", "Gallery"),
            ):
                st.form_submit_button(
                    label,
                    shortcut=SHORTCUTS[kind],
                    type="primary" if kind == "save" else "secondary",
                    on_click=_act,
                    args=(store, record, flt, who, prefix, raw, kind),
                )
    for kind, show in (("rv_form_error", st.error), ("rv_form_warning", st.warning)):
        message = current.pop(kind, None)
        if message:
            show(common.plain(message))
    widgets.review_keys(
        key="rv_keys",
        shown=prefix,
        pending=bool(review.changes(record, categories=categories)),  # typed text is tracked in the browser
        shortcuts=SHORTCUT_LIST,
        finder=f"st-key-{FINDER_KEY}",
        editor=f"st-key-{EDITOR_KEY}",
    )
    if current.pop("rv_ask_name", False):
        _ask_name()


def _act(store: Any, record: FocusRecord, flt: ReviewFilter, who: str, prefix: str, raw: bool, kind: str) -> None:
    """A form button, handled before the run draws anything: the run then shows the outcome (the saved or the
    next image, a warning), so an action costs one run, not two."""
    current = state()
    broken = False
    try:
        description = review_editor.description(record, review_editor.submitted(record, prefix, raw))
    except LabelingError as exc:
        if kind in ("save", "save_next"):
            current["rv_form_error"] = str(exc)
            return
        description, broken = None, True
    categories = list(current.get(_cats_key(prefix)) or [])
    values = {"description": description, "categories": categories, "reviewed": bool(current[f"{prefix}_reviewed"])}
    if kind in ("save", "save_next"):
        target = _step(store, record, flt, 1) if kind == "save_next" else None
        if not who:
            current["rv_pending_save"] = {"values": values, "next": kind == "save_next", "target": target}
            current["rv_ask_name"] = True
            return
        if _save(store, record, who, values):
            _after_save(record, target, kind == "save_next")
        return
    pending = ["description"] if broken else _pending(record, values)
    if pending and current.get("rv_discard") != record.image_id:
        current["rv_discard"] = record.image_id
        current["rv_form_warning"] = (
            "Unsaved changes to " + " and ".join(pending) + ": press the same key again to leave "
            f"without saving, or save with {SHORTCUTS['save']}."
        )
        return
    _leave(store, record, flt, {"gallery": 0, "previous": -1, "skip": 1}[kind])
