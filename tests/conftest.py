"""Fixtures shared by the whole suite: real DuckDB files in a temp dir, real images made by Pillow, the CLI."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import streamlit as st
from PIL import Image
from streamlit.testing.v1 import AppTest

from labeling.cli import main as cli_main
from labeling.fake_gemini import FakeGemini
from labeling.store import Store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's config.yaml, keys or AWS profile, or writes into the repo's data/."""
    for variable in (
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        "LABELING_CONFIG",
        "LABELING_DB",
        "LABELING_CACHE_DIR",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LABELING_DB", str(tmp_path / "labeling.duckdb"))
    monkeypatch.setenv("LABELING_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "labeling.duckdb"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    opened = Store(db_path)
    yield opened
    opened.close()


def image_bytes(
    size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30), fmt: str = "JPEG"
) -> bytes:
    """A real encoded image of one colour."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def make_image() -> Callable[..., Path]:
    """Write a real image file (JPEG, PNG, ... by suffix) and return its path."""
    formats = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".gif": "GIF", ".bmp": "BMP"}

    def make(path: Path, size: tuple[int, int] = (64, 48), color: tuple[int, int, int] = (200, 30, 30)) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(image_bytes(size, color, formats.get(path.suffix.lower(), "PNG")))
        return path

    return make


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], db_path: Path) -> Callable[..., CliResult]:
    """Run `labeling --db <temp db> ARGS...` in this process and capture what it prints."""

    def run(*args: str, db: Path | None = None) -> CliResult:
        capsys.readouterr()
        code = cli_main(["--db", str(db or db_path), *args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def as_shown(markdown: object) -> str:
    """What a user reads of an element's markdown source: escaped characters (`\\-`, `\\.`) without the backslash,
    and without the invisible word joiners that keep a URL from becoming a link."""
    return re.sub(r"\\(.)", r"\1", str(markdown)).replace("\u2060", "")


def wait_until(
    predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.02, what: str = "the condition"
) -> None:
    """Poll `predicate` until it is true; fail after `timeout` seconds instead of hanging the suite."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(interval)


@pytest.fixture
def app(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppTest]:
    """The whole app (frame and pages) through AppTest over this test's database; a test file needing more
    (a filled database, a fake S3, one page open) overrides it by asking for it."""
    monkeypatch.chdir(ROOT)
    st.cache_resource.clear()  # the process-wide store must be the one of this test's database
    yield AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    st.cache_resource.clear()


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    """A fake Gemini server of this test alone (real HTTP on 127.0.0.1; the real google-genai client talks to
    it). Files that share one per module, or need other defaults, override it."""
    with FakeGemini() as server:
        yield server
