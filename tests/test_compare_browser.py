"""The Compare page in a real Chromium: the chart keeps a readable size for 1 to 50 categories and every label
source, and the statistics table shows all its columns at 1400 px wide.

The chart is measured as drawn: the vega-embed SVG's height, its bars and its category labels. A chart whose
height Streamlit's default autosize ("fit") squeezes shows a 10 px plot for 5 categories and no bars for 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labeling.store import Store
from tests.browser import launch, served_app
from tests.test_analytics import add_dataset, annotate, review

pytestmark = [pytest.mark.browser, pytest.mark.timeout(360)]  # the 50-category page reruns several times

WAIT_MS = 90_000
CATEGORIES = [f"category {k:02d}" for k in range(50)]
CHART = ".vega-embed > svg.marks"  # vega-embed draws the chart as one SVG
BARS = f"{CHART} path[aria-roledescription='bar']"
MIN_CHART_PX = 200  # title, legend, value axis and a plot that shows its bars


@pytest.fixture
def server(db_path: Path, tmp_path: Path) -> Iterator[str]:
    """REAL and GEN, 100 images each, every category on 2 images of each; 2 images reviewed into 'night'."""
    with Store(db_path) as store:
        for name in ("REAL", "GEN"):
            ids = add_dataset(store, name, [f"{name}{i}.jpg" for i in range(100)], label=name)
            annotate(store, {ids[f"{name}{i}.jpg"]: [CATEGORIES[i % 50]] for i in range(100)})
            review(store, ids[f"{name}0.jpg"], categories=["night"])
    with served_app(db_path, tmp_path / "cache") as (url, _):
        yield url


def _open(playwright: Any, url: str) -> Any:
    browser = launch(playwright)
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(f"{url}/compare")
    page.locator(CHART).wait_for()
    return browser, page


def _top(page: Any, top_n: int) -> None:
    box = page.get_by_label("Top N categories (0 = all)")
    box.fill(str(top_n))
    box.press("Enter")


def _measure(page: Any, bars: int) -> dict[str, Any]:
    """Wait for the chart to draw `bars` bars, then measure it: its height, its bars and its category labels."""
    from playwright.sync_api import expect

    expect(page.locator(BARS)).to_have_count(bars)
    boxes = "els => els.map(e => { const r = e.getBoundingClientRect(); "
    boxes += "return {text: e.textContent, y: r.y, width: r.width, height: r.height}; })"
    labels = page.eval_on_selector_all(f"{CHART} .role-axis-label text", boxes)
    return {
        "height": page.locator(CHART).bounding_box()["height"],
        "bars": page.eval_on_selector_all(BARS, boxes),
        "labels": sorted((b for b in labels if b["text"].startswith(("category", "night"))), key=lambda b: b["y"]),
    }


def _readable(shown: dict[str, Any], categories: int) -> float:
    """Assert the chart is readable; its height."""
    assert shown["height"] > MIN_CHART_PX
    assert len(shown["labels"]) == categories
    for above, below in zip(shown["labels"], shown["labels"][1:], strict=False):
        assert above["y"] + above["height"] <= below["y"]  # category labels never overlap
    for bar in shown["bars"]:
        assert bar["height"] >= 10 and bar["width"] >= 50  # every bar is there and visible
    return float(shown["height"])


def test_chart_height_follows_the_categories_and_every_bar_shows(server: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser, page = _open(playwright, server)
        try:
            _readable(_measure(page, bars=102), 51)  # effective labels: the 50 categories and 'night'
            page.get_by_text("Model", exact=True).click()
            heights = {50: _readable(_measure(page, bars=100), 50)}
            for top_n in (5, 1):
                _top(page, top_n)
                heights[top_n] = _readable(_measure(page, bars=2 * top_n), top_n)
            assert heights[1] < heights[5] < heights[50]
            assert heights[50] - heights[5] >= 45 * 32  # 45 more categories add at least their 2 x 16 px bars

            _top(page, 0)
            _measure(page, bars=100)
            page.get_by_text("Human-reviewed only", exact=True).click()
            # one category, 'night', on one image of each: as tall as the model's top 1
            assert _readable(_measure(page, bars=2), 1) == pytest.approx(heights[1], abs=30)
        finally:
            browser.close()


def test_statistics_table_shows_every_column_at_1400_px(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser, page = _open(playwright, server)
        try:
            table = page.get_by_test_id("stDataFrame")
            headers = table.locator("th")
            expect(headers).to_have_count(9)
            assert [headers.nth(i).text_content() for i in range(9)] == [
                "Category",
                "Dataset",
                "Images",
                "Share (95% CI)",
                "Difference (pp)",
                "p",
                "p adjusted",
                "log2 lift",
                "Test",
            ]
            # The grid draws its columns on a canvas: they all fit when its scroller has nothing to scroll
            # sideways and its right edge is inside the 1400 px viewport.
            scroller = table.locator(".dvn-scroller")
            sizes = scroller.evaluate("e => [e.scrollWidth, e.clientWidth]")
            assert sizes[0] <= sizes[1]
            box = scroller.bounding_box()
            assert box["x"] + box["width"] <= 1400
            assert box["width"] >= 800  # the table has the page's width, not a column's
        finally:
            browser.close()
