"""Review by technical fact: the gallery filter over image_facts and the focus view's facts table."""

from __future__ import annotations

import pandas as pd
import pytest

from labeling import review
from labeling.errors import InputError
from labeling.review import ReviewFilter
from labeling.scan import FACTS_VERSION
from labeling.store import Store
from labeling.store.facts import FactRow
from tests.test_analytics import add_dataset


@pytest.fixture
def ids(store: Store) -> dict[str, int]:
    ids = add_dataset(store, "GEN", ["a.png", "b.png", "c.jpg", "d.jpg", "e.webp"], label="GEN")
    store.record_facts(
        [
            FactRow(ids["a.png"], FACTS_VERSION, format="PNG", text_keys=["parameters"], generator="SD WebUI"),
            FactRow(ids["b.png"], FACTS_VERSION, format="PNG", c2pa=True, c2pa_generator="DALL-E", sha256="11"),
            FactRow(ids["c.jpg"], FACTS_VERSION, format="JPEG", exif_make="Canon", jpeg_quality=92, sha256="11"),
            FactRow(ids["d.jpg"], FACTS_VERSION, error="Not an image: the file starts with text."),
        ]
    )
    groups = pd.DataFrame(
        {"image_id": [ids["b.png"], ids["c.jpg"]], "group_id": ids["b.png"], "kind": "near", "leakage": [True, True]}
    ).assign(distance=6)
    store.replace_duplicate_groups([store.dataset_id("GEN")], groups)
    return ids


def _names(store: Store, fact: str) -> list[str]:
    return list(review.gallery(store, ReviewFilter(dataset="GEN", fact=fact), page_size=48).rows["name"])


def test_the_gallery_filters_by_technical_fact(store: Store, ids: dict[str, int]) -> None:
    assert _names(store, "any") == ["a.png", "b.png", "c.jpg", "d.jpg", "e.webp"]
    assert _names(store, "png") == ["a.png", "b.png"]
    assert _names(store, "jpeg") == ["c.jpg"]
    assert _names(store, "text_metadata") == ["a.png"] == _names(store, "generator")
    assert _names(store, "c2pa") == ["b.png"]
    assert _names(store, "exif_camera") == ["c.jpg"]
    assert _names(store, "duplicate") == ["b.png", "c.jpg"] == _names(store, "leakage")
    assert _names(store, "unreadable") == ["d.jpg"]
    assert _names(store, "not_scanned") == ["e.webp"]
    with pytest.raises(InputError, match="Unknown technical-fact filter 'colour'"):
        ReviewFilter(fact="colour")


def test_the_focus_view_shows_the_image_facts(store: Store, ids: dict[str, int]) -> None:
    lines = dict(review.fact_lines(review.focus(store, ids["c.jpg"]).facts).itertuples(index=False, name=None))
    assert lines["Format"] == "JPEG" and lines["Camera"] == "Canon" and lines["JPEG quality"] == "92"
    assert "C2PA manifest" not in lines  # empty facts are left out
    assert dict(review.fact_lines(review.focus(store, ids["b.png"]).facts).values.tolist())["C2PA manifest"] == "yes"
    assert review.focus(store, ids["e.webp"]).facts is None and review.fact_lines(None).empty
    leaked = review.focus(store, ids["b.png"])
    rows = review.fact_lines(leaked.facts, leaked.copies).values.tolist()
    assert ["Leaked copy", "GEN: c.jpg (near)"] in rows  # the focus view names the other copy
