"""The Categories page through AppTest: edits with labels following, history, suggestions (counts and Gemini
against the fake), and a re-categorize run with its estimate and progress; the chosen view stays through every
action, the category pickers show every option, and the example project re-categorizes over many categories."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Button

from labeling import demo
from labeling.categories import Category
from labeling.fake_gemini import FakeGemini
from labeling.jobs import JobManager
from labeling.settings import load_settings
from labeling.store import Store
from labeling.taxonomy import ensure_categories, import_categories
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


VIEWS = ["List", "Add · rename · merge · delete", "History", "Import / export", "Suggestions", "Re-categorize"]
CHANGE, HISTORY, SUGGESTIONS, RECATEGORIZE = VIEWS[1], VIEWS[2], VIEWS[4], VIEWS[5]


def open_view(at: AppTest, label: str) -> AppTest:
    """Click a view's tab (what the browser sends: the stateful tabs' new value)."""
    at.session_state["categories_view"] = label
    return at.run()


def shown_view(at: AppTest) -> str:
    """The view the page shows: the tab it selects, which alone has content (only the open view runs)."""
    selected = VIEWS[at.get_by_key("categories_view").proto.tab_container.default_tab_index]
    filled = [tab.label for tab in at.tabs if tab.children]
    assert filled == [selected], (filled, selected)
    return selected


def run_result(at: AppTest) -> pd.DataFrame:
    """The table of categories the finished run gave."""
    return next(f.value for f in at.dataframe if list(f.value.columns) == ["category", "images"])


def wait_for(at: AppTest, text: str, timeout: float = 60) -> None:
    """Rerun (as the progress fragment's timer does) until `text` is shown."""
    deadline = time.monotonic() + timeout
    while text not in texts(at) and time.monotonic() < deadline:
        time.sleep(0.2)
        at.run()
    assert text in texts(at), texts(at)


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
    open_view(app, CHANGE)
    app.text_input(key="add_name").set_value("memes")
    app.text_area(key="add_definition").set_value("Image macros")
    button(app, "Add category").click()
    app.run()
    assert not app.exception, app.exception
    assert "Version 2: add 'memes'." in texts(app)
    assert shown_view(app) == CHANGE and "memes" in app.pills(key="rename_old").options
    assert app.text_input(key="add_name").value == "" and app.text_area(key="add_definition").value == ""

    app.pills(key="rename_old").set_value("vehicles")
    app.text_input(key="rename_new").set_value("animals")  # taken: refused, and the typed name stays
    button(app, "Rename").click()
    app.run()
    assert app.error and app.text_input(key="rename_new").value == "animals"

    app.pills(key="rename_old").set_value("vehicles")
    app.text_input(key="rename_new").set_value("transport")
    button(app, "Rename").click()
    app.run()
    assert "rename 'vehicles' -> 'transport'" in texts(app)
    assert app.text_input(key="rename_new").value == ""  # done: the field is ready for the next rename
    assert "1 human labels now use the new name" in texts(app)
    assert shown_view(app) == CHANGE
    assert "transport" in app.pills(key="merge_target").options
    assert "vehicles" not in app.pills(key="merge_target").options

    app.pills(key="merge_sources").set_value(["cityscapes"])
    app.pills(key="merge_target").set_value("architecture")
    button(app, "Merge").click()
    app.run()
    assert "merge 'cityscapes' into 'architecture'" in texts(app)
    assert shown_view(app) == CHANGE and "cityscapes" not in app.pills(key="merge_sources").options

    app.pills(key="toggle_name").set_value("memes")
    app.radio(key="toggle_action").set_value("deactivate")
    button(app, "Apply").click()
    app.run()
    assert "deactivate 'memes'" in texts(app) and "1 deactivated" in texts(app)
    app.pills(key="toggle_name").set_value("food")
    app.radio(key="toggle_action").set_value("delete")
    button(app, "Apply").click()
    app.run()
    assert "delete 'food'" in texts(app) and shown_view(app) == CHANGE

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
    open_view(app, HISTORY)
    history = app.dataframe
    assert any("add 'robots'" in set(frame.value.get("note", [])) for frame in history)
    app.selectbox(key="history_version").set_value(1)
    app.run()
    button(app, "Restore this version").click()
    app.run()
    assert "Version 3: restore version 1." in texts(app) and shown_view(app) == HISTORY
    with open_store(db_path) as store:
        assert "robots" not in [c.name for c in store.categories()]


def test_suggestion_counts_and_adding_terms(app: AppTest, described: dict[str, int], db_path: Path) -> None:
    open_view(app, SUGGESTIONS)
    frames = [f.value for f in app.dataframe if "term" in f.value.columns]
    assert frames and {"car", "road", "plate", "kitchen"} <= set(frames[0]["term"])
    app.pills(key="suggest_terms").set_value(["car"])
    app.run()
    button(app, "Add").click()
    app.run()
    assert "import from description terms (add 1)" in texts(app) and shown_view(app) == SUGGESTIONS
    assert button(app, "Ask Gemini").disabled  # no key, no example dataset


def test_gemini_suggestions_edit_and_adopt(
    app: AppTest, described: dict[str, int], db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeGemini() as fake:
        for name, value in fake.env("test-key").items():
            monkeypatch.setenv(name, value)
        st.cache_resource.clear()
        open_view(app, SUGGESTIONS)
        button(app, "Ask Gemini").click()
        app.run()
        assert not app.exception, app.exception
        assert "proposed" in texts(app)
        assert len(fake.records) == 1 and not fake.records[0].has_image
    app.radio(key="suggest_mode").set_value("add")
    button(app, "Adopt").click()
    app.run()
    assert "Gemini suggestions (add" in texts(app) and shown_view(app) == SUGGESTIONS
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
        open_view(app, RECATEGORIZE)
        shown = texts(app)
        assert "1 of 2 described images may change with list version 2." in shown
        assert "Estimate: 1 image, 1 text-only request," in shown
        app.checkbox(key="recat_every").check()
        app.run()
        assert "2 of 2 described images" in texts(app)
        button(app, "Re-categorize").click()
        app.run()
        assert shown_view(app) == RECATEGORIZE and app.get("progress")  # its progress, in this view
        assert "Run #1 started" in texts(app)
        wait_for(app, "completed")
        assert shown_view(app) == RECATEGORIZE
        bars = app.get("progress")
        assert bars and "2 of 2 images" in str(bars[0].proto)
        assert "Nothing to re-categorize for this list." in texts(app)  # the view redrawn once the run ended
        result = run_result(app)
        assert result["images"].sum() >= 2 and "Run #1 gave" in texts(app)
        assert len(fake.records) == 2 and not any(r.has_image for r in fake.records)
    with open_store(db_path) as store:
        assert store.review_record(described["a.jpg"]).human.categories == ["vehicles", "cityscapes"]
        versions = store.fetch_all("SELECT DISTINCT category_list_version FROM current_annotations")
        assert versions == [(2,)]


CATEGORY_PICKERS = ("rename_old", "merge_sources", "merge_target", "toggle_name")


def test_category_pickers_show_every_category(app: AppTest, db_path: Path) -> None:
    open_view(app, CHANGE)
    with open_store(db_path) as store:
        names = [c.name for c in store.categories(include_inactive=True)]
    assert len(names) == 14
    for key in CATEGORY_PICKERS:  # pills: every option on screen, no dropdown to scroll
        assert app.pills(key=key).options == names, key
    assert not app.selectbox and not app.multiselect

    with open_store(db_path) as store:
        import_categories(store, [Category(f"theme {i}") for i in range(40)], mode="add")
    app.run()
    assert shown_view(app) == CHANGE
    names += [f"theme {i}" for i in range(40)]
    # Past 40 a searchable dropdown, which still carries every option.
    assert app.selectbox(key="rename_old").options == names
    assert app.multiselect(key="merge_sources").options == names
    assert app.selectbox(key="merge_target").options == names and app.selectbox(key="toggle_name").options == names


@pytest.fixture
def example_db(db_path: Path, tmp_path: Path) -> Path:
    """The example project after its simulated run (the fake Gemini categorizes each picture by its hue)."""
    with Store(db_path) as store:
        settings = load_settings(env={"LABELING_CACHE_DIR": str(tmp_path / "cache")})
        job = demo.run_example_project(JobManager(store, settings), store, settings)
        assert job.wait(120) and job.progress().status == "completed"
    return db_path


def test_simulated_recategorize_of_the_example_spreads_over_the_list(
    example_db: Path, app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)  # the example datasets need no key: the fake answers
    with open_store(example_db) as store:
        store.rename_category("objects", "things")  # a list change, after which every image is sent again
    open_view(app, RECATEGORIZE)
    app.checkbox(key="recat_every").check()
    app.run()
    assert "48 of 48 described images" in texts(app)
    button(app, "Re-categorize").click()
    app.run()
    wait_for(app, "completed")
    assert shown_view(app) == RECATEGORIZE and "simulated" in texts(app)
    shown = run_result(app)
    with open_store(example_db) as store:
        run_id = int(store.fetch_all("SELECT max(run_id) FROM current_annotations")[0][0])
        rows = store.fetch_all("SELECT categories, simulated, kind FROM current_annotations WHERE run_id = ?", [run_id])
    assert len(rows) == 48 and all(simulated and kind == "categorize" for _, simulated, kind in rows)
    spread = pd.Series([name for categories, _, _ in rows for name in categories]).value_counts()
    assert len(spread) >= 10, spread  # of the 14: no catch-all category
    assert spread.max() <= 48 // 4, spread
    assert dict(zip(shown["category"], shown["images"], strict=True)) == spread.to_dict()  # what the page says
