"""The Review page through Streamlit's AppTest: filters, the focus view's editing, bulk actions, deep links,
the stale-version refusal, the edit log with undo. Data comes from a seed CSV import with Pillow images."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from labeling import review
from labeling.datasets import import_dataset
from labeling.store import Store
from tests.conftest import ROOT
from tests.test_review_store import SEED_ROWS, seed_csv


@pytest.fixture
def filled_db(db_path: Path, tmp_path: Path, make_image: Callable[..., Path]) -> Path:
    folder = tmp_path / "imgs"
    for i, (name, _, _) in enumerate(SEED_ROWS):
        if name != "gone.jpg":
            make_image(folder / name, size=(400, 300), color=(50 * i, 120, 200))
    with Store(db_path) as store:
        import_dataset(store, "REAL", csv_data=seed_csv(), csv_name="real.csv", images_dir=folder)
    return db_path


@pytest.fixture
def app(filled_db: Path, app: AppTest, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("LABELING_REVIEWER", "ana")
    return app


def open_review(at: AppTest, **query: str) -> AppTest:
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    at.switch_page("pages/review.py")
    at.run()
    assert not at.exception, at.exception
    return at


def shared_store() -> Store:
    """The app's own process-wide store (DuckDB lets one process open a file once per configuration)."""
    from pages import common

    return common.store()


def texts(at: AppTest) -> list[str]:
    return [str(t.value) for t in at.text]


def button(at: AppTest, label: str) -> st.testing.v1.element_tree.Button:  # type: ignore[name-defined]
    return next(b for b in at.button if b.label == label)


def alerts(elements: object) -> str:
    """The text of st.success/error/warning elements, with common.plain's escaping removed."""
    return "\n".join(str(e.value).replace("\\", "") for e in elements)  # type: ignore[attr-defined]


def tile_names(at: AppTest) -> list[str]:
    """The file names on the gallery's tiles (each tile's text starts with its name)."""
    return [t.split("\n")[0] for t in texts(at) if "\n" in t]


def gallery_names(at: AppTest) -> list[str]:
    names = {name for name, _, _ in SEED_ROWS}
    return [name for name in tile_names(at) if name in names]


def test_gallery_lists_images_with_counts_and_filters(app: AppTest) -> None:
    open_review(app)
    assert app.title[0].value == "Review"
    assert gallery_names(app) == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "gone.jpg"]
    tiles = [t for t in texts(app) if "\n" in t]
    assert tiles[0].split("\n") == ["a.jpg", "A brown dog on grass", "animals", "not reviewed"]
    assert "gone.jpg\nImage unavailable: not found" in tiles[-1]  # the placeholder says why
    assert any("6 matching" in c.value and "Failed: 1" in c.value for c in app.caption)
    assert len(app.image) >= 6
    app.selectbox(key="rv_state").select("failed").run()
    assert gallery_names(app) == ["c.jpg"]
    app.selectbox(key="rv_state").select("all").run()
    app.text_input(key="rv_text").input("city").run()
    assert gallery_names(app) == ["b.jpg"]
    app.text_input(key="rv_text").input("").run()
    app.selectbox(key="rv_category").select("animals").run()
    assert gallery_names(app) == ["a.jpg", "gone.jpg"]
    app.selectbox(key="rv_sort").select("name_desc").run()
    assert gallery_names(app) == ["gone.jpg", "a.jpg"]
    app.selectbox(key="rv_category").select("(any)").run()
    app.selectbox(key="rv_size").select(12).run()
    assert not app.exception


def test_paging_shows_a_page_at_a_time(app: AppTest, filled_db: Path) -> None:
    open_review(app)
    store = shared_store()
    images = [f"more_{i:03}.jpg" for i in range(30)]
    from labeling.datasets import import_names
    from labeling.names import NameList

    import_names(store, "MANY", NameList(names=images), None)
    app.run()
    app.selectbox(key="rv_dataset").select("MANY").run()
    assert gallery_names(app) == []  # names not in SEED_ROWS; count the tiles instead
    assert tile_names(app) == images[:24]
    assert app.pagination(key="rv_page").value == 1
    app.pagination(key="rv_page").set_value(2).run()
    assert tile_names(app) == images[24:]
    assert "Page 2 of 2" in [c.value for c in app.caption]


def test_focus_view_edits_description_and_categories_and_saves(app: AppTest) -> None:
    open_review(app)
    button(app, "Open").click().run()  # the first tile: a.jpg
    assert "REAL / a.jpg" in texts(app)
    assert dict(app.query_params) == {"dataset": "REAL", "image": "a.jpg"}
    comparison = app.dataframe[0].value
    assert comparison.set_index("field").loc["summary", "model"] == "A brown dog on grass"
    app.text_area[0].input("A brown dog chasing a red ball")
    app.multiselect[0].select("plants")
    button(app, "Save").click().run()
    assert not app.exception, app.exception
    assert "Saved a.jpg (version 1)" in alerts(app.success)
    record = review.focus(shared_store(), review.locate(shared_store(), "REAL", "a.jpg"))
    assert record.human_description is not None
    assert record.human_description["summary"] == "A brown dog chasing a red ball"
    assert record.human_categories == ["animals", "plants"] and record.reviewed and record.reviewer == "ana"
    assert record.model_categories == ["animals"]  # the model's output is untouched
    # The form now shows the saved values; keyboard toggle "2" (animals) removes a category
    assert app.text_area[0].value == "A brown dog chasing a red ball"
    button(app, "animals").click().run()  # the category toggle with shortcut 2
    assert app.multiselect[0].value == ["plants"]
    button(app, "Save & next").click().run()
    assert "REAL / b.jpg" in texts(app)
    assert review.focus(shared_store(), record.image_id).human_categories == ["plants"]


def test_skip_with_unsaved_changes_asks_first_and_previous_goes_back(app: AppTest) -> None:
    open_review(app, dataset="REAL", image="b.jpg")
    app.text_area[0].input("edited but not saved")
    button(app, "Skip").click().run()
    assert "REAL / b.jpg" in texts(app)
    assert "Unsaved changes to description" in alerts(app.warning)
    button(app, "Skip").click().run()
    assert "REAL / c.jpg" in texts(app)
    assert shared_store().review_record(review.locate(shared_store(), "REAL", "b.jpg")).human is None
    button(app, "Previous").click().run()
    assert "REAL / b.jpg" in texts(app)
    button(app, "Gallery").click().run()
    assert "image" not in app.query_params and len(gallery_names(app)) == 6


def test_deep_link_opens_the_image_and_bad_links_say_why(app: AppTest) -> None:
    open_review(app, dataset="REAL", image="d.jpg")
    assert "REAL / d.jpg" in texts(app)
    assert app.text_area[0].value == "A bowl of soup, 50% eaten"
    bad = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=30)
    open_review(bad, dataset="REAL", image="nope.jpg")
    assert "no image named 'nope.jpg'" in alerts(bad.error)


def test_a_stale_save_is_refused_and_shows_the_other_change(app: AppTest) -> None:
    open_review(app, dataset="REAL", image="b.jpg")
    # Bob saves the same image from another session after Ana opened it
    store = shared_store()
    image_id = review.locate(store, "REAL", "b.jpg")
    review.save(store, review.focus(store, image_id), reviewer="bob", categories=["people"])
    app.multiselect[0].select("food")
    button(app, "Save").click().run()
    assert not app.exception, app.exception
    message = alerts(app.error)
    assert "Not saved" in message and "bob" in message and "people" in message
    assert review.focus(store, image_id).categories == ["people"]  # nothing overwritten
    assert app.multiselect[0].value == ["cityscapes", "vehicles", "food"]  # Ana's edit is still in the form
    button(app, "Save mine over theirs").click().run()
    assert review.focus(store, image_id).categories == ["cityscapes", "vehicles", "food"]
    assert [r for r in store.edit_log(image_id=image_id)["reviewer"]] == ["ana", "ana", "bob"]


def test_bulk_select_then_add_category_and_mark_reviewed(app: AppTest) -> None:
    open_review(app)
    selects = [c for c in app.checkbox if c.label == "Select"]
    selects[0].check().run()
    [c for c in app.checkbox if c.label == "Select"][2].check().run()
    app.selectbox(key="rv_bulk_category").select("people").run()
    button(app, "Add category").click().run()
    assert "Added 'people' to 2 of 2" in alerts(app.success)
    button(app, "Mark reviewed").click().run()
    store = shared_store()
    a, c = (review.focus(store, review.locate(store, "REAL", n)) for n in ("a.jpg", "c.jpg"))
    assert a.categories == ["animals", "people"] and c.categories == ["people"]
    assert a.reviewed and c.reviewed and a.reviewer == "ana"
    button(app, "Select this page").click().run()
    assert "Bulk actions: 6 selected" in [e.label for e in app.expander]
    button(app, "Clear selection").click().run()
    assert "Bulk actions: 0 selected" in [e.label for e in app.expander]
    app.selectbox(key="rv_state").select("not_reviewed").run()
    button(app, "Select all 4 matching").click().run()
    assert "Bulk actions: 4 selected" in [e.label for e in app.expander]


def test_edit_log_undo_and_progress_views(app: AppTest) -> None:
    open_review(app, dataset="REAL", image="a.jpg")
    app.multiselect[0].select("food")
    button(app, "Save").click().run()
    button(app, "Gallery").click().run()
    app.button_group(key="rv_view").set_value("Edit log").run()
    log = app.dataframe[0].value
    assert sorted(change.split(":")[0] for change in log["change"]) == ["categories", "reviewed"]
    assert set(log["reviewer"]) == {"ana"}
    store = shared_store()
    edits = store.edit_log(dataset="REAL")
    categories_edit = int(edits[edits["field"] == "categories"]["id"].iloc[0])
    app.selectbox(key="rv_undo_all").set_value(categories_edit).run()
    button(app, "Undo this edit").click().run()
    assert "Undid edit" in alerts(app.success)
    assert review.focus(store, review.locate(store, "REAL", "a.jpg")).categories == ["animals"]
    app.button_group(key="rv_view").set_value("Progress & agreement").run()
    assert not app.exception, app.exception
    progress, agreement = app.dataframe[0].value, app.dataframe[1].value
    assert progress.set_index("dataset").loc["REAL", "reviewed"] == 1
    assert agreement.set_index("category").loc["animals", "precision"] == 1.0


def test_full_resolution_of_a_file_that_does_not_decode_is_a_placeholder(app: AppTest, tmp_path: Path) -> None:
    (tmp_path / "imgs" / "a.jpg").write_bytes((tmp_path / "imgs" / "a.jpg").read_bytes()[:400])  # cut short
    open_review(app, dataset="REAL", image="a.jpg")
    app.toggle(key=next(t.key for t in app.toggle if t.label == "Full resolution")).set_value(True).run()
    assert not app.exception, app.exception
    assert any("Image unavailable: cannot be decoded" in str(w.value).replace("\\", "") for w in app.warning)
