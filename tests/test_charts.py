"""labeling.charts: the rows a chart shows, what its Vega-Lite spec says, and real PNG/SVG files."""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import pytest

from labeling import charts
from labeling.errors import LabelingError, NotFoundError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _dist(rows: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["dataset", "category", "count", "total"])


REAL_GEN = _dist(
    [
        ("REAL", "people", 600, 2000),
        ("REAL", "animals", 300, 2000),
        ("REAL", "food", 20, 2000),
        ("REAL", "buildings", 410, 2000),
        ("GEN", "people", 200, 1500),
        ("GEN", "animals", 450, 1500),
        ("GEN", "vehicles", 150, 1500),  # absent from REAL: a 0 bar there
        ("GEN", "buildings", 100, 1500),
    ]
)


def _spec(chart: alt.TopLevelMixin) -> dict[str, Any]:
    spec: dict[str, Any] = chart.to_dict()
    return spec


def _values(chart: alt.TopLevelMixin) -> list[dict[str, Any]]:
    spec = _spec(chart)
    values: list[dict[str, Any]] = spec["datasets"][spec["data"]["name"]]
    return values


def _categories(frame: pd.DataFrame) -> list[str]:
    return [str(c) for c in pd.unique(frame["category"])]


def _cell(frame: pd.DataFrame, category: str, dataset: str, column: str) -> Any:
    match = frame[(frame["category"] == category) & (frame["dataset"] == dataset)]
    assert len(match) == 1
    return match.iloc[0][column]


# ------------------------------------------------------------------------------------------ chart_frame


def test_chart_frame_fills_missing_rows_and_keeps_dataset_order() -> None:
    frame = charts.chart_frame(REAL_GEN)
    assert list(frame.columns) == charts.FRAME_COLUMNS
    assert len(frame) == 5 * 2
    assert list(frame["dataset"][:2]) == ["REAL", "GEN"]
    assert _cell(frame, "vehicles", "REAL", "count") == 0
    assert _cell(frame, "people", "REAL", "label") == "600"


def test_chart_frame_normalized_percentages_and_labels() -> None:
    frame = charts.chart_frame(REAL_GEN, normalized=True)
    assert _cell(frame, "people", "REAL", "value") == pytest.approx(30.0)
    assert _cell(frame, "people", "GEN", "value") == pytest.approx(100 * 200 / 1500)
    assert _cell(frame, "people", "GEN", "label") == "13.3%"
    raw = charts.chart_frame(REAL_GEN)
    assert _cell(raw, "people", "GEN", "value") == 200
    assert _cell(raw, "people", "GEN", "percent") == pytest.approx(100 * 200 / 1500)


def test_chart_frame_top_n_by_overall_count_or_reference() -> None:
    # Overall: animals 750, people 800, buildings 510, vehicles 150, food 20.
    assert _categories(charts.chart_frame(REAL_GEN, top_n=3)) == ["people", "animals", "buildings"]
    # REAL's own counts: people 600, buildings 410, animals 300.
    by_real = charts.chart_frame(REAL_GEN, top_n=3, reference="REAL")
    assert _categories(by_real) == ["people", "buildings", "animals"]
    by_gen = charts.chart_frame(REAL_GEN, top_n=2, reference="GEN")
    assert _categories(by_gen) == ["animals", "people"]
    assert len(charts.chart_frame(REAL_GEN, top_n=50)) == 10


def test_chart_frame_sort_by_difference_two_datasets() -> None:
    frame = charts.chart_frame(REAL_GEN, sort="difference")
    # |REAL% - GEN%|: people 16.7, animals 15.0, buildings 13.8, vehicles 10.0, food 1.0.
    assert _categories(frame) == ["people", "animals", "buildings", "vehicles", "food"]
    top2 = charts.chart_frame(REAL_GEN, sort="difference", top_n=3)
    assert _categories(top2) == ["people", "animals", "buildings"]


def test_chart_frame_sort_by_difference_three_datasets_uses_max_minus_min() -> None:
    dist = _dist(
        [
            ("A", "x", 10, 100),
            ("A", "y", 50, 100),
            ("B", "x", 12, 100),
            ("B", "y", 50, 100),
            ("C", "x", 60, 100),
            ("C", "y", 55, 100),
        ]
    )
    # Over all three datasets x spreads 50 points (10% to 60%) and y only 5.
    assert _categories(charts.chart_frame(dist, sort="difference")) == ["x", "y"]
    assert _categories(charts.chart_frame(dist, sort="count")) == ["y", "x"]


def test_chart_frame_ties_break_by_name_case_insensitively() -> None:
    dist = _dist([("A", "beta", 5, 10), ("A", "Alpha", 5, 10), ("A", "gamma", 5, 10)])
    assert _categories(charts.chart_frame(dist)) == ["Alpha", "beta", "gamma"]


def test_chart_frame_rejects_bad_options() -> None:
    with pytest.raises(LabelingError, match="Top-N"):
        charts.chart_frame(REAL_GEN, top_n=0)
    with pytest.raises(LabelingError, match="sort order"):
        charts.chart_frame(REAL_GEN, sort="alphabet")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        charts.chart_frame(REAL_GEN, reference="SDXL")


def test_chart_frame_empty_distribution() -> None:
    frame = charts.chart_frame(_dist([]))
    assert frame.empty and list(frame.columns) == charts.FRAME_COLUMNS


# -------------------------------------------------------------------------------------- comparison chart


def test_comparison_chart_data_matches_chart_frame() -> None:
    chart = charts.comparison_chart(REAL_GEN, normalized=True, top_n=3, reference="REAL")
    expected = charts.chart_frame(REAL_GEN, normalized=True, top_n=3, reference="REAL")
    values = _values(chart)
    assert [(v["category"], v["dataset"]) for v in values] == list(
        zip(expected["category"], expected["dataset"], strict=True)
    )
    assert [v["value"] for v in values] == pytest.approx(expected["value"].tolist())
    people_real = next(v for v in values if v["category"] == "people" and v["dataset"] == "REAL")
    assert people_real["value"] == pytest.approx(30.0) and people_real["label"] == "30.0%"


def test_comparison_chart_layers_encodings_and_colors() -> None:
    spec = _spec(charts.comparison_chart(REAL_GEN, top_n=3))
    bars, text = spec["layer"]
    assert bars["mark"]["type"] == "bar"
    assert text["mark"]["type"] == "text" and text["encoding"]["text"]["field"] == "label"
    assert bars["encoding"]["y"]["sort"] == ["people", "animals", "buildings"]
    assert bars["encoding"]["yOffset"] == {"field": "dataset", "sort": ["REAL", "GEN"], "type": "nominal"}
    assert bars["encoding"]["color"]["scale"] == {
        "domain": ["REAL", "GEN"],
        "range": [charts.REAL_COLOR, charts.GEN_COLOR],
    }


def test_comparison_chart_title_and_subtitles() -> None:
    normalized = _spec(charts.comparison_chart(REAL_GEN, normalized=True, label_source="human", max_labels=3))
    assert normalized["title"]["text"] == "REAL: 2,000 images · GEN: 1,500 images"
    subtitle = " | ".join(normalized["title"]["subtitle"])
    assert "multi-label: an image can carry up to 3 categories" in subtitle.lower()
    assert "past 100%" in subtitle
    assert "human labels" in subtitle
    raw = _spec(charts.comparison_chart(REAL_GEN, top_n=2, reference="GEN", sort="difference"))
    raw_subtitle = " | ".join(raw["title"]["subtitle"])
    assert "multi-label" not in raw_subtitle.lower()
    assert "effective labels" in raw_subtitle
    assert "Top 2 categories by GEN's count" in raw_subtitle
    assert "sorted by share difference (REAL vs GEN)" in raw_subtitle


def test_comparison_chart_axis_headroom_for_value_labels() -> None:
    spec = _spec(charts.comparison_chart(REAL_GEN))
    domain = spec["layer"][0]["encoding"]["x"]["scale"]["domain"]
    assert domain[0] == 0 and domain[1] > 600


def test_comparison_chart_empty_distribution_still_builds() -> None:
    spec = _spec(charts.comparison_chart(_dist([])))
    assert spec["title"]["text"] == "No labelled images"


# ------------------------------------------------------------------------------------------------ colours


def test_dataset_colors_are_stable_for_real_and_gen() -> None:
    assert charts.dataset_colors(["GEN", "REAL"]) == {"GEN": charts.GEN_COLOR, "REAL": charts.REAL_COLOR}
    named = charts.dataset_colors(["real_2024", "gen-dalle", "sdxl"])
    assert named["real_2024"] == charts.REAL_COLOR and named["gen-dalle"] == charts.GEN_COLOR
    assert named["sdxl"] == charts.PALETTE[0]
    labelled = charts.dataset_colors(["photos", "dalle"], labels={"photos": "REAL", "dalle": "gen"})
    assert labelled == {"photos": charts.REAL_COLOR, "dalle": charts.GEN_COLOR}


def test_dataset_colors_never_repeat() -> None:
    names = ["REAL", "real-2", "GEN", *[f"d{i}" for i in range(10)]]
    colors = charts.dataset_colors(names)
    assert colors["REAL"] == charts.REAL_COLOR and colors["real-2"] != charts.REAL_COLOR
    assert len(set(list(colors.values())[:8])) == 8  # 2 reserved + 6 palette colours before any reuse


# ------------------------------------------------------------------------------------ distribution chart


def test_distribution_chart_one_dataset() -> None:
    chart = charts.distribution_chart(REAL_GEN, "GEN", top_n=3, label_source="model")
    spec = _spec(chart)
    assert spec["title"]["text"] == "GEN: 1,500 images"
    assert any("model labels" in line for line in spec["title"]["subtitle"])
    values = _values(chart)
    assert {v["dataset"] for v in values} == {"GEN"}
    assert [v["category"] for v in values] == ["animals", "people", "vehicles"]
    assert values[0]["label"] == "450 (30.0%)"
    assert spec["layer"][0]["encoding"]["color"]["scale"]["range"] == [charts.GEN_COLOR]
    assert spec["layer"][1]["mark"]["type"] == "text"


def test_distribution_chart_unknown_dataset() -> None:
    with pytest.raises(NotFoundError, match="SDXL"):
        charts.distribution_chart(REAL_GEN, "SDXL")


# ---------------------------------------------------------------------------------------------- saving


def test_save_chart_writes_png_at_double_scale_and_svg(tmp_path: Path) -> None:
    chart = charts.comparison_chart(REAL_GEN, normalized=True)
    svg_path = charts.save_chart(chart, tmp_path / "compare.svg")
    svg = svg_path.read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<svg") and "REAL: 2,000 images" in svg
    png_path = charts.save_chart(chart, tmp_path / "nested" / "compare.PNG")
    data = png_path.read_bytes()
    assert data[:8] == PNG_MAGIC
    png_width = struct.unpack(">I", data[16:20])[0]  # IHDR width
    svg_width = float(re.search(r'<svg[^>]*\swidth="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    assert png_width == pytest.approx(2 * svg_width, abs=2)


def test_save_chart_rejects_other_suffixes(tmp_path: Path) -> None:
    chart = charts.distribution_chart(REAL_GEN, "REAL")
    with pytest.raises(LabelingError, match=r"\.png or \.svg"):
        charts.save_chart(chart, tmp_path / "chart.pdf")
    assert not (tmp_path / "chart.pdf").exists()


# ------------------------------------------------------------------------------------------------ sizing

LONG_NAMES = ["REAL", "GEN", *[f"generated_by_a_long_model_name_{k}" for k in range(4)]]


def _bars(svg: str) -> list[tuple[float, float]]:
    """(width, height) of every bar in a rendered SVG (vl-convert draws a bar as one 'M x,y h w v h' path)."""
    found = re.findall(r'aria-roledescription="bar" d="M[-\d.]+,[-\d.]+h([\d.]+)v([\d.]+)', svg)
    return [(float(w), float(h)) for w, h in found]


def _svg_height(svg: str) -> float:
    return float(re.search(r'<svg[^>]*\sheight="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]


def _spread(categories: int, datasets: list[str]) -> pd.DataFrame:
    rows = [(name, f"category {c}", 40 + d, 100) for d, name in enumerate(datasets) for c in range(categories)]
    return _dist(rows)


@pytest.mark.parametrize("categories", [1, 5, 50])
def test_exported_chart_grows_with_categories_and_keeps_its_bars(tmp_path: Path, categories: int) -> None:
    svg = charts.save_chart(charts.comparison_chart(_spread(categories, ["REAL", "GEN"])), tmp_path / "c.svg")
    text = svg.read_text(encoding="utf-8")
    bars = _bars(text)
    assert len(bars) == 2 * categories
    # Every bar is drawn at the fixed band thickness and long enough to see, the one category included.
    assert all(width > 100 and height >= 10 for width, height in bars)
    plot = charts.plot_height(categories, 2)
    assert _svg_height(text) > plot + 80  # title, legend and the value axis come on top of the plot
    assert plot >= 60 and plot == max(60, categories * 42)


def test_many_long_dataset_names_neither_overflow_the_chart_nor_squeeze_its_bars(tmp_path: Path) -> None:
    chart = charts.comparison_chart(_spread(3, LONG_NAMES))
    spec = _spec(chart)
    lines = spec["title"]["text"]
    assert lines[0] == "REAL: 100 images · GEN: 100 images"
    assert lines[1:] == [f"{name}: 100 images" for name in LONG_NAMES[2:]]
    svg = charts.save_chart(chart, tmp_path / "c.svg").read_text(encoding="utf-8")
    assert float(re.search(r'<svg[^>]*\swidth="([\d.]+)"', svg).group(1)) == 520  # type: ignore[union-attr]
    bars = _bars(svg)
    assert len(bars) == 18 and min(width for width, _ in bars) > 150


def test_titles_count_in_the_right_number() -> None:
    one = _dist([("REAL", "people", 1, 1), ("GEN", "people", 0, 0)])
    assert _spec(charts.comparison_chart(one))["title"]["text"] == "REAL: 1 image · GEN: 0 images"
    assert _spec(charts.distribution_chart(one, "REAL"))["title"]["text"] == "REAL: 1 image"
