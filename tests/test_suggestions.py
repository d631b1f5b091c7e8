"""Category suggestions: term counts from the descriptions (no API) and Gemini proposals against the fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from labeling.categories import Category
from labeling.errors import AnnotatorError, InputError
from labeling.fake_gemini import FakeGemini, GenerateRequest
from labeling.settings import Settings
from labeling.store import Store
from labeling.suggestions import suggest_with_gemini, suggestion_prompt, term_counts
from labeling.taxonomy import import_categories
from tests.category_support import add_described, description


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        yield server


def settings_for(fake: FakeGemini, tmp_path: Path) -> Settings:
    return Settings(
        gemini_api_key="test-key",
        gemini_base_url=fake.base_url,
        request_timeout_seconds=5.0,
        db_path=str(tmp_path / "labeling.duckdb"),
    )


def described_store(store: Store) -> dict[str, int]:
    ids = add_described(
        store,
        "REAL",
        [
            ("a.jpg", description("A dog on a beach", ["dog", "ball"], "sandy beach at sunset"), ["animals"]),
            ("b.jpg", description("Two dogs", ["Dog", "dog", "leash"], "city park with trees"), ["animals"]),
            ("c.jpg", description("A pizza", ["pizza", "plate"], "kitchen table", setting="indoor"), ["food"]),
        ],
    )
    add_described(
        store,
        "GEN",
        [
            ("x.png", description("A robot", ["robot"], "futuristic city street", genre="3D render"), None),
        ],
    )
    return ids


def test_term_counts_from_descriptions_without_api(store: Store) -> None:
    described_store(store)
    import_categories(store, [Category("dog", "")], mode="add")
    frame = term_counts(store)
    objects = frame[frame["field"] == "object"].set_index("term")
    assert objects.loc["dog", "images"] == 2  # distinct images, names trimmed and lower-cased
    assert objects.loc["dog", "share"] == pytest.approx(0.5)
    assert bool(objects.loc["dog", "in_list"]) and not bool(objects.loc["pizza", "in_list"])
    assert objects.index[0] == "dog"  # most frequent first
    words = set(frame[frame["field"] == "scene word"]["term"])
    assert {"beach", "sandy", "sunset", "city", "park", "kitchen", "futuristic"} <= words
    assert not words & {"at", "with", "the"}
    settings = frame[frame["field"] == "setting"].set_index("term")["images"].to_dict()
    assert settings == {"outdoor": 3, "indoor": 1}
    assert set(frame[frame["field"] == "genre"]["term"]) == {"photo", "3d render"}
    only_gen = term_counts(store, ["GEN"])
    assert set(only_gen[only_gen["field"] == "object"]["term"]) == {"robot"}
    assert len(term_counts(store, limit=1).groupby("field")) == 4
    assert term_counts(store, limit=1).groupby("field").size().max() == 1


def test_term_counts_read_the_reviewers_description(store: Store) -> None:
    ids = described_store(store)
    record = store.review_record(ids["c.jpg"])
    store.save_label(
        ids["c.jpg"],
        expected_version=record.version,
        reviewer="ann",
        description=description("A cake", ["cake"], "bakery"),
    )
    objects = set(term_counts(store)[lambda f: f["field"] == "object"]["term"])
    assert "cake" in objects and "pizza" not in objects


def test_term_counts_of_an_empty_database(store: Store) -> None:
    assert term_counts(store).empty


def test_gemini_suggestions_against_the_fake(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    described_store(store)
    seen: list[GenerateRequest] = []
    fake.fault_for(lambda request: bool(seen.append(request)), "http_500")  # records, never faults
    result = suggest_with_gemini(store, settings_for(fake, tmp_path), sample_size=10, proposals=8)
    assert result.categories and all(c.name and c.definition for c in result.categories)
    assert result.sample_size == 4 and result.model == "gemini-2.5-flash-lite"
    assert result.usage.prompt > 0
    frame = result.frame()
    assert list(frame.columns) == ["adopt", "name", "definition"] and frame["adopt"].all()
    (request,) = seen
    assert not request.images  # text only
    assert "A dog on a beach" in request.prompt and "objects: pizza, plate" in request.prompt
    assert "current list" in request.prompt and "- landscapes" in request.prompt
    items = request.schema["properties"]["categories"]
    assert items["type"].upper() == "ARRAY" and str(items.get("maxItems", items.get("max_items"))) == "8"
    records = fake.records
    assert len(records) == 1 and records[0].status == 200 and not records[0].has_image


def test_gemini_suggestions_sample_one_dataset(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    described_store(store)
    seen: list[GenerateRequest] = []
    fake.fault_for(lambda request: bool(seen.append(request)), "http_500")
    result = suggest_with_gemini(store, settings_for(fake, tmp_path), ["GEN"])
    assert result.sample_size == 1
    assert "A robot" in seen[0].prompt and "dog" not in seen[0].prompt.lower().split("current list")[0]


def test_gemini_suggestion_errors_say_what_to_do(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    with pytest.raises(AnnotatorError, match="No Gemini API key"):
        suggest_with_gemini(store, Settings(db_path=str(tmp_path / "x.duckdb")))
    with pytest.raises(InputError, match="No image has a description"):
        suggest_with_gemini(store, settings_for(fake, tmp_path))
    described_store(store)
    fake.inject("http_503")
    with pytest.raises(AnnotatorError, match="busy or over quota"):
        suggest_with_gemini(store, settings_for(fake, tmp_path))
    fake.inject("key_invalid")
    with pytest.raises(AnnotatorError, match="API key was rejected"):
        suggest_with_gemini(store, settings_for(fake, tmp_path))
    fake.inject("daily_quota")
    with pytest.raises(AnnotatorError, match="daily quota is used up"):
        suggest_with_gemini(store, settings_for(fake, tmp_path))
    fake.inject("malformed_json")
    with pytest.raises(AnnotatorError, match="not valid JSON"):
        suggest_with_gemini(store, settings_for(fake, tmp_path))


def test_prompt_keeps_each_description_short() -> None:
    long = description("word " * 500, ["thing"] * 30, "place")
    prompt = suggestion_prompt([long, description("short")], [], 12)
    system, text = prompt.system, prompt.text
    first, second = text.splitlines()[1:3]
    assert len(first) <= 410 and second.startswith("2. short")
    assert "between 5 and 12 categories" in system


def test_term_counts_over_a_sample(store: Store) -> None:
    described_store(store)
    frame = term_counts(store, max_images=1)
    assert set(frame[frame["field"] == "setting"]["images"]) == {1}
    assert set(frame["share"]) == {1.0}
