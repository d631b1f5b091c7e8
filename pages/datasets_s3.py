"""The Datasets page's S3 form: analyze a prefix against a list, then create a dataset or mirror it to a folder.

`render(store, on_created)` is called inside an expander of pages/datasets.py. Nothing is fetched before the user
has seen the analysis; the mirror runs in this script run, with a progress bar, and can be resumed by running it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import streamlit as st

from labeling.errors import LabelingError
from labeling.names import parse_name_list
from labeling.vocabulary import MIRROR_WORKERS
from labeling.wording import count
from pages import common

if TYPE_CHECKING:  # boto3 (labeling.s3) loads when the form is used, not with the start page
    from labeling.mirror import MirrorProgress, MirrorReport
    from labeling.s3 import S3Object, S3Source
    from labeling.s3_analysis import S3Analysis
    from labeling.store import Store

FIRST = 20
STATE = "s3_form_analysis"
CREATED = "s3_form_created"  # what Create dataset said, shown again after the page is drawn with the dataset


@dataclass
class _Analyzed:
    """What the Analyze button found, kept in the session for the Create and Mirror buttons."""

    options: dict[str, Any]
    csv_data: bytes | None
    csv_name: str | None
    objects: list[S3Object]
    analysis: S3Analysis


def _source(options: dict[str, Any], workers: int = MIRROR_WORKERS) -> S3Source:
    from labeling.s3 import s3_source

    return s3_source(
        options["bucket"],
        options["prefix"],
        common.settings(),
        profile=options["profile"],
        region=options["region"],
        endpoint_url=options["endpoint_url"],
        workers=workers,
    )


def _form(store: Store) -> None:
    settings = common.settings()
    with st.form("s3_analyze"):
        left, right = st.columns(2)
        bucket = left.text_input("Bucket", value=settings.s3_bucket, placeholder="e.g. my-bucket", key="s3_bucket")
        prefix = right.text_input("Prefix", placeholder="e.g. datalake_training/REAL/", key="s3_prefix")
        upload = st.file_uploader(
            "CSV list of image names (optional: without one, every image under the prefix)",
            type=["csv", "txt"],
            key="s3_upload",
        )
        no_paths = not common.paths().allows_paths
        csv_path = st.text_input(
            "... or the CSV's path on this machine",
            placeholder="e.g. csv_real_gen/real.csv",
            key="s3_csv_path",
            disabled=no_paths,
            help=common.path_help("A CSV file on the app's machine."),
        )
        first, second, third = st.columns(3)
        profile = first.text_input(
            "AWS profile",
            value=settings.aws_profile,
            key="s3_profile",
            help="Credentials come from boto3's chain (profiles, SSO, environment). "
            "The app never asks for keys and never stores them.",
        )
        region = second.text_input("Region", value=settings.aws_region, key="s3_region")
        endpoint = third.text_input(
            "Endpoint URL (S3-compatible stores)", value=settings.s3_endpoint_url, key="s3_endpoint"
        )
        output_dir = st.text_input(
            "Local folder to mirror into (optional: also counts what is already there)",
            placeholder="e.g. REAL",
            key="s3_output_dir",
            disabled=no_paths,
            help=common.path_help("A folder on the app's machine."),
        )
        if not st.form_submit_button("Analyze", type="primary"):
            return
    chosen = common.chosen_csv(upload, csv_path)
    if chosen is None:
        return
    csv_data, csv_name = chosen
    if output_dir.strip() and common.server_path(output_dir.strip(), "a mirror folder") is None:
        return
    options = {
        "bucket": bucket.strip(),
        "prefix": prefix.strip(),
        "profile": profile.strip(),
        "region": region.strip(),
        "endpoint_url": endpoint.strip(),
        "output_dir": output_dir.strip(),
    }

    def run() -> _Analyzed:
        from labeling.s3_analysis import analyze

        names = parse_name_list(csv_data, csv_name or "the CSV list") if csv_data is not None else None
        source = _source(options)
        objects = list(source.list_objects())
        analysis = analyze(source, names, output_dir=options["output_dir"] or None, store=store, objects=objects)
        return _Analyzed(options, csv_data, csv_name, objects, analysis)

    st.session_state.pop(STATE, None)
    st.session_state.pop(CREATED, None)
    with st.spinner("Listing the prefix and matching names ..."):
        analyzed = common.run_or_error(run)
    if analyzed is not None:
        st.session_state[STATE] = analyzed


def _summary(analysis: S3Analysis) -> None:
    counts = analysis.counts()
    st.text(
        common.visible(
            f"Analysis of {analysis.uri}: {counts['listed_objects']:,} objects listed in "
            f"{analysis.list_seconds:.1f} s, matched in {analysis.match_seconds:.2f} s"
        )
    )
    metrics = [
        ("Names listed", counts["names_listed"]),
        ("Available", counts["available"]),
        ("Missing", counts["missing"]),
        ("Ambiguous", counts["ambiguous"]),
        ("Rejected", counts["rejected"]),
        ("Refused keys", counts["refused_keys"]),
    ]
    if analysis.output_dir is not None:
        metrics += [("Already local", counts["already_local"]), ("To fetch", counts["to_fetch"])]
    for row_start in range(0, len(metrics), 4):
        columns = st.columns(4)
        for column, (title, value) in zip(columns, metrics[row_start : row_start + 4], strict=False):
            column.metric(title, f"{value:,}")
    size = analysis.bytes_to_fetch if analysis.output_dir is not None else analysis.bytes_available
    st.caption(f"{'To fetch' if analysis.output_dir is not None else 'Available'}: {size / 1e6:,.1f} MB")
    problems = analysis.problems_frame()
    if not problems.empty:
        if len(problems) > FIRST:
            st.caption(f"The first {FIRST} of {len(problems):,} names that cannot be used; the download has all.")
        st.dataframe(problems.head(FIRST), hide_index=True, width="stretch", key="s3_problems")
        common.csv_download(
            "Download the full list (missing, ambiguous, rejected)",
            problems,
            "s3_problems.csv",
            key="s3_problems_download",
        )


def _create(store: Store, analyzed: _Analyzed, on_created: Callable[[str], None]) -> None:
    created = st.session_state.get(CREATED)
    if created:
        st.success(common.plain(created))
    with st.form("s3_create"):
        st.caption("A dataset whose images stay in S3: captioning reads them through the local cache.")
        left, right = st.columns(2)
        name = left.text_input("Dataset name", placeholder="e.g. REAL", key="s3_dataset")
        label = right.selectbox(
            "Label",
            ["REAL", "GEN", "other"],
            index=None,
            placeholder="e.g. REAL or GEN",
            accept_new_options=True,
            key="s3_label",
        )
        if not st.form_submit_button("Create dataset"):
            return
    from labeling.s3_analysis import import_s3_dataset

    report = common.run_or_error(
        lambda: import_s3_dataset(
            store,
            name,
            _source(analyzed.options),
            csv_data=analyzed.csv_data,
            csv_name=analyzed.csv_name,
            label=label or "",
            objects=analyzed.objects,
        )
    )
    if report is not None:
        st.session_state[CREATED] = (
            f"Dataset {report.dataset}: {report.listed:,} listed, {report.found:,} found in S3, "
            f"{report.missing:,} missing, {report.ambiguous:,} ambiguous, {report.rejected:,} rejected."
        )
        on_created(report.dataset)


def _mirror(store: Store, analyzed: _Analyzed) -> None:
    analysis = analyzed.analysis
    if analysis.output_dir is None:
        st.caption("Give a local folder and analyze again to mirror the images into it.")
        return
    if not analysis.to_fetch:
        st.info("Every available image is already in the folder.")
        return
    workers = st.number_input("Parallel downloads", min_value=1, max_value=128, value=MIRROR_WORKERS, key="s3_workers")
    if not st.button(
        f"Mirror {count(len(analysis.to_fetch), 'file')} to {common.plain(analysis.output_dir)}", key="s3_mirror"
    ):
        return
    from labeling.mirror import MirrorStopped, mirror

    bar = st.progress(0.0, text="Starting ...")

    def show(progress: MirrorProgress) -> None:
        finished = progress.done + progress.failed
        bar.progress(
            finished / max(1, progress.total),
            text=f"{progress.done:,} of {progress.total:,} fetched, {progress.failed:,} failed",
        )

    report: MirrorReport | None = None
    try:
        report = mirror(
            _source(analyzed.options, int(workers)), analysis, store=store, workers=int(workers), progress=show
        )
    except MirrorStopped as stopped:
        st.error(common.plain(stopped))
        report = stopped.report
    except LabelingError as exc:
        st.error(common.plain(exc))
        return
    st.session_state.pop(STATE, None)  # the folder changed: the next analysis counts it again
    st.success(
        f"Fetched {count(report.fetched, 'file')} ({report.bytes_fetched / 1e6:,.1f} MB) in {report.seconds:.1f} s; "
        f"{report.failed:,} failed. Run again to retry failures."
    )
    st.text(common.visible(f"Log: {report.log_file}"))
    if report.failures:
        st.dataframe(
            [{"key": key, "error": message} for key, message in report.failures[:FIRST]],
            hide_index=True,
            width="stretch",
            key="s3_failures",
        )


def render(store: Store, on_created: Callable[[str], None]) -> None:
    """The S3 form: Analyze, then Create dataset (`on_created(name)` follows) and/or Mirror to folder."""
    _form(store)
    analyzed = st.session_state.get(STATE)
    if not isinstance(analyzed, _Analyzed):
        return
    _summary(analyzed.analysis)
    create, mirror_tab = st.tabs(["Create dataset", "Mirror to folder"])
    with create:
        _create(store, analyzed, on_created)
    with mirror_tab:
        _mirror(store, analyzed)
