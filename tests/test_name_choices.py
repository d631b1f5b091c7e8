"""Picking the file an ambiguous name means: stored in name_choices, applied by every import of the list (the
app's, `labeling import`'s) while the file is still a candidate, forgotten with its dataset."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from labeling.datasets import ambiguous_names, choose_file, import_dataset
from labeling.errors import InputError
from labeling.matching import MatchResult, apply_choices
from labeling.store import Store
from tests.conftest import CliResult

LIST = b"image_name\ncat.jpg\ndog.jpg\n"


@pytest.fixture
def folder(tmp_path: Path, make_image: Callable[..., Path]) -> Path:
    for path in ("day1/cat.jpg", "day2/cat.jpg", "day3/cat.png", "dog.jpg"):
        make_image(tmp_path / "imgs" / path)
    return tmp_path / "imgs"


def _cat(store: Store) -> tuple[str, str | None]:
    row = store.fetch_one("SELECT status, location FROM images WHERE name = 'cat.jpg'")
    assert row is not None
    return row[0], row[1]


def test_a_pick_applies_only_while_its_file_is_a_candidate() -> None:
    match = MatchResult(found={"dog.jpg": "dog.jpg"}, ambiguous={"cat.jpg": ["a/cat.jpg", "b/cat.jpg"]})
    picked = apply_choices(match, {"cat.jpg": "b/cat.jpg"})
    assert (picked.found, picked.ambiguous, picked.how) == (
        {"dog.jpg": "dog.jpg", "cat.jpg": "b/cat.jpg"},
        {},
        {"cat.jpg": "chosen"},
    )
    assert apply_choices(match, {"cat.jpg": "c/cat.jpg"}) == match  # a file no longer there: still ambiguous
    assert apply_choices(match, {}) == match


def test_choose_file_finds_the_image_there_and_records_who_picked(store: Store, folder: Path) -> None:
    report = import_dataset(store, "REAL", csv_data=LIST, csv_name="list.csv", images_dir=folder)
    assert report.ambiguous == 1
    assert ambiguous_names(store, "REAL") == {"cat.jpg": ["day1/cat.jpg", "day2/cat.jpg"]}
    assert choose_file(store, "REAL", "cat.jpg", "day1/cat.jpg", chosen_by="ana") == "day1/cat.jpg"
    assert _cat(store) == ("found", "day1/cat.jpg")
    assert store.fetch_all("SELECT name, location, chosen_by FROM name_choices") == [("cat.jpg", "day1/cat.jpg", "ana")]
    assert store.dataset_summary("REAL").ambiguous == 0


def test_choose_file_refuses_what_the_name_does_not_match(store: Store, folder: Path) -> None:
    import_dataset(store, "REAL", csv_data=LIST, csv_name="list.csv", images_dir=folder)
    with pytest.raises(
        InputError, match=re.escape("is not a file 'cat.jpg' matches: pick one of day1/cat.jpg, day2/cat.jpg")
    ):
        choose_file(store, "REAL", "cat.jpg", "dog.jpg")
    with pytest.raises(InputError, match=re.escape("'dog.jpg' is not an ambiguous name of REAL")):
        choose_file(store, "REAL", "dog.jpg", "dog.jpg")
    assert store.fetch_one("SELECT count(*) FROM name_choices") == (0,)
    assert _cat(store) == ("ambiguous", None)


def test_labeling_import_of_the_same_list_keeps_the_pick(
    db_path: Path, folder: Path, tmp_path: Path, run_cli: Callable[..., CliResult]
) -> None:
    listing = tmp_path / "list.csv"
    listing.write_bytes(LIST)
    with Store(db_path) as store:
        import_dataset(store, "REAL", csv_data=LIST, csv_name=str(listing), images_dir=folder)
        choose_file(store, "REAL", "cat.jpg", "day2/cat.jpg")
    result = run_cli("import", "--dataset", "REAL", "--csv-file", str(listing), "--images-dir", str(folder), "--json")
    assert result.code == 0, result.err
    assert '"ambiguous": 0' in result.out and '"chosen_matches": 1' in result.out
    with Store(db_path) as store:
        assert _cat(store) == ("found", "day2/cat.jpg")
        assert store.fetch_one("SELECT detail FROM images WHERE name = 'cat.jpg'") == (
            "picked by hand among the files this name matches",
        )


def test_a_pick_whose_file_is_gone_leaves_the_name_ambiguous_again(store: Store, folder: Path) -> None:
    import_dataset(store, "REAL", csv_data=LIST, csv_name="list.csv", images_dir=folder)
    choose_file(store, "REAL", "cat.jpg", "day2/cat.jpg")
    (folder / "day2" / "cat.jpg").unlink()
    (folder / "day4").mkdir()
    (folder / "day4" / "cat.jpg").write_bytes((folder / "day1" / "cat.jpg").read_bytes())
    report = import_dataset(store, "REAL", csv_data=LIST, csv_name="list.csv", images_dir=folder)
    assert (report.ambiguous, report.chosen_matches) == (1, 0)
    assert _cat(store) == ("ambiguous", None)
    assert ambiguous_names(store, "REAL") == {"cat.jpg": ["day1/cat.jpg", "day4/cat.jpg"]}


def test_deleting_a_dataset_forgets_its_picks(store: Store, folder: Path) -> None:
    import_dataset(store, "REAL", csv_data=LIST, csv_name="list.csv", images_dir=folder)
    choose_file(store, "REAL", "cat.jpg", "day1/cat.jpg")
    store.delete_dataset("REAL")
    assert store.fetch_one("SELECT count(*) FROM name_choices") == (0,)
    report = import_dataset(store, "REAL", csv_data=LIST, csv_name="list.csv", images_dir=folder)
    assert report.ambiguous == 1  # a new dataset of the same name starts without the old one's picks
