"""App start benchmark: how long a person waits for the first page after starting the app, in Chromium.

Each run starts a fresh `streamlit run streamlit_app.py` on an empty database, waits until the server answers
its health check, then opens the start page in Debian's Chromium and times until the page has settled (its
title and first-import form are visible and the script has finished). A second load on the same server is timed
too (what every later visit costs). Baseline in the same run: a two-line Streamlit app showing the same two
texts, first render on a fresh server (the floor: Streamlit's own bundle and session start). Medians.

Run: .venv/bin/python bench/app_start_bench.py [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import cpu_model
from tests.browser import launch, served_app


def _settled(page: object, url: str) -> float:
    started = time.perf_counter()
    page.goto(url)  # type: ignore[attr-defined]
    page.get_by_role("heading", name="Datasets", exact=True).wait_for(timeout=60_000)  # type: ignore[attr-defined]
    page.get_by_text("Import your first dataset").first.wait_for(timeout=60_000)  # type: ignore[attr-defined]
    page.wait_for_selector('[data-test-script-state="notRunning"]', state="attached", timeout=60_000)  # type: ignore[attr-defined]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    server_start, first, again, floor = [], [], [], []
    with sync_playwright() as playwright:
        browser = launch(playwright)
        for run in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                began = time.perf_counter()
                with served_app(Path(tmp) / "db.duckdb", Path(tmp) / "cache") as (url, _):
                    server_start.append(time.perf_counter() - began)
                    page = browser.new_page()
                    first.append(_settled(page, url))
                    again.append(_settled(page, url))
                    page.close()
            with tempfile.TemporaryDirectory() as tmp:
                bare = Path(tmp) / "bare_app.py"
                bare.write_text('import streamlit as st\nst.title("Datasets")\nst.write("Import your first dataset")\n')
                with served_app(Path(tmp) / "db.duckdb", Path(tmp) / "cache", script=str(bare)) as (url, _):
                    page = browser.new_page()
                    floor.append(_settled(page, url))
                    page.close()
            print(
                f"run {run + 1}: bare app {floor[-1]:.2f} s, server {server_start[-1]:.2f} s, "
                f"first page {first[-1]:.2f} s, "
                f"reload {again[-1]:.2f} s",
                flush=True,
            )
        browser.close()
    base = statistics.median(floor)
    print(f"Machine: {cpu_model()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; medians of {args.runs}")
    for name, values in (
        ("a bare two-line app, first render", floor),
        ("server start (health check answers)", server_start),
        ("first page render after start", first),
        ("the same page loaded again", again),
    ):
        print(
            f"  {name:<38} {statistics.median(values):6.2f} s   {statistics.median(values) / base:5.2f}x the bare app"
        )


if __name__ == "__main__":
    main()
