"""The Categories page in Chromium: the chosen view stays through an add and a rename (the rerun used to show
the List tab again), and the category pickers show every category without scrolling or typing."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labeling.store import Store
from labeling.taxonomy import ensure_categories
from tests.browser import launch, served_app

WAIT_MS = 60_000
CHANGE = "Add · rename · merge · delete"

pytestmark = pytest.mark.browser


@pytest.fixture
def server(db_path: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], list[str]]]:
    with Store(db_path) as store:
        names = [c.name for c in ensure_categories(store)]
    with served_app(db_path, tmp_path / "cache") as (url, process):
        yield url, process, names


def test_the_chosen_view_stays_and_every_category_is_on_screen(
    server: tuple[str, subprocess.Popen[bytes], list[str]],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, _, names = server
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{url}/categories")
            expect(page.get_by_text("List version 1").first).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("tab", name=CHANGE).click()
            merge = page.get_by_test_id("stForm").filter(has_text="Merge these")
            for name in names:  # pills: each one a visible button, no dropdown to open or scroll
                expect(merge.get_by_role("button", name=name, exact=True).first).to_be_visible()

            page.get_by_label("Name", exact=True).fill("memes")
            page.get_by_role("button", name="Add category").click()
            expect(page.get_by_text("Version 2: add 'memes'.")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_role("tab", name=CHANGE)).to_have_attribute("aria-selected", "true")
            rename = page.get_by_test_id("stForm").filter(has_text="Rename")
            rename.get_by_role("radio", name="memes", exact=True).click()  # a one-choice pill is a radio
            rename.get_by_label("New name").fill("image macros")
            rename.get_by_role("button", name="Rename", exact=True).click()
            expect(page.get_by_text("Version 3: rename 'memes'")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_role("tab", name=CHANGE)).to_have_attribute("aria-selected", "true")
            expect(merge.get_by_role("button", name="image macros", exact=True)).to_be_visible()
        finally:
            browser.close()


@pytest.fixture
def example_server(db_path: Path, tmp_path: Path) -> Iterator[str]:
    """The example project after its simulated run, then a rename: every image may need re-categorizing."""
    from labeling import demo
    from labeling.jobs import JobManager
    from labeling.settings import load_settings

    cache = tmp_path / "cache"
    with Store(db_path) as store:
        settings = load_settings(env={"LABELING_CACHE_DIR": str(cache)})
        assert demo.run_example_project(JobManager(store, settings), store, settings).wait(120)
        store.rename_category("objects", "things")
    with served_app(db_path, cache) as (url, _):
        yield url


def test_recategorize_progress_and_result_show_in_its_view(example_server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{example_server}/categories")
            expect(page.get_by_text("List version 2").first).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("tab", name="Re-categorize").click()
            page.get_by_text("Every image not categorized against this list").click()
            expect(page.get_by_text("48 of 48 described images")).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("button", name="Re-categorize", exact=True).click()
            expect(page.get_by_text("Run #2 started")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_role("tab", name="Re-categorize")).to_have_attribute("aria-selected", "true")
            expect(page.get_by_text("completed").first).to_be_visible(timeout=WAIT_MS)  # the fragment polled it
            expect(page.get_by_text("Run #2 gave")).to_be_visible(timeout=WAIT_MS)  # then the view redrew
            expect(page.get_by_text("Nothing to re-categorize for this list.")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_role("tab", name="Re-categorize")).to_have_attribute("aria-selected", "true")
        finally:
            browser.close()
