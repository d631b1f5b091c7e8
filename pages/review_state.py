"""Review's session state: the saved filter, the image in focus, notices, and the deep link in the URL.

Deep links: /review?dataset=NAME&image=NAME opens that image (the URL follows the focus view, so a reload comes
back to it). Everything here runs inside the workspace fragment, so a rerun redraws only the workspace.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.errors import StreamlitInvalidLayoutContextError

from labeling import review
from labeling.errors import LabelingError, NotFoundError
from labeling.review import FocusRecord, ReviewFilter
from pages import common

ANY = "(any)"
FILTER_DEFAULTS: dict[str, Any] = {
    "rv_state": "all",
    "rv_category": ANY,
    "rv_source": "effective",
    "rv_text": "",
    "rv_sort": "name",
    "rv_disagree": False,
    "rv_fact": "any",
    "rv_size": 48,
    "rv_unavailable": False,
}


def state() -> Any:
    return st.session_state


def rerun() -> None:
    """Redraw the workspace only (the page's frame, sidebar and navigation stay as they are).

    During a full-app run (the first run, or a click Streamlit folded into a pending full rerun) a
    fragment-scoped rerun is refused, so the whole app is redrawn instead."""
    try:
        st.rerun(scope="fragment")
    except StreamlitInvalidLayoutContextError:
        st.rerun()


def notice(kind: str, message: str) -> None:
    """A message shown at the top of the next run (actions usually rerun right after)."""
    state()["rv_notice"] = (kind, message)


def show_notice() -> None:
    shown = state().pop("rv_notice", None)
    if shown:
        kind, message = shown
        {"success": st.success, "error": st.error, "warning": st.warning}.get(kind, st.info)(common.plain(message))


def open_image(image_id: int) -> None:
    """Show one image in the focus view, remembering the version read (saves are based on it)."""
    current = state()
    try:
        record = review.focus(common.store(), int(image_id))
    except LabelingError as exc:
        notice("error", str(exc))
        return
    current["rv_focus"] = record.image_id
    current["rv_record"] = record
    # Widgets of a view are keyed by visit: a fragment keeps the state of widgets it stopped drawing, so a
    # second visit to the same image and version must not pick up the first visit's leftovers.
    current["rv_visit"] = int(current.get("rv_visit", 0)) + 1
    current["rv_just_opened"] = record.image_id
    current.pop("rv_conflict", None)
    current.pop("rv_discard", None)
    saved = dict(current.get("rv_filter") or {})
    if saved.get("rv_dataset") != record.dataset:
        saved["rv_dataset"] = record.dataset
        current["rv_filter"] = saved


def close() -> None:
    for key in ("rv_focus", "rv_record", "rv_conflict", "rv_discard"):
        state().pop(key, None)
    state()["rv_gallery_visit"] = int(state().get("rv_gallery_visit", 0)) + 1


def start_from_link(names: list[str]) -> None:
    """On a session's first run, take the dataset and image from the URL."""
    current = state()
    if current.get("rv_linked"):
        return
    current["rv_linked"] = True
    dataset = st.query_params.get("dataset")
    image = st.query_params.get("image")
    if dataset and dataset in names:
        current["rv_filter"] = {**(current.get("rv_filter") or {}), "rv_dataset": dataset}
    elif dataset:
        notice("error", f"There is no dataset named {dataset!r}: pick one below.")
        return
    if dataset and image:
        try:
            open_image(review.locate(common.store(), dataset, image))
        except NotFoundError as exc:
            notice("error", str(exc))


def sync_link() -> None:
    """Keep ?dataset=&image= in the URL in step with what is shown, so a reload returns here."""
    current = state()
    dataset = (current.get("rv_filter") or {}).get("rv_dataset")
    record: FocusRecord | None = current.get("rv_record") if current.get("rv_focus") is not None else None
    wanted = {"dataset": record.dataset if record else dataset, "image": record.name if record else None}
    for key, value in wanted.items():
        if value is None:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get(key) != value:
            st.query_params[key] = value


def widget_key(name: str) -> str:
    """A filter widget's key for this visit to the gallery: a fragment keeps the state of widgets it stopped
    drawing, and a widget drawn again under its old key can show its first option instead of that state."""
    return f"{name}__{int(state().get('rv_gallery_visit', 0))}"


def filter_values(names: list[str]) -> dict[str, Any]:
    """The gallery's filter as chosen (our own copy, kept while an image is open), defaults filled in."""
    values = {"rv_dataset": names[0], **FILTER_DEFAULTS, **(state().get("rv_filter") or {})}
    if values["rv_dataset"] not in names:
        values["rv_dataset"] = names[0]
    return values


def filter_from(values: dict[str, Any]) -> ReviewFilter:
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
        images_only=not values.get("rv_unavailable", False),
    )


def saved_filter(names: list[str]) -> ReviewFilter:
    return filter_from(filter_values(names))


def page_key() -> str:
    return widget_key(f"rv_page_{int(state().get('rv_page_epoch', 0))}")


def reset_page() -> None:
    """Back to page 1 after a filter change (a new pagination widget starts there)."""
    state()["rv_page_epoch"] = int(state().get("rv_page_epoch", 0)) + 1
    state()["rv_page"] = 1
