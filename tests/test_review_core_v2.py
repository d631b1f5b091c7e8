"""Review core: the model's field order kept through saves and exports, a bulk action as one undoable entry, a
refused stale save naming each changed field with its before and after, and agreement left undefined (NaN).

Everything runs on a real DuckDB file filled by importing a seed CSV whose descriptions are in the model's order."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from labeling import review
from labeling.datasets import import_dataset
from labeling.errors import ConflictError
from labeling.exporting import export_bytes, export_preview
from labeling.store import Store
from labeling.store.migrations import MIGRATIONS

# A description as the model writes it: top-level fields and nested keys in an order that is not alphabetical.
MODEL = {
    "summary": "A brown dog in a park",
    "objects": [{"name": "dog", "count": 1}, {"name": "ball", "count": 1}],
    "scene": {"indoor_outdoor": "outdoor", "environment": "a sunny park"},
    "style": {"medium": "photo", "genre": "pet"},
    "camera": {"angle": "eye level", "shot": "wide"},
    "text": {"present": False, "content": ""},
    "quality": {"sharpness": "sharp", "artifacts": []},
}
TOP = ["summary", "objects", "scene", "style", "camera", "text", "quality"]


def keys(value: Any) -> Any:
    """The key order of a JSON value, nested: [(key, keys of its value), ...] for objects."""
    if isinstance(value, dict):
        return [(key, keys(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [keys(item) for item in value]
    return None


def seed(rows: list[tuple[str, dict[str, Any], str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["image_name", "description", "categories"])
    writer.writerows([name, json.dumps(description, ensure_ascii=False), cats] for name, description, cats in rows)
    return out.getvalue().encode()


@pytest.fixture
def real(store: Store) -> Store:
    """REAL: a.jpg with the model's nested description, b..e with summaries; GEN: one image."""
    rows = [
        ("a.jpg", MODEL, "animals"),
        ("b.jpg", {"summary": "A street"}, "cityscapes, vehicles"),
        ("c.jpg", {"summary": "Soup"}, "food"),
        ("d.jpg", {"summary": "Nothing"}, "unknown"),
        ("e.jpg", {"summary": "A cat"}, "animals"),
    ]
    import_dataset(store, "REAL", csv_data=seed(rows), csv_name="real.csv")
    import_dataset(store, "GEN", csv_data=seed([("x.jpg", {"summary": "A generated dog"}, "animals")]), csv_name="g")
    return store


def image(store: Store, name: str, dataset: str = "REAL") -> int:
    return store.image_id_by_name(dataset, name)


def stored_text(store: Store, image_id: int) -> str:
    row = store.fetch_one("SELECT description::VARCHAR FROM human_labels WHERE image_id = ?", [image_id])
    assert row is not None
    return str(row[0])


def edited(**changes: Any) -> dict[str, Any]:
    """The model's description with some fields changed, in the model's order (as the page builds it)."""
    description = copy.deepcopy(MODEL)
    for path, value in changes.items():
        *parents, last = path.split("__")
        target = description
        for parent in parents:
            target = target[parent]
        target[last] = value
    return description


def reversed_keys(value: Any) -> Any:
    """The same value with every object's keys in the opposite order."""
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(item) for item in value]
    return value


# ---- 1. the model's field order, on save and in every export -----------------------------------------------------


def test_a_saved_nested_edit_keeps_the_models_field_and_key_order_in_the_database(real: Store) -> None:
    a = image(real, "a.jpg")
    record = review.focus(real, a)
    assert list(record.description or {}) == TOP  # the model's order as imported
    wanted = edited(scene__environment="a rainy street")
    result = review.save(real, record, reviewer="ana", description=wanted)
    assert result.changed == ["description"]
    text = stored_text(real, a)
    assert text == json.dumps(wanted, ensure_ascii=False)  # byte for byte: nothing re-sorted
    assert text.startswith('{"summary": "A brown dog in a park", "objects": [{"name": "dog", "count": 1}')
    assert '"scene": {"indoor_outdoor": "outdoor", "environment": "a rainy street"}' in text
    assert keys(json.loads(text)) == keys(MODEL)
    # the edit log's after value, and what the focus view reads back, keep it too
    after = real.fetch_one("SELECT after::VARCHAR FROM edit_log WHERE image_id = ? AND field = 'description'", [a])
    assert after is not None and keys(json.loads(after[0])) == keys(MODEL)
    assert keys(review.focus(real, a).description) == keys(MODEL)
    history = review.edit_history(real, image_id=a)
    assert history["change"].tolist() == ["description: scene.environment 'a sunny park' -> 'a rainy street'"]


def test_every_export_keeps_the_models_order_after_a_reviewers_save(real: Store, tmp_path: Path) -> None:
    a = image(real, "a.jpg")
    wanted = edited(scene__environment="a rainy street", style__genre="portrait")
    real.save_label(a, expected_version=0, reviewer="ana", description=wanted, reviewed=True)
    expected = json.dumps(wanted, ensure_ascii=False)
    for source in ("effective", "human"):
        rows = list(csv.DictReader(io.StringIO(export_bytes(real, "REAL", source=source).decode())))
        cell = next(r["description"] for r in rows if r["image_name"] == "a.jpg")
        assert cell == expected, source
        parquet = tmp_path / f"{source}.parquet"
        parquet.write_bytes(export_bytes(real, "REAL", source=source, fmt="parquet"))
        found = duckdb.sql(f"SELECT description FROM '{parquet}' WHERE image_name = 'a.jpg'").fetchall()
        assert found == [(expected,)], source
    preview = export_preview(real, "REAL").set_index("image_name")
    assert preview.loc["a.jpg", "description"] == expected
    # the model's own description (model labels) goes out as the model wrote it
    model_rows = list(csv.DictReader(io.StringIO(export_bytes(real, "REAL", source="model").decode())))
    assert next(r["description"] for r in model_rows if r["image_name"] == "a.jpg") == json.dumps(MODEL)


def test_a_description_equal_but_for_key_order_is_no_change(real: Store) -> None:
    a = image(real, "a.jpg")
    shuffled = reversed_keys(edited(scene__environment="a rainy street"))
    assert list(shuffled) != TOP
    real.save_label(a, expected_version=0, reviewer="ana", description=edited(scene__environment="a rainy street"))
    text = stored_text(real, a)
    # the store: same content in another order writes nothing
    assert real.save_label(a, expected_version=1, reviewer="bob", description=shuffled) == 1
    # the review verb: nothing changed, nothing saved
    result = review.save(real, review.focus(real, a), reviewer="bob", description=shuffled)
    assert (result.changed, result.version) == ([], 1)
    assert stored_text(real, a) == text and len(real.edit_log(image_id=a)) == 1
    # the model's description in another order is not an edit either: the image keeps following the model
    fresh = image(real, "e.jpg")
    shown = review.focus(real, fresh)
    assert review.save(real, shown, reviewer="bob", description=reversed_keys(shown.description)).changed == []
    assert real.review_record(fresh).human is None


# ---- 2. a bulk action is one entry and undoes as one ---------------------------------------------------------------


def categories_of(store: Store, names: list[str]) -> dict[str, list[str] | None]:
    return {name: review.focus(store, image(store, name)).categories for name in names}


def test_a_bulk_action_is_one_entry_in_the_edit_log_with_its_rows_kept_per_image(real: Store) -> None:
    chosen = [image(real, n) for n in ("a.jpg", "b.jpg", "c.jpg", "d.jpg")]
    assert real.bulk_categories(chosen, "people", add=True, reviewer="ana") == 4
    history = review.edit_history(real, dataset="REAL")
    assert history[["image", "change", "reviewer", "images", "undone"]].values.tolist() == [
        ["4 images", "added category 'people'", "ana", 4, False]
    ]
    assert pd.isna(history["image_id"].iloc[0])
    # the database keeps one row per image, each with its own before value, under one bulk id
    rows = real.fetch_all(
        "SELECT i.name, e.before::VARCHAR, e.after::VARCHAR, e.bulk_id, e.bulk_action FROM edit_log e "
        "JOIN images i ON i.id = e.image_id ORDER BY i.name"
    )
    assert [(r[0], r[1], r[2]) for r in rows] == [
        ("a.jpg", None, '["animals","people"]'),
        ("b.jpg", None, '["cityscapes","vehicles","people"]'),
        ("c.jpg", None, '["food","people"]'),
        ("d.jpg", None, '["people"]'),
    ]
    assert rows[0][3] is not None and {(r[3], r[4]) for r in rows} == {(rows[0][3], "added category 'people'")}
    # one image's history shows its part of the bulk action, and says undoing it undoes all of it
    a_history = review.edit_history(real, image_id=chosen[0])
    assert a_history["change"].tolist() == [
        'categories: model\'s -> ["animals", "people"] (part of a bulk edit of 4 images: added category '
        "'people'; undoing it undoes the whole bulk edit)"
    ]
    assert a_history["image"].tolist() == ["a.jpg"] and a_history["images"].tolist() == [4]


def test_undoing_a_bulk_action_undoes_all_its_images_and_skips_the_ones_changed_since(real: Store) -> None:
    names = ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]
    chosen = [image(real, n) for n in names]
    real.bulk_categories(chosen, "people", add=True, reviewer="ana")
    # bob changes c.jpg's categories afterwards, and marks b.jpg reviewed (another field: no obstacle)
    c = review.focus(real, chosen[2])
    review.save(real, c, reviewer="bob", categories=["food"])
    review.save(real, review.focus(real, chosen[1]), reviewer="bob", reviewed=True)
    entry = int(review.edit_history(real, dataset="REAL").query("change == \"added category 'people'\"")["id"].iloc[0])
    result = review.undo(real, entry, "carl")
    assert (result.edit_id, result.images, result.skipped, result.bulk, result.version) == (entry, 3, 1, True, None)
    assert (
        result.summary() == f"Undid bulk edit #{entry} on 3 images; 1 image changed again since kept the newer value."
    )
    assert categories_of(real, names) == {
        "a.jpg": ["animals"],  # back to the model's
        "b.jpg": ["cityscapes", "vehicles"],
        "c.jpg": ["food"],  # bob's later change stands
        "d.jpg": ["unknown"],
    }
    assert review.focus(real, chosen[1]).reviewed  # bob's other field stays
    human = real.fetch_all(
        "SELECT i.name, h.categories, h.version, h.reviewer FROM human_labels h "
        "JOIN images i ON i.id = h.image_id ORDER BY i.name"
    )
    assert human == [
        ("a.jpg", None, 2, "carl"),
        ("b.jpg", None, 3, "carl"),
        ("c.jpg", ["food"], 2, "bob"),
        ("d.jpg", None, 2, "carl"),
    ]
    history = review.edit_history(real, dataset="REAL")
    assert history[["image", "change", "reviewer", "undone"]].values.tolist() == [
        ["3 images", f"undid #{entry}: added category 'people'", "carl", False],
        ["b.jpg", "reviewed: no -> yes", "bob", False],
        ["c.jpg", 'categories: ["food", "people"] -> ["food"]', "bob", False],
        ["4 images", "added category 'people'", "ana", True],
    ]
    # per image: the three undone rows are marked, c.jpg's (skipped) is not
    undone = dict(
        real.fetch_all(
            "SELECT i.name, e.undone FROM edit_log e JOIN images i ON i.id = e.image_id WHERE e.id IN "
            "(SELECT id FROM edit_log WHERE bulk_id = (SELECT bulk_id FROM edit_log WHERE id = ?))",
            [entry],
        )
    )
    assert undone == {"a.jpg": True, "b.jpg": True, "c.jpg": False, "d.jpg": True}
    # the one image left still holds bob's value: undoing the bulk action again is refused, nothing written
    with pytest.raises(ConflictError, match=r"its 1 image not yet undone changed again since"):
        review.undo(real, entry, "carl")
    # undoing the undo (one entry) brings the action back on its three images
    redo = int(history["id"].iloc[0])
    assert review.undo(real, redo, "dana").images == 3
    assert categories_of(real, ["a.jpg", "d.jpg"]) == {"a.jpg": ["animals", "people"], "d.jpg": ["people"]}
    with pytest.raises(ConflictError, match="undone already"):
        review.undo(real, redo, "dana")


def test_undoing_from_one_images_history_undoes_the_whole_bulk_action(real: Store) -> None:
    chosen = [image(real, n) for n in ("a.jpg", "b.jpg", "e.jpg")]
    assert real.bulk_mark_reviewed(chosen, reviewer="ana") == 3
    a_row = int(review.edit_history(real, image_id=chosen[0])["id"].iloc[0])
    result = review.undo(real, a_row, "bob")
    assert (result.images, result.skipped) == (3, 0)
    assert [review.focus(real, i).reviewed for i in chosen] == [False, False, False]
    assert review.edit_history(real, image_id=chosen[2])["change"].iloc[0].startswith("reviewed: yes -> no")


def test_a_bulk_action_over_two_datasets_is_one_entry_in_each_and_the_limit_counts_entries(real: Store) -> None:
    chosen = [image(real, "a.jpg"), image(real, "b.jpg"), image(real, "x.jpg", "GEN")]
    real.bulk_categories(chosen, "plants", add=True, reviewer="ana")
    review.save(real, review.focus(real, chosen[0]), reviewer="bob", reviewed=True)
    real.bulk_mark_reviewed(chosen[1:], reviewer="bob", reviewed=True)
    everything = review.edit_history(real)
    assert everything[["image", "dataset", "change"]].values.tolist() == [
        ["2 images", "GEN, REAL", "marked reviewed"],
        ["a.jpg", "REAL", "reviewed: no -> yes"],
        ["3 images", "GEN, REAL", "added category 'plants'"],
    ]
    gen = review.edit_history(real, dataset="GEN")
    assert gen["image"].tolist() == ["2 images", "3 images"]  # the whole action's size, wherever it is listed
    assert review.edit_history(real, limit=2)["image"].tolist() == ["2 images", "a.jpg"]


def test_a_database_from_before_bulk_entries_upgrades_its_edit_log_in_place(db_path: Path) -> None:
    with Store(db_path, migrations=tuple(m for m in MIGRATIONS if m.version < 13)) as old:
        import_dataset(old, "REAL", csv_data=seed([("a.jpg", MODEL, "animals")]), csv_name="r")
        a = old.image_id_by_name("REAL", "a.jpg")
        cur = old.cursor()
        cur.execute("INSERT INTO human_labels (image_id, categories, version) VALUES (?, ['food'], 1)", [a])
        cur.execute(
            "INSERT INTO edit_log (image_id, reviewer, field, before, after, version) "
            "VALUES (?, 'ana', 'categories', NULL, '[\"food\"]', 1)",
            [a],
        )
    with Store(db_path) as store:
        assert store.schema_version() == MIGRATIONS[-1].version
        log = store.edit_log()
        assert log[["name", "field", "images"]].values.tolist() == [["a.jpg", "categories", 1]]
        assert pd.isna(log["bulk_id"].iloc[0])
        assert review.undo(store, int(log["id"].iloc[0]), "bob").version == 2
        assert review.focus(store, a).categories == ["animals"]


# ---- 3. a refused save names each changed field with its before and after ------------------------------------------


def test_a_stale_save_names_each_changed_field_with_its_value_then_and_now(real: Store) -> None:
    a = image(real, "a.jpg")
    ana_read = review.focus(real, a)
    objects = [{"name": "dog", "count": 1}, {"name": "ball", "count": 1}, {"name": "frisbee", "count": 2}]
    real.save_label(
        a,
        expected_version=0,
        reviewer="bob",
        description=edited(scene__environment="a rainy street", objects=objects),
        categories=["animals", "plants"],
        reviewed=True,
    )
    with pytest.raises(ConflictError) as refused:
        review.save(real, ana_read, reviewer="ana", categories=["food"])
    when = real.fetch_all("SELECT max(edited_at) FROM edit_log")[0][0]
    assert str(refused.value) == (
        f"Not saved: a.jpg was changed by bob at {when:%H:%M:%S} after you opened it (you read version 0, it is "
        "now version 1). Changed: "
        'objects: [{"name": "dog", "count": 1}, {"name": "ball", "count": 1}] -> '
        '[{"name": "dog", "count": 1}, {"name": "ball", "count": 1},…; '
        "scene.environment: a sunny park -> a rainy street; "
        "categories: animals -> animals, plants; "
        "reviewed: no -> yes. "
        "Your edits are still in the form: load the latest version and apply them again, or save yours over theirs."
    )
    assert refused.value.changes == [
        (
            "objects",
            '[{"name": "dog", "count": 1}, {"name": "ball", "count": 1}]',
            '[{"name": "dog", "count": 1}, {"name": "ball", "count": 1},…',
        ),
        ("scene.environment", "a sunny park", "a rainy street"),
        ("categories", "animals", "animals, plants"),
        ("reviewed", "no", "yes"),
    ]
    assert review.focus(real, a).categories == ["animals", "plants"]  # ana's save wrote nothing


def test_the_values_then_are_the_ones_opened_and_every_reviewer_since_is_named(real: Store) -> None:
    a = image(real, "a.jpg")
    real.save_label(a, expected_version=0, reviewer="bob", description=edited(scene__environment="a beach"))
    ana_read = review.focus(real, a)  # version 1: bob's description
    real.save_label(a, expected_version=1, reviewer="carl", description=edited(scene__environment="a forest"))
    real.save_label(
        a, expected_version=2, reviewer="dana", description=edited(scene__environment="a forest", summary="A dog")
    )
    real.save_label(a, expected_version=3, reviewer="carl", reviewed=True)
    with pytest.raises(ConflictError) as refused:
        review.save(real, ana_read, reviewer="ana", reviewed=True)
    message = str(refused.value)
    assert message.startswith("Not saved: a.jpg was changed by carl and dana at ")
    assert "(you read version 1, it is now version 4)" in message
    assert refused.value.changes == [
        ("summary", "A brown dog in a park", "A dog"),
        ("scene.environment", "a beach", "a forest"),  # what ana opened, not the model's
        ("reviewed", "no", "yes"),
    ]


def test_a_conflict_whose_changes_cancel_out_says_so(real: Store) -> None:
    b = image(real, "b.jpg")
    ana_read = review.focus(real, b)
    real.save_label(b, expected_version=0, reviewer="bob", categories=["cityscapes"])
    real.save_label(b, expected_version=1, reviewer="bob", categories=None)  # back to the model's
    with pytest.raises(ConflictError) as refused:
        review.save(real, ana_read, reviewer="ana", reviewed=True)
    assert "Their changes add up to no difference." in str(refused.value) and refused.value.changes == []


# ---- 4. agreement: undefined is NaN, never 0 ----------------------------------------------------------------------


def test_agreement_leaves_undefined_precision_and_recall_as_nan_floats(real: Store) -> None:
    empty = review.agreement(real, "REAL")
    assert list(empty.columns) == ["category", "reviewed", "tp", "fp", "fn", "precision", "recall"]
    assert empty.empty
    # b: the model said cityscapes + vehicles, the reviewer keeps cityscapes and adds people
    b = image(real, "b.jpg")
    real.save_label(b, expected_version=0, reviewer="ana", categories=["cityscapes", "people"], reviewed=True)
    table = review.agreement(real, "REAL").set_index("category")
    assert table["precision"].dtype == "float64" and table["recall"].dtype == "float64"
    assert table.loc["vehicles", "precision"] == 0.0 and pd.isna(table.loc["vehicles", "recall"])
    assert pd.isna(table.loc["people", "precision"]) and table.loc["people", "recall"] == 0.0
    assert table.loc["cityscapes", ["precision", "recall"]].tolist() == [1.0, 1.0]
