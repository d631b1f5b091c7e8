"""Datasets: create one from a CSV list and/or a folder, see what is there and what is missing, delete one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from labeling.datasets import ImportReport, import_dataset
from pages import common, datasets_s3

STATUS_LABELS = {
    "found": "Found",
    "missing": "Missing",
    "ambiguous": "Ambiguous",
    "rejected": "Rejected",
    "unlinked": "No image source",
}
LIST_LIMIT = 1000

st.title("Datasets")
store = common.store()


def _import_form() -> None:
    with st.form("import"), st.container(border=True):
        st.subheader("Create or refresh a dataset")
        left, right = st.columns(2)
        name = left.text_input("Dataset name", placeholder="REAL")
        label = right.selectbox(
            "Label", ["REAL", "GEN", "other"], index=None, placeholder="REAL, GEN, ...", accept_new_options=True
        )
        upload = st.file_uploader("CSV list of image names (or a seed output CSV)", type=["csv", "txt"])
        no_paths = not common.paths().allows_paths
        csv_path = st.text_input(
            "... or the CSV's path on this machine",
            placeholder="csv_real_gen/real.csv",
            disabled=no_paths,
            help=common.path_help("A CSV file on the app's machine."),
        )
        images_dir = st.text_input(
            "Folder of images (searched recursively)",
            placeholder="REAL/",
            disabled=no_paths,
            help=common.path_help("A folder on the app's machine."),
        )
        st.caption(
            "A list alone records names; a folder alone takes every image in it; both match the list "
            "against the folder by exact name, then by the same name with another extension."
        )
        if not st.form_submit_button("Import", type="primary"):
            return
    chosen = common.chosen_csv(upload, csv_path)
    if chosen is None:
        return
    csv_data, csv_name = chosen
    if images_dir.strip() and common.server_path(images_dir.strip(), "an images folder") is None:
        return
    with st.spinner("Matching names to files ..."):
        report = common.run_or_error(
            lambda: import_dataset(
                store,
                name,
                label=label or "",
                csv_data=csv_data,
                csv_name=csv_name,
                images_dir=images_dir.strip() or None,
                max_name_length=common.settings().max_name_length,
            )
        )
    if report is not None:
        st.session_state["last_import"] = report
        st.session_state["inspect"] = report.dataset


def _report(report: ImportReport) -> None:
    st.success(common.plain(f"Imported {report.dataset}: {report.added:,} new names."))
    columns = st.columns(6)
    for column, (title, value) in zip(
        columns,
        [
            ("Listed", report.listed),
            ("Found", report.found),
            ("Missing", report.missing),
            ("Ambiguous", report.ambiguous),
            ("Rejected", report.rejected),
            ("Duplicates", report.duplicates),
        ],
        strict=True,
    ):
        column.metric(title, f"{value:,}")
    if report.stem_matches or report.case_matches:
        st.info(
            f"Found by a looser match: {report.stem_matches:,} by stem (another extension), "
            f"{report.case_matches:,} ignoring case; the Found list's detail says which."
        )
    for note in report.notes:
        st.caption(common.plain(f"Note: {note}."))
    if report.annotations_imported or report.seed_errors:
        st.info(
            f"Seed results imported as model annotations: {report.annotations_imported:,}. "
            f"Seed errors recorded as failures to retry: {report.seed_errors:,}."
        )


def _inspect(dataset: str) -> None:
    summary = store.dataset_summary(dataset)
    dataset_id = summary.id
    counts = summary.as_dict()
    statuses = [status for status in STATUS_LABELS if counts[status]]
    if not statuses:
        st.info("This dataset lists no images.")
        return
    tabs = st.tabs([f"{STATUS_LABELS[status]} ({counts[status]:,})" for status in statuses])
    for tab, status in zip(tabs, statuses, strict=True):
        with tab:
            frame = store.images_with_status(dataset_id, status)
            if len(frame) > LIST_LIMIT:
                st.caption(f"Showing the first {LIST_LIMIT:,} of {len(frame):,}; the download has all.")
            st.dataframe(
                frame.head(LIST_LIMIT),
                hide_index=True,
                width="stretch",
                column_config={"location": "Path in the source", "detail": "Detail"},
            )
            common.csv_download(
                f"Download {STATUS_LABELS[status].lower()} as CSV",
                frame,
                f"{dataset}_{status}.csv",
                key=f"download_{dataset}_{status}",
            )


def _delete(names: list[str]) -> None:
    with st.expander("Delete a dataset"):
        doomed = st.selectbox("Dataset to delete", names, index=None, format_func=common.visible, key="delete_name")
        sure = st.checkbox("Also delete its annotations and human labels: this cannot be undone", key="delete_sure")
        if st.button("Delete", disabled=not (doomed and sure), key="delete_button") and doomed:
            common.run_or_error(lambda: store.delete_dataset(doomed))
            st.session_state.pop("last_import", None)
            if st.session_state.get("inspect") == doomed:
                st.session_state.pop("inspect", None)
            st.toast(f"Deleted {common.plain(doomed)}")
            st.rerun()


_import_form()
last = st.session_state.get("last_import")
if isinstance(last, ImportReport) and last.dataset in store.dataset_names():
    _report(last)

summaries = store.dataset_summaries()
st.subheader("All datasets")
if not summaries:
    st.info("No datasets yet: import a CSV list and/or a folder above.")
else:
    table = pd.DataFrame([summary.as_dict() for summary in summaries]).drop(columns=["id", "created_at"])
    st.dataframe(table, hide_index=True, width="stretch", key="dataset_table")
    names = [summary.name for summary in summaries]
    current = st.session_state.get("inspect")
    chosen = st.selectbox(
        "Inspect a dataset",
        names,
        index=names.index(current) if current in names else 0,
        format_func=common.visible,
        key="inspect_choice",
    )
    if chosen:
        _inspect(chosen)
    _delete(names)

with st.expander("From S3"):
    datasets_s3.render(store)
