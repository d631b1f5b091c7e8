"""Re-categorizing after a list change: which images are affected, the estimate, and a text-only run through the
job runner against the fake Gemini that leaves human labels alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from labeling import recategorize
from labeling.categories import Category
from labeling.errors import InputError
from labeling.fake_gemini import FakeGemini
from labeling.jobs import JobManager
from labeling.settings import Settings
from labeling.store import Store
from labeling.taxonomy import import_categories
from tests.category_support import (
    add_described,
    description,
    effective_categories,
    model_categories,
    set_human,
)


def affected_names(store: Store, datasets: tuple[str, ...] = ("REAL",), every: bool = False) -> set[str]:
    return set(recategorize.affected_images(store, list(datasets), every=every).images["name"])


@pytest.fixture
def real(store: Store) -> dict[str, int]:
    return add_described(
        store,
        "REAL",
        [
            ("people.jpg", description("people in a street"), ["people", "cityscapes"]),
            ("dog.jpg", description("a dog"), ["animals"]),
            ("meal.jpg", description("some food on a table"), ["food"]),
            ("none.jpg", description("nothing much"), None),  # described, never categorized
        ],
    )


def test_nothing_changed_only_uncategorized_images(store: Store, real: dict[str, int]) -> None:
    affected = recategorize.affected_images(store, ["REAL"])
    assert set(affected.images["name"]) == {"none.jpg"}
    assert affected.images.iloc[0]["reason"] == recategorize.NOT_CATEGORIZED
    assert affected.described == 4 and affected.list_version == store.category_list_version()


def test_rename_merge_delete_deactivate_affect_only_images_carrying_them(store: Store, real: dict[str, int]) -> None:
    store.rename_category("animals", "pets")
    assert affected_names(store) == {"dog.jpg", "none.jpg"}
    store.merge_categories(["cityscapes"], "architecture")
    assert affected_names(store) == {"dog.jpg", "people.jpg", "none.jpg"}
    store.set_category_active("food", False)
    assert affected_names(store) == {"dog.jpg", "people.jpg", "meal.jpg", "none.jpg"}
    summary = recategorize.affected_images(store, ["REAL"]).summary()
    assert summary["images"].sum() == 4
    reason = next(r for r in summary["reason"] if r != recategorize.NOT_CATEGORIZED)
    assert "removed 'food'" in reason and "'animals' -> 'pets'" in reason and "'cityscapes' -> 'architecture'" in reason


def test_delete_affects_images_carrying_it(store: Store, real: dict[str, int]) -> None:
    store.delete_category("people")
    assert affected_names(store) == {"people.jpg", "none.jpg"}


def test_adding_or_redefining_affects_every_image(store: Store, real: dict[str, int]) -> None:
    store.add_category("robots")
    affected = recategorize.affected_images(store, ["REAL"])
    assert set(affected.images["name"]) == set(real)
    assert any("added 'robots'" in r for r in affected.images["reason"])
    store.delete_category("robots")  # back to the old list: nothing added any more
    assert affected_names(store) == {"none.jpg"}
    store.set_category_definition("food", "Only dishes that are served")
    assert affected_names(store) == set(real)


def test_reactivating_counts_as_adding(store: Store, real: dict[str, int]) -> None:
    store.set_category_active("night", False)
    first = store.category_list_version()
    add_described(store, "GEN", [("x.png", description("x"), ["food"])], list_version=first)
    store.set_category_active("night", True)
    assert affected_names(store, ("GEN",)) == {"x.png"}


def test_images_categorized_against_the_list_in_force_are_not_affected(store: Store, real: dict[str, int]) -> None:
    store.rename_category("animals", "pets")
    add_described(store, "GEN", [("new.png", description("a cat"), ["pets"])])
    assert affected_names(store, ("GEN",)) == set()
    assert affected_names(store, ("GEN",), every=True) == set()
    assert affected_names(store, ("REAL", "GEN"), every=True) == set(real)


def test_seed_imports_are_affected_when_a_category_is_off_the_list(store: Store) -> None:
    add_described(store, "SEED", [("a.jpg", description("a"), ["food"]), ("b.jpg", description("b"), ["Gadgets"])])
    store.fetch_all("UPDATE annotations SET category_list_version = NULL")
    affected = recategorize.affected_images(store, ["SEED"])
    assert set(affected.images["name"]) == {"b.jpg"}
    assert affected.images.iloc[0]["reason"] == "carries a category not in the list"
    assert affected_names(store, ("SEED",), every=True) == {"a.jpg", "b.jpg"}


def test_affected_needs_datasets(store: Store) -> None:
    with pytest.raises(InputError, match="at least one dataset"):
        recategorize.affected_images(store, [])


def test_estimate_from_prompt_size_then_from_history(store: Store, real: dict[str, int]) -> None:
    settings = Settings(prices={"m": {"input": 1.0, "output": 2.0}})
    first = recategorize.estimate(store, settings, 10, model="m")
    assert first.images == first.requests == 10 and first.basis == "typical sizes"
    assert first.tokens_in > 10 * 100 and first.tokens_out == 80
    assert first.cost_usd == pytest.approx((first.tokens_in + 2 * first.tokens_out) / 1e6)
    assert "10 images, 10 text-only requests" in first.line()
    add_described(store, "GEN", [(f"{i}.png", description("x"), ["food"]) for i in range(5)], kind="categorize")
    store.fetch_all("UPDATE annotations SET model = 'm'")
    later = recategorize.estimate(store, settings, 10, model="m")
    assert later.basis == "averages of past categorize requests" and later.tokens_in == 1000


# ---- a run through the job runner against the fake --------------------------------------------------------------


def fake_settings(fake: FakeGemini, tmp_path: Path) -> Settings:
    return Settings(
        gemini_api_key="test-key",
        gemini_base_url=fake.base_url,
        request_timeout_seconds=5.0,
        retry_backoff_seconds=0.01,
        cache_dir=str(tmp_path / "cache"),
        num_workers=2,
        db_path=str(tmp_path / "labeling.duckdb"),
    )


def test_recategorize_run_is_text_only_and_keeps_human_labels(
    store: Store, real: dict[str, int], fake: FakeGemini, tmp_path: Path
) -> None:
    set_human(store, real["dog.jpg"], ["animals", "people"], reviewer="ann")
    store.delete_category("animals")
    import_categories(store, [Category("pets", "Dogs, cats and other pets")], mode="add")
    affected = recategorize.affected_images(store, ["REAL"])
    assert set(affected.images["name"]) == set(real)  # a category was added: every image
    manager = JobManager(store, fake_settings(fake, tmp_path))
    job = recategorize.start(manager, ["REAL"], None)
    assert job.wait(30)
    progress = job.progress()
    assert progress.status == "completed" and progress.mode == "categorize"
    assert progress.done == 4 and progress.failed == 0
    assert all(not r.has_image for r in fake.records) and len(fake.records) == 4
    version = store.category_list_version()
    versions = store.fetch_all("SELECT DISTINCT category_list_version FROM current_annotations")
    assert versions == [(version,)]
    assert (model_categories(store, real["meal.jpg"]) or [])[0] == "food"  # the fake picks what the text names
    assert effective_categories(store, real["dog.jpg"]) == ["animals", "people"]  # the human label stands
    assert store.review_record(real["dog.jpg"]).human.categories == ["animals", "people"]
    assert recategorize.affected_images(store, ["REAL"]).images.empty


def test_recategorize_only_affected_images(
    store: Store, real: dict[str, int], fake: FakeGemini, tmp_path: Path
) -> None:
    store.rename_category("food", "meals")
    ids = recategorize.affected_images(store, ["REAL"]).image_ids
    assert sorted(ids) == sorted([real["meal.jpg"], real["none.jpg"]])
    manager = JobManager(store, fake_settings(fake, tmp_path))
    job = recategorize.start(manager, ["REAL"], ids)
    assert job.wait(30)
    assert job.progress().done == 2 and len(fake.records) == 2
    versions = dict(store.fetch_all("SELECT image_id, category_list_version FROM current_annotations"))
    assert versions[real["meal.jpg"]] == versions[real["none.jpg"]] == store.category_list_version()
    assert versions[real["dog.jpg"]] < store.category_list_version()  # not sent again
    assert model_categories(store, real["dog.jpg"]) == ["animals"]
    assert store.run(job.run_id).settings["image_ids"] == ids
    again = manager.resume(job.run_id)  # a resumed run keeps its image filter
    assert again.request.image_ids == tuple(ids)
    assert again.wait(30) and len(fake.records) == 2


def test_start_refuses_an_empty_selection(store: Store, real: dict[str, int], tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nothing to run"):
        recategorize.start(object(), ["REAL"], [])


# ---- long lists: validated strings instead of an enum -----------------------------------------------------------


def test_long_list_goes_out_as_plain_strings_and_off_list_answers_fail_per_image(
    store: Store, real: dict[str, int], fake: FakeGemini, tmp_path: Path
) -> None:
    from labeling.fake_gemini import GenerateRequest

    many = [Category(f"category number {i}", "") for i in range(70)]
    import_categories(store, many)
    seen: list[GenerateRequest] = []
    fake.fault_for(lambda request: bool(seen.append(request)), "http_500")  # records, never faults
    fake.inject("off_list_category", times=3)  # a model may still answer a name that is not on the list
    job = recategorize.start(JobManager(store, fake_settings(fake, tmp_path)), ["REAL"], None)
    assert job.wait(30)
    progress = job.progress()
    assert progress.status == "completed" and progress.done == 1 and progress.failed == 3
    assert progress.failures_by_kind == {"off_list": 3}  # checked on our side, since the schema cannot
    items = seen[0].schema["properties"]["categories"]["items"]
    assert "enum" not in items and items["type"].upper() == "STRING"
    assert "- category number 69" in seen[0].prompt  # the list still goes into the prompt
    failures = store.run_failures(progress.run_id)
    assert failures.iloc[0]["kind"] == "off_list" and "outside the list" in failures.iloc[0]["example"]


def test_short_list_keeps_the_enum(store: Store, real: dict[str, int], fake: FakeGemini, tmp_path: Path) -> None:
    from labeling.fake_gemini import GenerateRequest

    seen: list[GenerateRequest] = []
    fake.fault_for(lambda request: bool(seen.append(request)), "http_500")
    store.rename_category("food", "meals")
    job = recategorize.start(JobManager(store, fake_settings(fake, tmp_path)), ["REAL"], None)
    assert job.wait(30) and job.progress().failed == 0
    items = seen[0].schema["properties"]["categories"]["items"]
    assert "meals" in items["enum"] and items["enum"][-1] == "unknown"
