"""Review: the gallery query, saves with optimistic concurrency, the edit log and undo, bulk edits, agreement,
thumbnails — on real DuckDB files filled by importing seed CSVs with real Pillow images."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from labeling import review
from labeling.datasets import import_dataset
from labeling.errors import ConflictError, InputError, NotFoundError
from labeling.review import ReviewFilter
from labeling.settings import load_settings
from labeling.store import Store
from labeling.store.review import NO_CATEGORY
from labeling.thumbnails import Pictures, thumbnail_path

SEED_ROWS = [
    ("a.jpg", {"summary": "A brown dog on grass", "setting": "park", "objects": ["dog", "ball"]}, "animals"),
    ("b.jpg", {"summary": "A busy city street at night"}, "cityscapes, vehicles"),
    ("c.jpg", None, None),  # the seed failed on it
    ("d.jpg", {"summary": "A bowl of soup, 50% eaten"}, "food"),
    ("e.jpg", {"summary": "Nothing recognisable"}, "unknown"),
    ("gone.jpg", {"summary": "A cat on a sofa"}, "animals"),  # listed, but no file
]


def seed_csv(rows: list[tuple[str, dict | None, str | None]] = SEED_ROWS) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["image_name", "description", "categories"])
    for name, description, categories in rows:
        if description is None:
            writer.writerow([name, "ERROR: model refused", ""])
        else:
            writer.writerow([name, json.dumps(description), categories or ""])
    return out.getvalue().encode()


@pytest.fixture
def images_dir(tmp_path: Path, make_image: Callable[..., Path]) -> Path:
    folder = tmp_path / "imgs"
    for i, (name, _, _) in enumerate(SEED_ROWS):
        if name != "gone.jpg":
            make_image(folder / name, size=(640, 480), color=(40 * i, 100, 200))
    return folder


@pytest.fixture
def real(store: Store, images_dir: Path) -> Store:
    """Dataset REAL from a seed CSV (five images on disk, one missing), plus a small GEN dataset."""
    import_dataset(store, "REAL", csv_data=seed_csv(), csv_name="real.csv", images_dir=images_dir)
    import_dataset(
        store, "GEN", csv_data=seed_csv([("x.jpg", {"summary": "A generated dog"}, "animals")]), csv_name="gen.csv"
    )
    return store


def ids(store: Store) -> dict[str, int]:
    frame = store.image_ids_by_name(store.dataset_id("REAL"))
    return dict(zip(frame["name"], frame["image_id"].astype(int), strict=True))


def names(store: Store, **kwargs: object) -> list[str]:
    return store.gallery(ReviewFilter(dataset="REAL", **kwargs), page_size=100).rows["name"].tolist()  # type: ignore[arg-type]


# ---- the gallery ------------------------------------------------------------------------------------------------


def test_gallery_shows_a_dataset_with_effective_values_and_counts(real: Store) -> None:
    page = real.gallery(ReviewFilter(dataset="REAL"), page_size=100)
    assert page.rows["name"].tolist() == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "gone.jpg"]
    first = page.rows.iloc[0]
    assert first["summary"] == "A brown dog on grass"
    assert list(first["categories"]) == ["animals"]
    assert page.total == 6
    assert page.counts == {
        "all": 6,
        "not_reviewed": 6,
        "reviewed": 0,
        "failed": 1,
        "missing_image": 1,
        "disagreement": 0,
        "matching": 6,
    }
    everything = real.gallery(ReviewFilter(), page_size=100)
    assert everything.total == 7 and set(everything.rows["dataset"]) == {"REAL", "GEN"}


def test_gallery_filters(real: Store) -> None:
    image = ids(real)
    real.save_label(image["a.jpg"], expected_version=0, reviewer="ana", categories=["animals", "plants"], reviewed=True)
    real.save_label(image["b.jpg"], expected_version=0, reviewer="ana", reviewed=True)
    assert names(real, state="reviewed") == ["a.jpg", "b.jpg"]
    assert names(real, state="not_reviewed") == ["c.jpg", "d.jpg", "e.jpg", "gone.jpg"]
    assert names(real, state="failed") == ["c.jpg"]
    assert names(real, state="missing_image") == ["gone.jpg"]
    assert names(real, disagreement=True) == ["a.jpg"]  # b.jpg was reviewed but its categories kept
    assert names(real, category="plants", category_source="effective") == ["a.jpg"]
    assert names(real, category="plants", category_source="model") == []
    assert names(real, category="plants", category_source="human") == ["a.jpg"]
    assert names(real, category="animals", category_source="model") == ["a.jpg", "gone.jpg"]
    assert names(real, category=NO_CATEGORY) == ["c.jpg"]
    # human = reviewed images only, as on Compare and Export: b.jpg was reviewed with the model's categories kept
    assert names(real, category=NO_CATEGORY, category_source="human") == ["c.jpg", "d.jpg", "e.jpg", "gone.jpg"]


def test_text_search_in_names_and_descriptions_is_case_insensitive_and_literal(real: Store) -> None:
    assert names(real, text="CITY street") == ["b.jpg"]
    assert names(real, text="park") == ["a.jpg"]  # a description field other than the summary
    assert names(real, text="GONE") == ["gone.jpg"]  # the file name
    assert names(real, text="50%") == ["d.jpg"]  # % is a character, not a wildcard
    assert names(real, text="5_%") == []
    assert names(real, text="  ") == names(real)


def test_paging_sorting_and_clamping(real: Store) -> None:
    flt = ReviewFilter(dataset="REAL")
    pages = [real.gallery(flt, page=p, page_size=4) for p in (1, 2)]
    assert [p.rows["name"].tolist() for p in pages] == [["a.jpg", "b.jpg", "c.jpg", "d.jpg"], ["e.jpg", "gone.jpg"]]
    assert pages[0].pages == 2
    assert real.gallery(flt, page=99, page_size=4).page == 2  # a page past the end shows the last one
    assert names(real, sort="name_desc")[:2] == ["gone.jpg", "e.jpg"]
    real.save_label(ids(real)["d.jpg"], expected_version=0, reviewer="ana", reviewed=True)
    assert names(real, sort="recently_edited")[0] == "d.jpg"
    assert names(real, sort="listed") == ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "gone.jpg"]
    with pytest.raises(InputError):
        ReviewFilter(sort="random")
    with pytest.raises(NotFoundError, match="no dataset named 'NOPE'"):
        real.gallery(ReviewFilter(dataset="NOPE"))


def test_next_and_previous_follow_the_filter_even_after_the_image_leaves_it(real: Store) -> None:
    image = ids(real)
    flt = ReviewFilter(dataset="REAL", state="not_reviewed")
    assert real.neighbor(flt, image["a.jpg"], 1) == image["b.jpg"]
    assert real.neighbor(flt, image["a.jpg"], -1) is None
    assert real.neighbor(flt, image["gone.jpg"], 1) is None
    real.save_label(image["b.jpg"], expected_version=0, reviewer="ana", reviewed=True)
    # b.jpg left the filter; its next is still c.jpg, and a.jpg's next skips it
    assert real.neighbor(flt, image["b.jpg"], 1) == image["c.jpg"]
    assert real.neighbor(flt, image["a.jpg"], 1) == image["c.jpg"]
    assert real.neighbor(ReviewFilter(dataset="REAL", sort="name_desc"), image["b.jpg"], 1) == image["a.jpg"]
    assert review.locate(real, "REAL", "d.jpg") == image["d.jpg"]
    with pytest.raises(NotFoundError, match="no image named"):
        review.locate(real, "REAL", "zzz.jpg")


# ---- saving, conflicts, the edit log, undo ----------------------------------------------------------------------


def test_save_writes_only_changed_fields_with_edit_log_rows(real: Store) -> None:
    record = review.focus(real, ids(real)["a.jpg"])
    assert record.version == 0 and record.model_categories == ["animals"]
    assert record.description == {"summary": "A brown dog on grass", "setting": "park", "objects": ["dog", "ball"]}
    edited = {**record.description, "summary": "A brown dog chasing a ball"}
    result = review.save(real, record, reviewer="ana", description=edited, categories=["animals"], reviewed=True)
    assert result.changed == ["description", "reviewed"] and result.version == 1
    stored = real.review_record(record.image_id)
    assert stored.human.categories is None  # categories kept following the model
    assert stored.human.description == {
        "summary": "A brown dog chasing a ball",
        "setting": "park",
        "objects": ["dog", "ball"],
    }
    assert stored.human.summary == "A brown dog chasing a ball"
    assert stored.human.reviewer == "ana"
    log = real.edit_log(image_id=record.image_id)
    assert sorted(log["field"]) == ["description", "reviewed"]
    assert set(log["reviewer"]) == {"ana"} and set(log["version"]) == {1}
    desc = log[log["field"] == "description"].iloc[0]
    assert pd.isna(desc["before"]) and json.loads(desc["after"])["summary"] == "A brown dog chasing a ball"
    again = review.save(
        real,
        review.focus(real, record.image_id),
        reviewer="ana",
        description=stored.description,
        categories=["animals"],
        reviewed=True,
    )
    assert again.changed == [] and again.version == 1 and len(real.edit_log(image_id=record.image_id)) == 2


def test_stale_save_is_refused_with_the_other_change_and_writes_nothing(real: Store) -> None:
    image_id = ids(real)["b.jpg"]
    ana_read = review.focus(real, image_id)
    bob_read = review.focus(real, image_id)
    review.save(real, ana_read, reviewer="ana", categories=["cityscapes"])
    with pytest.raises(ConflictError) as refused:
        review.save(real, bob_read, reviewer="bob", categories=["people"], reviewed=True)
    message = str(refused.value)
    assert "ana" in message and "cityscapes" in message and "version 0" in message and "version 1" in message
    after = review.focus(real, image_id)
    assert after.categories == ["cityscapes"] and after.version == 1 and not after.reviewed
    assert set(real.edit_log(image_id=image_id)["reviewer"]) == {"ana"}
    # Saving over theirs on purpose writes only bob's changed fields
    result = review.save(real, bob_read, reviewer="bob", categories=["people"], over_version=1)
    assert result.version == 2 and review.focus(real, image_id).categories == ["people"]


def test_two_reviewers_saving_at_once_one_wins_one_is_refused(real: Store) -> None:
    image_id = ids(real)["d.jpg"]
    record = review.focus(real, image_id)
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def reviewer(name: str, category: str) -> None:
        barrier.wait()
        try:
            review.save(real, record, reviewer=name, categories=[category])
            outcomes.append("saved")
        except ConflictError:
            outcomes.append("refused")

    threads = [threading.Thread(target=reviewer, args=args) for args in (("ana", "food"), ("bob", "objects"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Either both read version 0 and one is refused, or the first to commit made the other stale
    assert sorted(outcomes) in (["refused", "saved"], ["saved", "saved"])
    final = review.focus(real, image_id)
    log = real.edit_log(image_id=image_id)
    assert final.version == len(log)  # every version has its edit-log row: nothing written silently


def test_undo_writes_the_before_value_back_as_a_new_edit(real: Store) -> None:
    image_id = ids(real)["a.jpg"]
    review.save(real, review.focus(real, image_id), reviewer="ana", categories=["plants"])
    review.save(real, review.focus(real, image_id), reviewer="bob", reviewed=True)
    log = real.edit_log(image_id=image_id)
    categories_edit = int(log[log["field"] == "categories"]["id"].iloc[0])
    result = review.undo(real, categories_edit, "carl")
    assert (result.version, result.images, result.skipped, result.bulk) == (3, 1, 0, False)
    assert result.summary() == f"Undid edit #{categories_edit} (the image is now version 3)."
    record = review.focus(real, image_id)
    assert record.human_categories is None and record.categories == ["animals"]  # back to the model's
    assert record.reviewed  # bob's later edit of another field stays
    log = real.edit_log(image_id=image_id)
    newest = log.iloc[0]
    assert (newest["reviewer"], newest["field"], newest["version"]) == ("carl", "categories", 3)
    assert bool(log[log["id"] == categories_edit]["undone"].iloc[0])
    with pytest.raises(ConflictError, match="undone already"):
        review.undo(real, categories_edit, "carl")
    review.save(real, review.focus(real, image_id), reviewer="ana", categories=["food"])
    reviewed_edit = int(log[log["field"] == "reviewed"]["id"].iloc[0])
    review.undo(real, reviewed_edit, "ana")
    assert not review.focus(real, image_id).reviewed
    undo_row = int(real.edit_log(image_id=image_id, limit=10).query("field == 'categories'")["id"].iloc[1])
    with pytest.raises(ConflictError, match="changed again since"):
        review.undo(real, undo_row, "ana")  # the categories were changed again after that edit
    history = review.edit_history(real, dataset="REAL")
    assert 'categories: model\'s -> ["plants"]' in set(history["change"])


# ---- bulk -----------------------------------------------------------------------------------------------------


def test_bulk_add_remove_and_mark_reviewed_in_one_go(real: Store) -> None:
    image = ids(real)
    chosen = [image[n] for n in ("a.jpg", "b.jpg", "c.jpg", "e.jpg")]
    assert real.bulk_categories(chosen, "people", add=True, reviewer="ana") == 4
    assert real.bulk_categories(chosen, "people", add=True, reviewer="ana") == 0  # already there
    rows = real.gallery(ReviewFilter(dataset="REAL"), page_size=100).rows.set_index("name")
    assert list(rows.loc["a.jpg", "categories"]) == ["animals", "people"]
    assert list(rows.loc["c.jpg", "categories"]) == ["people"]
    assert list(rows.loc["e.jpg", "categories"]) == ["people"]  # unknown gave way to a real category
    assert list(rows.loc["d.jpg", "categories"]) == ["food"]  # not selected
    assert real.bulk_categories(chosen, "animals", add=False, reviewer="bob") == 1
    assert real.bulk_mark_reviewed(chosen, reviewer="bob") == 4
    assert names(real, state="reviewed") == ["a.jpg", "b.jpg", "c.jpg", "e.jpg"]
    # Three bulk actions: three entries in the log, newest first, each naming how many images it changed
    log = real.edit_log(dataset="REAL", limit=100)
    assert log[["name", "field", "action", "images"]].values.tolist() == [
        ["4 images", "reviewed", "marked reviewed", 4],
        ["1 image", "categories", "removed category 'animals'", 1],
        ["4 images", "categories", "added category 'people'", 4],
    ]
    a_log = real.edit_log(image_id=image["a.jpg"]).sort_values("id")  # one image's history: its own rows
    assert a_log["version"].tolist() == [1, 2, 3]
    assert json.loads(a_log["after"].iloc[1]) == ["people"]
    assert a_log["images"].tolist() == [4, 1, 4]
    assert review.focus(real, image["a.jpg"]).version == 3
    assert real.bulk_categories([], "people", add=True, reviewer="ana") == 0
    with pytest.raises(InputError):
        real.bulk_categories(chosen, " ", add=True, reviewer="ana")


# ---- progress and agreement --------------------------------------------------------------------------------------


def test_progress_and_agreement_per_category(real: Store) -> None:
    image = ids(real)
    # a: model animals, reviewer keeps it (tp animals); b: model cityscapes+vehicles, reviewer says cityscapes
    # (tp cityscapes, fp vehicles); d: model food, reviewer says food+objects (tp food, fn objects)
    review.save(real, review.focus(real, image["a.jpg"]), reviewer="ana", reviewed=True)
    review.save(real, review.focus(real, image["b.jpg"]), reviewer="ana", categories=["cityscapes"], reviewed=True)
    review.save(real, review.focus(real, image["d.jpg"]), reviewer="ana", categories=["food", "objects"], reviewed=True)
    review.save(real, review.focus(real, image["e.jpg"]), reviewer="ana", categories=["people"])  # not reviewed
    table = review.agreement(real, "REAL").set_index("category")
    assert table.loc["animals", ["tp", "fp", "fn"]].tolist() == [1, 0, 0]
    assert table.loc["vehicles", ["tp", "fp", "fn"]].tolist() == [0, 1, 0]
    assert table.loc["vehicles", "precision"] == 0.0 and pd.isna(table.loc["vehicles", "recall"])
    assert table.loc["objects", "recall"] == 0.0 and pd.isna(table.loc["objects", "precision"])
    assert table.loc["food", ["precision", "recall"]].tolist() == [1.0, 1.0]
    assert "people" not in table.index  # e.jpg is not reviewed
    assert set(table["reviewed"]) == {3}
    progress = review.progress(real).set_index("dataset")
    assert progress.loc["REAL", ["images", "annotated", "reviewed"]].tolist() == [6, 5, 3]
    assert progress.loc["REAL", "share"] == pytest.approx(0.5)
    assert progress.loc["GEN", "reviewed"] == 0


# ---- human work survives the model --------------------------------------------------------------------------------


def test_reimporting_and_new_model_output_never_touch_human_labels(real: Store, images_dir: Path) -> None:
    image_id = ids(real)["a.jpg"]
    review.save(
        real,
        review.focus(real, image_id),
        reviewer="ana",
        categories=["plants"],
        description={"summary": "Human summary", "setting": "park", "objects": ["dog", "ball"]},
        reviewed=True,
    )
    before = real.review_record(image_id).human
    changed = [("a.jpg", {"summary": "A new model summary"}, "people"), *SEED_ROWS[1:]]
    report = import_dataset(real, "REAL", csv_data=seed_csv(changed), csv_name="real.csv", images_dir=images_dir)
    assert report.annotations_imported == 1
    real.insert_annotations(
        pd.DataFrame(
            [
                {
                    "image_id": image_id,
                    "kind": "fused",
                    "model": "gemini-x",
                    "prompt_version": "v2",
                    "summary": "Runner summary",
                    "description": json.dumps({"summary": "Runner summary"}),
                    "categories": ["vehicles"],
                }
            ]
        ).astype({"categories": "object"})
    )
    record = review.focus(real, image_id)
    assert real.review_record(image_id).human == before
    assert record.model_categories == ["vehicles"] and record.model_description == {"summary": "Runner summary"}
    assert record.categories == ["plants"] and record.description is not None
    assert record.description["summary"] == "Human summary"
    assert record.reviewed and record.version == before.version
    assert names(real, disagreement=True) == ["a.jpg"]


# ---- editing helpers ----------------------------------------------------------------------------------------------


def test_category_helpers_keep_the_order_chosen() -> None:
    assert review.normalize_categories(["unknown", "food", "food", " "]) == ["food"]
    assert review.toggle_category(["food"], "people") == ["food", "people"]
    assert review.toggle_category(["food", "people"], "food") == ["people"]
    assert review.toggle_category(["unknown"], "food") == ["food"]


def test_category_options_are_the_active_list_plus_unknown_and_what_the_image_has(store: Store) -> None:
    options = review.category_options(store, ["spaceships"], None)
    assert options[-2:] == ["unknown", "spaceships"] and "animals" in options


# ---- thumbnails ---------------------------------------------------------------------------------------------------


def test_thumbnails_are_cached_and_missing_images_get_a_placeholder(
    real: Store, images_dir: Path, tmp_path: Path
) -> None:
    settings = load_settings(env={"LABELING_CACHE_DIR": str(tmp_path / "cache")})
    pictures = Pictures(real, settings)
    rows = real.gallery(ReviewFilter(dataset="REAL"), page_size=100).rows.to_dict("records")
    thumbs = dict(zip([r["name"] for r in rows], pictures.thumbnails(rows), strict=True))
    assert not thumbs["a.jpg"].placeholder and thumbs["a.jpg"].mime_type == "image/jpeg"
    assert len(thumbs["a.jpg"].data) < (images_dir / "a.jpg").stat().st_size
    cached = thumbnail_path(settings.cache_dir, rows[0]["image_id"])
    assert cached.read_bytes() == thumbs["a.jpg"].data
    assert thumbs["gone.jpg"].placeholder and "not found" in thumbs["gone.jpg"].reason
    # a cached thumbnail is served even after the original went away; an uncached one becomes a placeholder
    (images_dir / "a.jpg").unlink()
    (images_dir / "b.jpg").unlink()
    cached_b = thumbnail_path(settings.cache_dir, rows[1]["image_id"])
    cached_b.unlink()
    assert pictures.thumbnail(rows[0]).data == thumbs["a.jpg"].data
    gone = pictures.thumbnail(rows[1])
    assert gone.placeholder and "gone from the folder" in gone.reason
    (images_dir / "d.jpg").write_bytes(b"not an image at all")
    broken = pictures.preview(rows[3])
    assert broken.placeholder and "cannot be decoded" in broken.reason
    original = pictures.original(rows[4])
    assert not original.placeholder and original.data == (images_dir / "e.jpg").read_bytes()
    assert pictures.original(rows[5]).placeholder
    unlinked = real.gallery(ReviewFilter(dataset="GEN")).rows.to_dict("records")[0]
    assert "no image folder" in pictures.thumbnail(unlinked).reason


def test_renamed_categories_read_through_aliases_in_gallery_focus_and_bulk(real: Store) -> None:
    review.category_options(real)  # the default list, which has "animals"
    image = ids(real)
    real.rename_category("animals", "fauna", reviewer="ana")
    assert names(real, category="fauna", category_source="model") == ["a.jpg", "gone.jpg"]
    assert names(real, category="animals", category_source="model") == []
    record = review.focus(real, image["a.jpg"])
    assert record.model_categories == ["fauna"] and record.categories == ["fauna"]
    assert real.bulk_categories([image["a.jpg"]], "fauna", add=True, reviewer="ana") == 0  # already there
    rows = real.gallery(ReviewFilter(dataset="REAL"), page_size=100).rows.set_index("name")
    assert list(rows.loc["a.jpg", "categories"]) == ["fauna"]


def test_search_index_follows_new_annotations_and_deleted_datasets(real: Store) -> None:
    image_id = ids(real)["d.jpg"]
    assert names(real, text="soup") == ["d.jpg"]
    real.insert_annotations(
        pd.DataFrame(
            [
                {
                    "image_id": image_id,
                    "kind": "fused",
                    "model": "m",
                    "prompt_version": "v",
                    "summary": "A salad",
                    "description": json.dumps({"summary": "A salad"}),
                    "categories": ["food"],
                }
            ]
        ).astype({"categories": "object"})
    )
    assert names(real, text="soup") == [] and names(real, text="SALAD") == ["d.jpg"]
    real.delete_dataset("GEN")
    assert names(real, text="salad") == ["d.jpg"]
    assert real.gallery(ReviewFilter(text="generated")).total == 0


def test_originals_a_browser_cannot_show_come_as_full_size_jpegs(real: Store, images_dir: Path, tmp_path: Path) -> None:
    settings = load_settings(env={"LABELING_CACHE_DIR": str(tmp_path / "cache")})
    pictures = Pictures(real, settings)
    rows = {r["name"]: r for r in real.gallery(ReviewFilter(dataset="REAL"), page_size=100).rows.to_dict("records")}
    whole = (images_dir / "a.jpg").read_bytes()
    (images_dir / "a.jpg").write_bytes(whole[: len(whole) // 2])  # the header reads, the body is cut
    cut = pictures.original(rows["a.jpg"])
    assert cut.placeholder and "cannot be decoded" in cut.reason
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: a browser shows the raw bytes as stored
    Image.new("RGB", (64, 32), (10, 20, 30)).save(images_dir / "b.jpg", exif=exif)
    turned = pictures.original(rows["b.jpg"])
    assert turned.mime_type == "image/jpeg" and Image.open(io.BytesIO(turned.data)).size == (32, 64)
