"""Every page in Chromium over a database where all outside text is hostile (tests/hostile.py): no request
leaves for an outside host, and no element, link, image, formula or reversed line was injected."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from labeling.store import Store
from tests import hostile
from tests.browser import launch, served_app

WAIT_MS = 60_000
# What a Markdown construct from outside would have become in the page.
INJECTED = (
    f'.injected, img[src*="{hostile.OUTSIDE_HOST}"], a[href*="{hostile.OUTSIDE_HOST}"], .katex, '
    f'a[href*="x.png"], img[src$="x.png"]'
)
PAGES = {
    "datasets": "Inspect a dataset",
    "run": "History",
    "review": "matching",
    "categories": "List version",
    "compare": "Reference dataset",
    "audit": "Export the report",
    "export": "Write to a path on this machine",
}

pytestmark = pytest.mark.browser


@pytest.fixture
def server(
    db_path: Path, tmp_path: Path, make_image: Callable[..., Path]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with Store(db_path) as store:
        hostile.seed(store, tmp_path / "images", make_image)
    env = {"LABELING_REVIEWER": hostile.REVIEWER, "LABELING_CAPTION_MODEL": hostile.MODEL}
    with served_app(db_path, tmp_path / "cache", env=env) as served:
        yield served


def _settled(page: Any, heading: str, text: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text(text).first).to_be_visible(timeout=WAIT_MS)
    page.wait_for_selector('[data-test-script-state="notRunning"]', state="attached", timeout=WAIT_MS)


def _injected(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """selector => {
        // the app's components draw inside shadow roots: search those too
        const roots = [document, ...[...document.querySelectorAll('*')].filter(e => e.shadowRoot)
            .map(e => e.shadowRoot)];
        const all = (css) => roots.flatMap(root => [...root.querySelectorAll(css)]);
        return {
        injected: all(selector)
            .map(e => (e.parentElement?.outerHTML || e.outerHTML).slice(0, 300)),
        // a table cell is drawn on its own, so a control there cannot reorder anything outside it; a text field
        // holds the stored text exactly, to be edited and saved back (React may give it a text node or not)
        reversed: all('body *, .grid *, .viewer *')
            .filter(e => !e.closest('[data-testid="stDataFrameResizable"]') && !e.matches('textarea, input'))
            .filter(e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.includes('\\u202e')))
            .map(e => e.outerHTML.slice(0, 120)),
        shownBidi: document.body.innerText.includes('<U+202E>')
            || roots.some(root => root !== document && root.textContent.includes('<U+202E>')),
    }; }""",
        INJECTED,
    )


def test_every_page_keeps_hostile_text_inert(server: tuple[str, subprocess.Popen[bytes]]) -> None:
    from playwright.sync_api import sync_playwright

    url, _ = server
    outside: list[str] = []

    def only_this_machine(route: Any) -> None:
        if route.request.url.startswith(url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1200})
            context.route("**/*", only_this_machine)
            page = context.new_page()
            page.set_default_timeout(WAIT_MS)
            found = {}
            for path, text in PAGES.items():
                page.goto(f"{url}/{path}")
                _settled(page, path.capitalize(), text)
                found[path] = _injected(page)
            for index in range(3):  # each image's focus view: descriptions, a failure message, the model name
                page.goto(f"{url}/review")
                _settled(page, "Review", "matching")
                page.locator(".tile").nth(index).click()  # a tile opens its image
                _settled(page, "Review", "What the model said")
                found[f"review image {index}"] = _injected(page)
        finally:
            browser.close()
    assert outside == []
    assert {where: seen["injected"] for where, seen in found.items() if seen["injected"]} == {}
    assert {where: seen["reversed"] for where, seen in found.items() if seen["reversed"]} == {}
    # The hostile names did reach the pages (as text): the scan looked at something.
    assert [where for where, seen in found.items() if seen["shownBidi"]] != []
