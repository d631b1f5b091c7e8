"""The Run page in a real browser: a newcomer creates the example project; the simulated run keeps going and its
progress keeps updating across a page switch and a reload (the job lives in the process-wide JobManager).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
WAIT_MS = 60_000
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(db_path: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium); CI is not set")
    port = _free_port()
    env = {**os.environ, "LABELING_DB": str(db_path), "LABELING_CACHE_DIR": str(tmp_path / "cache")}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, "streamlit exited"
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        yield url, process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_example_project_runs_on_through_page_switches_and_reloads(
        server: tuple[str, subprocess.Popen[bytes]], db_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, process = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{url}/run")
            page.get_by_role("button", name="Create an example project").click()
            expect(page.get_by_text("Simulated: answers come from the built-in fake Gemini server")).to_be_visible(
                timeout=WAIT_MS)
            page.get_by_role("link", name="Datasets").click()  # leave the page while the run goes on
            expect(page.get_by_role("heading", name="Datasets", exact=True)).to_be_visible(timeout=WAIT_MS)
            page.get_by_role("link", name="Run").click()
            expect(page.get_by_role("heading", name="Run", exact=True)).to_be_visible(timeout=WAIT_MS)
            page.reload()  # a new session: the job is not in it, it is in the process
            # the fragment polls the process-wide job: it reaches the end without any click
            expect(page.get_by_text("48 of 48 images")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_text("completed").first).to_be_visible(timeout=WAIT_MS)
        finally:
            browser.close()

    process.terminate()  # DuckDB allows one process per file: stop the app before reading it
    process.wait(timeout=20)
    with duckdb.connect(str(db_path), read_only=True) as con:
        assert con.execute("SELECT status, simulated, done FROM runs").fetchall() == [("completed", True, 48)]
        assert con.execute("SELECT count(*), bool_and(simulated) FROM annotations").fetchone() == (48, True)
