"""Compare: category distributions of any datasets side by side, with per-category statistics and a reading."""

from __future__ import annotations

import math
import re
from typing import NamedTuple

import pandas as pd
import streamlit as st

from labeling.comparison import Comparison, chart_bytes, compare, format_p, stats_csv_bytes
from labeling.vocabulary import LABEL_SOURCES, SOURCE_TITLES
from pages import common

SORT_NAMES = {"count": "Count", "difference": "Difference"}

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

    def share(row: pd.Series) -> str:
        if math.isnan(row["share"]):
            return "n/a"
        return f"{100 * row['share']:.1f}% ({100 * row['ci_low']:.1f}-{100 * row['ci_high']:.1f})"

    return pd.DataFrame(
        {
            "Category": stats["category"],
            "Dataset": stats["dataset"],
            "Images": stats["count"].astype(int),
            "Share (95% CI)": stats.apply(share, axis=1) if len(stats) else [],
            f"Diff vs {result.reference} (pp)": (100 * stats["difference"]).round(1),
            "p": stats["p_value"].map(lambda p: format_p(p).lstrip("= ")),
            "Adjusted p (BH)": stats["p_adjusted"].map(lambda p: format_p(p).lstrip("= ")),
            "log2 lift": stats["log2_lift"].round(2),
            "Test": stats["test"],
        }
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
            "categorize the datasets (Run page) or review some images (Review page)."
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
    left, right = st.columns([3, 2])
    with left:
        st.altair_chart(result.chart(), width="stretch")
    with right:
        st.subheader("Statistics")
        for sentence in result.findings():
            st.markdown(common.plain(sentence))
        st.dataframe(_table(result), hide_index=True, width="stretch")
        st.caption(
            common.plain(
                f"Share: images carrying the category / labelled images, 95% Wilson interval. p: Fisher's exact test "
                f"(two datasets, small counts), a two-proportion z test (two datasets) or a chi-square test (three or "
                "more) of equal shares; adjusted with Benjamini-Hochberg across all "
                f"{result.stats['category'].nunique()} categories. log2 lift vs {result.reference}, smoothed "
                "(+1 = twice as common)."
            )
        )
        st.caption(common.plain(result.overall_text()))
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", "_vs_".join(view.datasets))[:80] + f"_{view.source}"
    _downloads(result, stem)
    _audit_link(view.datasets)


def _audit_link(datasets: list[str]) -> None:
    if st.button("Audit the files of these datasets (format, size, metadata, duplicates)", key="compare_audit"):
        st.session_state["audit_datasets"] = list(datasets)  # the Audit page opens on the same datasets
        st.switch_page("pages/audit.py")


_page()
