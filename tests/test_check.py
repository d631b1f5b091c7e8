"""`labeling check` and the Run page's "Test connection": one small real request, reported step by step."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from labeling.fake_gemini import FakeGemini
from tests.conftest import ROOT, as_shown


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        for name, value in server.env("check-key").items():
            monkeypatch.setenv(name, value)
        yield server


def test_check_reports_every_step_and_costs_one_request(run_cli, fake: FakeGemini) -> None:
    result = run_cli("check")
    assert result.code == 0, result.err
    assert "Gemini gemini-2.5-flash-lite on v1beta at http://127.0.0.1:" in result.out
    for line in (
        "Key accepted: ok",
        "Model found on v1beta: ok",
        "Schema accepted: ok",
        "Service tier: ok (standard requested)",
        "Answer tokens: ",
    ):
        assert line in result.out
    assert fake.request_count == 1
    record = fake.records[0]
    assert record.schema_sent and (record.image_width, record.image_height) == (64, 64)


def test_check_names_the_failing_step(run_cli, fake: FakeGemini, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.valid_keys = {"another-key"}
    result = run_cli("check")
    assert result.code == 1
    assert "Key accepted: FAILED" in result.out and "API key was rejected (400 API_KEY_INVALID)" in result.out
    fake.valid_keys = None
    fake.known_models = {"gemini-2.5-flash-lite"}
    result = run_cli("check", "--model", "gemini-2.0-nope")
    assert result.code == 1 and "Key accepted: ok" in result.out and "Model found on v1beta: FAILED" in result.out
    monkeypatch.setenv("GOOGLE_GENAI_API_VERSION", "v1")
    result = run_cli("check")
    assert result.code == 1 and "Schema accepted: FAILED" in result.out
    assert "set gemini_api_version to v1beta" in result.out


def test_check_tests_the_tier_it_is_given(run_cli, fake: FakeGemini) -> None:
    result = run_cli("check", "--service-tier", "flex", "--model", "gemini-3.5-flash-lite")
    assert result.code == 0 and "Service tier: ok (flex requested)" in result.out
    assert fake.records[0].service_tier == "flex"


def test_check_without_a_key_says_how_to_set_one(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    result = run_cli("check")
    assert result.code == 1 and "Key accepted: FAILED" in result.out and "set GEMINI_API_KEY" in result.out


def test_the_run_page_tests_the_connection(
    fake: FakeGemini, db_path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from labeling.store import Store
    from tests.caption_support import add_dataset

    with Store(db_path) as store:
        add_dataset(store, tmp_path, "REAL", 2)
    monkeypatch.chdir(ROOT)
    st.cache_resource.clear()
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=30)
    try:
        at.run()
        at.switch_page("pages/run.py")
        at.run()
        at.button(key="run_test_connection").click().run()
        assert not at.exception, at.exception
        shown = "\n".join(as_shown(e.value) for e in at.success)
        assert "Key accepted: ok" in shown and "Schema accepted: ok" in shown and fake.request_count == 1
        fake.valid_keys = {"another-key"}
        at.button(key="run_test_connection").click().run()
        refused = "\n".join(as_shown(e.value) for e in at.error)
        assert "Key accepted: FAILED" in refused
    finally:
        st.cache_resource.clear()


def test_outside_text_on_a_page_has_no_links_icons_or_styles() -> None:
    """What servers and models say is shown as typed: markdown sees only escaped characters."""
    from pages.common import plain

    for text in (
        "see https://aistudio.google.com/apikey.",
        ":material/home: :red[alert]",
        "![e](http://h/x)",
        "www.example.com",
        "<b>bold</b> *it*",
        "mail ops@example.com",
    ):
        shown = plain(text)
        assert as_shown(shown) == text
        assert "://" not in shown and ":red[" not in shown and "](" not in shown and "www." not in shown
        # GFM links bare URLs and addresses in the text that remains once escapes are resolved
        unescaped = re.sub(r"\\(.)", r"\1", shown)
        assert not re.search(r"https?://|www\.|\w@\w", unescaped), unescaped


def test_bidirectional_controls_are_shown_not_obeyed() -> None:
    from pages.common import plain

    shown = as_shown(plain("cat\u202egnp.exe and \u2067x\u2069"))
    assert shown == "cat<U+202E>gnp.exe and <U+2067>x<U+2069>"
    assert not any(0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069 for c in plain("a\u202eb"))
