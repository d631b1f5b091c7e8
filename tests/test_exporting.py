"""Exports: the seed's categorized CSV byte for byte, spreadsheet-safe cells, Parquet, and the import round trip."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest

from labeling.datasets import import_dataset
from labeling.errors import InputError, NotFoundError
from labeling.exporting import (
    default_export_name,
    export_bytes,
    export_dataset,
    export_format,
    export_preview,
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
