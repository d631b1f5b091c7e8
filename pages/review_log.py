"""Review's progress & agreement view and the edit log with undo (a bulk action undoes as one)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from labeling import review
from pages import common
from pages.review_state import notice, open_image, rerun

UNDEFINED = "—"


def _percent(value: Any) -> str:
    return UNDEFINED if value is None or pd.isna(value) else f"{float(value):.0%}"


def progress(store: Any, dataset: str) -> None:
    st.subheader("Review progress")
    st.dataframe(
        review.progress(store),
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
        f"category, the share the model had found. {UNDEFINED} means undefined (no such images yet)."
    )
    table = review.agreement(store, dataset)
    if table.empty:
        st.info("No reviewed images with model categories in this dataset yet.")
        return
    shown = table.assign(precision=table["precision"].map(_percent), recall=table["recall"].map(_percent))
    st.dataframe(shown, hide_index=True, width="stretch")


def history(store: Any, who: str, *, dataset: str | None = None, image_id: int | None = None, limit: int = 100) -> None:
    log = review.edit_history(store, dataset=dataset, image_id=image_id, limit=limit)
    if log.empty:
        st.text("No edits yet.")
        return
    st.dataframe(
        log.drop(columns=["image_id", "images"]),
        hide_index=True,
        width="stretch",
        column_config={"change": st.column_config.TextColumn("change", width="large")},
    )
    undoable = log[~log["undone"].astype(bool)]
    if undoable.empty:
        return
    labels = {
        int(edit_id): common.visible(f"#{edit_id} {image}: {change}")
        for edit_id, image, change in zip(undoable["id"], undoable["image"], undoable["change"], strict=True)
    }
    key = f"rv_undo_{image_id if image_id is not None else 'all'}"
    chosen = st.selectbox("Edit to undo", list(labels), format_func=labels.__getitem__, key=key)
    if st.button("Undo this edit", key=f"{key}_button"):
        if not who:
            st.warning("Set your name in the sidebar first: an undo is recorded as an edit.")
            return
        result = common.run_or_error(lambda: review.undo(store, int(chosen), who))
        if result is not None:
            notice("success", result.summary())
            if image_id is not None:
                open_image(image_id)
            rerun()
