"""The Export page with several datasets, through AppTest on a real database: one zip to download with a file
per dataset, or the files written into a folder, reported by absolute path, with hostile names kept inside."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from labeling.store import Store
from tests.conftest import ROOT, as_shown
from tests.test_analytics import add_dataset, annotate

HOSTILE = ["../escape", "a/b", "a_b", "A_B", "..", "\x07bell\nline", "x" * 300, "nul.txt", "=HYPERLINK(1)"]


def _fill(db_path: Path, datasets: dict[str, list[str]]) -> None:
    """Each dataset's images, each labelled `animals` by the model."""
    with Store(db_path) as store:
        for name, images in datasets.items():
            ids = add_dataset(store, name, images)
            annotate(store, {image_id: ["animals"] for image_id in ids.values()})


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, Callable[[], Any]]:
    """File name -> what the download button hands the browser when clicked (Streamlit's deferred callable)."""
    found: dict[str, Callable[[], Any]] = {}
    original = MediaFileManager.add_deferred

    def record(self: MediaFileManager, data: Callable[[], Any], mimetype: str | None, *args: Any, **kw: Any) -> str:
        found[str(kw.get("file_name") or args[1])] = data
        return original(self, data, mimetype, *args, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", record)
    return found


def _open(at: AppTest, datasets: list[str]) -> AppTest:
    at.run()
    at.switch_page("pages/export.py")
    at.run()
    at.multiselect(key="export_datasets").set_value(datasets).run()
    assert not at.exception, at.exception
    return at


def _write(at: AppTest, label: str, path: str, button: str, replace: bool = False) -> None:
    next(t for t in at.text_input if t.label == label).input(path)
    if replace:
        next(c for c in at.checkbox if c.label.startswith("Replace")).check()
    next(b for b in at.button if b.label == button).click()
    at.run()
    assert not at.exception, at.exception


def _image_names(data: bytes) -> list[str]:
    return [row["image_name"] for row in csv.DictReader(io.StringIO(data.decode("utf-8")))]


def _shown(elements: Any) -> str:
    return "\n".join(as_shown(element.value) for element in elements)


def test_two_datasets_download_as_a_zip_of_one_file_each(
    app: AppTest, db_path: Path, downloads: dict[str, Callable[[], Any]]
) -> None:
    _fill(db_path, {"REAL": ["r1.jpg", "r2.jpg"], "GEN": ["=g1.jpg"], "OTHER": ["o.jpg"]})
    at = _open(app, ["REAL", "GEN"])
    table = at.dataframe[0].value
    assert table.to_dict("records") == [
        {"Dataset": "REAL", "File": "REAL_effective_categorized.csv", "Images": 2},
        {"Dataset": "GEN", "File": "GEN_effective_categorized.csv", "Images": 1},
    ]
    assert "3 images of 2 datasets" in _shown(at.caption)
    labels = [as_shown(b.label) for b in at.get("download_button")]
    assert labels == ["Download datasets_effective_categorized_csv.zip"]
    with zipfile.ZipFile(io.BytesIO(downloads["datasets_effective_categorized_csv.zip"]())) as archive:
        assert sorted(archive.namelist()) == ["GEN_effective_categorized.csv", "REAL_effective_categorized.csv"]
        assert _image_names(archive.read("REAL_effective_categorized.csv")) == ["r1.jpg", "r2.jpg"]
        assert _image_names(archive.read("GEN_effective_categorized.csv")) == ["'=g1.jpg"]  # formula-safe

    at.radio(key="export_format").set_value("parquet").run()
    with zipfile.ZipFile(io.BytesIO(downloads["datasets_effective_categorized_parquet.zip"]())) as archive:
        for name, images in (("REAL", ["r1.jpg", "r2.jpg"]), ("GEN", ["=g1.jpg"])):
            frame = pd.read_parquet(io.BytesIO(archive.read(f"{name}_effective_categorized.parquet")))
            assert list(frame["image_name"]) == images  # Parquet keeps the value itself
            assert set(frame["label_source"]) == {"effective"}


def test_writing_into_a_folder_reports_absolute_paths(app: AppTest, db_path: Path, tmp_path: Path) -> None:
    _fill(db_path, {"REAL": ["r1.jpg", "r2.jpg"], "GEN": ["g1.jpg"]})
    at = _open(app, ["REAL", "GEN"])
    field = next(t for t in at.text_input if t.label == "Write into a folder on this machine")
    assert Path(field.value).is_absolute() and field.value == str(ROOT / "reports")
    relative = os.path.relpath(tmp_path / "out", ROOT)  # typed relative to where the app runs
    _write(at, "Write into a folder on this machine", relative, "Write files")
    folder = (tmp_path / "out").resolve()
    assert sorted(path.name for path in folder.iterdir()) == [
        "GEN_effective_categorized.csv",
        "REAL_effective_categorized.csv",
    ]
    assert _image_names((folder / "REAL_effective_categorized.csv").read_bytes()) == ["r1.jpg", "r2.jpg"]
    assert _image_names((folder / "GEN_effective_categorized.csv").read_bytes()) == ["g1.jpg"]
    source = "effective labels, human where set and model elsewhere"
    assert _shown(at.success).split("\n\n") == [
        f"Exported 2 images of REAL ({source}) as CSV to {folder / 'REAL_effective_categorized.csv'}.",
        f"Exported 1 image of GEN ({source}) as CSV to {folder / 'GEN_effective_categorized.csv'}.",
    ]


def test_writing_one_dataset_reports_its_absolute_path(app: AppTest, db_path: Path, tmp_path: Path) -> None:
    _fill(db_path, {"REAL": ["r1.jpg"]})
    at = _open(app, ["REAL"])
    relative = os.path.relpath(tmp_path / "one" / "real.csv", ROOT)
    _write(at, "Write to a path on this machine", relative, "Write file")
    target = (tmp_path / "one" / "real.csv").resolve()
    assert (
        _shown(at.success)
        == f"Exported 1 image of REAL (effective labels, human where set and model elsewhere) as CSV to {target}."
    )
    assert _image_names(target.read_bytes()) == ["r1.jpg"]


def test_hostile_names_stay_inside_the_folder_and_the_zip(
    app: AppTest, db_path: Path, tmp_path: Path, downloads: dict[str, Callable[[], Any]]
) -> None:
    _fill(db_path, {name: [f"img{index}.jpg"] for index, name in enumerate(HOSTILE)})
    at = _open(app, HOSTILE)
    folder = tmp_path / "exports"
    before = set(tmp_path.iterdir())
    _write(at, "Write into a folder on this machine", str(folder), "Write files")
    assert set(tmp_path.iterdir()) - before == {folder}  # nothing beside the folder, nothing above it
    files = sorted(folder.iterdir())
    assert len(files) == len(HOSTILE) and all(path.is_file() for path in files)
    assert len({path.name.casefold() for path in files}) == len(HOSTILE)  # none hides another, case or not
    by_image = {_image_names(path.read_bytes())[0]: path.name for path in files}
    assert set(by_image) == {f"img{index}.jpg" for index in range(len(HOSTILE))}  # each file its own dataset
    assert by_image["img0.jpg"] == "escape_effective_categorized.csv"
    assert by_image["img1.jpg"] == "a_b_effective_categorized.csv"
    assert by_image["img2.jpg"] == "a_b_2_effective_categorized.csv"
    assert by_image["img3.jpg"] == "A_B_3_effective_categorized.csv"
    assert by_image["img7.jpg"] == "_nul.txt_effective_categorized.csv"
    assert max(len(name) for name in by_image.values()) < 120
    with zipfile.ZipFile(io.BytesIO(downloads["datasets_effective_categorized_csv.zip"]())) as archive:
        assert sorted(archive.namelist()) == [path.name for path in files]


def test_files_already_in_the_folder_need_the_tick(app: AppTest, db_path: Path, tmp_path: Path) -> None:
    _fill(db_path, {"REAL": ["r1.jpg"], "GEN": ["g1.jpg"]})
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "GEN_effective_categorized.csv").write_text("my own notes\n", encoding="utf-8")
    at = _open(app, ["REAL", "GEN"])
    _write(at, "Write into a folder on this machine", str(folder), "Write files")
    assert "1 file already in" in _shown(at.warning) and "GEN_effective_categorized.csv" in _shown(at.warning)
    assert sorted(path.name for path in folder.iterdir()) == ["GEN_effective_categorized.csv"]  # nothing written
    _write(at, "Write into a folder on this machine", str(folder), "Write files", replace=True)
    assert _image_names((folder / "GEN_effective_categorized.csv").read_bytes()) == ["g1.jpg"]
    assert (folder / "REAL_effective_categorized.csv").is_file()


def test_no_dataset_chosen_says_what_to_do(app: AppTest, db_path: Path) -> None:
    _fill(db_path, {"REAL": ["r1.jpg"]})
    at = _open(app, [])
    assert "Choose at least one dataset to export." in _shown(at.info)
    assert not at.get("download_button")
