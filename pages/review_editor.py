"""The structured description editor: one input per field in the model's order, or the raw JSON.

Drawn inside the focus view's form; `submitted` reads what the form holds and `description` turns it into the
description to save (keys in their order), raising InputError for JSON that does not parse.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from labeling import description_form
from labeling.description_form import CHOICE, JSON, OBJECTS, TAGS, TEXT, FormField
from labeling.review import FocusRecord
from pages import common

_NONE = ""  # a choice left unset


def raw_key(prefix: str) -> str:
    return f"{prefix}_raw"


def mode_toggle(prefix: str) -> bool:
    """Form or raw JSON (outside the form: switching redraws the editor)."""
    return bool(
        st.toggle(
            "Edit as JSON",
            key=raw_key(prefix),
            help="Every field at once, as the model wrote it; checked before saving. Switching shows the saved text.",
        )
    )


def _choice(field: FormField, key: str) -> None:
    options = [_NONE, *field.options]
    if field.value and field.value not in options:
        options.append(field.value)  # the model answered outside the enum: keep what it said selectable
    st.selectbox(
        common.plain(field.label),
        options,
        index=options.index(field.value) if field.value in options else 0,
        format_func=lambda value: "—" if value == _NONE else common.visible(value),
        key=key,
    )


def _tags(field: FormField, key: str) -> None:
    st.multiselect(
        common.plain(field.label),
        list(field.value),
        default=list(field.value),
        accept_new_options=True,
        format_func=common.visible,
        placeholder="type a value, Enter adds it",
        key=key,
    )


def _objects(field: FormField, key: str) -> None:
    st.caption(common.plain(field.label))
    st.data_editor(
        pd.DataFrame(field.value or [], columns=["name", "attributes"]).astype("string"),
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        key=key,
        column_config={
            "name": st.column_config.TextColumn("name", width="small"),
            "attributes": st.column_config.TextColumn("attributes (comma-separated)", width="large"),
        },
    )


def form(record: FocusRecord, prefix: str, raw: bool) -> None:
    """Draw the inputs inside the caller's st.form; `submitted` reads what they hold when a button is pressed."""
    if raw:
        st.text_area(
            "Description (JSON)", value=description_form.to_json(record.description), height=420, key=f"{prefix}_json"
        )
        return
    for i, field in enumerate(description_form.form_fields(record.description)):
        key = f"{prefix}_f{i}"
        label = common.plain(field.label)
        if field.kind == TEXT:
            if field.long:
                st.text_area(label, value=field.value, key=key, height=100)
            else:
                st.text_input(label, value=field.value, key=key)
        elif field.kind == CHOICE:
            _choice(field, key)
        elif field.kind == TAGS:
            _tags(field, key)
        elif field.kind == OBJECTS:
            _objects(field, key)
        elif field.kind == JSON:
            st.text_area(label, value=field.value, key=key, height=80, help="JSON")


def submitted(record: FocusRecord, prefix: str, raw: bool) -> dict[str, Any]:
    """What the submitted form holds, read from session state (a button's callback runs before the form is
    drawn again): field key -> shown value, or {"__json__": text} in raw mode."""
    current = st.session_state
    if raw:
        return {"__json__": current.get(f"{prefix}_json", description_form.to_json(record.description))}
    values: dict[str, Any] = {}
    for i, field in enumerate(description_form.form_fields(record.description)):
        key = f"{prefix}_f{i}"
        if field.kind == OBJECTS:
            values[field.key] = _edited_rows(field.value or [], current.get(key) or {})
        else:
            chosen = current.get(key, field.value)
            values[field.key] = "" if field.kind == CHOICE and chosen == _NONE else chosen
    return values


def _edited_rows(rows: list[dict[str, str]], edits: dict[str, Any]) -> list[dict[str, str]]:
    """A data editor's rows after its recorded edits (edited cells, added rows, deleted rows), as Streamlit
    applies them."""
    result = [dict(row) for row in rows]
    for index, cells in (edits.get("edited_rows") or {}).items():
        if 0 <= int(index) < len(result):
            result[int(index)].update({str(k): "" if v is None else str(v) for k, v in cells.items()})
    for added in edits.get("added_rows") or []:
        result.append({"name": str(added.get("name") or ""), "attributes": str(added.get("attributes") or "")})
    deleted = {int(index) for index in edits.get("deleted_rows") or []}
    return [row for i, row in enumerate(result) if i not in deleted]


def description(record: FocusRecord, shown: dict[str, Any]) -> dict[str, Any] | None:
    """The description to save from what the form holds (InputError for JSON that does not parse)."""
    if "__json__" in shown:
        return description_form.parse_json(str(shown["__json__"]))
    return description_form.apply(record.description, shown)
