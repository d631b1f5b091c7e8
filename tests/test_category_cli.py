"""The category commands: the seed's extract-categories byte for byte, list/import/export round trips, edits,
history, suggestions and the affected-images report."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from labeling.fake_gemini import FakeGemini
from labeling.store import Store
from tests.category_support import add_described, description, set_human
from tests.conftest import CliResult

Run = Callable[..., CliResult]

# A categorized_overview.csv as the seed's analysis wrote it: other columns around `Categories`, names joined by
# ", " with stray spaces, repeats, empty pieces, quoted cells and a row too short to have the column.
OVERVIEW = (
    "image_name,Description,Categories,Notes\r\n"
    'a.jpg,"A dog, outside","animals, landscapes",x\r\n'
    'b.jpg,Food,"food ,  animals",\r\n'
    'c.jpg,Blank,"",\r\n'
    'd.jpg,Odd,"  Zebra crossings ,, people ,",\r\n'
    'e.jpg,Quote,"art ""pop"", food",\r\n'
    "short.jpg\r\n"
)
# What the seed's extract_categories.py writes for it: csv.writer (minimal quoting, \r\n), Python's sort order.
EXPECTED = 'Category\r\nZebra crossings\r\nanimals\r\nart "pop"\r\nfood\r\nlandscapes\r\npeople\r\n'


def test_extract_categories_matches_the_seed_byte_for_byte(run_cli: Run, tmp_path: Path) -> None:
    source = tmp_path / "categorized_overview.csv"
    source.write_bytes(OVERVIEW.encode())
    target = tmp_path / "out" / "unique_categories.csv"
    result = run_cli("extract-categories", "--input-csv", str(source), "--output-csv", str(target))
    assert result.code == 0, result.err
    assert target.read_bytes() == EXPECTED.replace('art "pop"', '"art ""pop"""').encode()
    assert result.out.strip() == f"Successfully created {target} with 6 unique categories."


def test_extract_categories_without_the_column_says_so(run_cli: Run, tmp_path: Path) -> None:
    source = tmp_path / "x.csv"
    source.write_text("image_name,categories\na.jpg,food\n")
    result = run_cli("extract-categories", "--input-csv", str(source), "--output-csv", str(tmp_path / "o.csv"))
    assert result.code == 1 and "no `Categories` column" in result.err
    assert not (tmp_path / "o.csv").exists()


def test_export_import_round_trip_in_the_seed_format(run_cli: Run, tmp_path: Path, db_path: Path) -> None:
    listed = run_cli("categories", "list", "--json")
    assert listed.code == 0
    defaults = json.loads(listed.out)
    exported = tmp_path / "unique_categories.csv"
    assert run_cli("categories", "export", "--csv-file", str(exported)).code == 0
    assert exported.read_bytes() == ("Category\r\n" + "".join(f"{c['name']}\r\n" for c in defaults)).encode()

    edited = tmp_path / "edited.csv"
    edited.write_bytes(b"Category\r\npeople\r\nrobots\r\nfood\r\n")
    result = run_cli("categories", "import", "--csv-file", str(edited))
    assert result.code == 0 and "import from edited.csv (replace: 3 active)" in result.out
    assert [c["name"] for c in json.loads(run_cli("categories", "list", "--json").out)] == ["people", "robots", "food"]
    again = tmp_path / "again.csv"
    run_cli("categories", "export", "--csv-file", str(again))
    assert again.read_bytes() == edited.read_bytes()

    with_definitions = tmp_path / "defs.csv"
    run_cli("categories", "export", "--csv-file", str(with_definitions), "--definitions", "--all")
    other = tmp_path / "other.duckdb"
    assert run_cli("categories", "import", "--csv-file", str(with_definitions), db=other).code == 0
    with Store(db_path) as first_store:
        first = first_store.categories()
    with Store(other) as second_store:
        assert second_store.categories()[:3] == first


def test_import_add_mode_and_bad_files(run_cli: Run, tmp_path: Path) -> None:
    extra = tmp_path / "extra.csv"
    extra.write_text("Category,Definition\nrobots,Machines\nfood,\n")
    assert "add 1" in run_cli("categories", "import", "--csv-file", str(extra), "--mode", "add").out
    names = [c["name"] for c in json.loads(run_cli("categories", "list", "--json").out)]
    assert names[-1] == "robots" and names.count("food") == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("Name\nx\n")
    result = run_cli("categories", "import", "--csv-file", str(bad))
    assert result.code == 1 and "no `Category` column" in result.err
    comma = tmp_path / "comma.csv"
    comma.write_text('Category\n"cats, dogs"\n')
    result = run_cli("categories", "import", "--csv-file", str(comma))
    assert result.code == 1 and "line 2" in result.err and "commas" in result.err


def test_edit_verbs_and_history(run_cli: Run, store: Store, tmp_path: Path) -> None:
    ids = add_described(store, "REAL", [("a.jpg", description("a"), ["vehicles"])])
    set_human(store, ids["a.jpg"], ["vehicles", "people"])
    store.close()
    assert run_cli("categories", "add", "memes", "--definition", "Image macros").code == 0
    assert run_cli("categories", "define", "memes", "--definition", "Memes").code == 0
    result = run_cli("categories", "rename", "vehicles", "transport", "--reviewer", "cli-user")
    assert result.code == 0 and "rename 'vehicles' -> 'transport'" in result.out
    assert "Rewrote 1 human labels" in result.out
    assert run_cli("categories", "merge", "cityscapes", "architecture", "--into", "transport").code == 0
    assert run_cli("categories", "deactivate", "memes").code == 0
    assert "Nothing changed" in run_cli("categories", "deactivate", "memes").out
    assert run_cli("categories", "activate", "memes").code == 0
    assert run_cli("categories", "delete", "memes").code == 0
    missing = run_cli("categories", "delete", "memes")
    assert missing.code == 1 and "no category 'memes'" in missing.err
    history = run_cli("categories", "history").out.splitlines()
    assert history[0].startswith("v8 ") and history[0].endswith("delete 'memes'")
    assert history[-1].startswith("v1 ") and history[-1].endswith("default list")
    shown = run_cli("categories", "history", "--show", "2").out
    assert "memes: Image macros" in shown
    listed = run_cli("categories", "list", "--all").out
    assert "transport" in listed and "vehicles" not in listed and "cityscapes" not in listed
    with Store(tmp_path / "labeling.duckdb") as reopened:
        assert reopened.review_record(ids["a.jpg"]).human.categories == ["transport", "people"]
        assert reopened.edit_log(image_id=ids["a.jpg"]).iloc[0]["reviewer"] == "cli-user"


def test_suggest_counts_and_affected(run_cli: Run, store: Store, tmp_path: Path) -> None:
    add_described(
        store,
        "REAL",
        [
            ("a.jpg", description("a", ["dog"], "park"), ["animals"]),
            ("b.jpg", description("b", ["dog", "cat"], "park"), ["food"]),
        ],
    )
    store.close()
    counts = run_cli("categories", "suggest")
    assert counts.code == 0
    line = next(row for row in counts.out.splitlines() if " dog " in f" {row} ")
    assert "object" in line and "100%" in line
    out = tmp_path / "terms.csv"
    assert run_cli("categories", "suggest", "--dataset", "REAL", "--output-csv", str(out)).code == 0
    assert out.read_text().startswith("field,term,images,share,in_list")
    assert run_cli("categories", "rename", "food", "meals").code == 0
    affected = run_cli("categories", "affected", "--dataset", "REAL", "--output-csv", str(tmp_path / "aff.csv"))
    assert affected.code == 0 and "1 of 2 described images" in affected.out
    assert "'food' -> 'meals'" in affected.out
    assert "b.jpg,meals," in (tmp_path / "aff.csv").read_text()
    no_key = run_cli("categories", "suggest", "--gemini")
    assert no_key.code == 1 and "No Gemini API key" in no_key.err


def test_long_list_note(run_cli: Run, tmp_path: Path) -> None:
    many = tmp_path / "many.csv"
    many.write_text("Category\n" + "".join(f"category number {i}\n" for i in range(70)))
    result = run_cli("categories", "import", "--csv-file", str(many))
    assert result.code == 0 and "too long for one enum" in result.out
    assert "too long for one enum" in run_cli("categories", "list").out


def test_recategorize_command_runs_text_only_against_the_fake(
    run_cli: Run, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_described(
        store, "REAL", [("a.jpg", description("some food"), ["food"]), ("b.jpg", description("a dog"), ["animals"])]
    )
    store.close()
    assert run_cli("categories", "rename", "food", "meals").code == 0
    with FakeGemini() as fake:
        for name, value in fake.env("test-key").items():
            monkeypatch.setenv(name, value)
        result = run_cli("categories", "recategorize", "--dataset", "REAL", "--yes")
        assert result.code == 0, result.err
        assert "Estimate: 1 image," in result.out and "1 done" in result.out
        result = run_cli("categories", "recategorize", "--dataset", "REAL", "--all", "--yes")
        assert result.code == 0, result.err
        assert "Estimate:" in result.out and "completed" in result.out
        assert all(not record.has_image for record in fake.records)
    assert "No image needs re-categorizing" in run_cli("categories", "recategorize", "--dataset", "REAL").out
