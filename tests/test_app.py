"""The app frame and the Datasets page, driven through Streamlit's AppTest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from labeling.store import Store
from tests.conftest import as_shown

PAGE_FILES = ["datasets", "run", "review", "categories", "compare", "export"]


def _texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.markdown, *at.text, *at.caption, *at.title, *at.subheader)]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    return "\n".join(as_shown(p) for p in parts)


def test_frame_shows_db_path_and_key_status_without_the_key(
    app: AppTest, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "secret-key-never-shown")
    app.run()
    assert not app.exception
    shown = _texts(app) + "\n".join(str(e.value) for e in app.sidebar.text)
    assert str(db_path) in shown
    assert "API key: set" in shown
    assert "secret-key-never-shown" not in shown
    assert app.title[0].value == "Datasets"


def test_frame_says_when_no_key_is_set(app: AppTest) -> None:
    app.run()
    assert "API key: not set" in _texts(app)


@pytest.mark.parametrize("page", PAGE_FILES)
def test_every_page_renders(app: AppTest, page: str) -> None:
    app.run()
    app.switch_page(f"pages/{page}.py")
    app.run()
    assert not app.exception, app.exception
    assert app.title[0].value.lower() == page


def test_datasets_page_imports_a_list_and_folder(
    app: AppTest, tmp_path: Path, db_path: Path, make_image: Callable[..., Path]
) -> None:
    make_image(tmp_path / "imgs" / "a.jpg")
    make_image(tmp_path / "imgs" / "sub" / "b.png")
    listing = tmp_path / "list.csv"
    listing.write_text("image_name\na.jpg\nb.jpg\ngone.jpg\n../x.jpg\n")
    app.run()
    app.text_input(key="import_name").input("REAL")
    app.selectbox(key="import_label").select("REAL")
    app.text_input(key="import_csv_path").input(str(listing))
    app.text_input(key="import_images_dir").input(str(tmp_path / "imgs"))
    app.button(key="import_button").click()
    app.run()
    assert not app.exception, app.exception
    assert "Imported REAL" in _texts(app)
    metrics = {m.label: m.value for m in app.metric}
    assert metrics == {
        "Listed": "4",
        "Found": "2",
        "Missing": "1",
        "Ambiguous": "0",
        "Rejected": "1",
        "Duplicates": "0",
    }
    tabs = [tab.label for tab in app.tabs]
    assert tabs == ["Found (2)", "Missing (1)", "Rejected (1)"]
    missing = app.tabs[1].dataframe[0].value
    assert missing["name"].tolist() == ["gone.jpg"]
    table = next(frame.value for frame in app.dataframe if "Dataset" in frame.value.columns)
    assert table["Dataset"].tolist() == ["REAL"]
    st.cache_resource.clear()
    with Store(db_path) as store:
        assert store.dataset_summary("REAL").found == 2


def test_datasets_page_shows_errors_without_traceback(app: AppTest, tmp_path: Path) -> None:
    app.run()
    app.text_input(key="import_name").input("X")
    app.text_input(key="import_csv_path").input(str(tmp_path / "nope.csv"))
    app.button(key="import_button").click()
    app.run()
    assert not app.exception
    assert "does not exist" in app.error[0].value


def test_datasets_page_deletes_a_dataset(app: AppTest, db_path: Path) -> None:
    with Store(db_path) as store:
        store.save_dataset("OLD", label="GEN", source_kind="none")
    app.run()
    app.selectbox(key="delete_name").select("OLD")
    app.checkbox(key="delete_sure").check()
    app.run()
    app.button(key="delete_button").click()
    app.run()
    assert not app.exception
    assert "No datasets yet" in _texts(app)
