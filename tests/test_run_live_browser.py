"""The Run page settles by itself when a run ends, in a real browser and without any reload: the progress card
reaches its end, History shows the run completed with its done count, Failures lists the failed image, the
estimate counts what is left, and the finished run's clock stands still across the polls that follow.

The run goes against the fake Gemini server of this test process, with the first request refused (safety).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from labeling.fake_gemini import FakeGemini
from labeling.store import Store
from tests.browser import launch, served_app
from tests.caption_support import add_dataset

WAIT_MS = 60_000
IMAGES = 8
ELAPSED = re.compile(r"elapsed \d+:\d\d:\d\d")

pytestmark = pytest.mark.browser


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(latency_s=0.2) as server:  # slow enough that the run is seen going
        server.inject("safety", times=1)
        yield server


@pytest.fixture
def server(db_path: Path, tmp_path: Path, fake: FakeGemini) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with Store(db_path) as store:
        add_dataset(store, tmp_path, "REAL", IMAGES)
    env = {**fake.env("browser-key"), "LABELING_RETRY_BACKOFF": "0.01"}
    with served_app(db_path, tmp_path / "cache", env=env) as served:
        yield served


def _elapsed_sent(frame: bytes | str, into: list[str]) -> None:
    """Note every 'elapsed' caption the server sends: one each time the live fragment redraws the card."""
    if isinstance(frame, str):
        return
    message = ForwardMsg.FromString(frame)
    if message.WhichOneof("type") == "delta" and message.delta.WhichOneof("type") == "new_element":
        found = ELAPSED.search(message.delta.new_element.markdown.body)
        if found:
            into.append(found.group())


def _table(page: Any, header: str) -> Any:
    """The dataframe that has a column `header` (its cells are in the grid's accessible table, kept hidden)."""
    return page.get_by_test_id("stDataFrame").filter(has=page.locator("th", has_text=re.compile(f"^{header}$")))


def _cell(table: Any, header: str) -> Any:
    """The first row's cell under `header`."""
    table.locator("th", has_text=re.compile(f"^{header}$")).wait_for(state="attached", timeout=WAIT_MS)
    column = table.locator("th").all_text_contents().index(header) + 1
    return table.locator(f"tbody tr[aria-rowindex='2'] td[aria-colindex='{column}']")


def _metric(page: Any, label: str) -> Any:
    metric = page.get_by_test_id("stMetric").filter(has=page.get_by_text(label, exact=True))
    return metric.get_by_test_id("stMetricValue")


def test_a_run_ends_and_the_whole_page_follows_without_a_reload(
    server: tuple[str, subprocess.Popen[bytes]], fake: FakeGemini
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, _ = server
    sent: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(WAIT_MS)
            page.on("websocket", lambda socket: socket.on("framereceived", lambda frame: _elapsed_sent(frame, sent)))
            page.goto(f"{url}/run")
            expect(_metric(page, "Images")).to_have_text(str(IMAGES), timeout=WAIT_MS)
            expect(page.get_by_text("No runs yet.")).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("button", name="Start", exact=True).click()

            card = page.get_by_test_id("stVerticalBlock").filter(has_text=re.compile(r"^Run #1 "))  # its border
            expect(card.get_by_text(f"{IMAGES} of {IMAGES} images")).to_be_visible(timeout=WAIT_MS)
            expect(card.locator("strong", has_text=re.compile("^completed$"))).to_be_visible(timeout=WAIT_MS)
            history = _table(page, "Status")
            expect(_cell(history, "Status")).to_have_text("completed", timeout=WAIT_MS)
            expect(_cell(history, "Done")).to_have_text(str(IMAGES - 1), timeout=WAIT_MS)
            expect(_cell(history, "Failed")).to_have_text("1", timeout=WAIT_MS)
            failures = _table(page, "Example message")
            expect(_cell(failures, "kind")).to_have_text("safety", timeout=WAIT_MS)
            expect(_cell(failures, "Images")).to_have_text("1", timeout=WAIT_MS)
            expect(page.get_by_text("No open failures")).to_have_count(0, timeout=WAIT_MS)
            expect(_metric(page, "Images")).to_have_text("1", timeout=WAIT_MS)  # the estimate: the failed image is left

            shown = card.get_by_text(ELAPSED).inner_text()
            after_end = len(sent)
            while len(sent) < after_end + 2:  # two more polls of the finished run
                page.wait_for_timeout(250)
            assert set(sent[after_end:]) == {ELAPSED.search(shown).group()}  # type: ignore[union-attr]
            expect(card.get_by_text(ELAPSED)).to_have_text(shown, timeout=WAIT_MS)
        finally:
            browser.close()
    assert fake.request_count == IMAGES
