"""Datasets, the start page: what the app does, the example project and the first import; then every dataset
with its counts, what is there and what is missing, the files ambiguous names mean, and deleting one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from labeling.datasets import ImportReport, ambiguous_names, choose_file, import_dataset
from labeling.records import DatasetSummary
from labeling.wording import count
from pages import common, datasets_s3, example_project

STATUS_LABELS = {
    "found": "Found",
    "missing": "Missing",
    "ambiguous": "Ambiguous",
    "rejected": "Rejected",
    "unlinked": "No image source",
}
LIST_LIMIT = 1000
INSPECT = "inspect_choice"  # the dataset the Inspect box shows
FOLLOW = "inspect_follow"  # a dataset just imported: Inspect switches to it before it is drawn
# The table's columns in their order: what each count is called, and how wide it is drawn.
TABLE_COUNTS = {
    "listed": "Listed",
    "found": "Found",
    "described": "Described",
    "categorized": "Categorized",
    "reviewed": "Reviewed",
    "failed": "Failed",
    "missing": "Missing",
    "ambiguous": "Ambiguous",
    "rejected": "Rejected",
}

st.title("Datasets")
store = common.store()


def _intro() -> None:
    st.markdown(
        "Label image datasets as REAL or AI-generated (GEN) with Gemini. Import a dataset here: a CSV list of "
        "image names and/or a folder of images.  \n"
        "**Run** has Gemini describe and categorize every image; **Review** is where you check and correct "
        "the labels.  \n"
        "**Categories**, **Compare** and **Audit** set REAL against GEN; **Export** writes the labels as CSV or "
        "Parquet."
    )


def _follow(dataset: str) -> None:
    """A dataset just imported: draw the page again with it in the table and in Inspect."""
    st.session_state[FOLLOW] = dataset
    st.rerun()


def _import_form(first: bool) -> None:
    with st.form("import"), st.container(border=True):
        st.subheader("Import your first dataset" if first else "Create or refresh a dataset")
        left, right = st.columns(2)
        name = left.text_input("Dataset name", placeholder="e.g. REAL", key="import_name")
        label = right.selectbox(
            "Label",
            ["REAL", "GEN", "other"],
            index=None,
            placeholder="e.g. REAL or GEN",
            accept_new_options=True,
            key="import_label",
        )
        upload = st.file_uploader(
            "CSV list of image names (or a seed output CSV)", type=["csv", "txt"], key="import_upload"
        )
        no_paths = not common.paths().allows_paths
        csv_path = st.text_input(
            "... or the CSV's path on this machine",
            placeholder="e.g. csv_real_gen/real.csv",
            key="import_csv_path",
            disabled=no_paths,
            help=common.path_help("A CSV file on the app's machine."),
        )
        images_dir = st.text_input(
            "Folder of images (searched recursively)",
            placeholder="e.g. REAL/",
            key="import_images_dir",
            disabled=no_paths,
            help=common.path_help("A folder on the app's machine."),
        )
        st.caption(
            "A list alone records names; a folder alone takes every image in it; both match the list "
            "against the folder by exact name, then by the same name with another extension."
        )
        if not st.form_submit_button("Import", type="primary", key="import_button"):
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
        _follow(report.dataset)


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
    if report.chosen_matches:
        st.info(f"Found where you picked the file: {count(report.chosen_matches, 'ambiguous name')}.")
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
            candidates = ambiguous_names(store, dataset) if status == "ambiguous" else {}
            if candidates:
                frame = frame.drop(columns="location")  # none until a file is picked
                frame["detail"] = [", ".join(candidates[name]) for name in frame["name"]]
            if len(frame) > LIST_LIMIT:
                st.caption(f"Showing the first {LIST_LIMIT:,} of {len(frame):,}; the download has all.")
            st.dataframe(
                frame.head(LIST_LIMIT),
                hide_index=True,
                width="stretch",
                column_config={
                    "name": "Name",
                    "location": "Path in the source",
                    "detail": "Files it matches" if status == "ambiguous" else "Detail",
                },
            )
            common.csv_download(
                f"Download {STATUS_LABELS[status].lower()} as CSV",
                frame,
                f"{dataset}_{status}.csv",
                key=f"download_{dataset}_{status}",
            )
            if candidates:
                _resolve(dataset, candidates)


def _resolve(dataset: str, candidates: dict[str, list[str]]) -> None:
    """A name that matches several files is never guessed: the user picks the file, kept on every re-import."""
    st.caption(
        "Pick the file an ambiguous name means: it is found there from now on, and importing the list again "
        "keeps your pick while that file is still there."
    )
    left, right = st.columns(2)
    name = left.selectbox("Ambiguous name", list(candidates), format_func=common.visible, key=f"resolve_{dataset}")
    if name is None:
        return
    location = right.selectbox(
        "The file it means",
        candidates[name],
        index=None,
        placeholder="Choose a file",
        format_func=common.visible,
        key=f"resolve_{dataset}_{name}",
    )
    if st.button("Use this file", disabled=location is None, key=f"resolve_{dataset}_button") and location:
        picked = common.run_or_error(lambda: choose_file(store, dataset, name, location, chosen_by=common.reviewer()))
        if picked is not None:
            st.toast(common.plain(f"{name}: found at {picked}"))
            st.rerun()


def _width(title: str) -> int:
    """Pixels for a count column: its header whole, and room for 1,000,000; all of them fit at 1400 px."""
    return max(76, 7 * len(title) + 16)


def _table(summaries: list[DatasetSummary]) -> None:
    """One row a dataset: its name, label, the counts that matter (all visible at 1400 px), then its source."""
    rows = [
        {
            "Dataset": summary.name,
            "Label": summary.label,
            **{title: getattr(summary, field) for field, title in TABLE_COUNTS.items()},
            "Source": summary.source_uri or summary.list_file or "",
        }
        for summary in summaries
    ]
    counts = {
        title: st.column_config.NumberColumn(title, width=_width(title), format="localized")
        for title in TABLE_COUNTS.values()
    }
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        width="stretch",
        key="dataset_table",
        column_config={
            "Dataset": st.column_config.TextColumn("Dataset", width=160),
            "Label": st.column_config.TextColumn("Label", width=56),
            **counts,
            "Source": st.column_config.TextColumn("Source", help="The folder or S3 prefix, else the CSV list"),
        },
    )


def _inspect_choice(names: list[str]) -> str | None:
    """Inspect shows the dataset picked last, or the one just imported."""
    followed = st.session_state.pop(FOLLOW, None)
    if followed in names:
        st.session_state[INSPECT] = followed
    if st.session_state.get(INSPECT) not in names:
        st.session_state.pop(INSPECT, None)  # deleted: back to the first
    return st.selectbox("Inspect a dataset", names, format_func=common.visible, key=INSPECT)


def _delete(names: list[str]) -> None:
    with st.expander("Delete a dataset"):
        doomed = st.selectbox("Dataset to delete", names, index=None, format_func=common.visible, key="delete_name")
        sure = st.checkbox("Also delete its annotations and human labels: this cannot be undone", key="delete_sure")
        if st.button("Delete", disabled=not (doomed and sure), key="delete_button") and doomed:
            common.run_or_error(lambda: store.delete_dataset(doomed))
            st.session_state.pop("last_import", None)
            st.toast(f"Deleted {common.plain(doomed)}")
            st.rerun()


_intro()
first = not store.dataset_names()
if first:
    example_project.render(prominent=True)
_import_form(first)
last = st.session_state.get("last_import")
if isinstance(last, ImportReport) and last.dataset in store.dataset_names():
    _report(last)

summaries = store.dataset_summaries()
if summaries:
    st.subheader("All datasets")
    _table(summaries)
    names = [summary.name for summary in summaries]
    chosen = _inspect_choice(names)
    if chosen:
        _inspect(chosen)
    _delete(names)

with st.expander("From S3"):
    datasets_s3.render(store, on_created=_follow)
if summaries:
    example_project.render(prominent=False)
