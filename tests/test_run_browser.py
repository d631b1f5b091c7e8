"""The Run page in a real browser: a newcomer creates the example project; the simulated run keeps going and its
progress keeps updating across a page switch and a reload (the job lives in the process-wide JobManager); the
estimate then says why the example's images still count for a real run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.browser import launch, served_app, stop

WAIT_MS = 60_000

pytestmark = pytest.mark.browser


@pytest.fixture
def server(db_path: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with served_app(db_path, tmp_path / "cache") as served:
        yield served


def test_example_project_runs_on_through_page_switches_and_reloads(
    server: tuple[str, subprocess.Popen[bytes]], db_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, process = server
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{url}/run")
            page.get_by_role("button", name="Create an example project").click()
            expect(page.get_by_text("Simulated: answers come from the built-in fake Gemini server")).to_be_visible(
                timeout=WAIT_MS
            )
            page.get_by_role("link", name="Datasets").click()  # leave the page while the run goes on
            expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("link", name="Run").click()
            expect(page.get_by_role("heading", name="Run", exact=True)).to_be_visible(timeout=WAIT_MS)
            page.reload()  # a new session: the job is not in it, it is in the process
            # the fragment polls the process-wide job: it reaches the end without any click
            expect(page.get_by_text("48 of 48 images")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_text("completed").first).to_be_visible(timeout=WAIT_MS)
            # where the estimate is: why a real run still counts the example's images
            note = page.get_by_text("Simulated results do not count toward a real run")
            expect(note).to_contain_text("the estimate still counts 24 images they cover", timeout=WAIT_MS)
        finally:
            browser.close()

    stop(process)  # DuckDB allows one process per file: stop the app before reading it
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("SELECT status, simulated, done FROM runs").fetchall() == [("completed", True, 48)]
        assert con.execute("SELECT count(*), bool_and(simulated) FROM annotations").fetchone() == (48, True)
