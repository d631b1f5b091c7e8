"""Compare: category distributions of any datasets side by side, with per-category statistics and a reading."""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import pandas as pd
import streamlit as st

from labeling import wording
from labeling.comparison import Comparison, chart_bytes, compare, format_p, stats_csv_bytes
from labeling.vocabulary import LABEL_SOURCES, SOURCE_TITLES
from pages import common

SORT_NAMES = {"count": "Count", "difference": "Difference"}
# The statistics table: a human label and a width (px) per column. The widths add up to 900 px, so every
# column fits the page at 1400 px wide with the sidebar open; a longer name ends in an ellipsis and shows whole
# on hover.
TABLE_COLUMNS = {
    "category": st.column_config.TextColumn("Category", width=170),
    "dataset": st.column_config.TextColumn("Dataset", width=100),
    "images": st.column_config.NumberColumn("Images", width=65, format="localized"),
    "share": st.column_config.TextColumn(
        "Share (95% CI)", width=135, help="Share of the dataset's images carrying the category (Wilson interval)"
    ),
    "difference": st.column_config.NumberColumn(
        "Difference (pp)", width=100, format="%+.1f", help="Share minus the reference dataset's, in points"
    ),
    "p": st.column_config.TextColumn("p", width=60),
    "p_adjusted": st.column_config.TextColumn("p adjusted", width=80, help="Benjamini-Hochberg, all categories"),
    "lift": st.column_config.NumberColumn("log2 lift", width=70, format="%+.2f", help="+1 = twice as common"),
    "test": st.column_config.TextColumn("Test", width=120),
}

st.title("Compare")
store = common.store()


class View(NamedTuple):
    datasets: list[str]
    source: str
    normalized: bool
    reference: str
    rank_by: str | None
    top_n: int | None
    sort: str


def _controls(names: list[str], defaults: list[str]) -> View | None:
    top = st.columns([3, 2, 2])
    chosen = top[0].multiselect(
        "Datasets",
        names,
        default=defaults,
        format_func=common.visible,
        key="compare_datasets",
        help="Any number; the first is the default reference.",
    )
    source = top[1].radio(
        "Label source",
        LABEL_SOURCES,
        format_func=SOURCE_TITLES.__getitem__,
        horizontal=True,
        key="compare_source",
        help="Human-reviewed only counts reviewed images.",
    )
    scale = top[2].radio("Bars", ["Raw counts", "% of images"], horizontal=True, key="compare_scale")
    if not chosen:
        st.info("Choose at least one dataset.")
        return None
    bottom = st.columns([2, 2, 2, 2])
    reference = bottom[0].selectbox(
        "Reference dataset",
        chosen,
        format_func=common.visible,
        key="compare_reference",
        help="Differences and log2 lifts are measured against it.",
    )
    rank = bottom[1].radio(
        "Rank categories by",
        ["All datasets", "Reference"],
        horizontal=True,
        key="compare_rank",
        help="Whose counts pick the top N and the count order.",
    )
    top_n = bottom[2].number_input(
        "Top N categories (0 = all)", min_value=0, max_value=500, value=0, step=1, key="compare_top"
    )
    sort = bottom[3].radio(
        "Sort by", list(SORT_NAMES), format_func=SORT_NAMES.__getitem__, horizontal=True, key="compare_sort"
    )
    return View(
        list(chosen),
        str(source),
        scale == "% of images",
        str(reference),
        str(reference) if rank == "Reference" else None,
        int(top_n) or None,
        str(sort),
    )


def _table(result: Comparison) -> pd.DataFrame:
    """The shown categories' statistics, formatted for reading (the CSV download keeps full precision)."""
    stats = result.shown_stats()
    return pd.DataFrame(
        {
            "category": stats["category"],
            "dataset": stats["dataset"],
            "images": stats["count"].astype(int),
            "share": [_share(*row) for row in zip(stats["share"], stats["ci_low"], stats["ci_high"], strict=True)],
            "difference": (100 * stats["difference"]).round(1),
            "p": stats["p_value"].map(lambda p: format_p(p).lstrip("= ")),
            "p_adjusted": stats["p_adjusted"].map(lambda p: format_p(p).lstrip("= ")),
            "lift": stats["log2_lift"].round(2),
            "test": stats["test"],
        }
    )


def _share(share: float, low: float, high: float) -> str:
    """ "41.2% (38.1–44.3)": the share and its 95% interval, in one column to leave room for the tests."""
    return "n/a" if math.isnan(share) else f"{100 * share:.1f}% ({100 * low:.1f}–{100 * high:.1f})"


def _statistics(result: Comparison) -> None:
    table = _table(result)
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        height=common.table_height(len(table)),
        column_config=TABLE_COLUMNS,
    )
    st.caption(
        common.plain(
            f"Share: images carrying the category / labelled images, 95% Wilson interval. Difference (percentage "
            f"points) and log2 lift are against {result.reference}; the lift is smoothed (+1 = twice as common). "
            "p: Fisher's exact test (two datasets, small counts), a two-proportion z test (two datasets) or a "
            "chi-square test (three or more) of equal shares; adjusted with Benjamini-Hochberg across "
            f"{wording.count(result.stats['category'].nunique(), 'category', 'categories')}."
        )
    )


def _downloads(result: Comparison, stem: str) -> None:
    chart = result.chart()
    columns = st.columns(3)
    # Rendering runs only when a button is pressed (a callable), never on every rerun.
    columns[0].download_button(
        "Chart as PNG",
        data=lambda: chart_bytes(chart, "png"),
        file_name=f"{stem}.png",
        mime="image/png",
        on_click="ignore",
        key="compare_png",
    )
    columns[1].download_button(
        "Chart as SVG",
        data=lambda: chart_bytes(chart, "svg"),
        file_name=f"{stem}.svg",
        mime="image/svg+xml",
        on_click="ignore",
        key="compare_svg",
    )
    columns[2].download_button(
        "Statistics as CSV",
        data=stats_csv_bytes(result.stats),
        file_name=f"{stem}_stats.csv",
        mime="text/csv",
        on_click="ignore",
        key="compare_stats",
    )


def _page() -> None:
    labels = store.dataset_labels()
    if not labels:
        st.info("No datasets yet: create them on the Datasets page, then describe and categorize them.")
        return
    view = _controls(list(labels), common.default_datasets(labels))
    if view is None:
        return
    common.simulated_notice(view.datasets)
    dist = common.run_or_error(lambda: store.category_distribution(view.datasets, view.source))  # type: ignore[arg-type]
    if dist is None:
        return
    if int(dist.drop_duplicates("dataset")["total"].sum()) == 0:
        st.info(
            f"No labelled images under the {SOURCE_TITLES[view.source].lower()} source yet: "
            + (
                "review some images (Review page): only reviewed images count here."
                if view.source == "human"
                else "categorize the datasets (Run page) or review some images (Review page)."
            )
        )
        _audit_link(view.datasets)  # the audit needs no labels
        return
    result = common.run_or_error(
        lambda: compare(
            dist,
            reference=view.reference,
            rank_by=view.rank_by,
            normalized=view.normalized,
            top_n=view.top_n,
            sort="difference" if view.sort == "difference" else "count",
            label_source=view.source,
            labels=labels,
        )
    )
    if result is None:
        return
    # The reading beside the chart; the table below both, at the page's full width, so all its columns fit.
    left, right = st.columns([3, 2])
    with left:
        st.altair_chart(result.chart(), width="stretch")
    with right:
        st.subheader("Statistics")
        for sentence in result.findings():
            st.markdown(common.plain(sentence))
        st.caption(common.plain(result.overall_text()))
    _statistics(result)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", "_vs_".join(view.datasets))[:80] + f"_{view.source}"
    _downloads(result, stem)
    _audit_link(view.datasets)


def _audit_link(datasets: list[str]) -> None:
    if st.button("Audit the files of these datasets (format, size, metadata, duplicates)", key="compare_audit"):
        st.session_state["audit_datasets"] = list(datasets)  # the Audit page opens on the same datasets
        st.switch_page("pages/audit.py")


_page()
