"""Creating datasets from lists, folders and the seed's output CSVs, through the core and the CLI."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from labeling.datasets import import_dataset
from labeling.errors import InputError, SourceError
from labeling.store import Store
from tests.conftest import FIXTURES, CliResult


@pytest.fixture
def folder(tmp_path: Path, make_image: Callable[..., Path]) -> Path:
    root = tmp_path / "REAL"
    make_image(root / "a.jpg")
    make_image(root / "nested" / "deeper" / "b.png")
    make_image(root / "c.jpg")
    make_image(root / "other" / "c.jpg")  # c.jpg twice: ambiguous
    make_image(root / "d.webp")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.jpg").write_bytes(b"")
    return root


def _statuses(store: Store, dataset: str) -> dict[str, str]:
    rows = store.fetch_all(
        "SELECT images.name, status FROM images JOIN datasets d ON d.id = dataset_id WHERE d.name = ?", [dataset]
    )
    return dict(rows)


def test_list_matched_against_folder(store: Store, folder: Path) -> None:
    listed = b"image_name\na.jpg\nb.jpg\nc.jpg\nd.jpg\nmissing.jpg\n../escape.jpg\na.jpg\n"
    report = import_dataset(store, "REAL", label="REAL", csv_data=listed, csv_name="real.csv", images_dir=folder)
    assert (report.listed, report.found, report.missing, report.ambiguous, report.rejected, report.duplicates) == (
        6,
        3,
        1,
        1,
        1,
        1,
    )
    assert _statuses(store, "REAL") == {
        "a.jpg": "found",
        "b.jpg": "found",
        "c.jpg": "ambiguous",
        "d.jpg": "found",
        "missing.jpg": "missing",
        "../escape.jpg": "rejected",
    }
    dataset_id = store.dataset_id("REAL")
    ambiguous = store.images_with_status(dataset_id, "ambiguous")
    assert json.loads(ambiguous.loc[0, "detail"]) == ["c.jpg", "other/c.jpg"]
    found = store.images_with_status(dataset_id, "found").set_index("name")["location"].to_dict()
    assert found == {"a.jpg": "a.jpg", "b.jpg": "nested/deeper/b.png", "d.jpg": "d.webp"}


def test_reimport_is_idempotent_and_keeps_ids(store: Store, folder: Path) -> None:
    listed = b"a.jpg\nb.jpg\n"
    import_dataset(store, "REAL", csv_data=listed, images_dir=folder)
    ids = store.image_ids_by_name(store.dataset_id("REAL")).set_index("name")["image_id"].to_dict()
    again = import_dataset(store, "REAL", csv_data=listed, images_dir=folder)
    assert again.added == 0
    assert store.image_ids_by_name(store.dataset_id("REAL")).set_index("name")["image_id"].to_dict() == ids
    assert store.fetch_one("SELECT count(*) FROM images") == (2,)


def test_reimport_picks_up_files_that_appeared(store: Store, folder: Path, make_image: Callable[..., Path]) -> None:
    import_dataset(store, "REAL", csv_data=b"late.jpg\n", images_dir=folder)
    assert _statuses(store, "REAL") == {"late.jpg": "missing"}
    make_image(folder / "late.png")
    report = import_dataset(store, "REAL", csv_data=b"late.jpg\n", images_dir=folder)
    assert report.found == 1 and report.added == 0
    assert store.images_with_status(store.dataset_id("REAL"), "found")["location"].tolist() == ["late.png"]


def test_folder_alone_takes_every_image_recursively(store: Store, folder: Path) -> None:
    report = import_dataset(store, "ALL", images_dir=folder)
    assert report.found == 5 and report.missing == 0
    assert set(_statuses(store, "ALL")) == {"a.jpg", "nested/deeper/b.png", "c.jpg", "other/c.jpg", "d.webp"}


def test_list_alone_records_names_without_a_source(store: Store) -> None:
    report = import_dataset(store, "GEN", label="GEN", csv_data=(FIXTURES / "GEN_example.csv").read_bytes())
    assert report.unlinked == report.listed == 10
    summary = store.dataset_summary("GEN")
    assert summary.listed == 10 and summary.label == "GEN" and summary.source_kind == "none"


def test_missing_folder_and_empty_input_are_clear_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist"):
        import_dataset(store, "X", csv_data=b"a.jpg\n", images_dir=tmp_path / "nope")
    with pytest.raises(InputError, match="CSV list of image names, a folder"):
        import_dataset(store, "X")
    with pytest.raises(InputError, match="name"):
        import_dataset(store, "  ", csv_data=b"a.jpg\n")
    assert store.dataset_names() == []


SEED_CATEGORIZED = (
    "image_name,description,categories\n"
    'a.jpg,"{""summary"": ""A red square"", ""objects"": [{""name"": ""square"", ""attributes"": [""red""]}]}",'
    '"people, animals"\n'
    "b.jpg,A plain text description,food\n"
    'c.jpg,"ERROR: 429 RESOURCE_EXHAUSTED",\n'
    "d.jpg,Described but not categorized,\n"
)


def test_seed_output_csv_becomes_model_annotations(store: Store, folder: Path) -> None:
    report = import_dataset(
        store,
        "SEED",
        label="REAL",
        csv_data=SEED_CATEGORIZED.encode(),
        csv_name="real_descriptions_categorized.csv",
        images_dir=folder,
    )
    assert report.annotations_imported == 3 and report.seed_errors == 1
    current = store.current_annotations(store.dataset_id("SEED")).set_index("name")
    assert json.loads(current.loc["a.jpg", "description"])["objects"][0]["name"] == "square"
    assert current.loc["a.jpg", "summary"] == "A red square"
    assert list(current.loc["a.jpg", "categories"]) == ["people", "animals"]
    assert json.loads(current.loc["b.jpg", "description"]) == {"summary": "A plain text description"}
    assert pd.isna(current.loc["d.jpg", "categories"])
    assert "c.jpg" not in current.index  # a seed error is a failure to retry, never a description
    summary = store.dataset_summary("SEED")
    assert (summary.described, summary.categorized, summary.failed) == (3, 2, 1)


def test_seed_output_reimport_adds_no_history(store: Store) -> None:
    import_dataset(store, "SEED", csv_data=SEED_CATEGORIZED.encode())
    again = import_dataset(store, "SEED", csv_data=SEED_CATEGORIZED.encode())
    assert again.annotations_imported == 0
    assert store.fetch_one("SELECT count(*) FROM annotations") == (3,)


def test_cli_import_and_datasets_json(run_cli: Callable[..., CliResult], folder: Path, tmp_path: Path) -> None:
    listing = tmp_path / "real.csv"
    listing.write_bytes(b"\xef\xbb\xbfa.jpg\r\nb.jpg\r\nmissing.jpg\r\n")
    result = run_cli(
        "import", "--dataset", "REAL", "--label", "REAL", "--csv-file", str(listing), "--images-dir", str(folder)
    )
    assert result.code == 0, result.err
    assert "2 found" in result.out and "1 missing" in result.out
    result = run_cli("datasets", "--json")
    [record] = json.loads(result.out)
    for key in (
        "name",
        "label",
        "listed",
        "found",
        "missing",
        "ambiguous",
        "rejected",
        "duplicates",
        "described",
        "categorized",
        "reviewed",
        "failed",
    ):
        assert key in record
    assert (record["name"], record["listed"], record["found"], record["missing"]) == ("REAL", 3, 2, 1)


def test_cli_errors_are_one_line_and_non_zero(run_cli: Callable[..., CliResult], tmp_path: Path) -> None:
    result = run_cli("import", "--dataset", "X", "--csv-file", str(tmp_path / "nope.csv"))
    assert result.code == 1
    assert result.err.strip().count("\n") == 0 and "does not exist" in result.err
    assert "Traceback" not in result.err


def test_cli_runs_as_python_module(tmp_path: Path) -> None:
    import subprocess
    import sys

    listing = tmp_path / "l.csv"
    listing.write_text("x.jpg\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "labeling",
            "--db",
            str(tmp_path / "m.duckdb"),
            "import",
            "--dataset",
            "M",
            "--csv-file",
            str(listing),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "1 listed" in done.stdout


def test_cli_lists_missing_names(run_cli: Callable[..., CliResult], folder: Path, tmp_path: Path) -> None:
    listing = tmp_path / "real.csv"
    listing.write_text("a.jpg\nlost.jpg\nc.jpg\n")
    run_cli("import", "--dataset", "REAL", "--csv-file", str(listing), "--images-dir", str(folder))
    assert run_cli("images", "--dataset", "REAL", "--status", "missing").out.split() == ["lost.jpg"]
    ambiguous = run_cli("images", "--dataset", "REAL", "--status", "ambiguous").out
    assert ambiguous.startswith("c.jpg\t") and "other/c.jpg" in ambiguous
    out_csv = tmp_path / "missing.csv"
    assert run_cli("images", "--dataset", "REAL", "--output-csv", str(out_csv)).code == 0
    assert out_csv.read_text().splitlines()[1].startswith("lost.jpg")
