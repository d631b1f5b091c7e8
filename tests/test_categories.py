"""The category list in the store: verbs, versions, and how renames and merges carry through to labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labeling.categories import ENUM_MAX_NAMES, Category, list_plan, schema_enum
from labeling.errors import ConflictError, InputError, NotFoundError
from labeling.store import Store
from labeling.taxonomy import (
    UNKNOWN,
    apply_table_edit,
    ensure_categories,
    import_categories,
)
from tests.category_support import add_described, description, effective_categories, model_categories, set_human


def names(store: Store, include_inactive: bool = False) -> list[str]:
    return [c.name for c in store.categories(include_inactive=include_inactive)]


def test_default_list_is_version_one_with_definitions(store: Store) -> None:
    categories = ensure_categories(store)
    assert store.category_list_version() == 1
    assert {"people", "animals", "food", "landscapes"} <= {c.name for c in categories}
    assert all(c.definition for c in categories)
    assert store.category_versions().iloc[0]["note"] == "default list"


def test_every_verb_makes_a_new_version_with_a_snapshot(store: Store) -> None:
    ensure_categories(store)
    start = store.category_list_version()
    steps = [
        store.add_category("memes", "Internet memes: an image with caption text"),
        store.set_category_definition("memes", "Image macros and memes"),
        store.set_category_active("memes", False),
        store.set_category_active("memes", True),
        store.move_category("memes", 0),
        store.rename_category("memes", "image macros"),
        store.delete_category("image macros"),
    ]
    assert [s.version for s in steps] == list(range(start + 1, start + 8))
    history = store.category_versions()
    assert history["version"].tolist()[:7] == list(range(start + 7, start, -1))
    assert history.iloc[0]["note"] == "delete 'image macros'"
    at_move = store.category_list_at(start + 5)
    assert at_move[0] == Category("memes", "Image macros and memes", True)
    assert store.category_list_at(start + 3)[-1].active is False
    assert "image macros" not in names(store, include_inactive=True)


def test_unchanged_edits_make_no_version(store: Store) -> None:
    ensure_categories(store)
    version = store.category_list_version()
    assert store.set_category_active("food", True).note == "unchanged"
    food = next(c for c in store.categories() if c.name == "food")
    assert store.set_category_definition("food", food.definition).note == "unchanged"
    assert store.category_list_version() == version


def test_names_are_checked(store: Store) -> None:
    ensure_categories(store)
    with pytest.raises(InputError, match="commas"):
        store.add_category("cats, dogs")
    with pytest.raises(InputError, match="reserved"):
        store.add_category("Unknown")
    with pytest.raises(InputError, match="needs a name"):
        store.add_category("   ")
    with pytest.raises(ConflictError, match="already has"):
        store.add_category("FOOD")
    store.set_category_active("food", False)
    with pytest.raises(ConflictError, match="activate it instead"):
        store.add_category("food")
    with pytest.raises(ConflictError, match="merge"):
        store.rename_category("people", "animals")
    with pytest.raises(NotFoundError, match="no category 'robots'"):
        store.delete_category("robots")
    assert store.add_category("  street   art ").note == "add 'street art'"


def test_deactivated_categories_leave_the_prompt_but_keep_their_definition(store: Store) -> None:
    ensure_categories(store)
    store.set_category_active("night", False)
    assert "night" not in names(store)
    night = next(c for c in store.categories(include_inactive=True) if c.name == "night")
    assert night.definition and not night.active


def test_rename_rewrites_human_labels_with_edit_log_and_aliases_model_labels(store: Store) -> None:
    ids = add_described(
        store,
        "REAL",
        [
            ("a.jpg", description("a car"), ["vehicles", "cityscapes"]),
            ("b.jpg", description("a cat"), ["animals"]),
            ("c.jpg", description("a bus"), ["vehicles"]),
        ],
    )
    set_human(store, ids["c.jpg"], ["vehicles", "people"], reviewer="ann")
    change = store.rename_category("vehicles", "transport", reviewer="bob")
    assert change.human_labels_changed == 1
    assert "transport" in names(store) and "vehicles" not in names(store, include_inactive=True)
    # model history is never rewritten; the views read the new name
    stored = store.fetch_all("SELECT categories FROM annotations WHERE image_id = ?", [ids["a.jpg"]])
    assert list(stored[0][0]) == ["vehicles", "cityscapes"]
    assert model_categories(store, ids["a.jpg"]) == ["transport", "cityscapes"]
    assert effective_categories(store, ids["a.jpg"]) == ["transport", "cityscapes"]
    assert effective_categories(store, ids["b.jpg"]) == ["animals"]
    # the human label is rewritten, versioned and logged (so it can be undone)
    record = store.review_record(ids["c.jpg"])
    assert record.human.categories == ["transport", "people"]
    assert record.version == 2
    log = store.edit_log(image_id=ids["c.jpg"])
    assert log.iloc[0]["reviewer"] == "bob" and log.iloc[0]["field"] == "categories"
    assert json.loads(log.iloc[0]["before"]) == ["vehicles", "people"]
    assert json.loads(log.iloc[0]["after"]) == ["transport", "people"]
    store.undo_edit(int(log.iloc[0]["id"]), "bob")
    assert store.review_record(ids["c.jpg"]).human.categories == ["vehicles", "people"]


def test_a_rename_is_one_bulk_edit_in_the_log_and_undoes_as_one(store: Store) -> None:
    ids = add_described(
        store,
        "REAL",
        [("a.jpg", description("a car"), ["vehicles"]), ("b.jpg", description("a bus"), ["vehicles"])],
    )
    set_human(store, ids["a.jpg"], ["vehicles"], reviewer="ann")
    set_human(store, ids["b.jpg"], ["vehicles", "people"], reviewer="ann")
    assert store.rename_category("vehicles", "transport", reviewer="bob").human_labels_changed == 2
    entries = store.edit_log(dataset="REAL")
    renamed = entries[entries["action"] == "renamed category 'vehicles' to 'transport'"]
    assert len(renamed) == 1 and int(renamed.iloc[0]["images"]) == 2  # one entry for both images
    result = store.undo_edit(int(renamed.iloc[0]["id"]), "bob")
    assert result.bulk and result.images == 2
    assert store.review_record(ids["a.jpg"]).human.categories == ["vehicles"]
    assert store.review_record(ids["b.jpg"]).human.categories == ["vehicles", "people"]


def test_merge_carries_through_and_drops_duplicates(store: Store) -> None:
    ids = add_described(
        store,
        "GEN",
        [
            ("a.png", description("x"), ["cityscapes", "architecture"]),
            ("b.png", description("y"), ["architecture", "night"]),
            ("c.png", description("z"), ["food"]),
        ],
    )
    set_human(store, ids["c.png"], ["cityscapes", "architecture", "food"])
    change = store.merge_categories(
        ["cityscapes"], "architecture", reviewer="ann", definition="Buildings, streets and skylines"
    )
    assert change.note == "merge 'cityscapes' into 'architecture'"
    assert model_categories(store, ids["a.png"]) == ["architecture"]
    assert model_categories(store, ids["b.png"]) == ["architecture", "night"]
    assert store.review_record(ids["c.png"]).human.categories == ["architecture", "food"]
    assert effective_categories(store, ids["c.png"]) == ["architecture", "food"]
    assert "cityscapes" not in names(store, include_inactive=True)
    kept = next(c for c in store.categories() if c.name == "architecture")
    assert kept.definition == "Buildings, streets and skylines"
    with pytest.raises(InputError, match="other than the target"):
        store.merge_categories(["architecture"], "architecture")


def test_rename_chains_and_renaming_back(store: Store) -> None:
    ids = add_described(store, "REAL", [("a.jpg", description("a"), ["plants"])])
    store.rename_category("plants", "flora")
    store.rename_category("flora", "vegetation")
    assert model_categories(store, ids["a.jpg"]) == ["vegetation"]
    store.rename_category("vegetation", "plants")
    assert model_categories(store, ids["a.jpg"]) == ["plants"]
    aliases = store.category_aliases()
    assert "plants" not in set(aliases["old_name"])  # no alias of a name onto itself


def test_aliases_only_apply_to_labels_made_before_the_rename(store: Store) -> None:
    ids = add_described(store, "REAL", [("old.jpg", description("a"), ["sports"])])
    store.rename_category("sports", "games")
    store.add_category("sports", "Athletes in action")  # a new category with the old name
    later = add_described(store, "GEN", [("new.jpg", description("b"), ["sports"])])
    assert model_categories(store, ids["old.jpg"]) == ["games"]
    assert model_categories(store, later["new.jpg"]) == ["sports"]


def test_seed_imports_without_a_version_read_through_aliases(store: Store) -> None:
    ids = add_described(store, "REAL", [("a.jpg", description("a"), ["food"])], list_version=None)
    store.fetch_all("UPDATE annotations SET category_list_version = NULL")
    store.rename_category("food", "dishes")
    assert model_categories(store, ids["a.jpg"]) == ["dishes"]


def test_aliases_and_views_survive_reopening_the_file(db_path: Path) -> None:
    with Store(db_path) as first:
        ids = add_described(first, "REAL", [("a.jpg", description("a"), ["art"])])
        first.rename_category("art", "artworks")
    with Store(db_path) as again:
        assert again.schema_version() >= 7
        assert model_categories(again, ids["a.jpg"]) == ["artworks"]


def test_delete_and_deactivate_leave_labels_alone(store: Store) -> None:
    ids = add_described(store, "REAL", [("a.jpg", description("a"), ["abstract", "art"])])
    set_human(store, ids["a.jpg"], ["abstract"])
    store.delete_category("abstract")
    store.set_category_active("art", False)
    assert model_categories(store, ids["a.jpg"]) == ["abstract", "art"]
    assert store.review_record(ids["a.jpg"]).human.categories == ["abstract"]
    usage = store.category_usage().set_index("name")
    assert usage.loc["abstract", "human_images"] == 1 and usage.loc["art", "model_images"] == 1


def test_import_replace_keeps_others_deactivated_and_add_appends(store: Store) -> None:
    ensure_categories(store)
    change = import_categories(store, [Category("people", ""), Category("robots", "Robots and machines")])
    assert names(store) == ["people", "robots"]
    people = next(c for c in store.categories() if c.name == "people")
    assert people.definition  # an empty definition keeps the list's
    assert "food" in names(store, include_inactive=True)
    assert change.note.startswith("import from CSV (replace")
    import_categories(store, [Category("food", ""), Category("toys", "")], mode="add")
    assert names(store) == ["people", "robots", "toys"]  # food exists (deactivated): not added again
    assert import_categories(store, [Category("toys", "")], mode="add").note == "unchanged"
    with pytest.raises(InputError, match="mode"):
        import_categories(store, [Category("x", "")], mode="merge")


def test_table_edit_saves_definitions_flags_and_order_in_one_version(store: Store) -> None:
    current = ensure_categories(store)
    version = store.category_list_version()
    edited = [Category(c.name, c.definition, c.active) for c in store.categories(include_inactive=True)]
    edited[0] = Category(edited[0].name, "Only people", True)
    edited[1] = Category(edited[1].name, edited[1].definition, False)
    edited.reverse()
    change = apply_table_edit(store, edited)
    assert change.version == version + 1
    assert store.categories(include_inactive=True) == edited
    assert apply_table_edit(store, edited).note == "unchanged"
    with pytest.raises(InputError, match="no longer matches"):
        apply_table_edit(store, [*edited, Category("new", "")])
    assert len(current) == len(edited)


def test_long_lists_fall_back_to_validated_strings() -> None:
    short = [Category(f"c{i}") for i in range(ENUM_MAX_NAMES)]
    assert list_plan(short).enum and list_plan(short).message == ""
    assert schema_enum([c.name for c in short] + [UNKNOWN]) == [c.name for c in short] + [UNKNOWN]
    many = [Category(f"c{i}") for i in range(ENUM_MAX_NAMES + 1)]
    plan = list_plan(many)
    assert not plan.enum and "too long for one enum" in plan.message
    assert schema_enum(list(plan.names)) is None
    wordy = [Category(f"a rather long category name number {i}") for i in range(50)]
    assert not list_plan(wordy).enum  # few names, too many characters
    assert list_plan([*short[:10], Category("off", active=False)]).names[-1] == UNKNOWN
