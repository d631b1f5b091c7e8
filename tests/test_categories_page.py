"""The Categories page through AppTest: edits with labels following, history, suggestions (counts and Gemini
against the fake), and a re-categorize run with its estimate and progress."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from labeling.fake_gemini import FakeGemini
from labeling.store import Store
from labeling.taxonomy import ensure_categories
from tests.category_support import add_described, description, set_human
from tests.conftest import as_shown


@pytest.fixture
def app(app: AppTest) -> AppTest:
    app.run()
    app.switch_page("pages/categories.py")
    return app


@pytest.fixture
def described(db_path: Path) -> dict[str, int]:
    with Store(db_path) as store:
        ids = add_described(
            store,
            "REAL",
            [
                ("a.jpg", description("a car on a road", ["car", "road"], "city street"), ["vehicles"]),
                ("b.jpg", description("food on a plate", ["plate"], "kitchen", setting="indoor"), ["food"]),
            ],
        )
        set_human(store, ids["a.jpg"], ["vehicles", "cityscapes"], reviewer="ann")
    return ids


def texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.markdown, *at.text, *at.caption, *at.title, *at.subheader)]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    return "\n".join(as_shown(p) for p in parts)


def button(at: AppTest, label: str) -> Button:
    return next(b for b in at.button if b.label == label)


def open_store(db_path: Path) -> Store:
    return Store(db_path)


def test_page_shows_the_list_and_its_version(app: AppTest) -> None:
    app.run()
    assert not app.exception, app.exception
    assert app.title[0].value == "Categories"
    assert "List version 1 · 14 active · 0 deactivated" in texts(app)
    table = app.dataframe[0].value
    assert "people" in set(table["name"]) and "definition" in table.columns


def test_add_rename_merge_deactivate_delete(
    app: AppTest, described: dict[str, int], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABELING_REVIEWER", "lead")  # the sidebar's default reviewer name
    st.cache_resource.clear()
    app.run()
    app.text_input(key="add_name").set_value("memes")
    app.text_area(key="add_definition").set_value("Image macros")
    button(app, "Add category").click()
    app.run()
    assert not app.exception, app.exception
    assert "Version 2: add 'memes'." in texts(app)

    app.selectbox(key="rename_old").set_value("vehicles")
    app.text_input(key="rename_new").set_value("transport")
    button(app, "Rename").click()
    app.run()
    assert "rename 'vehicles' -> 'transport'" in texts(app)
    assert "1 human labels now use the new name" in texts(app)

    app.multiselect(key="merge_sources").set_value(["cityscapes"])
    app.selectbox(key="merge_target").set_value("architecture")
    button(app, "Merge").click()
    app.run()
    assert "merge 'cityscapes' into 'architecture'" in texts(app)

    app.selectbox(key="toggle_name").set_value("memes")
    app.radio(key="toggle_action").set_value("deactivate")
    button(app, "Apply").click()
    app.run()
    assert "deactivate 'memes'" in texts(app) and "1 deactivated" in texts(app)
    app.selectbox(key="toggle_name").set_value("food")
    app.radio(key="toggle_action").set_value("delete")
    button(app, "Apply").click()
    app.run()
    assert "delete 'food'" in texts(app)

    app.text_input(key="add_name").set_value("a, b")
    button(app, "Add category").click()
    app.run()
    assert any("commas" in e.value for e in app.error)

    with open_store(db_path) as store:
        names = [c.name for c in store.categories()]
        assert "transport" in names and "food" not in names and "cityscapes" not in names
        record = store.review_record(described["a.jpg"])
        assert record.human.categories == ["transport", "architecture"]
        assert store.edit_log(image_id=described["a.jpg"]).iloc[0]["reviewer"] == "lead"
        assert store.category_list_version() == 6


def test_history_shows_versions_and_restores_one(app: AppTest, db_path: Path) -> None:
    with open_store(db_path) as store:
        ensure_categories(store)
        store.add_category("robots")
    app.run()
    history = app.dataframe
    assert any("add 'robots'" in set(frame.value.get("note", [])) for frame in history)
    app.selectbox(key="history_version").set_value(1)
    app.run()
    button(app, "Restore this version").click()
    app.run()
    assert "Version 3: restore version 1." in texts(app)
    with open_store(db_path) as store:
        assert "robots" not in [c.name for c in store.categories()]


def test_suggestion_counts_and_adding_terms(app: AppTest, described: dict[str, int], db_path: Path) -> None:
    app.run()
    frames = [f.value for f in app.dataframe if "term" in f.value.columns]
    assert frames and {"car", "road", "plate", "kitchen"} <= set(frames[0]["term"])
    app.multiselect(key="suggest_terms").set_value(["car"])
    app.run()
    button(app, "Add").click()
    app.run()
    assert "import from description terms (add 1)" in texts(app)
    assert button(app, "Ask Gemini").disabled  # no key, no example dataset


def test_gemini_suggestions_edit_and_adopt(
    app: AppTest, described: dict[str, int], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeGemini() as fake:
        for name, value in fake.env("test-key").items():
            monkeypatch.setenv(name, value)
        st.cache_resource.clear()
        app.run()
        button(app, "Ask Gemini").click()
        app.run()
        assert not app.exception, app.exception
        assert "proposed" in texts(app)
        assert len(fake.records) == 1 and not fake.records[0].has_image
    app.radio(key="suggest_mode").set_value("add")
    button(app, "Adopt").click()
    app.run()
    assert "Gemini suggestions (add" in texts(app)
    with open_store(db_path) as store:
        assert "simulated name" in [c.name for c in store.categories()]


def test_recategorize_affected_with_estimate_and_progress(
    app: AppTest, described: dict[str, int], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_store(db_path) as store:
        store.rename_category("food", "meals")
    with FakeGemini() as fake:
        for name, value in fake.env("test-key").items():
            monkeypatch.setenv(name, value)
        st.cache_resource.clear()
        app.run()
        shown = texts(app)
        assert "1 of 2 described images may change with list version 2." in shown
        assert "Estimate: 1 images, 1 text-only requests" in shown
        app.checkbox(key="recat_every").check()
        app.run()
        assert "2 of 2 described images" in texts(app)
        button(app, "Re-categorize").click()
        app.run()
        deadline = time.monotonic() + 30
        while "completed" not in texts(app) and time.monotonic() < deadline:
            time.sleep(0.2)
            app.run()
        assert "completed" in texts(app), texts(app)
        bars = app.get("progress")
        assert bars and "2 of 2 images" in str(bars[0].proto)
        assert len(fake.records) == 2 and not any(r.has_image for r in fake.records)
    with open_store(db_path) as store:
        assert store.review_record(described["a.jpg"]).human.categories == ["vehicles", "cityscapes"]
        versions = store.fetch_all("SELECT DISTINCT category_list_version FROM current_annotations")
        assert versions == [(2,)]
