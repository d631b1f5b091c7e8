"""The debiased export: REAL and GEN subsets matched on content and technical strata, on a real DuckDB file."""

from __future__ import annotations

import pandas as pd
import pytest

from labeling.debias import debias, quality_bucket, seed_csv, size_bucket
from labeling.errors import InputError
from labeling.scan import FACTS_VERSION
from labeling.store import Store
from labeling.store.facts import FactRow
from tests.test_analytics import annotate


def _dataset(store: Store, name: str, images: list[tuple[str, str, str, int, int]]) -> dict[str, int]:
    """images: (name, category, format, quality, longest side); each found, labelled and scanned."""
    dataset_id = store.save_dataset(name, label=name, source_kind="local", source_uri=f"/data/{name}")
    frame = pd.DataFrame(
        {"name": [i[0] for i in images], "location": [i[0] for i in images], "status": "found", "detail": None},
        dtype="object",
    )
    store.upsert_images(dataset_id, frame)
    found = store.image_ids_by_name(dataset_id)
    ids = dict(zip(found["name"], found["image_id"].astype(int), strict=True))
    annotate(store, {ids[n]: [cat] for n, cat, *_ in images})
    store.record_facts(
        [
            FactRow(
                ids[n],
                FACTS_VERSION,
                format=fmt,
                width=side,
                height=side * 3 // 4,
                jpeg_quality=quality if fmt == "JPEG" else None,
                jpeg_table="standard" if fmt == "JPEG" else None,
            )
            for n, _, fmt, quality, side in images
        ]
    )
    return {str(k): int(v) for k, v in ids.items()}


@pytest.fixture
def sides(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    real = [(f"r{i}.jpg", "cat" if i < 30 else "dog", "JPEG", 96, 1200) for i in range(40)]
    gen = [(f"g{i}.png", "cat" if i < 10 else "dog", "PNG", 0, 512) for i in range(40)]
    gen += [(f"gj{i}.jpg", "cat", "JPEG", 96, 1200) for i in range(10)]
    return _dataset(store, "REAL", real), _dataset(store, "GEN", gen)


def test_content_only_keeps_the_smaller_side_of_every_category(store: Store, sides: tuple) -> None:
    result = debias(store, ["REAL", "GEN"], strata=())
    # cat: 30 REAL, 20 GEN -> 20 each; dog: 10 REAL, 30 GEN -> 10 each
    assert result.counts()["REAL"]["kept"] == result.counts()["GEN"]["kept"] == 30
    for dataset in ("REAL", "GEN"):
        kept = result.selection[(result.selection["dataset"] == dataset) & result.selection["kept"]]
        assert kept["stratum"].value_counts().to_dict() == {"cat": 20, "dog": 10}


def test_format_size_and_quality_strata_leave_only_files_made_alike(store: Store, sides: tuple) -> None:
    result = debias(store, ["REAL", "GEN"], strata=("size", "format", "quality"))
    counts = result.counts()
    assert counts["REAL"]["kept"] == counts["GEN"]["kept"] == 10
    kept = result.selection[result.selection["kept"]]
    assert set(kept["stratum"]) == {"cat | 1024-2047 px | JPEG | 96-100"}
    assert set(result.kept("GEN")["name"]) == {f"gj{i}.jpg" for i in range(10)}
    assert counts["GEN"]["no match on the other side"] == 40  # every PNG
    assert result.names_text("GEN").decode().splitlines() == sorted(
        result.kept("GEN")["name"], key=lambda n: int(n[2:-4])
    )


def test_duplicates_unscanned_and_unlabelled_images_are_left_out_and_counted(store: Store, sides: tuple) -> None:
    real, gen = sides
    leaked = [gen["gj0.jpg"], real["r0.jpg"]]
    dataset_id = store.dataset("REAL").id
    store.upsert_images(
        dataset_id,
        pd.DataFrame({"name": ["new.jpg"], "location": ["new.jpg"], "status": "found", "detail": None}, dtype="object"),
    )
    store.record_facts([FactRow(real["r39.jpg"], FACTS_VERSION, error="Not an image: the file starts with text.")])
    result = debias(store, ["REAL", "GEN"], strata=("size", "format"), exclude=leaked)
    counts = result.counts()
    assert counts["REAL"]["unreadable"] == 1 and counts["GEN"]["unreadable"] == 0  # no size: left out, no crash
    assert counts["REAL"]["not scanned"] == 1 and counts["REAL"]["before"] == 41
    assert counts["REAL"]["duplicate or leaked"] == 1 and counts["GEN"]["duplicate or leaked"] == 1
    assert not result.selection.loc[result.selection["image_id"].isin(leaked), "kept"].any()
    assert counts["REAL"]["kept"] == counts["GEN"]["kept"] == 9 + 0  # JPEG cats: 9 GEN left against 29 REAL


def test_the_seed_csv_holds_exactly_the_kept_images(store: Store, sides: tuple) -> None:
    result = debias(store, ["REAL", "GEN"], strata=("format",))
    lines = seed_csv(store, result, "GEN").decode().splitlines()
    assert lines[0] == "image_name,description,categories"
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(result.kept("GEN")["name"])
    assert all(line.endswith(",cat") for line in lines[1:])


def test_a_debiased_export_needs_two_datasets_and_known_strata(store: Store, sides: tuple) -> None:
    with pytest.raises(InputError, match="exactly two datasets"):
        debias(store, ["REAL"])
    with pytest.raises(InputError, match="Unknown stratum 'colour'"):
        debias(store, ["REAL", "GEN"], strata=("colour",))


def test_buckets() -> None:
    assert size_bucket(512, 512) == "512-767 px" and size_bucket(100, 80) == "< 256 px"
    assert size_bucket(4000, 3000) == ">= 2048 px" and size_bucket(None, None) == "unknown"
    assert quality_bucket("JPEG", 96, "standard") == "96-100" and quality_bucket("JPEG", 75, "standard") == "<=75"
    assert quality_bucket("JPEG", 92, "custom") == "custom table" and quality_bucket("PNG", None, None) == "PNG"


def test_before_and_after_the_shortcut_score_and_category_test_improve(store: Store, sides: tuple) -> None:
    from labeling.debias import before_after

    result = debias(store, ["REAL", "GEN"], strata=("size", "format", "quality"))
    report = before_after(store, result)
    assert report.category_p_before < 0.001  # 30/10 cats against 20/30
    assert report.category_p_after != report.category_p_after or report.category_p_after > 0.99  # one category left
    assert report.score_before > 0.85  # PNG 512 against JPEG 1200 (only GEN's 10 JPEGs look like REAL's)
    assert report.score_after != report.score_after or report.score_after < 0.7
