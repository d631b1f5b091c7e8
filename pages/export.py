"""Export: datasets' labels as the seed's categorized CSV or Parquet, downloaded or written on this machine.

One dataset is one file (a path to write it to); several are one file each, in a zip or written into a folder.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from labeling.exporting import (
    EXPORT_EXTRA_COLUMNS,
    EXPORT_FORMATS,
    default_export_name,
    export_bytes,
    export_dataset,
    export_datasets,
    export_file_names,
    export_preview,
    export_targets,
    export_zip,
    mime_type,
    summaries,
    zip_name,
)
from labeling.vocabulary import LABEL_SOURCES, SOURCE_TITLES, LabelSource
from labeling.wording import count
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
    datasets = st.multiselect("Datasets", names, default=names[:1], format_func=common.visible, key="export_datasets")
    middle, right = st.columns([3, 2])
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
    if not datasets:
        st.info("Choose at least one dataset to export.")
        return
    if source is None or fmt is None:
        return
    common.simulated_notice(datasets)
    if len(datasets) == 1:
        _one(datasets[0], source, fmt, extra)
    else:
        _several(datasets, source, fmt, extra)


def _one(dataset: str, source: LabelSource, fmt: str, extra: bool) -> None:
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

    if _downloadable(rows):
        st.download_button(
            f"Download {common.plain(file_name)}",
            type="primary",
            key="export_download",
            on_click="ignore",
            data=lambda: export_bytes(store, dataset, source=source, fmt=fmt, extra_columns=extra),
            file_name=file_name,
            mime=mime_type(fmt),
        )
    _write_form(dataset, source, fmt, extra, file_name)


def _several(datasets: list[str], source: LabelSource, fmt: str, extra: bool) -> None:
    rows = common.run_or_error(lambda: [store.export_row_count(dataset, source) for dataset in datasets])
    if rows is None:
        return
    files = export_file_names(datasets, source, fmt)
    st.caption(
        common.plain(
            f"{count(sum(rows), 'image')} of {count(len(datasets), 'dataset')} have a description or categories "
            f"under the {SOURCE_TITLES[source].lower()} source: one file each. Cells that a spreadsheet would run "
            "as a formula get a leading ' (taken off again on import)."
        )
    )
    table = pd.DataFrame({"Dataset": datasets, "File": [files[d] for d in datasets], "Images": rows})
    st.dataframe(table, hide_index=True, width="stretch")
    if _downloadable(sum(rows)):
        name = zip_name(source, fmt)
        st.download_button(
            f"Download {common.plain(name)}",
            type="primary",
            key="export_download_zip",
            on_click="ignore",
            data=lambda: export_zip(store, datasets, source=source, fmt=fmt, extra_columns=extra),
            file_name=name,
            mime="application/zip",
        )
    _write_folder_form(datasets, source, fmt, extra)


def _downloadable(rows: int) -> bool:
    if rows <= DOWNLOAD_LIMIT:
        return True
    st.info(f"{rows:,} rows are too many to download through the browser: write to a path below.")
    return False


def _reports_folder() -> Path | None:
    """Where the path fields start (absolute, so the user sees where files go); None when paths are off."""
    policy = common.paths()
    if policy.allows_paths:
        return policy.default_folder().resolve() / "reports"
    st.caption(
        "Writing to a path on the server is off while the app is shared on the network (allowed_paths "
        "is empty): use the download above."
    )
    return None


def _write_form(dataset: str, source: LabelSource, fmt: str, extra: bool, file_name: str) -> None:
    folder = _reports_folder()
    if folder is None:
        return
    with st.form("export_write"):
        path = st.text_input(
            "Write to a path on this machine",
            value=str(folder / file_name),
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


def _write_folder_form(datasets: list[str], source: LabelSource, fmt: str, extra: bool) -> None:
    folder = _reports_folder()
    if folder is None:
        return
    with st.form("export_write_folder"):
        path = st.text_input(
            "Write into a folder on this machine",
            value=str(folder),
            help=common.path_help("One file per dataset, named as in the table. Missing folders are created."),
        )
        replace = st.checkbox("Replace files that already exist", key="export_replace_files")
        if not st.form_submit_button("Write files"):
            return
    if not path.strip():
        st.error("Give the folder to write the files into.")
        return
    target = common.server_path(path.strip(), "the export")
    if target is None:
        return
    existing = [file.name for file in export_targets(target, datasets, source, fmt).values() if file.is_file()]
    if existing and not replace:
        st.warning(
            common.plain(
                f"{count(len(existing), 'file')} already in {target.resolve()}: {', '.join(existing)}. Tick "
                '"Replace files that already exist" and write again, or give another folder.'
            )
        )
        return
    results = common.run_or_error(
        lambda: export_datasets(store, datasets, target, source=source, fmt=fmt, extra_columns=extra)
    )
    if results is not None:
        st.success(common.plain(summaries(results)))


_page()
