"""Category distributions per label source, on a real DuckDB file filled through the store's own verbs."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from labeling.errors import InputError, NotFoundError
from labeling.stats import category_stats
from labeling.store import Store

SOURCES = ("model", "human", "effective")


def add_dataset(store: Store, name: str, images: list[str], label: str = "") -> dict[str, int]:
    """A dataset without an image source (like a seed CSV import); returns image ids by name."""
    dataset_id = store.save_dataset(name, label=label, source_kind="none")
    frame = pd.DataFrame({"name": images, "location": None, "status": "unlinked", "detail": None}, dtype="object")
    store.upsert_images(dataset_id, frame)
    ids = store.image_ids_by_name(dataset_id)
    return dict(zip(ids["name"], ids["image_id"].astype(int), strict=True))


def annotate(store: Store, labels: dict[int, list[str] | None], description: dict[str, Any] | None = None) -> None:
    """One model annotation per image (image id -> categories; None = described, not categorized)."""
    rows = [
        {
            "image_id": image_id,
            "kind": "fused",
            "model": "gemini-test",
            "prompt_version": "v1",
            "description": json.dumps(description or {"summary": f"image {image_id}"}),
            "summary": f"image {image_id}",
            "categories": categories,
        }
        for image_id, categories in labels.items()
    ]
    frame = pd.DataFrame(rows)
    frame["categories"] = frame["categories"].astype("object")
    store.insert_annotations(frame)


def review(
    store: Store,
    image_id: int,
    *,
    categories: Any = None,
    reviewed: bool = True,
    description: Any = None,
    reviewer: str = "ana",
) -> None:
    """A reviewer's save through the review verbs (None keeps the model's value)."""
    record = store.review_record(image_id)
    store.save_label(
        image_id,
        expected_version=record.version,
        reviewer=reviewer,
        categories=categories,
        reviewed=reviewed,
        description=description,
    )


def as_dict(frame: pd.DataFrame) -> dict[tuple[str, str | None], tuple[int, int]]:
    return {
        (row.dataset, None if pd.isna(row.category) else row.category): (int(row.count), int(row.total))
        for row in frame.itertuples()
    }


@pytest.fixture
def labelled(store: Store) -> tuple[Store, dict[str, int], dict[str, int]]:
    real = add_dataset(store, "REAL", [f"r{i}.jpg" for i in range(6)], label="REAL")
    gen = add_dataset(store, "GEN", [f"g{i}.jpg" for i in range(5)], label="GEN")
    annotate(
        store,
        {
            real["r0.jpg"]: ["people"],
            real["r1.jpg"]: ["people", "animals"],  # multi-label: counts once in each
            real["r2.jpg"]: ["animals", "animals"],  # a repeated category counts once
            real["r3.jpg"]: [],  # categorized, none fits: in the total only
            real["r4.jpg"]: None,  # described only: not labelled
            gen["g0.jpg"]: ["animals"],
            gen["g1.jpg"]: ["animals", "food"],
            gen["g2.jpg"]: ["food"],
        },
    )
    # r0 re-annotated: the latest annotation is the model's current label.
    annotate(store, {real["r0.jpg"]: ["vehicles"]})
    review(store, real["r1.jpg"], categories=["food"])  # reviewed, human categories
    review(store, gen["g0.jpg"])  # reviewed, keeps the model's categories
    review(store, gen["g2.jpg"], categories=["people"], reviewed=False)  # edited, not reviewed
    review(store, gen["g3.jpg"], categories=["art"])  # no annotation at all, human only
    return store, real, gen


def test_model_source_counts_latest_annotation_multi_label(labelled: Any) -> None:
    store, _, _ = labelled
    frame = store.category_distribution(["REAL", "GEN"], "model")
    assert list(frame.columns) == ["dataset", "category", "count", "total"]
    assert as_dict(frame) == {
        ("REAL", "animals"): (2, 4),
        ("REAL", "people"): (1, 4),
        ("REAL", "vehicles"): (1, 4),
        ("GEN", "animals"): (2, 3),
        ("GEN", "food"): (2, 3),
    }
    # Datasets in the order asked for, then count descending, then name.
    assert list(frame["dataset"]) == ["REAL", "REAL", "REAL", "GEN", "GEN"]
    assert list(frame["category"])[:3] == ["animals", "people", "vehicles"]


def test_human_source_is_reviewed_images_only(labelled: Any) -> None:
    store, _, _ = labelled
    frame = store.category_distribution(["REAL", "GEN"], "human")
    # REAL: r1 reviewed as food. GEN: g0 reviewed keeping the model's animals, g3 reviewed as art; g2 not reviewed.
    assert as_dict(frame) == {
        ("REAL", "food"): (1, 1),
        ("GEN", "animals"): (1, 2),
        ("GEN", "art"): (1, 2),
    }


def test_effective_source_puts_human_over_model(labelled: Any) -> None:
    store, _, _ = labelled
    frame = store.category_distribution(["GEN", "REAL"], "effective")
    assert as_dict(frame) == {
        ("GEN", "animals"): (2, 4),
        ("GEN", "food"): (1, 4),
        ("GEN", "people"): (1, 4),
        ("GEN", "art"): (1, 4),
        ("REAL", "animals"): (1, 4),
        ("REAL", "food"): (1, 4),
        ("REAL", "vehicles"): (1, 4),
    }
    assert frame["dataset"].iloc[0] == "GEN"


@pytest.mark.parametrize("source", SOURCES)
def test_tally_matches_the_views(labelled: Any, source: str) -> None:
    store, _, _ = labelled
    expected = store.category_distribution_from_views(["REAL", "GEN"], source)  # type: ignore[arg-type]
    pd.testing.assert_frame_equal(store.category_distribution(["REAL", "GEN"], source), expected)  # type: ignore[arg-type]


def test_tally_follows_every_kind_of_change(labelled: Any) -> None:
    store, real, gen = labelled

    def check(expected_sync: str | None = None) -> None:
        if expected_sync is not None:
            assert store.sync_label_tally() == expected_sync
        for source in SOURCES:
            pd.testing.assert_frame_equal(
                store.category_distribution(["REAL", "GEN"], source),
                store.category_distribution_from_views(["REAL", "GEN"], source),
            )

    check()
    assert store.sync_label_tally() == "unchanged"
    annotate(store, {real["r4.jpg"]: ["food"], gen["g4.jpg"]: ["night"]})  # new annotations
    check("updated")
    annotate(store, {real["r1.jpg"]: None})  # latest has no categories
    check("updated")
    review(store, real["r2.jpg"], categories=["art", "night"])  # new human label
    check("updated")
    review(store, gen["g2.jpg"], reviewed=True, categories=["people"])  # reviewed flag flips
    check("updated")
    review(store, real["r1.jpg"], categories=None, reviewed=True)  # back to the model's value
    check("updated")
    store.bulk_categories([real["r0.jpg"], real["r5.jpg"]], "plants", add=True, reviewer="bo")
    check("updated")
    store.delete_dataset("GEN")  # deletions: rebuilt
    other = add_dataset(store, "OTHER", ["o.jpg"])
    annotate(store, {other["o.jpg"]: ["food"]})
    for source in SOURCES:
        frame = store.category_distribution(["REAL", "OTHER"], source)
        pd.testing.assert_frame_equal(frame, store.category_distribution_from_views(["REAL", "OTHER"], source))
    assert store.sync_label_tally(rebuild=True) == "rebuilt"
    check_frame = store.category_distribution(["OTHER"], "model")
    assert as_dict(check_frame) == {("OTHER", "food"): (1, 1)}


def test_tally_survives_reopening_the_file(labelled: Any, db_path: Any) -> None:
    store, real, _ = labelled
    before = store.category_distribution(["REAL", "GEN"], "effective")
    store.close()
    with Store(db_path) as reopened:
        assert reopened.sync_label_tally() == "unchanged"
        pd.testing.assert_frame_equal(reopened.category_distribution(["REAL", "GEN"], "effective"), before)
        annotate(reopened, {real["r5.jpg"]: ["sports"]})
        frame = reopened.category_distribution(["REAL"], "model")
        assert as_dict(frame)[("REAL", "sports")] == (1, 5)


def test_dataset_without_labels_keeps_a_row(store: Store) -> None:
    add_dataset(store, "EMPTY", ["a.jpg"])
    real = add_dataset(store, "REAL", ["r.jpg"])
    annotate(store, {real["r.jpg"]: []})
    frame = store.category_distribution(["EMPTY", "REAL"], "effective")
    assert as_dict(frame) == {("EMPTY", None): (0, 0), ("REAL", None): (0, 1)}
    stats = category_stats(frame)
    assert stats.empty


def test_unknown_dataset_and_source_are_clear_errors(store: Store) -> None:
    add_dataset(store, "REAL", ["r.jpg"])
    with pytest.raises(NotFoundError, match=r"no dataset named 'GEN'.*REAL"):
        store.category_distribution(["REAL", "GEN"])
    with pytest.raises(InputError, match="label source"):
        store.category_distribution(["REAL"], "robot")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="at least one dataset"):
        store.category_distribution([])


def test_distribution_feeds_the_statistics(labelled: Any) -> None:
    store, _, _ = labelled
    stats = category_stats(store.category_distribution(["REAL", "GEN"], "model"), reference="REAL")
    animals = stats[(stats["category"] == "animals") & (stats["dataset"] == "GEN")].iloc[0]
    assert (animals["count"], animals["total"]) == (2, 3)
    assert animals["difference"] == pytest.approx(2 / 3 - 2 / 4)
    assert animals["test"] == "fisher"


def test_category_aliases_apply_to_model_labels(labelled: Any) -> None:
    """A rename (issue 7 writes category_aliases) changes what model labels read as: the tally is rebuilt."""
    store, _, _ = labelled
    store.category_distribution(["REAL"], "model")
    with store.transaction() as cur:  # the rename verb's effect on model labels, without the category list
        cur.execute("INSERT INTO category_aliases (old_name, new_name, since_version) VALUES ('people', 'humans', 1)")
    assert store.sync_label_tally() == "rebuilt"
    frame = store.category_distribution(["REAL"], "model")
    assert as_dict(frame)[("REAL", "humans")] == (1, 4)
    assert ("REAL", "people") not in as_dict(frame)
    for source in SOURCES:
        pd.testing.assert_frame_equal(
            store.category_distribution(["REAL", "GEN"], source),
            store.category_distribution_from_views(["REAL", "GEN"], source),
        )
