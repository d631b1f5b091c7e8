"""Export: a dataset's labels as the seed's categorized CSV or Parquet, downloaded or written to a path."""

from __future__ import annotations

import datetime as dt

import streamlit as st

from labeling.exporting import (
    EXPORT_EXTRA_COLUMNS,
    EXPORT_FORMATS,
    default_export_name,
    export_bytes,
    export_dataset,
    export_preview,
    mime_type,
)
from labeling.vocabulary import LABEL_SOURCES, SOURCE_TITLES
from pages import common

FORMAT_NAMES = {"csv": "CSV (seed format)", "parquet": "Parquet"}
DOWNLOAD_LIMIT = 250_000  # rows: bigger exports are better written to a path than held in the browser session

st.title("Export")
store = common.store()


def _page() -> None:
    names = store.dataset_names()
    if not names:
        st.info("No datasets yet: create one on the Datasets page first.")
        return
    left, middle, right = st.columns([2, 3, 2])
    dataset = left.selectbox("Dataset", names, format_func=common.visible, key="export_dataset")
    source = middle.radio(
        "Label source", LABEL_SOURCES, format_func=SOURCE_TITLES.__getitem__, horizontal=True, key="export_source"
    )
    fmt = right.radio(
        "Format", EXPORT_FORMATS, format_func=FORMAT_NAMES.__getitem__, horizontal=True, key="export_format"
    )
    extra = st.toggle(
        "Extra columns",
        key="export_extra",
        help="Adds " + ", ".join(EXPORT_EXTRA_COLUMNS) + ". Without them a CSV has exactly the seed's "
        "columns: image_name, description, categories.",
    )
    if dataset is None or source is None or fmt is None:
        return
    common.simulated_notice([dataset])
    rows = common.run_or_error(lambda: store.export_row_count(dataset, source))
    if rows is None:
        return
    file_name = default_export_name(dataset, source, fmt)
    st.caption(
        common.plain(
            f"{rows:,} images of {dataset} have a description or categories under the {SOURCE_TITLES[source].lower()} "
            "source. Cells that a spreadsheet would run as a formula get a leading ' (taken off again on import)."
        )
    )
    preview = common.run_or_error(lambda: export_preview(store, dataset, source=source, extra_columns=extra))
    if preview is not None:
        st.dataframe(preview, hide_index=True, width="stretch")
        if rows > len(preview):
            st.caption(f"The first {len(preview):,} rows of {rows:,}.")

    if rows <= DOWNLOAD_LIMIT:
        st.download_button(
            f"Download {common.plain(file_name)}",
            type="primary",
            key="export_download",
            on_click="ignore",
            data=lambda: export_bytes(store, dataset, source=source, fmt=fmt, extra_columns=extra),
            file_name=file_name,
            mime=mime_type(fmt),
        )
    else:
        st.info(f"{rows:,} rows are too many to download through the browser: write the file to a path below.")

    _write_form(dataset, source, fmt, extra, file_name)


def _write_form(dataset: str, source: str, fmt: str, extra: bool, file_name: str) -> None:
    policy = common.paths()
    if not policy.allows_paths:
        st.caption(
            "Writing to a path on the server is off while the app is shared on the network (allowed_paths "
            "is empty): use the download above."
        )
        return
    with st.form("export_write"):
        path = st.text_input(
            "Write to a path on this machine",
            value=str(policy.default_folder() / "reports" / file_name),
            help=common.path_help("Missing folders are created."),
        )
        replace = st.checkbox("Replace the file if it already exists", key="export_replace")
        if not st.form_submit_button("Write file"):
            return
    target = common.server_path(path.strip(), "the export")
    if target is None:
        return
    if target.is_file() and not replace:
        changed = dt.datetime.fromtimestamp(target.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
        st.warning(
            common.plain(
                f"{target.resolve()} already exists ({target.stat().st_size:,} bytes, changed "
                f'{changed}): tick "Replace the file if it already exists" and write again, or '
                "give another name."
            )
        )
        return
    result = common.run_or_error(
        lambda: export_dataset(store, dataset, target, source=source, fmt=fmt, extra_columns=extra)
    )
    if result is not None:
        st.success(common.plain(result.summary()))


_page()
