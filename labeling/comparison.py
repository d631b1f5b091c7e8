"""Comparing datasets: the distribution, its chart, the per-category statistics and a plain-language reading.

One `compare()` call serves the /compare page, `labeling compare` and the seed's plot commands, whatever the
distribution came from: the store (`Store.category_distribution`) or the seed's categorized CSVs
(`seed_distribution`, no database needed). Pure functions over aggregate-sized frames; the charts and tests
come from `labeling.charts` and `labeling.stats`.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import altair as alt
import pandas as pd

from labeling.charts import SortOrder, chart_frame, comparison_chart, distribution_chart, save_chart
from labeling.datasets import read_csv_file
from labeling.errors import InputError
from labeling.seed_format import read_seed_rows
from labeling.spreadsheet import neutralise_cell
from labeling.stats import OverallTest, category_stats, dataset_order, overall_test
from labeling.wording import count

__all__ = [
    "ALPHA",
    "STATS_CSV_COLUMNS",
    "Comparison",
    "SeedDistribution",
    "chart_bytes",
    "compare",
    "findings",
    "format_p",
    "read_seed_distribution",
    "seed_dataset_name",
    "seed_distribution",
    "stats_csv_bytes",
]

ALPHA = 0.05  # significance level of the plain-language reading (after Benjamini-Hochberg)
# The stats CSV: the columns the issue names first, then the extras that help reading it.
STATS_CSV_COLUMNS = [
    "category",
    "dataset",
    "count",
    "total",
    "share",
    "ci_low",
    "ci_high",
    "p_value",
    "p_adjusted",
    "difference",
    "log2_lift",
    "test",
    "reference",
    "label_source",
]


# ------------------------------------------------------------------------------------------------ seed CSVs


@dataclass(frozen=True)
class SeedDistribution:
    """A seed categorized CSV as a distribution frame, with what was left out and why."""

    frame: pd.DataFrame
    dataset: str
    rows: int  # distinct image names in the file
    labelled: int  # rows with at least one category: the total
    errors: int  # "ERROR: ..." rows the seed wrote when a request failed
    uncategorized: int  # rows with a description but no categories

    def summary(self) -> str:
        skipped = []
        if self.errors:
            skipped.append(f"{self.errors:,} seed errors")
        if self.uncategorized:
            skipped.append(f"{self.uncategorized:,} without categories")
        left_out = f" (left out: {', '.join(skipped)})" if skipped else ""
        return f"{self.dataset}: {count(self.labelled, 'categorized image')} of {count(self.rows, 'row')}{left_out}"


def seed_distribution(data: bytes, dataset: str, source: str = "the CSV") -> SeedDistribution:
    """Count a seed `image_name,description,categories` CSV: images per category and the categorized total.

    A row counts when its categories cell is not empty (each distinct category once); the seed's
    "ERROR: ..." rows and rows without categories are left out of the total and reported.
    """
    rows = read_seed_rows(data, source)
    counts: Counter[str] = Counter()
    labelled = errors = 0
    for row in rows:
        if row.error is not None:
            errors += 1
        elif row.categories:
            labelled += 1
            counts.update(set(row.categories))  # a repeated category counts once
    if not labelled:
        raise InputError(
            f"{source} has no categorized rows (no categories column, or every cell is empty): "
            "categorize the descriptions first."
        )
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    frame = pd.DataFrame(
        [(dataset, category, count, labelled) for category, count in ordered],
        columns=["dataset", "category", "count", "total"],
    )
    return SeedDistribution(
        frame.astype({"count": "int64", "total": "int64"}),
        dataset,
        len(rows),
        labelled,
        errors,
        len(rows) - labelled - errors,
    )


def read_seed_distribution(path: str | Path, dataset: str) -> SeedDistribution:
    """`seed_distribution` of a CSV file on disk."""
    return seed_distribution(read_csv_file(path), dataset, str(path))


def seed_dataset_name(path: str | Path) -> str:
    """REAL or GEN when the file name says so (real_descriptions_categorized.csv), else the file's stem."""
    stem = Path(path).stem
    words = set(stem.lower().replace("-", "_").split("_"))
    if "real" in words:
        return "REAL"
    if words & {"gen", "generated", "fake", "synthetic"}:
        return "GEN"
    return stem


# ---------------------------------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class Comparison:
    """Everything the page and the CLI show for one comparison."""

    dist: pd.DataFrame
    datasets: list[str]
    reference: str
    normalized: bool
    top_n: int | None
    sort: SortOrder
    label_source: str
    frame: pd.DataFrame  # chart rows (labeling.charts.chart_frame): the shown categories, in order
    stats: pd.DataFrame  # every category x dataset (STATS_CSV_COLUMNS), in the chart's order
    overall: OverallTest
    rank_by: str | None = None  # the dataset top-N and count order follow (None: the sum over datasets)
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def categories(self) -> list[str]:
        """The categories the chart shows, in its order."""
        return [str(c) for c in pd.unique(self.frame["category"])] if len(self.frame) else []

    def chart(self) -> alt.LayerChart:
        """Grouped bars of every dataset (or one dataset's bars when only one is compared)."""
        if len(self.datasets) == 1:
            return distribution_chart(
                self.dist, self.datasets[0], top_n=self.top_n, label_source=self.label_source, labels=self.labels
            )
        return comparison_chart(
            self.dist,
            normalized=self.normalized,
            top_n=self.top_n,
            reference=self.rank_by,
            sort=self.sort,
            label_source=self.label_source,
            labels=self.labels,
        )

    def shown_stats(self) -> pd.DataFrame:
        """The statistics of the categories the chart shows (p_adjusted still counts every category)."""
        return self.stats[self.stats["category"].isin(self.categories)].reset_index(drop=True)

    def findings(self, limit: int = 5) -> list[str]:
        return findings(self.stats, self.datasets, self.reference, limit=limit)

    def overall_text(self) -> str:
        return overall_text(self.overall)


def compare(
    dist: pd.DataFrame,
    *,
    reference: str | None = None,
    rank_by: str | None = None,
    normalized: bool = False,
    top_n: int | None = None,
    sort: SortOrder = "count",
    label_source: str = "effective",
    labels: Mapping[str, str] | None = None,
) -> Comparison:
    """Chart rows, statistics (BH-adjusted across every category) and the overall test of one distribution.

    `reference` (default: the first dataset) is what differences and lifts are measured against; `rank_by`
    names the dataset whose counts pick the top N and the count order (default: the sum over datasets).
    `labels` maps dataset names to REAL/GEN for colours.
    """
    datasets = dataset_order(dist)
    ref = reference or (datasets[0] if datasets else "")
    frame = chart_frame(dist, normalized=normalized, top_n=top_n, reference=rank_by, sort=sort)
    order = list(pd.unique(chart_frame(dist, reference=rank_by, sort=sort)["category"])) if len(frame) else []
    stats = category_stats(dist, reference=ref if datasets else None)
    position = {category: i for i, category in enumerate(order)}
    rank = {name: i for i, name in enumerate(datasets)}
    if len(stats):
        stats = stats.assign(_c=stats["category"].map(position), _d=stats["dataset"].map(rank))
        stats = stats.sort_values(["_c", "_d"]).drop(columns=["_c", "_d"]).reset_index(drop=True)
    stats = stats.assign(reference=ref, label_source=label_source).reindex(columns=STATS_CSV_COLUMNS)
    return Comparison(
        dist,
        datasets,
        ref,
        normalized,
        top_n,
        sort,
        label_source,
        frame,
        stats,
        overall_test(dist),
        rank_by,
        dict(labels or {}),
    )


# ------------------------------------------------------------------------------------------------ reading


def format_p(p: float) -> str:
    """ "< 0.001", "= 0.012", "= 0.25" (or "n/a" without a test)."""
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "n/a"
    if p < 0.001:
        return "< 0.001"
    return f"= {p:.3f}" if p < 0.01 else f"= {p:.2f}"


def _percent(share: float) -> str:
    if math.isnan(share):
        return "n/a"
    value = 100 * share
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"


def findings(
    stats: pd.DataFrame, datasets: list[str], reference: str, *, alpha: float = ALPHA, limit: int = 5
) -> list[str]:
    """Plain-language sentences for the categories whose shares differ significantly (adjusted p < alpha).

    Two datasets: "GEN has significantly more 'animals' than REAL (38% vs 21%, adjusted p < 0.001)". Three or
    more: "'animals' differs across the datasets (REAL 21%, GEN 38%, X 30%; adjusted p < 0.001)". The strongest
    `limit` first; one closing sentence counts the rest, or says that nothing differs.
    """
    if stats.empty or len(datasets) < 2:
        return []
    per_category = stats.drop_duplicates("category")
    tested = per_category[per_category["p_adjusted"].notna()]
    significant = tested[tested["p_adjusted"] < alpha]
    if tested.empty:
        return ["No test is possible: every compared dataset needs labelled images."]
    if significant.empty:
        smallest = format_p(float(tested["p_adjusted"].min())) if len(tested) else "n/a"
        between = " and ".join(datasets) if len(datasets) == 2 else "the datasets"
        return [
            f"No category differs significantly between {between} after adjusting for "
            f"{count(len(tested), 'category', 'categories')} (smallest adjusted p {smallest})."
        ]
    shares = {
        (str(c), str(d)): float(v) for c, d, v in zip(stats["category"], stats["dataset"], stats["share"], strict=True)
    }
    adjusted = {str(c): float(p) for c, p in zip(significant["category"], significant["p_adjusted"], strict=True)}
    spread = {c: max(abs(shares[(c, d)] - shares[(c, reference)]) for d in datasets) for c in adjusted}
    ranked = sorted(adjusted, key=lambda c: (adjusted[c], -spread[c], c))
    sentences = []
    for category in ranked[:limit]:
        p = format_p(adjusted[category])
        if len(datasets) == 2:
            other = next(name for name in datasets if name != reference)
            more = shares[(category, other)] > shares[(category, reference)]
            sentences.append(
                f"{other} has significantly {'more' if more else 'fewer'} {category!r} than {reference} "
                f"({_percent(shares[(category, other)])} vs {_percent(shares[(category, reference)])}, "
                f"adjusted p {p})."
            )
        else:
            parts = ", ".join(f"{name} {_percent(shares[(category, name)])}" for name in datasets)
            sentences.append(f"{category!r} differs across the datasets ({parts}; adjusted p {p}).")
    if len(ranked) > limit:
        sentences.append(f"{len(ranked) - limit} more categories differ significantly: see the table.")
    return sentences


def overall_text(test: OverallTest) -> str:
    """One sentence on the overall test of the category profiles, with its caveat."""
    if math.isnan(test.p_value):
        return test.note
    verdict = "differ" if test.p_value < ALPHA else "do not differ significantly"
    return (
        f"Overall, the category profiles {verdict} (chi-square {test.statistic:,.1f}, {test.dof} degrees of "
        f"freedom, p {format_p(test.p_value)}). {test.note}"
    )


# -------------------------------------------------------------------------------------------------- files


def chart_bytes(chart: alt.TopLevelMixin, fmt: str) -> bytes:
    """The chart as PNG or SVG bytes, rendered offline by vl-convert (same output as `save_chart`)."""
    if fmt not in ("png", "svg"):
        raise InputError(f"Cannot render a chart as {fmt!r}: use png or svg.")
    with tempfile.TemporaryDirectory(prefix="labeling-chart-") as folder:
        return save_chart(chart, Path(folder) / f"chart.{fmt}").read_bytes()


def stats_csv_bytes(stats: pd.DataFrame) -> bytes:
    """The stats table as UTF-8 CSV (full float precision), names neutralised for spreadsheets like exports."""
    table = stats.reindex(columns=STATS_CSV_COLUMNS).copy()
    for column in ("category", "dataset", "reference"):
        table[column] = table[column].astype(str).map(neutralise_cell)
    return table.to_csv(index=False, lineterminator="\n").encode("utf-8")
