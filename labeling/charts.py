"""Category-distribution charts: a distribution DataFrame in, an Altair chart out (plus PNG/SVG export).

Pure functions over aggregate-sized data (one row per dataset and category, see `labeling.stats`), so a chart
never carries per-image rows to the browser. `chart_frame` is the single place that decides which categories a
chart shows and in what order; the charts and the /compare stats table both use it.

Bars are horizontal and grouped with the `yOffset` channel (the horizontal form of grouped `xOffset` bars):
category names stay readable however long they are, the value labels at the bar ends never collide, and
vl-convert renders the layered chart to PNG/SVG offline.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import altair as alt
import pandas as pd

from labeling import wording
from labeling.errors import LabelingError, NotFoundError
from labeling.plain_text import visible
from labeling.stats import complete_distribution, dataset_order
from labeling.vocabulary import SOURCE_TEXT

__all__ = [
    "FRAME_COLUMNS",
    "GEN_COLOR",
    "PALETTE",
    "REAL_COLOR",
    "SortOrder",
    "chart_frame",
    "comparison_chart",
    "dataset_colors",
    "distribution_chart",
    "plot_height",
    "save_chart",
]

SortOrder = Literal["count", "difference"]

# Okabe-Ito: distinguishable with the common colour-vision deficiencies. REAL and GEN own blue and vermillion.
REAL_COLOR = "#0072B2"
GEN_COLOR = "#D55E00"
PALETTE = ["#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]

FRAME_COLUMNS = ["category", "dataset", "count", "total", "percent", "value", "label"]

_GEN_WORDS = {"gen", "generated", "synthetic", "fake"}
_WIDTH = 520
_BAR_PX = 16  # one dataset's bar: fits its 10 px value label
_GROUP_GAP_PX = 10  # between two categories' groups
_MIN_PLOT_PX = 60  # one category of one dataset still gets a plot, not a line
_LEGEND_COLUMNS = 2  # a wider legend would run past a narrow column
_TITLE_CHARS = 60  # a title line longer than the chart would shrink the plot to nothing (autosize fit-x)
_TEXT_COLOR = "#333333"


def dataset_colors(datasets: Sequence[str], labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """A stable colour per dataset: REAL blue, GEN vermillion, others from the rest of the palette in order.

    A dataset counts as REAL or GEN by its label in `labels` (dataset name -> "REAL"/"GEN"/...) or else by its
    name ("REAL", "real_2024", "gen-dalle", "GENERATED"). Only the first REAL and first GEN get those colours,
    so two datasets never share one.
    """
    colors: dict[str, str] = {}
    spare = iter(PALETTE * (len(datasets) // len(PALETTE) + 1))
    taken: set[str] = set()
    for name in datasets:
        role = _role(name, labels)
        wanted = {"REAL": REAL_COLOR, "GEN": GEN_COLOR}.get(role or "")
        if wanted and wanted not in taken:
            colors[name] = wanted
            taken.add(wanted)
    for name in datasets:
        if name not in colors:
            colors[name] = next(spare)
    return {name: colors[name] for name in datasets}


def chart_frame(
    dist: pd.DataFrame,
    *,
    normalized: bool = False,
    top_n: int | None = None,
    reference: str | None = None,
    sort: SortOrder = "count",
) -> pd.DataFrame:
    """The exact rows a comparison chart shows, in display order.

    Columns (FRAME_COLUMNS): category, dataset, count, total, percent (0-100: share of the dataset's images
    carrying the category; 0 for a dataset without images), value (what the bar plots: percent when
    `normalized`, else count) and label (the text on the bar). Missing (dataset, category) rows are filled
    with 0, so every category has a row for every dataset; datasets keep their first-appearance order.

    Top-N keeps the categories with the highest count in `reference` (when given) or summed over datasets.
    `sort="count"` orders by that same count, descending; `sort="difference"` by the absolute share
    difference between the first two datasets (max minus min share for three or more), descending. Ties break
    by category name, case-insensitively.
    """
    _check_options(top_n, sort)
    full = complete_distribution(dist)
    datasets = dataset_order(dist)
    if reference is not None and reference not in datasets:
        raise NotFoundError(
            f"Reference dataset {reference!r} is not among the compared datasets "
            f"({', '.join(datasets) or 'none'}): pick one of them."
        )
    if full.empty:
        return pd.DataFrame({column: [] for column in FRAME_COLUMNS})
    totals = full["total"].where(full["total"] > 0)
    full["percent"] = (100.0 * full["count"] / totals).fillna(0.0)
    categories = _ordered_categories(full, datasets, top_n=top_n, reference=reference, sort=sort)
    position = {category: i for i, category in enumerate(categories)}
    rank = {name: i for i, name in enumerate(datasets)}
    frame = full[full["category"].isin(position)].copy()
    frame["_order"] = frame["category"].map(position) * len(datasets) + frame["dataset"].map(rank)
    frame = frame.sort_values("_order").drop(columns="_order").reset_index(drop=True)
    frame["value"] = frame["percent"] if normalized else frame["count"].astype(float)
    frame["label"] = [_label(c, p, normalized) for c, p in zip(frame["count"], frame["percent"], strict=True)]
    return frame.loc[:, FRAME_COLUMNS]


def comparison_chart(
    dist: pd.DataFrame,
    *,
    normalized: bool = False,
    top_n: int | None = None,
    reference: str | None = None,
    sort: SortOrder = "count",
    label_source: str = "effective",
    max_labels: int = 2,
    labels: Mapping[str, str] | None = None,
) -> alt.LayerChart:
    """Grouped bars comparing category counts (or % of each dataset's images) across datasets.

    The title lists every dataset's image total ("REAL: 1,234 images · GEN: 987 images"); the subtitle says
    what the bars measure, which labels they use (`label_source`: model / human / effective), how categories
    were picked and sorted, and, when `normalized`, that with multi-label data (up to `max_labels` categories
    per image) a dataset's bars can sum past 100%. `labels` maps dataset names to REAL/GEN for colouring.
    """
    frame = chart_frame(dist, normalized=normalized, top_n=top_n, reference=reference, sort=sort)
    datasets = dataset_order(dist)
    totals = _dataset_totals(dist, datasets)
    title = " · ".join(f"{name}: {wording.count(totals[name], 'image')}" for name in datasets) or "No labelled images"
    subtitle = [
        "Share of each dataset's images carrying the category (%)" if normalized else "Images carrying each category",
        f"Labels: {_describe_source(label_source)}",
        _selection_note(top_n, reference, sort, datasets),
    ]
    if normalized:
        subtitle.append(
            f"Multi-label: an image can carry up to {max_labels} categories, so a dataset's bars can sum past 100%."
        )
    value_title = "% of the dataset's images" if normalized else "Images"
    return _grouped_bars(frame, datasets, dataset_colors(datasets, labels), value_title, title, subtitle)


def distribution_chart(
    dist: pd.DataFrame,
    dataset: str,
    *,
    top_n: int | None = None,
    label_source: str = "effective",
    labels: Mapping[str, str] | None = None,
) -> alt.LayerChart:
    """One dataset's category bars, largest first, each labelled with its count and share of the images.

    The title names the dataset and its total images; the subtitle names the label source. `top_n` keeps
    that many of the dataset's most frequent categories.
    """
    datasets = dataset_order(dist)
    if dataset not in datasets:
        raise NotFoundError(
            f"Dataset {dataset!r} has no rows in the distribution ({', '.join(datasets) or 'none'}): "
            "check the name or label the dataset first."
        )
    own = dist[dist["dataset"].astype(str) == dataset]
    frame = chart_frame(own, top_n=top_n)
    frame["label"] = [f"{c:,} ({p:.1f}%)" for c, p in zip(frame["count"], frame["percent"], strict=True)]
    total = _dataset_totals(own, [dataset])[dataset]
    subtitle = [
        "Images carrying each category (an image can carry more than one)",
        f"Labels: {_describe_source(label_source)}",
    ]
    if top_n is not None:
        subtitle.append(f"Top {top_n} categories")
    color = dataset_colors([dataset], labels)
    return _grouped_bars(frame, [dataset], color, "Images", f"{dataset}: {wording.count(total, 'image')}", subtitle)


def save_chart(chart: alt.TopLevelMixin, path: str | Path) -> Path:
    """Write `chart` as PNG (at 2x scale) or SVG, chosen by the file suffix, offline through vl-convert.

    Creates missing parent folders. Raises LabelingError for any other suffix or when the file cannot be
    written. Returns the path written.
    """
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".png", ".svg"):
        raise LabelingError(f"Cannot save a chart as {target.name!r}: use a file name ending in .png or .svg.")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Scale 2 keeps PNG text sharp on high-density screens and in slides.
        fmt: Literal["png", "svg"] = "png" if suffix == ".png" else "svg"
        chart.save(str(target), format=fmt, scale_factor=2.0 if fmt == "png" else 1.0)
    except OSError as exc:
        raise LabelingError(
            f"Cannot write the chart to {target}: {exc.strerror or exc}. Pick a writable folder."
        ) from exc
    return target


def plot_height(categories: int, datasets: int) -> int:
    """The plot's height in px (axes, legend and title come on top): a fixed band per category."""
    return max(_MIN_PLOT_PX, categories * (max(datasets, 1) * _BAR_PX + _GROUP_GAP_PX))


# ------------------------------------------------------------------------------------------------ helpers


def _grouped_bars(
    frame: pd.DataFrame,
    datasets: list[str],
    colors: Mapping[str, str],
    value_title: str,
    title: str,
    subtitle: list[str],
) -> alt.LayerChart:
    # names come from outside: a bidirectional control in one would reverse its legend or axis label
    frame = frame.assign(category=frame["category"].map(visible), dataset=frame["dataset"].map(visible))
    colors = {visible(name): color for name, color in colors.items()}
    datasets, title = [visible(name) for name in datasets], visible(title)
    categories = list(pd.unique(frame["category"]))
    top = float(frame["value"].max()) if len(frame) else 0.0
    # Headroom past the longest bar so its value label is not clipped at the chart edge.
    domain_max = top * 1.2 if top > 0 else 1.0
    base = alt.Chart(frame).encode(
        y=alt.Y("category:N", sort=categories, title=None, axis=alt.Axis(labelLimit=240)),
        yOffset=alt.YOffset("dataset:N", sort=datasets),
        # Whole ticks: counts are images, and a percent finer than 1 says nothing on a bar chart.
        x=alt.X(
            "value:Q",
            title=value_title,
            scale=alt.Scale(domain=[0, domain_max], nice=False),
            axis=alt.Axis(tickMinStep=1),
        ),
        color=alt.Color(
            "dataset:N",
            scale=alt.Scale(domain=datasets, range=[colors[name] for name in datasets]),
            # One dataset needs no legend: the title names it.
            legend=alt.Legend(title=None, orient="top", columns=_LEGEND_COLUMNS, labelLimit=200)
            if len(datasets) > 1
            else None,
        ),
        tooltip=[
            alt.Tooltip("category:N", title="Category"),
            alt.Tooltip("dataset:N", title="Dataset"),
            alt.Tooltip("count:Q", title="Images", format=","),
            alt.Tooltip("total:Q", title="Dataset images", format=","),
            alt.Tooltip("percent:Q", title="% of dataset", format=".1f"),
        ],
    )
    bars = base.mark_bar()
    text = base.mark_text(align="left", baseline="middle", dx=3, fontSize=10).encode(
        text="label:N", color=alt.value(_TEXT_COLOR)
    )
    return alt.LayerChart(
        layer=[bars, text],
        # Lines and a limit keep the title within the chart: fit-x would take any overflow from the plot's width.
        title=alt.Title(_title_lines(title), subtitle=subtitle, anchor="start", limit=_WIDTH - 20),
        width=_WIDTH,
        height=plot_height(len(categories), len(datasets)),
        # Width follows the page, height stays the plot's. Without this Streamlit sets "fit", which makes the
        # height the whole chart's: title, legend and axes then squeeze 5 categories into a sliver and 1 to nothing.
        autosize={"type": "fit-x", "contains": "padding"},
    )


def _ordered_categories(
    full: pd.DataFrame, datasets: list[str], *, top_n: int | None, reference: str | None, sort: SortOrder
) -> list[str]:
    """Categories to show, in display order (see chart_frame)."""
    chosen = full if reference is None else full[full["dataset"] == reference]
    summed = chosen.groupby("category", sort=False)["count"].sum()
    counts = {str(c): int(k) for c, k in summed.items()}
    by_count = sorted(counts, key=lambda c: (-counts[c], c.casefold(), c))
    selected = by_count if top_n is None else by_count[:top_n]
    if sort == "count":
        return selected
    spread = _share_spread(full, datasets)
    # Python's sort is stable: equal spreads keep their count order.
    return sorted(selected, key=lambda c: -spread[c])


def _share_spread(full: pd.DataFrame, datasets: list[str]) -> dict[str, float]:
    """|share A - share B| for the first two datasets with images, max - min share for three or more."""
    totals = dict(zip(full["dataset"], full["total"], strict=True))
    compared = [name for name in datasets if totals.get(name, 0) > 0]
    percent = {(d, c): float(p) for d, c, p in zip(full["dataset"], full["category"], full["percent"], strict=True)}
    spread: dict[str, float] = {}
    for category in map(str, pd.unique(full["category"])):
        row = [percent[(name, category)] for name in compared]
        if len(row) < 2:
            spread[category] = 0.0
        else:
            spread[category] = abs(row[0] - row[1]) if len(row) == 2 else max(row) - min(row)
    return spread


def _dataset_totals(dist: pd.DataFrame, datasets: list[str]) -> dict[str, int]:
    """Each dataset's image total (validated by complete_distribution before any chart uses it)."""
    first = dist.drop_duplicates("dataset")
    totals = {str(d): int(t) for d, t in zip(first["dataset"], first["total"], strict=True)}
    return {name: totals[name] for name in datasets}


def _title_lines(title: str) -> str | list[str]:
    """The title broken after a " · " once a line passes _TITLE_CHARS (one string when it fits one line)."""
    lines = [""]
    for part in title.split(" · "):
        if lines[-1] and len(lines[-1]) + 3 + len(part) > _TITLE_CHARS:
            lines.append(part)
        else:
            lines[-1] = f"{lines[-1]} · {part}" if lines[-1] else part
    return lines[0] if len(lines) == 1 else lines


def _label(count: int, percent: float, normalized: bool) -> str:
    return f"{percent:.1f}%" if normalized else f"{int(count):,}"


def _selection_note(top_n: int | None, reference: str | None, sort: SortOrder, datasets: list[str]) -> str:
    basis = f"{reference}'s count" if reference else "count across datasets"
    picked = f"Top {top_n} categories by {basis}" if top_n is not None else "All categories"
    if sort == "difference" and len(datasets) >= 2:
        what = f"{datasets[0]} vs {datasets[1]}" if len(datasets) == 2 else "max - min across datasets"
        return f"{picked}, sorted by share difference ({what})"
    return f"{picked}, sorted by {basis}"


def _describe_source(label_source: str) -> str:
    return SOURCE_TEXT.get(label_source, label_source)


def _role(name: str, labels: Mapping[str, str] | None) -> str | None:
    label = (labels or {}).get(name)
    if label:
        return label.strip().upper() if label.strip().upper() in ("REAL", "GEN") else None
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    if "real" in words:
        return "REAL"
    return "GEN" if words & _GEN_WORDS else None


def _check_options(top_n: int | None, sort: str) -> None:
    if top_n is not None and top_n < 1:
        raise LabelingError(f"Top-N must be at least 1 (got {top_n}); leave it empty to show every category.")
    if sort not in ("count", "difference"):
        raise LabelingError(f"Unknown sort order {sort!r}: use 'count' or 'difference'.")
