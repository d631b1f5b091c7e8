"""Charts of the technical-bias audit (Altair), in the house style of labeling.charts.

A numeric fact is drawn as overlaid ECDFs, one line per dataset, from the audit's percentiles (101 points per
dataset, so a chart never carries per-image rows); a categorical fact as grouped horizontal bars of each value's
share per dataset. Names and values from outside are data, never markup (and bidirectional controls are shown
as code points, as in labeling.charts). `chart_svg` renders a chart offline through vl-convert.
"""

from __future__ import annotations

from collections.abc import Mapping

import altair as alt
import pandas as pd

from labeling.audit import Audit, CategoricalResult, NumericResult
from labeling.charts import dataset_colors
from labeling.plain_text import visible

__all__ = ["audit_charts", "categorical_chart", "chart_svg", "numeric_chart"]

_WIDTH = 460
# Width follows the page, height stays the plot's: Streamlit's default "fit" squeezes title, legend and axes into it.
_FIT_WIDTH = {"type": "fit-x", "contains": "padding"}
_BAR_PX = 14
_GROUP_GAP_PX = 8


def numeric_chart(result: Audit, fact: str) -> alt.Chart:
    """Overlaid ECDFs of the numeric fact `fact` of an audit, one line per dataset with values (y: share of
    images at or below x). StopIteration when the audit has no such numeric fact."""
    return _numeric_chart(result.numeric_fact(fact), _colors(result))


def categorical_chart(result: Audit, fact: str) -> alt.LayerChart:
    """Grouped horizontal bars of the categorical fact `fact` of an audit: each value's share (%) of every
    dataset, most common value on top. StopIteration when the audit has no such categorical fact."""
    return _categorical_chart(result.categorical_fact(fact), _colors(result))


def audit_charts(result: Audit, limit: int | None = None) -> list[tuple[str, alt.TopLevelMixin]]:
    """(fact key, chart) of the facts in separation order (worst shortcut first), at most `limit` of them.

    Facts no dataset has values for are left out.
    """
    colors = _colors(result)
    by_key: dict[str, CategoricalResult | NumericResult] = {r.fact: r for r in result.categorical}
    by_key.update({r.fact: r for r in result.numeric})
    charts: list[tuple[str, alt.TopLevelMixin]] = []
    for separation in result.separation:
        if limit is not None and len(charts) >= limit:
            break
        fact = by_key[separation.fact]
        if isinstance(fact, NumericResult):
            if any(s.n for s in fact.summaries):
                charts.append((fact.fact, _numeric_chart(fact, colors)))
        elif fact.values:
            charts.append((fact.fact, _categorical_chart(fact, colors)))
    return charts


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG document, rendered offline by vl-convert (no browser, no network)."""
    import vl_convert as vlc

    return str(vlc.vegalite_to_svg(chart.to_json()))


# ------------------------------------------------------------------------------------------------ helpers


def _colors(result: Audit) -> dict[str, str]:
    """REAL blue, GEN vermillion (by label), the rest from the house palette, as on the comparison charts."""
    return dataset_colors([d.name for d in result.datasets], {d.name: d.label for d in result.datasets})


def _numeric_chart(result: NumericResult, colors: Mapping[str, str]) -> alt.Chart:
    rows = [
        (visible(summary.dataset), value, i / (len(summary.quantiles) - 1))
        for summary in result.summaries
        if len(summary.quantiles) > 1
        for i, value in enumerate(summary.quantiles)
    ]
    frame = pd.DataFrame(rows, columns=["dataset", "value", "share"])
    names = [visible(s.dataset) for s in result.summaries if len(s.quantiles) > 1]
    palette = {visible(name): color for name, color in colors.items()}
    subtitle = " · ".join(f"{visible(s.dataset)}: n={s.n:,}, median {s.median:.4g}" for s in result.summaries if s.n)
    return (
        alt.Chart(frame)
        .mark_line(interpolate="step-after")
        .encode(
            x=alt.X("value:Q", title=visible(result.title), scale=alt.Scale(zero=False)),
            y=alt.Y("share:Q", title="Share of images ≤ x", axis=alt.Axis(format="%")),
            color=alt.Color(
                "dataset:N",
                scale=alt.Scale(domain=names, range=[palette[name] for name in names]),
                legend=alt.Legend(title=None, orient="top"),
            ),
            tooltip=[
                alt.Tooltip("dataset:N", title="Dataset"),
                alt.Tooltip("value:Q", title=visible(result.title), format=".4g"),
                alt.Tooltip("share:Q", title="Share ≤", format=".0%"),
            ],
        )
        .properties(
            title=alt.Title(visible(result.title), subtitle=subtitle, anchor="start"),
            width=_WIDTH,
            height=180,
            autosize=_FIT_WIDTH,
        )
    )


def _categorical_chart(result: CategoricalResult, colors: Mapping[str, str]) -> alt.LayerChart:
    rows = [
        (visible(value.value), visible(count.dataset), count.count, count.total, 100 * count.share)
        for value in result.values
        for count in value.counts
        if count.total
    ]
    frame = pd.DataFrame(rows, columns=["value", "dataset", "count", "total", "percent"])
    frame["label"] = [f"{p:.0f}%" if p >= 10 or p == 0 else f"{p:.1f}%" for p in frame["percent"]]
    values = list(pd.unique(frame["value"]))
    names = list(pd.unique(frame["dataset"]))
    palette = {visible(name): color for name, color in colors.items()}
    base = alt.Chart(frame).encode(
        y=alt.Y("value:N", sort=values, title=None, axis=alt.Axis(labelLimit=240)),
        yOffset=alt.YOffset("dataset:N", sort=names),
        # Headroom past 100% for the value labels at the bar ends; ticks stop at 100.
        x=alt.X(
            "percent:Q",
            title="% of dataset",
            scale=alt.Scale(domain=[0, 115], nice=False),
            axis=alt.Axis(values=list(range(0, 101, 20))),
        ),
        color=alt.Color(
            "dataset:N",
            scale=alt.Scale(domain=names, range=[palette[name] for name in names]),
            legend=alt.Legend(title=None, orient="top"),
        ),
        tooltip=[
            alt.Tooltip("value:N", title=visible(result.title)),
            alt.Tooltip("dataset:N", title="Dataset"),
            alt.Tooltip("count:Q", title="Images", format=","),
            alt.Tooltip("percent:Q", title="% of dataset", format=".1f"),
        ],
    )
    bars = base.mark_bar()
    text = base.mark_text(align="left", baseline="middle", dx=3, fontSize=10).encode(
        text="label:N", color=alt.value("#333333")
    )
    height = max(50, len(values) * (len(names) * _BAR_PX + _GROUP_GAP_PX))
    return alt.LayerChart(
        layer=[bars, text],
        title=alt.Title(visible(result.title), anchor="start"),
        width=_WIDTH,
        height=height,
        autosize=_FIT_WIDTH,
    )
