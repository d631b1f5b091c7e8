"""Helpers for the real-browser tests: Debian's Chromium driven by Playwright against `streamlit run`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def need_chromium() -> None:
    """Skip without Chromium on a developer's machine; in CI its absence is a failure."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is required in CI: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium); CI is not set")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_healthy(url: str, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            output = server.stdout.read() if server.stdout else b""
            raise AssertionError(f"streamlit exited with {server.returncode}: {output!r}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"streamlit did not become healthy at {url} within {timeout} s")


@contextmanager
def served_app(
    db_path: Path,
    cache_dir: Path,
    env: Mapping[str, str] | None = None,
    script: str = "serve.py",
    *,
    browser: bool = True,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`streamlit run serve.py` (or `script`) on 127.0.0.1 and a free port over `db_path`; yields (url,
    process). `browser=False`: a test that talks to the server without Chromium."""
    if browser:
        need_chromium()
    environment = {**os.environ, "LABELING_DB": str(db_path), "LABELING_CACHE_DIR": str(cache_dir), **(env or {})}
    for attempt in range(3):  # a probed free port can be taken before Streamlit binds it: then another
        port = free_port()
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port)),
                *("--server.address", "127.0.0.1", "--server.headless", "true"),
                *("--browser.gatherUsageStats", "false"),
            ],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process)
            time.sleep(0.2)
            if process.poll() is None:  # healthy and still ours: not another server answering on that port
                break
        except AssertionError:
            if attempt == 2 or process.poll() is None:
                stop(process)
                raise
        stop(process)
    else:
        raise AssertionError("streamlit could not bind a free port in 3 tries")
    try:
        yield url, process
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the app; DuckDB lets one process open the file, so a test stops it before reading the database."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def launch(playwright: Any) -> Any:
    """Debian's Chromium (never a browser Playwright downloads)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
