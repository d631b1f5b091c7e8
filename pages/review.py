"""Review: a paged gallery of thumbnails with filters and bulk actions, and a keyboard-driven focus view.

The workspace is one fragment, so a filter change, a page turn, J/K or a save redraws only it; pictures reach
the browser as cacheable URLs (labeling.picture_routes). Model output and file names are shown with st.text,
st.dataframe, common.plain or as the components' plain-text data only.
"""

from __future__ import annotations

import streamlit as st

from pages import common, review_focus, review_gallery, review_log, widgets
from pages.review_state import filter_values, reset_page, show_notice, start_from_link, state, sync_link, widget_key

VIEWS = ("Gallery", "Progress & agreement", "Edit log")
GALLERY_SHORTCUTS = (
    ("Click a tile", "Open the image"),
    ("Tick a tile's box", "Select it for a bulk action"),
    ("?", "Show or hide this list"),
)


def _dataset_picker(names: list[str]) -> str:
    """The dataset selector alone (progress and edit-log views), kept in step with the gallery's filter."""
    saved = filter_values(names)["rv_dataset"]
    dataset = str(
        st.selectbox(
            "Dataset",
            names,
            index=names.index(saved),
            format_func=common.visible,
            key=widget_key("rv_dataset_only"),
            on_change=reset_page,
        )
    )
    state()["rv_filter"] = {**(state().get("rv_filter") or {}), "rv_dataset": dataset}
    return dataset


@st.fragment
def _workspace(names: list[str]) -> None:
    store = common.store()
    who = common.reviewer()
    show_notice()
    if state().get("rv_focus") is not None:
        review_focus.show(store, names, who)
    else:
        view = st.segmented_control("View", VIEWS, default=VIEWS[0], key="rv_view") or VIEWS[0]
        if view == VIEWS[0]:
            review_gallery.show(store, names, who)
            widgets.review_keys(
                key="rv_gallery_keys", shown="gallery", pending=False, shortcuts=GALLERY_SHORTCUTS, finder="", editor=""
            )
        else:
            dataset = _dataset_picker(names)
            if view == VIEWS[1]:
                review_log.progress(store, dataset)
            else:
                review_log.history(store, who, dataset=dataset)
    sync_link()


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
    start_from_link(names)
    common.simulated_notice([filter_values(names)["rv_dataset"]])
    _workspace(names)


main()
