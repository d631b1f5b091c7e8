"""Audit: what besides content tells the datasets apart (format, size, compression, metadata, provenance, duplicates).

The Scan step reads each image's technical facts once (new images only on a re-run); the audit compares them
with the statistics engine Compare uses, scores how well they alone separate the datasets, lists duplicates and
leakage, and offers a debiased pair of subsets.
"""

from __future__ import annotations

import time

import streamlit as st

from labeling.errors import LabelingError
from labeling.scan import FACTS_VERSION, ScanProgress, scan_dataset
from pages import audit_view, common

st.title("Audit")
st.caption(
    "What besides content tells the datasets apart: file format, size, JPEG quality, metadata, provenance and "
    "duplicates. A detector trained on sets that differ in these can learn the files instead of the images."
)
store = common.store()
labels = store.dataset_labels()
if not labels:
    st.info("No datasets yet: import one on the Datasets page.")
    st.stop()
if "audit_datasets" in st.session_state:  # set by this widget earlier, or by Compare's "Audit" button
    st.session_state["audit_datasets"] = [n for n in st.session_state["audit_datasets"] if n in labels]
chosen = st.multiselect(
    "Datasets",
    list(labels),
    default=None if "audit_datasets" in st.session_state else common.default_datasets(labels),
    format_func=common.visible,
    key="audit_datasets",
    help="Usually REAL and GEN; the audit needs two.",
)
if not chosen:
    st.info("Choose the datasets to audit.")
    st.stop()

records = [store.dataset(name) for name in chosen]
status = store.scan_status([r.id for r in records], FACTS_VERSION)
status["to scan"] = status["found"] - status["scanned"]
st.subheader("1. Scan")
st.dataframe(
    status.rename(columns={"failed": "unreadable"})[["dataset", "found", "scanned", "unreadable", "to scan"]],
    hide_index=True,
    column_config={"dataset": st.column_config.TextColumn("dataset")},
)
without_files = [r.name for r in records if r.source_kind == "none"]
if without_files:
    st.info(
        "No image files to scan for " + common.plain(", ".join(without_files)) + ": import the dataset again with "
        "an image folder or S3 prefix."
    )
to_scan = [(r.name, int(n)) for r, n in zip(records, status["to scan"], strict=True) if n and r.source_kind != "none"]
if to_scan and st.button(f"Scan {sum(n for _, n in to_scan):,} images", type="primary", key="audit_scan"):
    bar = st.progress(0.0, text="Starting ...")
    shown = {"at": 0.0}
    lines: list[tuple[str, str]] = []
    for name, _ in to_scan:

        def show(progress: ScanProgress, name: str = name) -> None:
            now = time.monotonic()
            if now - shown["at"] < 0.25 and progress.scanned < progress.total:
                return  # a redraw per image would cost more than the scan
            shown["at"] = now
            bar.progress(
                progress.scanned / max(1, progress.total),
                text=common.plain(f"{name}: {progress.scanned:,} of {progress.total:,} scanned")
                + f", {progress.failed:,} unreadable",
            )

        try:
            report = scan_dataset(store, common.settings(), name, progress=show)
        except LabelingError as exc:
            st.session_state["audit_scan_lines"] = [*lines, ("error", str(exc))]
            break
        lines.append(("success", report.line()))
        st.session_state["audit_scan_lines"] = lines
    st.rerun()  # the status table above counts the new facts
for kind, line in st.session_state.pop("audit_scan_lines", []):
    (st.error if kind == "error" else st.success)(common.plain(line))

st.subheader("2. Audit")
audit_view.render(store, chosen)
