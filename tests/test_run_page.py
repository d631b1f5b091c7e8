"""The Run page through AppTest: example project, estimate, start, pause / resume / cancel, failures, history.

The jobs run in this process against the fake Gemini server; the page polls the process-wide JobManager.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from labeling import jobs
from labeling.fake_gemini import FakeGemini
from labeling.jobs import Job, JobManager
from labeling.store import Store
from pages import common
from tests.caption_support import add_dataset
from tests.conftest import wait_until


@pytest.fixture
def app(app: AppTest) -> Iterator[AppTest]:
    yield app
    _manager().shutdown()  # the process-wide job manager of this test: its threads end with it


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        for name, value in server.env("page-key").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("LABELING_RETRY_BACKOFF", "0.01")
        yield server


def _manager() -> JobManager:
    return common.job_manager()  # the same cache_resource object the page uses


def _open(at: AppTest) -> None:
    """Open the Run page (settings are read on the first run: set the environment before)."""
    at.run()
    at.switch_page("pages/run.py")
    at.run()
    assert not at.exception, at.exception


def _texts(at: AppTest) -> str:
    parts = [e.value for e in (*at.markdown, *at.text, *at.caption, *at.title, *at.subheader)]
    parts += [e.value for e in (*at.error, *at.warning, *at.info, *at.success)]
    return "\n".join(str(p) for p in parts)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _frame(at: AppTest, *columns: str):  # type: ignore[no-untyped-def]
    """The first table showing all these columns (AppTest does not expose dataframe keys)."""
    for element in at.dataframe:
        if set(columns) <= set(element.value.columns):
            return element.value
    raise AssertionError(f"no table with columns {columns}")


def _wait(job: Job) -> None:
    assert job.wait(30), "the job did not finish"


def _with_dataset(db_path: Path, tmp_path: Path, count: int) -> None:
    with Store(db_path) as store:
        add_dataset(store, tmp_path, "REAL", count)


def test_a_newcomer_creates_and_runs_the_example_project_marked_simulated(app: AppTest, db_path: Path) -> None:
    _open(app)
    assert app.title[0].value == "Run" and "No datasets yet" in _texts(app)
    app.button(key="create_example").click().run()
    assert not app.exception, app.exception
    jobs = _manager().jobs()
    assert len(jobs) == 1 and jobs[0].simulated
    _wait(jobs[0])
    app.run()
    shown = _texts(app)
    assert "simulated" in shown and "Simulated: answers come from the built-in fake Gemini server" in shown
    assert _metrics(app)["Done"] == "48"
    history = _frame(app, "status", "simulated", "requests")
    assert history["simulated"].tolist() == [True] and history["status"].tolist() == ["completed"]
    assert "Simulated runs ran against the built-in fake Gemini server" in shown
    store = common.store()
    assert store.fetch_one("SELECT bool_and(simulated), count(*) FROM annotations") == (True, 48)
    assert set(store.dataset_names()) == {"example-REAL", "example-GEN"}


def test_after_the_example_the_estimate_says_simulated_results_do_not_count(app: AppTest) -> None:
    _open(app)
    app.button(key="create_example").click().run()
    _wait(_manager().jobs()[0])
    app.run()
    chosen = app.multiselect(key="run_datasets").value
    assert len(chosen) == 1 and chosen[0] in ("example-REAL", "example-GEN")
    assert _metrics(app)["Images"] == "24"  # every simulated result is still to do for a real run
    note = next(e.value for e in app.info if "Simulated results do not count toward a real run" in e.value)
    assert "the estimate still counts 24 images they cover" in note and chosen[0].replace("-", "\\-") in note
    app.multiselect(key="run_datasets").set_value(["example-REAL", "example-GEN"]).run()
    assert _metrics(app)["Images"] == "48" and "still counts 48 images they cover" in _texts(app)


def test_estimate_then_start_a_run(app: AppTest, fake: FakeGemini, db_path: Path, tmp_path: Path) -> None:
    _with_dataset(db_path, tmp_path, 6)
    _open(app)
    assert _metrics(app)["Images"] == "6" and _metrics(app)["Requests"] == "6"
    app.radio(key="run_mode").set_value("two-pass").run()
    assert _metrics(app)["Requests"] == "12"
    app.radio(key="run_mode").set_value("fused").run()
    app.number_input(key="run_workers").set_value(2).run()
    app.button(key="run_start").click().run()
    assert not app.exception, app.exception
    job = _manager().jobs()[0]
    _wait(job)
    app.run()
    assert _metrics(app)["Done"] == "6" and "completed" in _texts(app)
    assert fake.request_count == 6
    assert "Nothing to do" in _texts(app)
    assert app.button(key="run_start").disabled
    assert "do not count toward a real run" not in _texts(app)  # no simulated results here
    history = _frame(app, "status", "done", "failed")
    assert history[["status", "done", "failed"]].values.tolist() == [["completed", 6, 0]]


def test_a_finished_runs_clock_and_rate_stand_still(
    app: AppTest, fake: FakeGemini, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The live rate counts the last seconds only: with no window at all, a finished run still has its average.
    monkeypatch.setattr(jobs, "RATE_WINDOW_SECONDS", 0.0)
    _with_dataset(db_path, tmp_path, 6)
    fake.latency_s = 0.05
    _open(app)
    app.number_input(key="run_workers").set_value(2).run()
    app.button(key="run_start").click().run()
    job = _manager().jobs()[0]
    _wait(job)
    app.run()
    first, first_caption = job.progress(), _elapsed_caption(app)
    app.run()
    second = job.progress()
    assert (second.elapsed_s, second.images_per_s) == (first.elapsed_s, first.images_per_s)  # no clock ticks on
    assert _elapsed_caption(app) == first_caption
    assert first.images_per_s > 0 and first.images_per_s == pytest.approx(6 / first.elapsed_s)  # its active time
    assert _metrics(app)["Images/s"] == f"{first.images_per_s:.1f}" and _metrics(app)["ETA"] == "-"


def _elapsed_caption(at: AppTest) -> str:
    return next(str(c.value) for c in at.caption if "elapsed" in str(c.value))


def test_without_a_key_start_is_disabled_and_says_why(app: AppTest, db_path: Path, tmp_path: Path) -> None:
    _with_dataset(db_path, tmp_path, 2)
    _open(app)
    assert "No Gemini API key is set" in _texts(app)
    assert app.button(key="run_start").disabled


def test_pause_resume_cancel_and_resume_a_stopped_run(
    app: AppTest, fake: FakeGemini, db_path: Path, tmp_path: Path
) -> None:
    _with_dataset(db_path, tmp_path, 30)
    fake.latency_s = 0.1
    _open(app)
    app.number_input(key="run_workers").set_value(1).run()
    app.button(key="run_start").click().run()
    job = _manager().jobs()[0]
    wait_until(lambda: job.progress().done >= 1, what="the first image done")
    app.run()
    app.button(key=f"pause_{job.run_id}").click().run()
    assert job.progress().status == "paused"
    assert common.store().run(job.run_id).status == "paused"
    app.button(key=f"resume_{job.run_id}").click().run()
    assert job.progress().status == "running"
    app.button(key=f"cancel_{job.run_id}").click().run()
    _wait(job)
    app.run()
    assert job.progress().status == "cancelled"
    assert "cancelled" in _texts(app)
    fake.latency_s = 0
    app.selectbox(key="resume_choice").set_value(job.run_id)
    app.button(key="resume_run").click().run()
    assert not app.exception, app.exception
    resumed = _manager().job(job.run_id)
    assert resumed is not None and resumed is not job
    _wait(resumed)
    final = resumed.progress()
    assert final.done == 30
    assert fake.request_count == 30
    # its rate counts only what the resumed run itself did, over its own active time
    assert final.images_per_s == pytest.approx((30 - job.progress().done) / final.elapsed_s)
    app.run()
    assert _frame(app, "status", "done")[["status", "done"]].values.tolist() == [["completed", 30]]


def test_failures_grouped_by_reason_and_retry_failed(
    app: AppTest, fake: FakeGemini, db_path: Path, tmp_path: Path
) -> None:
    _with_dataset(db_path, tmp_path, 5)
    fake.inject("safety", times=2)
    _open(app)
    app.number_input(key="run_workers").set_value(1).run()
    app.button(key="run_start").click().run()
    _wait(_manager().jobs()[0])
    app.run()
    groups = _frame(app, "stage", "kind", "images")
    assert groups[["stage", "kind", "images"]].values.tolist() == [["model", "safety", 2]]
    app.button(key="retry_failed").click().run()
    retry = _manager().jobs()[0]
    assert retry.progress().total == 2
    _wait(retry)
    app.run()
    assert "No open failures" in _texts(app)
    assert fake.request_count == 7


def test_a_batch_run_from_the_page_shows_its_shards_and_costs_half(
    app: AppTest, fake: FakeGemini, db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LABELING_BATCH_POLL_SECONDS", "0.05")
    fake.batch_pending_s, fake.batch_running_s = 0.0, 0.1
    _with_dataset(db_path, tmp_path, 4)
    _open(app)
    standard = _metrics(app)["Expected cost"]
    app.radio(key="run_tier").set_value("batch").run()
    assert float(_metrics(app)["Expected cost"].strip("$")) == pytest.approx(float(standard.strip("$")) / 2, rel=0.01)
    app.radio(key="run_mode").set_value("two-pass").run()
    assert "Batch Mode asks once per image" in _texts(app) and not [b for b in app.button if b.key == "run_start"]
    app.radio(key="run_mode").set_value("fused").run()
    app.button(key="run_start").click().run()
    assert not app.exception, app.exception
    job = _manager().jobs()[0]
    _wait(job)
    app.run()
    assert _metrics(app)["Done"] == "4" and "completed" in _texts(app)
    shards = _frame(app, "shard")["shard"].tolist()
    assert len(shards) == 1 and shards[0].startswith("shard 1 (") and "recorded, job succeeded, 4 done" in shards[0]
    assert fake.request_count == 0 and fake.api_call_counts()["batches.create"] == 1  # no synchronous request
