"""Every page's path is a link that works in a real browser on a fresh server: `/datasets` (the README's link)
and the others open their page without Streamlit's "Page not found" pop-up; `/` opens the Datasets page."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser import launch, served_app

WAIT_MS = 60_000
PAGES = {
    "datasets": "Datasets",
    "run": "Run",
    "review": "Review",
    "categories": "Categories",
    "compare": "Compare",
    "audit": "Audit",
    "export": "Export",
}

pytestmark = pytest.mark.browser


@pytest.fixture
def server(db_path: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with served_app(db_path, tmp_path / "cache") as served:
        yield served


def test_every_page_path_opens_its_page_on_a_fresh_server(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, _ = server
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for path, title in [*PAGES.items(), ("", "Datasets")]:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(f"{url}/{path}")
                # The pop-up comes with the navigation, before the page draws: once the title shows, it would be up.
                expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=WAIT_MS)
                expect(page.get_by_text("Page not found")).to_have_count(0)
                assert page.url == f"{url}/{path or 'datasets'}"  # the root opens the Datasets page at its path
                page.close()

            page = browser.new_page()
            page.goto(f"{url}/no-such-page")  # what the check above would see if a path were broken
            expect(page.get_by_text("Page not found")).to_be_visible(timeout=WAIT_MS)
        finally:
            browser.close()
