"""How a run lives through the real API's bad days: quota and overload holds, a daily quota, empty answers, a
refused schema, and configuration errors that must cost one request. The real SDK talks to the fake over HTTP."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from labeling.annotators.quota import PACIFIC
from labeling.fake_gemini import FakeGemini
from labeling.jobs import Job, JobManager, Progress
from labeling.planning import JobRequest, estimate
from labeling.settings import Settings
from labeling.store import Store
from labeling.sync_executor import DAILY_RESUME_MARGIN_SECONDS
from tests.caption_support import add_dataset, fake_settings
from tests.fake_clock import FakeClock

BEFORE_MIDNIGHT = dt.datetime(2025, 3, 14, 23, 59, 58, tzinfo=PACIFIC)  # two seconds before the daily reset
RESUME_AT = dt.datetime(2025, 3, 15, tzinfo=PACIFIC).timestamp() + DAILY_RESUME_MARGIN_SECONDS


def _wait_for(job: Job, condition, timeout: float = 20) -> Progress:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        progress = job.progress()
        if condition(progress):
            return progress
        time.sleep(0.02)
    raise AssertionError(f"the run never got there: {job.progress()}")


def _finish(job: Job, timeout: float = 60) -> Progress:
    assert job.wait(timeout), "the job did not finish"
    return job.progress()


def test_a_daily_quota_pauses_the_run_at_once_and_resume_continues(
    store: Store, fake: FakeGemini, tmp_path: Path
) -> None:
    add_dataset(store, tmp_path, "REAL", 6)
    fake.inject("daily_quota")
    clock = FakeClock(BEFORE_MIDNIGHT.timestamp())
    manager = JobManager(store, fake_settings(fake, tmp_path, num_workers=2), clock=clock.clock())
    job = manager.start(JobRequest(("REAL",)))
    paused = _wait_for(job, lambda p: p.status == "paused")
    assert (
        "The daily quota for gemini-2.5-flash-lite is used up; it resets at midnight Pacific (in about 1 min)"
        in paused.message
    )
    assert [h.reason for h in paused.holds] == ["daily_quota"]
    assert paused.holds[0].until == RESUME_AT  # a minute after midnight Pacific, on the run's clock
    assert paused.holds[0].line(clock.wall()).endswith("(in 62 s).")
    assert fake.request_count == 1  # no retry storm: the request that hit the quota was the only one
    deadline = time.monotonic() + 10
    while store.run(paused.run_id).status != "paused" and time.monotonic() < deadline:
        time.sleep(0.02)  # the database follows the in-memory status a moment later
    assert store.run(paused.run_id).status == "paused"
    job.resume()
    done = _finish(job)
    assert (done.status, done.done, done.failed) == ("completed", 6, 0)
    assert fake.request_count == 7 and done.rate_limited == 1


def test_a_daily_quota_resumes_by_itself_after_the_reset(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 3)
    fake.inject("quota_limit_zero")
    clock = FakeClock(BEFORE_MIDNIGHT.timestamp())
    manager = JobManager(store, fake_settings(fake, tmp_path, num_workers=1), clock=clock.clock())
    job = manager.start(JobRequest(("REAL",)))
    paused = _wait_for(job, lambda p: p.status == "paused")
    assert paused.holds[0].until == RESUME_AT
    clock.advance(RESUME_AT - clock.wall() - 1)  # past midnight, within the margin: still paused
    assert job.progress().status == "paused" and fake.request_count == 1
    clock.advance(1)
    done = _finish(job)
    assert (done.status, done.done, done.failed) == ("completed", 3, 0)


def test_a_storm_of_503s_is_waited_out_and_the_run_completes(
    store: Store, fake: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hundreds of 503s in a row fail no image and stop nothing: overload has no per-image retry budget, only
    the time limit, which by default outlasts a 10-minute burst."""
    assert Settings().max_hold_minutes >= 10
    add_dataset(store, tmp_path, "REAL", 8)
    fake.fault_for(lambda request: True, "http_503", times=300)
    settings = fake_settings(
        fake, tmp_path, num_workers=4, retry_backoff_seconds=0.001, max_backoff_seconds=0.02, max_retries=1
    )
    done = _finish(JobManager(store, settings).start(JobRequest(("REAL",))))
    assert (done.status, done.done, done.failed) == ("completed", 8, 0)
    assert fake.status_counts()[503] == 300 and done.retries >= 300


def test_overload_that_outlasts_max_hold_minutes_stops_the_run(
    store: Store, fake: FakeGemini, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_dataset(store, tmp_path, "REAL", 4)
    fake.fault_for(lambda request: True, "http_503")
    settings = fake_settings(
        fake, tmp_path, num_workers=2, retry_backoff_seconds=0.001, max_backoff_seconds=0.02, max_hold_minutes=0.005
    )
    done = _finish(JobManager(store, settings).start(JobRequest(("REAL",))))
    assert done.status == "failed" and "Gemini kept answering overloaded for" in done.message
    assert done.failed == 0  # the images stay in the work list for the next run


def test_a_quota_hold_shows_in_the_progress_with_its_end(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 3)
    fake.retry_delay_s = 1.5
    fake.inject("http_429")
    job = JobManager(store, fake_settings(fake, tmp_path, num_workers=2)).start(JobRequest(("REAL",)))
    held = _wait_for(job, lambda p: bool(p.holds))
    hold = held.holds[0]
    assert hold.reason == "quota" and time.time() < hold.until <= time.time() + 3
    assert hold.line().startswith("Waiting: the per-minute quota is used up until ")
    done = _finish(job)
    assert (done.done, done.failed, done.rate_limited, done.holds) == (3, 0, 1, ())


def test_empty_answers_are_retried_twice_then_fail_as_empty(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 2)
    fake.inject("empty_parts", times=2)  # the first image: two empty answers, then a good one
    settings = fake_settings(fake, tmp_path, num_workers=1)
    first = _finish(JobManager(store, settings).start(JobRequest(("REAL",))))
    assert (first.done, first.failed, first.requests) == (2, 0, 4)
    add_dataset(store, tmp_path, "GEN", 1)
    fake.inject("empty_candidates", times=3)
    second = _finish(JobManager(store, settings).start(JobRequest(("GEN",))))
    assert (second.done, second.failed, second.requests, second.failures_by_kind) == (0, 1, 3, {"empty": 1})
    assert second.tokens_in > 0  # empty answers are billed, and counted


@pytest.mark.parametrize("fault", ["key_invalid", "http_403", "location_unsupported", "http_404"])
def test_a_configuration_error_costs_one_request_whatever_the_workers(
    store: Store, fake: FakeGemini, tmp_path: Path, fault: str
) -> None:
    add_dataset(store, tmp_path, "REAL", 40)
    fake.fault_for(lambda request: True, fault)
    done = _finish(JobManager(store, fake_settings(fake, tmp_path, num_workers=16)).start(JobRequest(("REAL",))))
    assert done.status == "failed" and fake.request_count == 1


def test_a_run_on_v1_stops_after_one_request_saying_which_setting(
    store: Store, fake: FakeGemini, tmp_path: Path
) -> None:
    add_dataset(store, tmp_path, "REAL", 10)
    settings = fake_settings(fake, tmp_path, num_workers=8, gemini_api_version="v1")
    done = _finish(JobManager(store, settings).start(JobRequest(("REAL",))))
    assert done.status == "failed" and "set gemini_api_version to v1beta" in done.message
    assert fake.request_count == 1


def test_a_bad_image_first_in_the_list_fails_alone(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    """A generic 400 on the very first request: a probe image tells the image's fault from the request's."""
    add_dataset(store, tmp_path, "REAL", 4)
    fake.inject("http_400")
    done = _finish(JobManager(store, fake_settings(fake, tmp_path, num_workers=2)).start(JobRequest(("REAL",))))
    assert (done.status, done.done, done.failed, done.failures_by_kind) == ("completed", 3, 1, {"invalid_argument": 1})
    assert done.requests == fake.request_count == 5  # the probe is counted (and billed) like any request


def test_a_refused_category_enum_falls_back_for_the_whole_run(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 5)
    fake.max_schema_states = 50  # the default category list's enum is bigger than that
    done = _finish(JobManager(store, fake_settings(fake, tmp_path, num_workers=3)).start(JobRequest(("REAL",))))
    assert (done.status, done.done, done.failed) == ("completed", 5, 0)
    assert any("plain strings" in notice for notice in done.notices)
    assert [r.status for r in fake.records].count(400) == 1  # refused once, never again


def test_flex_is_sent_and_costs_half_in_the_estimate_and_the_run(
    store: Store, fake: FakeGemini, tmp_path: Path
) -> None:
    add_dataset(store, tmp_path, "REAL", 4)
    standard = fake_settings(fake, tmp_path)
    flex = standard.replace(service_tier="flex")
    planned = estimate(store, flex, JobRequest(("REAL",)))
    assert planned.cost_usd == pytest.approx(estimate(store, standard, JobRequest(("REAL",))).cost_usd / 2)
    assert "flex tier" in planned.line()
    done = _finish(JobManager(store, flex).start(JobRequest(("REAL",))))
    assert {r.service_tier for r in fake.records} == {"flex"}
    price = standard.price_for("gemini-2.5-flash-lite")
    assert price is not None
    full = (done.tokens_in * price["input"] + (done.tokens_out + done.tokens_thinking) * price["output"]) / 1e6
    assert done.cost_usd == pytest.approx(full / 2)


def test_a_model_without_a_price_says_so_in_the_estimate_and_the_run(
    store: Store, fake: FakeGemini, tmp_path: Path
) -> None:
    add_dataset(store, tmp_path, "REAL", 2)
    settings = fake_settings(fake, tmp_path, caption_model="gemini-3.9-flash-lite")
    planned = estimate(store, settings, JobRequest(("REAL",)))
    assert not planned.price_known and "price unknown: set prices.gemini-3.9-flash-lite" in planned.line()
    done = _finish(JobManager(store, settings).start(JobRequest(("REAL",))))
    assert done.done == 2 and not done.price_known and done.cost_usd == 0


@pytest.mark.parametrize(
    ("model", "resolution", "tokens"),
    [
        ("gemini-2.5-flash-lite", "", 258),
        ("gemini-2.5-flash-lite", "low", 64),
        ("gemini-3.5-flash-lite", "", 1120),
        ("gemini-3.5-flash-lite", "medium", 560),
    ],
)
def test_image_tokens_in_the_estimate_follow_the_family(
    store: Store, fake: FakeGemini, tmp_path: Path, model: str, resolution: str, tokens: int
) -> None:
    add_dataset(store, tmp_path, "REAL", 1)
    settings = fake_settings(fake, tmp_path, caption_model=model, media_resolution=resolution)
    planned = estimate(store, settings, JobRequest(("REAL",)))
    assert f"{tokens:,} tokens an image" in planned.basis
    done = _finish(JobManager(store, settings).start(JobRequest(("REAL",))))
    assert done.done == 1
    assert {r.media_resolution for r in fake.records} == {
        f"MEDIA_RESOLUTION_{resolution.upper()}" if resolution else None
    }


def test_cancel_while_a_request_meets_the_daily_quota_ends_the_run(store: Store, tmp_path: Path) -> None:
    with FakeGemini(latency_s=0.5) as fake:
        add_dataset(store, tmp_path, "REAL", 3)
        fake.inject("daily_quota")
        job = JobManager(store, fake_settings(fake, tmp_path, num_workers=1)).start(JobRequest(("REAL",)))
        _wait_for(job, lambda p: fake.request_count == 1)
        job.cancel()  # before the 429 comes back: it must not pause a run that is stopping
        done = _finish(job, timeout=10)
    assert done.status == "cancelled" and done.holds == ()


def test_time_spent_paused_does_not_count_as_overload(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeGemini(latency_s=0.2) as fake:
        add_dataset(store, tmp_path, "REAL", 2)
        fake.inject("http_503", times=2)
        settings = fake_settings(
            fake, tmp_path, num_workers=1, retry_backoff_seconds=0.001, max_backoff_seconds=0.02, max_hold_minutes=0.005
        )  # 0.3 s
        job = JobManager(store, settings).start(JobRequest(("REAL",)))
        _wait_for(job, lambda p: fake.request_count == 1)
        job.pause()
        time.sleep(0.6)  # longer than max_hold_minutes, while paused
        job.resume()
        done = _finish(job)
    assert (done.status, done.done) == ("completed", 2)


def test_a_limit_of_zero_that_survives_the_reset_stops_the_run(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 2)
    fake.fault_for(lambda request: True, "quota_limit_zero")
    clock = FakeClock(BEFORE_MIDNIGHT.timestamp())
    manager = JobManager(store, fake_settings(fake, tmp_path, num_workers=1), clock=clock.clock())
    job = manager.start(JobRequest(("REAL",)))
    _wait_for(job, lambda p: p.status == "paused")
    clock.advance(RESUME_AT - clock.wall())  # the reset and its margin pass: the run resumes by itself
    done = _finish(job)
    assert done.status == "failed" and "This key has no quota for gemini-2.5-flash-lite" in done.message
    assert fake.request_count == 2  # once before the reset, once after: never a loop
