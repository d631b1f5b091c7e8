"""Review v2 in a real browser: the structured editor, any category from the keyboard, zoom, the reviewer name
kept by the browser, and a bulk change undone as one action.

One server over one database walks a new reviewer through it; the database and an export are read after the
server stops (DuckDB lets one process open the file).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from labeling.datasets import import_dataset
from labeling.exporting import export_bytes
from labeling.store import Store
from tests.browser import launch, served_app, stop

WAIT_MS = 30_000
pytestmark = pytest.mark.browser

# A description in the model's order (the fused schema), nested keys in theirs.
MODEL = {
    "summary": "A fishing boat in a harbour",
    "objects": [{"name": "boat", "attributes": ["white", "wooden"]}, {"name": "rope", "attributes": ["blue"]}],
    "scene": {"indoor_outdoor": "outdoor", "environment": "a sunny harbour"},
    "style": {"genre": "photo", "lighting": "daylight", "colors": ["white", "blue"]},
    "camera": {"shot": "wide", "fov": "normal", "lens": "35mm"},
    "text": "none",
    "quality": {"aesthetic": "pleasant", "issues": []},
}
TWELFTH = "text and documents"  # the 12th of the default list: out of reach of keys 1-9


@pytest.fixture
def review_db(db_path: Path, tmp_path: Path, make_image: Callable[..., Path]) -> Path:
    folder = tmp_path / "imgs"
    make_image(folder / "p.jpg", size=(1600, 1200), color=(40, 90, 160))
    make_image(folder / "q.jpg", size=(640, 480), color=(160, 90, 40))
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["image_name", "description", "categories"])
    writer.writerow(["p.jpg", json.dumps(MODEL), "vehicles"])
    writer.writerow(["q.jpg", json.dumps({**MODEL, "summary": "A red wall"}), "architecture"])
    with Store(db_path) as store:
        import_dataset(store, "REAL", csv_data=rows.getvalue().encode(), csv_name="real.csv", images_dir=folder)
    return db_path


def _header(page) -> object:  # type: ignore[no-untyped-def]
    return page.get_by_text("REAL / p.jpg", exact=False)


def _keys_ready(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the focus view's key handler is live (it mounts just after the view is drawn)."""
    page.wait_for_function("() => (document.documentElement.dataset.reviewKeys || '').startsWith('rv_')")


def test_editor_keyboard_zoom_name_and_bulk_undo(
    review_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from playwright.sync_api import expect, sync_playwright

    monkeypatch.delenv("LABELING_REVIEWER", raising=False)
    with served_app(review_db, tmp_path / "cache", {"LABELING_REVIEWER": ""}) as (url, process):
        with sync_playwright() as playwright:
            browser = launch(playwright)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(WAIT_MS)
                page.goto(f"{url}/review?dataset=REAL")
                page.locator(".tile", has_text="p.jpg").click()  # a click on the tile opens it
                expect(_header(page)).to_be_visible()

                # The structured editor: a nested field and an object, then a save that asks for a name once.
                environment = page.get_by_label("scene · environment")
                expect(environment).to_have_value("a sunny harbour")
                environment.fill("a rainy harbour at dusk")
                grid = page.locator(".st-key-rv_editor [data-testid='stDataFrame']").first
                box = grid.bounding_box()
                assert box is not None
                editor = page.locator("[data-testid='glide-cell-editor'] textarea, #portal textarea").first
                for _ in range(5):  # the grid draws itself a moment after it appears; a reviewer clicks again
                    page.mouse.dblclick(box["x"] + box["width"] * 0.75, box["y"] + 35 + 17)  # row 1, attributes
                    if editor.is_visible():
                        break
                    page.wait_for_timeout(500)
                editor.fill("white, wooden, rusty")
                page.keyboard.press("Enter")
                page.wait_for_timeout(500)  # the grid hands its edit to the form a moment after Enter
                page.keyboard.press("Control+S")
                expect(page.get_by_text("Who is reviewing?")).to_be_visible()
                page.get_by_label("Your name").fill("Ada")
                page.get_by_role("button", name="Save with this name").click()
                expect(page.get_by_text("Saved p.jpg (version 1)")).to_be_visible()

                # The name sticks: a reload starts with it (kept in this browser).
                page.wait_for_function("() => window.localStorage.getItem('labeling.reviewer') === 'Ada'")
                page.reload()
                expect(_header(page)).to_be_visible()
                expect(page.get_by_role("textbox", name="Reviewer")).to_have_value("Ada")
                expect(page.get_by_label("scene · environment")).to_have_value("a rainy harbour at dusk")

                # The 12th category from the keyboard: C focuses the finder, typing filters, Enter toggles.
                page.evaluate("document.activeElement?.blur()")
                _keys_ready(page)
                page.keyboard.press("c")
                page.keyboard.type("text and doc")
                expect(page.get_by_role("option", name=TWELFTH)).to_be_visible()  # as a reviewer sees it filtered
                page.keyboard.press("Enter")
                expect(page.get_by_label(f"Remove {TWELFTH}", exact=True)).to_be_visible()
                page.keyboard.press("Control+S")
                expect(page.get_by_text("Saved p.jpg (version 2)")).to_be_visible()

                # `?` lists the shortcuts.
                page.evaluate("document.activeElement?.blur()")
                _keys_ready(page)
                page.keyboard.press("?")
                expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
                page.keyboard.press("Escape")
                expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_have_count(0)

                # Zoom to 100% of the original's 1600 px, then back to fit.
                viewer = page.locator(".viewer")
                viewer.get_by_role("button", name="100%").click()
                expect(viewer).to_have_attribute("data-zoom", "100")
                expect(viewer.locator(".zoom")).to_have_text("100% of 1600×1200")
                width = viewer.locator("img").evaluate("img => img.getBoundingClientRect().width")
                assert width == pytest.approx(1600, abs=2)
                viewer.get_by_role("button", name="Fit").click()
                expect(viewer).not_to_have_attribute("data-zoom", "100")

                # Unsaved changes: a link asks the browser's question (dismissed: we stay), G warns once.
                _keys_ready(page)
                page.get_by_label("scene · environment").fill("typed, never saved")
                asked: list[str] = []
                page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
                page.get_by_role("link", name="Compare").click()
                expect(_header(page)).to_be_visible()
                assert asked and "unsaved changes" in asked[0]
                page.evaluate("document.activeElement?.blur()")
                page.keyboard.press("g")
                expect(page.get_by_text("Unsaved changes to description")).to_be_visible()

                # A bulk change is one entry in the edit log and undoes as one action.
                page.keyboard.press("g")
                expect(page.locator(".tile")).to_have_count(2)
                page.get_by_text("Bulk actions").click()
                page.get_by_role("button", name="Select this page").click()
                page.get_by_role("button", name="Add category").click()
                expect(page.get_by_text("Added 'people' to 2 of 2 selected images")).to_be_visible()
                page.get_by_role("radio", name="Edit log").or_(page.get_by_role("button", name="Edit log")).click()
                page.get_by_role("button", name="Undo this edit").click()
                expect(page.get_by_text("Undid bulk edit")).to_be_visible()
            finally:
                browser.close()
        stop(process)

    with duckdb.connect(str(review_db), read_only=True) as con:
        stored, reviewer, categories = con.execute(
            "SELECT CAST(h.description AS VARCHAR), h.reviewer, h.categories FROM human_labels h "
            "JOIN images i ON i.id = h.image_id WHERE i.name = 'p.jpg'"
        ).fetchone()
        undone = con.execute("SELECT count(*) FROM edit_log WHERE bulk_id IS NOT NULL AND undone").fetchone()
    saved = json.loads(stored)
    assert list(saved) == list(MODEL)  # field order as the model wrote it
    assert list(saved["scene"]) == ["indoor_outdoor", "environment"]
    assert saved["scene"]["environment"] == "a rainy harbour at dusk"
    assert saved["objects"][0] == {"name": "boat", "attributes": ["white", "wooden", "rusty"]}
    assert reviewer == "Ada"
    assert TWELFTH in categories and "people" not in categories  # the bulk add was undone
    assert undone == (2,)
    with Store(review_db) as store:
        exported = export_bytes(store, "REAL").decode("utf-8")
    row = next(r for r in csv.DictReader(io.StringIO(exported)) if r["image_name"] == "p.jpg")
    assert list(json.loads(row["description"])) == list(MODEL)  # and so does the export
