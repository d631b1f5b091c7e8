"""Output of the example project (the fake Gemini server) is labelled simulated on every page that shows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labeling import demo
from labeling.jobs import JobManager
from labeling.settings import load_settings
from labeling.store import Store


@pytest.fixture
def example_db(db_path: Path, tmp_path: Path) -> Path:
    with Store(db_path) as store:
        settings = load_settings(env={"LABELING_CACHE_DIR": str(tmp_path / "cache")})
        manager = JobManager(store, settings)
        job = demo.run_example_project(manager, store, settings)
        job.wait()
        assert store.simulated_datasets(["example-REAL", "example-GEN", "other"]) == ["example-GEN", "example-REAL"]
        store.save_dataset("other", label="", source_kind="none")
        assert store.simulated_datasets(["other"]) == []
    return db_path


@pytest.fixture
def app(example_db: Path, app: AppTest) -> AppTest:
    return app


@pytest.mark.parametrize("page", ["compare", "export", "review"])
def test_pages_say_simulated(app: AppTest, page: str) -> None:
    app.run()
    app.switch_page(f"pages/{page}.py")
    app.run()
    assert not app.exception, app.exception
    assert any("Simulated" in warning.value and "fake Gemini" in warning.value for warning in app.warning)


def test_a_second_example_run_says_the_example_is_done_and_starts_nothing(example_db: Path, tmp_path: Path) -> None:
    from labeling.errors import InputError

    with Store(example_db) as store:
        settings = load_settings(env={"LABELING_CACHE_DIR": str(tmp_path / "cache")})
        runs_before = len(store.runs(limit=50))
        with pytest.raises(InputError, match="already described and categorized"):
            demo.run_example_project(JobManager(store, settings), store, settings)
        assert len(store.runs(limit=50)) == runs_before
