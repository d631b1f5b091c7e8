"""The Datasets page, the start page, through AppTest: what a newcomer reads, the table, Inspect following the
last import, and picking the file an ambiguous name means (stored, and kept by a re-import)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from pages import common
from tests.conftest import as_shown

TABLE_AT_1400_PX = 940  # the table's width at a 1400 px window with the sidebar open (measured in Chromium)


@pytest.fixture
def app(app: AppTest) -> Iterator[AppTest]:
    yield app
    common.job_manager().shutdown()  # the example project's simulated run: its threads end with the test


def _texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.markdown, *at.caption, *at.title, *at.subheader)]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    return "\n".join(as_shown(p) for p in parts)


def _import(at: AppTest, name: str, listing: Path | None = None, folder: Path | None = None) -> None:
    at.text_input(key="import_name").input(name)
    at.text_input(key="import_csv_path").input(str(listing) if listing else "")
    at.text_input(key="import_images_dir").input(str(folder) if folder else "")
    at.button(key="import_button").click().run()
    assert not at.exception, at.exception


def _table(at: AppTest) -> pd.DataFrame:
    return next(frame.value for frame in at.dataframe if "Dataset" in frame.value.columns)


def test_the_start_page_says_what_the_app_does_and_offers_the_example_and_the_first_import(app: AppTest) -> None:
    app.run()
    assert not app.exception, app.exception
    intro = app.markdown[0].value
    assert "REAL or AI-generated (GEN) with Gemini" in intro and len(intro.split("  \n")) == 3
    shown = _texts(app)
    assert "No datasets yet" in shown and "Import your first dataset" in shown
    placeholders = [app.text_input(key=key).proto.placeholder for key in ("import_csv_path", "import_images_dir")]
    assert placeholders == ["e.g. csv_real_gen/real.csv", "e.g. REAL/"]
    assert app.text_input(key="import_name").proto.placeholder == "e.g. REAL"
    assert app.selectbox(key="import_label").proto.placeholder == "e.g. REAL or GEN"

    app.button(key="create_example").click().run()
    assert not app.exception, app.exception
    assert common.job_manager().jobs()[0].simulated
    assert set(common.store().dataset_names()) == {"example-REAL", "example-GEN"}
    assert _table(app)["Dataset"].tolist() == ["example-GEN", "example-REAL"]
    assert "Create or refresh a dataset" in _texts(app)  # no longer the first import
    assert app.expander[-1].label == "Try it without an API key: example project"


def test_the_table_names_its_counts_for_people_and_fits_them_at_1400_px(
    app: AppTest, tmp_path: Path, make_image: Callable[..., Path]
) -> None:
    make_image(tmp_path / "imgs" / "a.jpg")
    listing = tmp_path / "list.csv"
    listing.write_text("a.jpg\ngone.jpg\n")
    app.run()
    _import(app, "REAL", listing, tmp_path / "imgs")
    table = _table(app)
    assert table.columns.tolist() == [
        "Dataset",
        "Label",
        "Listed",
        "Found",
        "Described",
        "Categorized",
        "Reviewed",
        "Failed",
        "Missing",
        "Ambiguous",
        "Rejected",
        "Source",
    ]
    assert table.iloc[0][["Dataset", "Listed", "Found", "Missing", "Described"]].tolist() == ["REAL", 2, 1, 1, 0]
    assert table.iloc[0]["Source"] == str((tmp_path / "imgs").resolve())
    frame = next(f for f in app.dataframe if "Dataset" in f.value.columns)
    widths = {
        name: config["width"]
        for name, config in json.loads(frame.proto.columns).items()
        if name in table.columns and name != "Source"
    }
    assert set(widths) == set(table.columns) - {"Source"}  # every column but the source has its width set
    assert sum(widths.values()) <= TABLE_AT_1400_PX


def test_inspect_follows_the_last_import(app: AppTest, tmp_path: Path, make_image: Callable[..., Path]) -> None:
    make_image(tmp_path / "real" / "r.jpg")
    make_image(tmp_path / "gen" / "g.jpg")
    app.run()
    _import(app, "GEN", folder=tmp_path / "gen")
    _import(app, "REAL", folder=tmp_path / "real")  # the second row: Inspect would show GEN, the first, by default
    assert app.selectbox(key="inspect_choice").value == "REAL"
    assert app.tabs[0].dataframe[0].value["name"].tolist() == ["r.jpg"]
    app.selectbox(key="inspect_choice").select("GEN").run()
    assert app.tabs[0].dataframe[0].value["name"].tolist() == ["g.jpg"]
    _import(app, "REAL", folder=tmp_path / "real")  # a refresh is an import too
    assert app.selectbox(key="inspect_choice").value == "REAL"
    assert app.tabs[0].dataframe[0].value["name"].tolist() == ["r.jpg"]


def _ambiguous_folder(tmp_path: Path, make_image: Callable[..., Path]) -> tuple[Path, Path]:
    make_image(tmp_path / "imgs" / "day1" / "cat.jpg")
    make_image(tmp_path / "imgs" / "day2" / "cat.jpg")
    make_image(tmp_path / "imgs" / "day1" / "owl.jpg")
    make_image(tmp_path / "imgs" / "day2" / "owl.png")
    make_image(tmp_path / "imgs" / "dog.jpg")
    listing = tmp_path / "list.csv"
    listing.write_text("image_name\ncat.jpg\ndog.jpg\nowl.gif\n")  # owl by stem: owl.jpg or owl.png
    return listing, tmp_path / "imgs"


def test_an_ambiguous_name_is_resolved_in_the_app_and_a_reimport_keeps_the_pick(
    app: AppTest, tmp_path: Path, make_image: Callable[..., Path]
) -> None:
    listing, folder = _ambiguous_folder(tmp_path, make_image)
    app.session_state[common.REVIEWER_KEY] = "ana"
    app.run()
    _import(app, "REAL", listing, folder)
    assert {m.label: m.value for m in app.metric}["Ambiguous"] == "2"
    ambiguous = next(tab for tab in app.tabs if tab.label == "Ambiguous (2)")
    assert ambiguous.dataframe[0].value["detail"].tolist() == [
        "day1/cat.jpg, day2/cat.jpg",
        "day1/owl.jpg, day2/owl.png",
    ]
    assert app.selectbox(key="resolve_REAL").value == "cat.jpg"
    app.selectbox(key="resolve_REAL_cat.jpg").select("day2/cat.jpg").run()
    app.button(key="resolve_REAL_button").click().run()
    assert not app.exception, app.exception
    assert [tab.label for tab in app.tabs] == ["Found (2)", "Ambiguous (1)"]
    assert app.selectbox(key="resolve_REAL").value == "owl.gif"  # the next one to pick
    store = common.store()
    row = store.fetch_one("SELECT status, location, detail FROM images WHERE name = 'cat.jpg'")
    assert row == ("found", "day2/cat.jpg", "picked by hand among the files this name matches")
    assert store.fetch_all("SELECT name, location, chosen_by FROM name_choices") == [("cat.jpg", "day2/cat.jpg", "ana")]

    _import(app, "REAL", listing, folder)  # the same list again, from the page
    assert {m.label: m.value for m in app.metric}["Ambiguous"] == "1"
    assert "Found where you picked the file: 1 ambiguous name." in _texts(app)
    assert store.fetch_one("SELECT status, location FROM images WHERE name = 'cat.jpg'") == ("found", "day2/cat.jpg")


def test_use_this_file_waits_for_a_pick(app: AppTest, tmp_path: Path, make_image: Callable[..., Path]) -> None:
    listing, folder = _ambiguous_folder(tmp_path, make_image)
    app.run()
    _import(app, "REAL", listing, folder)
    assert app.selectbox(key="resolve_REAL_cat.jpg").value is None
    assert app.button(key="resolve_REAL_button").disabled
