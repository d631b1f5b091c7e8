"""The Review page in a real browser: Debian's Chromium driven by Playwright against `streamlit run`.

The test fills a temp database (seed CSV import + Pillow images), starts the app on 127.0.0.1 itself, opens a
deep link, edits a description and categories with the keyboard, saves with Ctrl+S, reloads, and finally reads
the database after stopping the server (DuckDB lets only one process open the file).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from labeling.datasets import import_dataset
from labeling.store import Store
from tests.browser import launch, served_app, stop
from tests.test_review_store import SEED_ROWS, seed_csv

EDITED = "A rainy city street at dusk, typed in a real browser"
WAIT_MS = 30_000  # the first run of a freshly started app takes a few seconds

pytestmark = pytest.mark.browser


@pytest.fixture
def served_db(db_path: Path, tmp_path: Path, make_image: Callable[..., Path]) -> Path:
    folder = tmp_path / "imgs"
    for i, (name, _, _) in enumerate(SEED_ROWS):
        if name != "gone.jpg":
            make_image(folder / name, size=(800, 600), color=(50 * i, 120, 200))
    with Store(db_path) as store:
        import_dataset(store, "REAL", csv_data=seed_csv(), csv_name="real.csv", images_dir=folder)
    return db_path


@pytest.fixture
def server(served_db: Path, tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    with served_app(served_db, tmp_path / "cache", {"LABELING_REVIEWER": "browser-reviewer"}) as served:
        yield served


def test_keyboard_edit_save_reload_and_find_it_in_the_database(
    server: tuple[str, subprocess.Popen[bytes]], served_db: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, process = server
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(30_000)
            page.goto(f"{url}/review?dataset=REAL&image=b.jpg")
            expect(page.get_by_text("REAL / b.jpg")).to_be_visible(timeout=WAIT_MS)

            summary = page.get_by_label("summary")
            expect(summary).to_have_value("A busy city street at night", timeout=WAIT_MS)
            summary.click()
            page.keyboard.press("Control+A")
            page.keyboard.type(EDITED)
            page.get_by_role("combobox", name="Categories").focus()
            page.keyboard.type("plant")
            page.keyboard.press("Enter")  # picks "plants"
            page.keyboard.press("Escape")
            page.get_by_text("REAL / b.jpg").click()  # leave the fields: digit keys now toggle categories
            page.keyboard.press("7")  # the 7th category, vehicles (the model said it): toggling removes it
            expect(page.get_by_label("Remove vehicles", exact=True)).to_have_count(0, timeout=WAIT_MS)
            expect(page.get_by_label("summary")).to_have_value(EDITED, timeout=WAIT_MS)  # typed text survived
            page.keyboard.press("Control+S")
            expect(page.get_by_text("Saved b.jpg (version 1)")).to_be_visible(timeout=WAIT_MS)

            page.reload()
            expect(page.get_by_text("REAL / b.jpg")).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_label("summary")).to_have_value(EDITED, timeout=WAIT_MS)
            for kept in ("cityscapes", "plants"):  # each chosen category has a "Remove X" control
                expect(page.get_by_label(f"Remove {kept}", exact=True).first).to_be_visible(timeout=WAIT_MS)
            expect(page.get_by_label("Remove vehicles", exact=True)).to_have_count(0)
            assert "image=b.jpg" in page.url and "dataset=REAL" in page.url
        finally:
            browser.close()

    stop(process)  # DuckDB allows one process per file: stop the app before reading it
    with duckdb.connect(str(served_db), read_only=True) as con:
        row = con.execute("""
            SELECT h.description ->> 'summary', h.categories, h.reviewed, h.reviewer, h.version
            FROM human_labels h JOIN images i ON i.id = h.image_id WHERE i.name = 'b.jpg'""").fetchone()
        log = con.execute("SELECT field, reviewer FROM edit_log ORDER BY field").fetchall()
    assert row == (EDITED, ["cityscapes", "plants"], True, "browser-reviewer", 1)
    assert log == [
        ("categories", "browser-reviewer"),
        ("description", "browser-reviewer"),
        ("reviewed", "browser-reviewer"),
    ]
