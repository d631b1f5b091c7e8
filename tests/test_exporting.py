"""Exports: the seed's categorized CSV byte for byte, spreadsheet-safe cells, Parquet, and the import round trip."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from labeling.datasets import import_dataset
from labeling.errors import InputError, NotFoundError
from labeling.exporting import (
    SLUG_LENGTH,
    default_export_name,
    export_bytes,
    export_dataset,
    export_datasets,
    export_file_names,
    export_format,
    export_preview,
    export_targets,
    export_zip,
    summaries,
    zip_name,
)
from labeling.spreadsheet import neutralise_cell, restore_cell
from labeling.store import Store
from tests.test_analytics import add_dataset, annotate, review


def seed_csv(rows: list[tuple[str, str, str]]) -> bytes:
    """A categorized CSV as the seed's pandas `to_csv(index=False)` wrote it: minimal quoting, "\\n"."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image_name", "description", "categories"])
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def described(summary: str, **fields: Any) -> str:
    return json.dumps({"summary": summary, **fields}, ensure_ascii=False)


SEED_ROWS = [
    ("a_real.jpg", described('Two dogs, one "happy"', objects=["dog", "ball"], setting="park"), "animals, people"),
    ("b_real.jpg", described("Café at night\nwith neon", lighting="neon"), "food, night"),
    ("c_real.jpg", "A plain description, written as text", "landscapes"),
    ("d_real.jpg", described("Nothing fits", objects=[]), ""),
    ("e_real.jpg", described("Ünïcødé ✓ 東京", place="東京"), "cityscapes"),
]


def test_export_reproduces_a_seed_csv_byte_for_byte(store: Store, tmp_path: Path) -> None:
    data = seed_csv(SEED_ROWS)
    import_dataset(store, "REAL", csv_data=data, csv_name="real_descriptions_categorized.csv")
    result = export_dataset(store, "REAL", tmp_path / "out.csv", source="model")
    assert result.rows == 5
    assert (tmp_path / "out.csv").read_bytes() == data
    assert "REAL" in result.summary() and "model labels" in result.summary()


def test_a_summary_only_description_exports_as_plain_text(store: Store, tmp_path: Path) -> None:
    """{"summary": text} is what a plain-text description imports as: it goes back out as that text."""
    data = seed_csv([("a.jpg", described("Only a summary"), "art"), ("b.jpg", "Only a summary", "art")])
    import_dataset(store, "REAL", csv_data=data, csv_name="seed.csv")
    text = export_dataset(store, "REAL", tmp_path / "out.csv", source="model").path.read_text(encoding="utf-8")
    assert text.splitlines()[1:] == ["a.jpg,Only a summary,art", "b.jpg,Only a summary,art"]


def test_export_format_literal(store: Store, tmp_path: Path) -> None:
    ids = add_dataset(store, "GEN", ["x.jpg", "y.jpg", "z.jpg"])
    annotate(
        store,
        {ids["x.jpg"]: ["animals", "art"], ids["y.jpg"]: []},
        description={"summary": 'A "cat", asleep', "objects": ["cat"]},
    )
    annotate(store, {ids["z.jpg"]: None}, description={"summary": "plain, with a comma"})
    export_dataset(store, "GEN", tmp_path / "gen.csv", source="model")
    assert (tmp_path / "gen.csv").read_text(encoding="utf-8") == (
        "image_name,description,categories\n"
        'x.jpg,"{""summary"": ""A \\""cat\\"", asleep"", ""objects"": [""cat""]}","animals, art"\n'
        'y.jpg,"{""summary"": ""A \\""cat\\"", asleep"", ""objects"": [""cat""]}",\n'
        'z.jpg,"plain, with a comma",\n'
    )


def test_formula_cells_are_neutralised_and_restored(store: Store, tmp_path: Path) -> None:
    rows = [
        ("=cmd.jpg", '=HYPERLINK("http://x")', "-negative"),
        ("+plus.jpg", "@SUM(A1)", "=evil, animals"),
        ("'=quoted.jpg", "fine text", "animals"),
        ("safe.jpg", described("-starts with a dash"), "animals"),
    ]
    import_dataset(store, "REAL", csv_data=seed_csv(rows), csv_name="seed.csv")
    names = set(store.image_ids_by_name(store.dataset_id("REAL"))["name"])
    # The documented trade-off: a seed cell that starts with a quote before a trigger reads as one of our exports.
    assert names == {"=cmd.jpg", "+plus.jpg", "=quoted.jpg", "safe.jpg"}
    export_dataset(store, "REAL", tmp_path / "out.csv", source="model", extra_columns=True)
    exported = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text(encoding="utf-8"))))
    cells = {row["image_name"]: row for row in exported}
    assert set(cells) == {"'+plus.jpg", "'=cmd.jpg", "'=quoted.jpg", "safe.jpg"}
    assert cells["'=cmd.jpg"]["description"] == '\'=HYPERLINK("http://x")'
    assert cells["'=cmd.jpg"]["categories"] == "'-negative"
    assert cells["'+plus.jpg"]["description"] == "'@SUM(A1)"
    assert cells["'+plus.jpg"]["categories"] == "'=evil, animals"
    assert cells["safe.jpg"]["description"] == "'-starts with a dash"  # a summary-only description is plain text
    for row in exported:  # no exported cell starts a formula
        assert not any(value[:1] in ("=", "+", "-", "@", "\t", "\r") for value in row.values())


@pytest.mark.parametrize("value", ["=1+2", "+x", "-y", "@z", "\tt", "\rr", "'=q", "''+q", "'plain", "plain", ""])
def test_neutralise_and_restore_are_inverse(value: str) -> None:
    cell = neutralise_cell(value)
    assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r")
    assert restore_cell(cell) == value


def test_round_trip_export_import_export_is_identical(store: Store, tmp_path: Path) -> None:
    rows = [*SEED_ROWS, ("=formula.jpg", "-plain text that starts with a dash", "art")]
    import_dataset(store, "REAL", csv_data=seed_csv(rows), csv_name="seed.csv")
    ids = store.image_ids_by_name(store.dataset_id("REAL")).set_index("name")["image_id"]
    review(store, int(ids["a_real.jpg"]), categories=["people"], description={"summary": "Reviewed", "n": 2})
    review(store, int(ids["c_real.jpg"]))
    for source in ("effective", "model", "human"):
        first = export_dataset(store, "REAL", tmp_path / f"first_{source}.csv", source=source)
        data = first.path.read_bytes()
        copy = f"COPY_{source}"
        import_dataset(store, copy, csv_data=data, csv_name=first.path.name)
        # The copy's labels are model annotations now (a seed import): export them as such.
        second = export_dataset(store, copy, tmp_path / f"second_{source}.csv", source="model")
        assert second.path.read_bytes() == data, source
        assert second.rows == first.rows


def test_sources_and_extra_columns(store: Store, tmp_path: Path) -> None:
    ids = add_dataset(store, "REAL", ["a.jpg", "b.jpg", "c.jpg"])
    annotate(store, {ids["a.jpg"]: ["animals"], ids["b.jpg"]: ["food"], ids["c.jpg"]: ["art"]})
    review(store, ids["a.jpg"], categories=["people", "animals"], reviewer="=ana")
    review(store, ids["b.jpg"], reviewer="bo")
    review(store, ids["c.jpg"], categories=["night"], reviewed=False, reviewer="cy")

    def rows(source: str) -> dict[str, dict[str, str]]:
        path = export_dataset(store, "REAL", tmp_path / f"{source}.csv", source=source, extra_columns=True).path
        text = path.read_text(encoding="utf-8")
        assert text.splitlines()[0] == (
            "image_name,description,categories,dataset,label_source,reviewed,model_categories,human_categories,reviewer"
        )
        return {row["image_name"]: row for row in csv.DictReader(io.StringIO(text))}

    model, human, effective = rows("model"), rows("human"), rows("effective")
    assert {name: row["categories"] for name, row in model.items()} == {
        "a.jpg": "animals",
        "b.jpg": "food",
        "c.jpg": "art",
    }
    assert {name: row["categories"] for name, row in human.items()} == {"a.jpg": "people, animals", "b.jpg": "food"}
    assert {name: row["categories"] for name, row in effective.items()} == {
        "a.jpg": "people, animals",
        "b.jpg": "food",
        "c.jpg": "night",
    }
    assert effective["a.jpg"] | {"description": ""} == {
        "image_name": "a.jpg",
        "description": "",
        "categories": "people, animals",
        "dataset": "REAL",
        "label_source": "effective",
        "reviewed": "true",
        "model_categories": "animals",
        "human_categories": "people, animals",
        "reviewer": "'=ana",
    }
    assert effective["c.jpg"]["reviewed"] == "false"
    assert effective["b.jpg"]["human_categories"] == ""
    assert {row["label_source"] for row in human.values()} == {"human"}


def test_parquet_export_keeps_lists_and_names_its_source(store: Store, tmp_path: Path) -> None:
    ids = add_dataset(store, "GEN", ["=a.jpg", "b.jpg"])
    annotate(store, {ids["=a.jpg"]: ["animals", "art"], ids["b.jpg"]: []})
    result = export_dataset(store, "GEN", tmp_path / "gen.parquet", source="model", extra_columns=True)
    assert (result.fmt, result.rows) == ("parquet", 2)
    con = duckdb.connect()
    table = con.execute("SELECT * FROM read_parquet(?) ORDER BY image_name", [str(result.path)]).fetchall()
    columns = [d[0] for d in con.description]
    assert columns == [
        "image_name",
        "description",
        "categories",
        "label_source",
        "dataset",
        "reviewed",
        "model_categories",
        "human_categories",
        "reviewer",
    ]
    assert table[0][:4] == ("=a.jpg", f"image {ids['=a.jpg']}", ["animals", "art"], "model")  # no quote prefix
    assert table[1][2] == []
    metadata = con.execute(
        "SELECT decode(key), decode(value) FROM parquet_kv_metadata(?)", [str(result.path)]
    ).fetchall()
    assert ("label_source", "model") in metadata


def test_download_bytes_preview_and_names(store: Store, tmp_path: Path) -> None:
    import_dataset(store, "REAL", csv_data=seed_csv(SEED_ROWS), csv_name="seed.csv")
    data = export_bytes(store, "REAL", source="effective", fmt="csv")
    assert data == export_dataset(store, "REAL", tmp_path / "x.csv").path.read_bytes()
    preview = export_preview(store, "REAL", limit=2)
    assert list(preview.columns) == ["image_name", "description", "categories"]
    assert list(preview["image_name"]) == ["a_real.jpg", "b_real.jpg"]
    assert default_export_name("REAL set/1", "human", "parquet") == "REAL_set_1_human_categorized.parquet"
    assert export_format("x.parquet") == "parquet" and export_format("x.csv") == "csv"
    assert export_format("x.csv", "parquet") == "parquet"


def test_export_errors_say_what_to_do(store: Store, tmp_path: Path) -> None:
    add_dataset(store, "REAL", ["a.jpg"])
    with pytest.raises(NotFoundError, match="no dataset named 'GEN'"):
        export_dataset(store, "GEN", tmp_path / "x.csv")
    with pytest.raises(InputError, match="label source"):
        export_dataset(store, "REAL", tmp_path / "x.csv", source="robot")
    with pytest.raises(InputError, match="format"):
        export_dataset(store, "REAL", tmp_path / "x.csv", fmt="xlsx")
    with pytest.raises(InputError, match="is a folder"):
        export_dataset(store, "REAL", tmp_path)
    empty = export_dataset(store, "REAL", tmp_path / "empty.csv")
    assert empty.rows == 0
    assert empty.path.read_text() == "image_name,description,categories\n"


def test_export_with_extra_columns_imports_back_too(store: Store, tmp_path: Path) -> None:
    import_dataset(store, "REAL", csv_data=seed_csv(SEED_ROWS), csv_name="seed.csv")
    plain = export_dataset(store, "REAL", tmp_path / "plain.csv", source="model").path.read_bytes()
    extra = export_dataset(store, "REAL", tmp_path / "extra.csv", source="model", extra_columns=True)
    import_dataset(store, "COPY", csv_data=extra.path.read_bytes(), csv_name="extra.csv")
    assert export_dataset(store, "COPY", tmp_path / "again.csv", source="model").path.read_bytes() == plain


def _two_datasets(store: Store) -> None:
    annotate(store, {image_id: ["animals"] for image_id in add_dataset(store, "REAL", ["r1.jpg", "r2.jpg"]).values()})
    annotate(store, {image_id: ["art"] for image_id in add_dataset(store, "GEN", ["=g.jpg"]).values()})


def test_file_names_of_several_datasets_are_safe_and_distinct() -> None:
    hostile = ["../../etc/passwd", "a/b", "a_b", "A_B", "..", ".", "\x00\x1b[31m\n", "x" * 500, "CON", "nul.x", "-rf"]
    names = export_file_names(hostile, "model", "parquet")
    assert list(names) == hostile
    assert len({name.casefold() for name in names.values()}) == len(hostile)
    for name in names.values():
        assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*_model_categorized\.parquet", name), name
        assert ".." not in name and len(name) <= SLUG_LENGTH + len("_model_categorized.parquet") + 3
        assert name.split(".")[0].upper() not in {"CON", "NUL"}
    assert names["../../etc/passwd"] == "etc_passwd_model_categorized.parquet"
    assert [names[n] for n in ("a/b", "a_b", "A_B")] == [
        "a_b_model_categorized.parquet",
        "a_b_2_model_categorized.parquet",
        "A_B_3_model_categorized.parquet",
    ]
    assert [names[n] for n in ("..", ".", "\x00\x1b[31m\n")] == [
        "dataset_model_categorized.parquet",
        "dataset_2_model_categorized.parquet",
        "31m_model_categorized.parquet",
    ]
    assert names["-rf"] == "rf_model_categorized.parquet"
    # A long name numbered on a clash keeps its number: the slug is cut before the number is added.
    assert (
        export_file_names(["y" * 300, "y" * 301], "human")["y" * 301] == "y" * SLUG_LENGTH + "_2_human_categorized.csv"
    )


def test_export_datasets_writes_one_file_each_at_absolute_paths(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_datasets(store)
    monkeypatch.chdir(tmp_path)
    results = export_datasets(store, ["REAL", "GEN", "REAL"], "out", source="model")
    assert [(r.dataset, r.rows, r.path) for r in results] == [
        ("REAL", 2, tmp_path / "out" / "REAL_model_categorized.csv"),
        ("GEN", 1, tmp_path / "out" / "GEN_model_categorized.csv"),
    ]
    for result in results:  # each file is that dataset's single export, formula-safe cells and all
        assert result.path.read_bytes() == export_bytes(store, result.dataset, source="model")
    assert (tmp_path / "out" / "GEN_model_categorized.csv").read_text().splitlines()[1] == "'=g.jpg,image 3,art"
    assert summaries(results).split("\n\n") == [result.summary() for result in results]
    assert str(tmp_path / "out" / "REAL_model_categorized.csv") in results[0].summary()


def test_export_zip_holds_the_same_files(store: Store, tmp_path: Path) -> None:
    _two_datasets(store)
    for fmt in ("csv", "parquet"):
        data = export_zip(store, ["GEN", "REAL"], source="effective", fmt=fmt, extra_columns=True)
        written = export_datasets(store, ["GEN", "REAL"], tmp_path / fmt, fmt=fmt, extra_columns=True)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.namelist() == [result.path.name for result in written]
            for result in written:
                assert archive.read(result.path.name) == result.path.read_bytes()
    assert zip_name("human", "parquet") == "datasets_human_categorized_parquet.zip"


def test_export_datasets_writes_nothing_unless_every_file_can_be_written(store: Store, tmp_path: Path) -> None:
    _two_datasets(store)
    folder = tmp_path / "out"
    with pytest.raises(NotFoundError, match="no dataset named 'NOPE'"):
        export_datasets(store, ["REAL", "NOPE"], folder)
    assert not folder.exists()
    folder.mkdir()
    secret = tmp_path / "secret.csv"
    secret.write_text("keep me\n", encoding="utf-8")
    (folder / "GEN_effective_categorized.csv").symlink_to(secret)  # a link inside the folder, leading out
    with pytest.raises(InputError, match="outside the folder"):
        export_datasets(store, ["REAL", "GEN"], folder)
    assert secret.read_text(encoding="utf-8") == "keep me\n"
    assert sorted(path.name for path in folder.iterdir()) == ["GEN_effective_categorized.csv"]
    (folder / "GEN_effective_categorized.csv").unlink()
    (folder / "GEN_effective_categorized.csv").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        export_datasets(store, ["REAL", "GEN"], folder)
    assert not (folder / "REAL_effective_categorized.csv").exists()
    with pytest.raises(InputError, match="is a file"):
        export_datasets(store, ["REAL"], secret)
    assert export_targets(folder, ["a/../b"], "model")["a/../b"] == folder / "a_.._b_model_categorized.csv"


def test_export_command_takes_several_datasets_into_a_folder(
    run_cli: Callable[..., Any], store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _two_datasets(store)
    store.close()
    monkeypatch.chdir(tmp_path)
    result = run_cli("export", "--dataset", "REAL", "--dataset", "GEN", "--source", "model", "--format", "parquet")
    assert result.code == 0, result.err
    folder = tmp_path / "reports"
    assert result.out.splitlines() == [
        f"Exported 2 images of REAL (model labels) as PARQUET to {folder / 'REAL_model_categorized.parquet'}.",
        f"Exported 1 image of GEN (model labels) as PARQUET to {folder / 'GEN_model_categorized.parquet'}.",
    ]
    assert list(pd.read_parquet(folder / "GEN_model_categorized.parquet")["image_name"]) == ["=g.jpg"]
    result = run_cli("export", "--dataset", "GEN", "--output-dir", "one")
    assert result.code == 0, result.err
    assert (tmp_path / "one" / "GEN_effective_categorized.csv").read_text().startswith("image_name,")
    bad = run_cli("export", "--dataset", "REAL", "--dataset", "GEN", "--output-csv", "x.csv")
    assert bad.code != 0 and "--output-dir" in bad.err
    assert not (tmp_path / "x.csv").exists()
