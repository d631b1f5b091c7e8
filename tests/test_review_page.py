"""The Review page through Streamlit's AppTest: filters, names without an image, the focus view's structured and
raw-JSON editing, asking for the reviewer's name, bulk actions, deep links, the stale-version refusal, the edit
log with undo, progress and agreement. Data comes from a seed CSV import with Pillow images.

The gallery's tiles are a components-v2 element ("labeling_gallery"): the tests read its data, and click or tick
a tile by sending the component's own trigger ("open" / "toggle"), as the browser does (see `fire`)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from starlette.routing import Router
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from labeling import picture_routes, review
from labeling.datasets import import_dataset
from labeling.store import Store
from tests.conftest import ROOT
from tests.test_review_store import SEED_ROWS, seed_csv

ALL_NAMES = [name for name, _, _ in SEED_ROWS]
WITH_IMAGE = [name for name in ALL_NAMES if name != "gone.jpg"]  # "gone.jpg" is listed but has no file


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


def focused(at: AppTest) -> str | None:
    """The focus view's heading ("REAL / a.jpg"), None when no image is open."""
    heads = [t.split("  ·  ")[0] for t in texts(at) if t.startswith("REAL / ") or t.startswith("MANY / ")]
    return heads[0] if heads else None


def by_label(elements: Any, label: str) -> Any:
    """The first widget with this label (the filter widgets' keys change with each visit to the gallery)."""
    found = [e for e in elements if e.label == label]
    assert found, f"no widget labelled {label!r}: {[e.label for e in elements]}"
    return found[0]


def button(at: AppTest, label: str) -> Any:
    return by_label(at.button, label)


def alerts(elements: object) -> str:
    """The text of st.success/error/warning elements, with common.plain's escaping removed."""
    return "\n".join(str(e.value).replace("\\", "") for e in elements)  # type: ignore[attr-defined]


def captions(at: AppTest) -> list[str]:
    return [str(c.value).replace("\\", "") for c in at.caption]


def component(at: AppTest, name: str) -> Any:
    """The one components-v2 element of ours named `name` ("gallery", "viewer", ...) on the page."""
    found = [e for e in at.get("bidi_component") if e.proto.component_name == f"labeling_{name}"]
    assert len(found) == 1, f"{len(found)} {name} components on the page"
    return found[0]


def component_data(at: AppTest, name: str) -> dict[str, Any]:
    return dict(json.loads(component(at, name).proto.json))


def tiles(at: AppTest) -> list[dict[str, Any]]:
    return list(component_data(at, "gallery")["tiles"])


def gallery_names(at: AppTest) -> list[str]:
    """The file names on the gallery's tiles, in order."""
    return [str(tile["name"]) for tile in tiles(at)]


def tile(at: AppTest, name: str) -> dict[str, Any]:
    return next(t for t in tiles(at) if t["name"] == name)


def fire(at: AppTest, name: str, event: str, value: object) -> AppTest:
    """Run the app as after the browser component `name` sent trigger `event` with `value`.

    AppTest has no public way to fire a components-v2 trigger, so this sends the widget states of the page
    plus the component's trigger aggregator ("<component id>__events", a JSON list of {event, value}), exactly
    what the frontend's setTriggerValue sends; the component's on_<event>_change callback then runs."""
    element = component(at, name)
    states = at._tree.get_widget_states()
    states.widgets.append(
        WidgetState(
            id=f"$$STREAMLIT_INTERNAL_KEY_{element.proto.id}__events",
            json_trigger_value=json.dumps([{"event": event, "value": value}]),
        )
    )
    at._run(states)
    assert not at.exception, at.exception
    return at


def open_tile(at: AppTest, name: str) -> AppTest:
    """Click a tile (the gallery's "open" trigger)."""
    return fire(at, "gallery", "open", tile(at, name)["id"])


def tick_tile(at: AppTest, name: str) -> AppTest:
    """Tick a tile's box (the gallery's "toggle" trigger)."""
    return fire(at, "gallery", "toggle", tile(at, name)["id"])


def fetch_picture(url: str) -> tuple[int, dict[str, str], bytes]:
    """GET a picture URL from the page through the app's own routes (labeling.picture_routes), as the browser
    does: status, headers, body."""
    router = Router(routes=picture_routes.routes(lambda: ["localhost"]))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost:8501")],
        "server": ("localhost", 8501),
        "client": ("127.0.0.1", 50000),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(router(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return int(start["status"]), headers, body


def saved_description_text(store: Store, image_id: int) -> str:
    """The latest human description exactly as the database holds it (key order included)."""
    rows = store.fetch_all(
        "SELECT CAST(description AS VARCHAR) FROM human_labels WHERE image_id = ? ORDER BY version DESC LIMIT 1",
        [image_id],
    )
    assert rows, "no human label saved"
    return str(rows[0][0])


def test_gallery_lists_images_with_counts_and_filters(app: AppTest) -> None:
    open_review(app)
    assert app.title[0].value == "Review"
    assert gallery_names(app) == WITH_IMAGE  # the name without an image is hidden by default
    assert tiles(app)[0]["lines"] == ["a.jpg", "A brown dog on grass", "animals", "not reviewed"]
    assert not any(t["selected"] for t in tiles(app))
    counts = next(c for c in captions(app) if "matching" in c)
    assert "5 matching" in counts and "Failed: 1" in counts and "1 name without an image hidden" in counts
    for shown in tiles(app):  # every tile's picture is a real thumbnail the browser can fetch
        status, headers, body = fetch_picture(shown["src"])
        assert status == 200 and headers["content-type"] == "image/jpeg", shown["name"]
        assert max(Image.open(io.BytesIO(body)).size) <= 400
    by_label(app.checkbox, "Show names without an image").check().run()
    assert gallery_names(app) == ALL_NAMES
    assert "No image: missing" in tile(app, "gone.jpg")["lines"]  # the tile says why it has no picture
    status, headers, _ = fetch_picture(tile(app, "gone.jpg")["src"])
    assert status == 200 and headers["content-type"] == "image/png" and headers["cache-control"] == "no-cache"
    by_label(app.selectbox, "Status").select("failed").run()
    assert gallery_names(app) == ["c.jpg"]
    by_label(app.selectbox, "Status").select("all").run()
    by_label(app.text_input, "Search names and descriptions").input("city").run()
    assert gallery_names(app) == ["b.jpg"]
    by_label(app.text_input, "Search names and descriptions").input("").run()
    by_label(app.selectbox, "Category").select("animals").run()
    assert gallery_names(app) == ["a.jpg", "gone.jpg"]
    by_label(app.selectbox, "Sort").select("name_desc").run()
    assert gallery_names(app) == ["gone.jpg", "a.jpg"]
    by_label(app.selectbox, "Category").select("(any)").run()
    per_page = by_label(app.selectbox, "Per page")
    assert per_page.options == ["24", "48", "96"] and per_page.value == 48
    per_page.select(24).run()
    assert by_label(app.selectbox, "Per page").value == 24
    assert gallery_names(app) == list(reversed(ALL_NAMES)) and not app.exception


def test_names_without_an_image_are_hidden_until_asked_for(app: AppTest) -> None:
    open_review(app)
    assert "gone.jpg" not in gallery_names(app)
    counts = next(c for c in captions(app) if "matching" in c)
    assert counts.startswith("5 matching") and "Image missing: 1" in counts
    assert "1 name without an image hidden" in counts
    assert by_label(app.checkbox, "Show names without an image").value is False
    # The "Image missing" status shows them whatever the toggle says, and nothing is said to be hidden
    by_label(app.selectbox, "Status").select("missing_image").run()
    assert gallery_names(app) == ["gone.jpg"]
    assert not any("hidden" in c for c in captions(app))
    by_label(app.selectbox, "Status").select("all").run()
    by_label(app.checkbox, "Show names without an image").check().run()
    assert gallery_names(app) == ALL_NAMES
    counts = next(c for c in captions(app) if "matching" in c)
    assert counts.startswith("6 matching") and "hidden" not in counts
    # The choice is kept while an image is open: back in the gallery it still shows them
    open_tile(app, "gone.jpg")
    assert focused(app) == "REAL / gone.jpg"
    assert "No image for this name: missing." in alerts(app.warning)
    button(app, "Gallery").click().run()
    assert by_label(app.checkbox, "Show names without an image").value is True
    assert gallery_names(app) == ALL_NAMES
    by_label(app.checkbox, "Show names without an image").uncheck().run()
    assert gallery_names(app) == WITH_IMAGE
    assert any("1 name without an image hidden" in c for c in captions(app))


def test_paging_shows_a_page_at_a_time(app: AppTest, filled_db: Path) -> None:
    open_review(app)
    store = shared_store()
    images = [f"more_{i:03}.jpg" for i in range(30)]
    from labeling.datasets import import_names
    from labeling.names import NameList

    import_names(store, "MANY", NameList(names=images), None)
    app.run()
    by_label(app.selectbox, "Dataset").select("MANY").run()
    assert gallery_names(app) == images  # 48 a page by default: one page, no page picker
    assert not app.pagination and "Page 1 of 1" in " ".join(captions(app))
    by_label(app.selectbox, "Per page").select(24).run()
    assert gallery_names(app) == images[:24]
    assert len(app.pagination) == 1 and app.pagination[0].value == 1
    app.pagination[0].set_value(2).run()
    assert gallery_names(app) == images[24:]
    assert any(c.startswith("Page 2 of 2") for c in captions(app))


def test_focus_view_edits_description_and_categories_and_saves(app: AppTest) -> None:
    open_review(app)
    open_tile(app, "a.jpg")  # a click on the first tile
    assert focused(app) == "REAL / a.jpg"
    assert dict(app.query_params) == {"dataset": "REAL", "image": "a.jpg"}
    assert component_data(app, "viewer")["name"] == "a.jpg"
    comparison = app.dataframe[0].value
    assert comparison.set_index("field").loc["summary", "model"] == "A brown dog on grass"
    # One input per field of the description, in its own order
    assert by_label(app.text_area, "summary").value == "A brown dog on grass"
    assert by_label(app.text_input, "setting").value == "park"
    assert by_label(app.multiselect, "objects").value == ["dog", "ball"]
    by_label(app.text_area, "summary").input("A brown dog chasing a red ball")
    by_label(app.multiselect, "objects").unselect("ball")
    by_label(app.multiselect, "Categories").select("plants")
    button(app, "Save").click().run()
    assert not app.exception, app.exception
    assert "Saved a.jpg (version 1)" in alerts(app.success)
    store = shared_store()
    image_id = review.locate(store, "REAL", "a.jpg")
    record = review.focus(store, image_id)
    assert record.human_description == {
        "summary": "A brown dog chasing a red ball",
        "setting": "park",
        "objects": ["dog"],
    }
    assert list(record.human_description) == ["summary", "setting", "objects"]  # the fields keep their order
    assert record.human_categories == ["animals", "plants"] and record.reviewed and record.reviewer == "ana"
    assert record.model_categories == ["animals"]  # the model's output is untouched
    # The form now shows the saved values; keyboard toggle "2" (animals) removes a category
    assert by_label(app.text_area, "summary").value == "A brown dog chasing a red ball"
    assert by_label(app.multiselect, "objects").value == ["dog"]
    toggle = button(app, "animals")  # the category toggle with shortcut 2
    assert toggle.proto.shortcut == "2"
    assert component_data(app, "keys")["pending"] is False  # nothing unsaved yet
    toggle.click().run()
    assert by_label(app.multiselect, "Categories").value == ["plants"]
    assert component_data(app, "keys")["pending"] is True  # the browser now guards leaving the page
    # The category finder toggles what it picks, then is ready for the next one
    by_label(app.selectbox, "Find a category (C, then type; Enter toggles it)").select("food").run()
    assert by_label(app.multiselect, "Categories").value == ["plants", "food"]
    assert by_label(app.selectbox, "Find a category (C, then type; Enter toggles it)").value == ""
    button(app, "Save & next").click().run()
    assert focused(app) == "REAL / b.jpg"
    assert review.focus(store, image_id).human_categories == ["plants", "food"]


def test_skip_with_unsaved_changes_asks_first_and_previous_goes_back(app: AppTest) -> None:
    open_review(app, dataset="REAL", image="b.jpg")
    by_label(app.text_area, "summary").input("edited but not saved")
    button(app, "Skip").click().run()
    assert focused(app) == "REAL / b.jpg"
    assert "Unsaved changes to description" in alerts(app.warning)
    button(app, "Skip").click().run()
    assert focused(app) == "REAL / c.jpg"
    assert shared_store().review_record(review.locate(shared_store(), "REAL", "b.jpg")).human is None
    button(app, "Previous").click().run()
    assert focused(app) == "REAL / b.jpg"
    assert by_label(app.text_area, "summary").value == "A busy city street at night"  # the edit was dropped
    button(app, "Gallery").click().run()
    assert focused(app) is None
    assert "image" not in app.query_params and gallery_names(app) == WITH_IMAGE


def test_deep_link_opens_the_image_and_bad_links_say_why(app: AppTest) -> None:
    open_review(app, dataset="REAL", image="d.jpg")
    assert focused(app) == "REAL / d.jpg"
    assert by_label(app.text_area, "summary").value == "A bowl of soup, 50% eaten"
    bad = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=30)
    open_review(bad, dataset="REAL", image="nope.jpg")
    assert "no image named 'nope.jpg'" in alerts(bad.error)
    assert focused(bad) is None and gallery_names(bad) == WITH_IMAGE
    unknown = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=30)
    open_review(unknown, dataset="NOPE", image="a.jpg")
    assert "There is no dataset named 'NOPE'" in alerts(unknown.error)


def test_a_stale_save_is_refused_and_shows_the_other_change(app: AppTest) -> None:
    open_review(app, dataset="REAL", image="b.jpg")
    # Bob saves the same image from another session after Ana opened it
    store = shared_store()
    image_id = review.locate(store, "REAL", "b.jpg")
    review.save(store, review.focus(store, image_id), reviewer="bob", categories=["people"])
    by_label(app.multiselect, "Categories").select("food")
    button(app, "Save").click().run()
    assert not app.exception, app.exception
    message = alerts(app.error)
    assert "Not saved" in message and "bob" in message
    assert "categories" in message and "cityscapes, vehicles" in message and "people" in message  # before/after
    changes = app.dataframe[0].value
    assert list(changes.columns) == ["field", "when you opened it", "now"]
    assert changes.set_index("field").loc["categories"].tolist() == ["cityscapes, vehicles", "people"]
    assert review.focus(store, image_id).categories == ["people"]  # nothing overwritten
    assert by_label(app.multiselect, "Categories").value == ["cityscapes", "vehicles", "food"]  # Ana's edit kept
    button(app, "Save mine over theirs").click().run()
    assert review.focus(store, image_id).categories == ["cityscapes", "vehicles", "food"]
    assert [r for r in store.edit_log(image_id=image_id)["reviewer"]] == ["ana", "ana", "bob"]


def dialog_titles(at: AppTest) -> list[str]:
    return [str(block.proto.dialog.title) for block in at.get("dialog")]


def click_in_name_dialog(at: AppTest) -> AppTest:
    """Press "Save with this name" in the "Who is reviewing?" dialog.

    In the browser the dialog is a fragment and a click in it reruns the dialog alone. AppTest runs the whole
    script on every interaction, and the page draws the dialog only in the run where Save was pressed, so the
    click reaches the dialog only if Save is pressed along with it (the form still holds the same values)."""
    button(at, "Save with this name").click()
    button(at, "Save").click()
    at.run()
    assert not at.exception, at.exception
    return at


def test_saving_without_a_name_asks_for_it_and_records_it(app: AppTest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABELING_REVIEWER", raising=False)
    open_review(app, dataset="REAL", image="a.jpg")
    by_label(app.multiselect, "Categories").select("food")
    button(app, "Save").click().run()
    assert not app.exception, app.exception
    store = shared_store()
    image_id = review.locate(store, "REAL", "a.jpg")
    assert store.review_record(image_id).human is None  # nothing saved before a name is given
    assert dialog_titles(app) == ["Who is reviewing?"]
    click_in_name_dialog(app)  # without a name
    assert "Type your name first" in alerts(app.warning)
    assert store.review_record(image_id).human is None
    by_label(app.text_input, "Your name").input("Ada")
    click_in_name_dialog(app)
    assert "Saved a.jpg (version 1)" in alerts(app.success)
    assert dialog_titles(app) == []
    assert store.fetch_all("SELECT reviewer FROM human_labels WHERE image_id = ?", [image_id]) == [("Ada",)]
    reviewers = store.fetch_all("SELECT DISTINCT reviewer FROM edit_log WHERE image_id = ?", [image_id])
    assert reviewers == [("Ada",)]
    assert review.focus(store, image_id).categories == ["animals", "food"]
    # The name is kept for the next save: no question asked again
    by_label(app.multiselect, "Categories").unselect("food")
    button(app, "Save").click().run()
    assert dialog_titles(app) == [] and "Saved a.jpg (version 2)" in alerts(app.success)
    assert review.focus(store, image_id).categories == ["animals"]
    assert {r for (r,) in store.fetch_all("SELECT reviewer FROM edit_log")} == {"Ada"}
    assert "anonymous" not in {r for (r,) in store.fetch_all("SELECT reviewer FROM human_labels")}


def test_edit_as_json_refuses_invalid_json_and_keeps_key_order(app: AppTest) -> None:
    open_review(app, dataset="REAL", image="a.jpg")
    by_label(app.toggle, "Edit as JSON").set_value(True).run()
    raw = by_label(app.text_area, "Description (JSON)")
    assert json.loads(raw.value) == {"summary": "A brown dog on grass", "setting": "park", "objects": ["dog", "ball"]}
    assert not [t for t in app.text_area if t.label == "summary"]  # one text area instead of the fields
    raw.input('{"summary": "A dog", "setting": "park",}')
    button(app, "Save").click().run()
    assert not app.exception, app.exception
    assert "The description is not valid JSON" in alerts(app.error) and "line 1" in alerts(app.error)
    store = shared_store()
    image_id = review.locate(store, "REAL", "a.jpg")
    assert store.review_record(image_id).human is None  # nothing saved
    assert by_label(app.text_area, "Description (JSON)").value == '{"summary": "A dog", "setting": "park",}'
    by_label(app.text_area, "Description (JSON)").input('["not", "an", "object"]')
    button(app, "Save").click().run()
    assert "must be a JSON object" in alerts(app.error)
    assert store.review_record(image_id).human is None
    typed = '{"objects": ["dog"], "summary": "A dog in the park", "weather": "sunny", "setting": "park"}'
    by_label(app.text_area, "Description (JSON)").input(typed)
    button(app, "Save").click().run()
    assert not app.exception, app.exception
    assert "Saved a.jpg (version 1)" in alerts(app.success)
    text = saved_description_text(store, image_id)
    assert list(json.loads(text)) == ["objects", "summary", "weather", "setting"]  # the order typed
    assert json.loads(text) == json.loads(typed)
    assert text.index('"objects"') < text.index('"summary"') < text.index('"weather"') < text.index('"setting"')


def test_bulk_select_then_add_category_and_mark_reviewed_and_undo_as_one(app: AppTest) -> None:
    open_review(app)
    store = shared_store()
    before = {n: review.focus(store, review.locate(store, "REAL", n)).categories for n in ("a.jpg", "c.jpg")}
    tick_tile(app, "a.jpg")
    tick_tile(app, "c.jpg")
    assert "Bulk actions: 2 selected" in [e.label for e in app.expander]
    assert [t["name"] for t in tiles(app) if t["selected"]] == ["a.jpg", "c.jpg"]
    app.selectbox(key="rv_bulk_category").select("people").run()
    button(app, "Add category").click().run()
    assert "Added 'people' to 2 of 2" in alerts(app.success)
    button(app, "Mark reviewed").click().run()
    assert "Marked reviewed: 2 of 2" in alerts(app.success)
    a, c = (review.focus(store, review.locate(store, "REAL", n)) for n in ("a.jpg", "c.jpg"))
    assert a.categories == ["animals", "people"] and c.categories == ["people"]
    assert a.reviewed and c.reviewed and a.reviewer == "ana"
    log = store.edit_log(dataset="REAL")  # each bulk action is ONE entry
    assert len(log) == 2 and list(log["images"]) == [2, 2] and set(log["reviewer"]) == {"ana"}
    tick_tile(app, "a.jpg")  # a second tick takes it out again
    assert "Bulk actions: 1 selected" in [e.label for e in app.expander]
    button(app, "Select this page").click().run()
    assert "Bulk actions: 5 selected" in [e.label for e in app.expander]
    button(app, "Clear selection").click().run()
    assert "Bulk actions: 0 selected" in [e.label for e in app.expander]
    assert not any(t["selected"] for t in tiles(app))
    by_label(app.selectbox, "Status").select("not_reviewed").run()
    assert gallery_names(app) == ["b.jpg", "d.jpg", "e.jpg"]
    button(app, "Select all 3 matching").click().run()
    assert "Bulk actions: 3 selected" in [e.label for e in app.expander]
    # Undoing the bulk "add category" undoes it on both images at once
    app.button_group(key="rv_view").set_value("Edit log").run()
    history = app.dataframe[0].value
    assert list(history["change"]) == ["marked reviewed", "added category 'people'"]
    assert list(history["image"]) == ["2 images", "2 images"]
    added = int(history[history["change"] == "added category 'people'"]["id"].iloc[0])
    app.selectbox(key="rv_undo_all").set_value(added).run()
    button(app, "Undo this edit").click().run()
    assert not app.exception, app.exception
    assert f"Undid bulk edit #{added} on 2 images." in alerts(app.success)
    a, c = (review.focus(store, review.locate(store, "REAL", n)) for n in ("a.jpg", "c.jpg"))
    assert before == {"a.jpg": ["animals"], "c.jpg": None}  # c.jpg failed: no categories from the model
    assert a.categories == before["a.jpg"] and c.categories == before["c.jpg"]
    assert a.reviewed and c.reviewed  # the other bulk action stays


def test_edit_log_undo_and_progress_views(app: AppTest) -> None:
    open_review(app, dataset="REAL", image="a.jpg")
    by_label(app.multiselect, "Categories").select("food")
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
    assert f"Undid edit #{categories_edit}" in alerts(app.success)
    assert review.focus(store, review.locate(store, "REAL", "a.jpg")).categories == ["animals"]
    app.button_group(key="rv_view").set_value("Progress & agreement").run()
    assert not app.exception, app.exception
    progress, agreement = app.dataframe[0].value, app.dataframe[1].value
    assert progress.set_index("dataset").loc["REAL", "reviewed"] == 1
    assert agreement.set_index("category").loc["animals", "precision"] == "100%"


def test_agreement_shows_undefined_precision_and_recall_as_a_dash(app: AppTest) -> None:
    open_review(app, dataset="REAL", image="a.jpg")
    # The reviewer keeps the model's "animals" on a.jpg and adds "food", which the model never said
    by_label(app.multiselect, "Categories").select("food")
    button(app, "Save").click().run()
    button(app, "Gallery").click().run()
    app.button_group(key="rv_view").set_value("Progress & agreement").run()
    assert not app.exception, app.exception
    assert any("— means undefined" in c for c in captions(app))
    agreement = app.dataframe[1].value.set_index("category")
    assert agreement.loc["animals", ["precision", "recall"]].tolist() == ["100%", "100%"]
    # food: the reviewer put a.jpg there, the model never did: precision undefined, recall 0
    assert agreement.loc["food", ["precision", "recall"]].tolist() == ["—", "0%"]


def test_full_resolution_of_a_file_that_does_not_decode_is_a_placeholder(app: AppTest, tmp_path: Path) -> None:
    (tmp_path / "imgs" / "a.jpg").write_bytes((tmp_path / "imgs" / "a.jpg").read_bytes()[:400])  # cut short
    open_review(app, dataset="REAL", image="a.jpg")
    assert not app.exception, app.exception
    viewer = component_data(app, "viewer")
    assert viewer["name"] == "a.jpg"
    status, headers, body = fetch_picture(viewer["original"])  # what the viewer loads at full resolution
    assert status == 200 and headers["content-type"] == "image/png"
    assert headers["cache-control"] == "no-cache"  # a placeholder, fetched again once the file is fixed
    placeholder = Image.open(io.BytesIO(body))
    assert placeholder.format == "PNG" and placeholder.getpixel((placeholder.width // 2, 3))[:3] == (228, 228, 228)
