"""The job runner against the fake Gemini server: modes, retries, fatal errors, failures, pause, resume."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from labeling.annotators import PROMPT_VERSION
from labeling.categories import Category
from labeling.fake_gemini import FakeGemini, GenerateRequest
from labeling.jobs import JobManager
from labeling.pacing import RateLimiter, backoff_delay
from labeling.planning import JobRequest, estimate
from labeling.store import Store
from labeling.taxonomy import ensure_categories
from labeling.thumbnails import thumbnail_path
from tests.caption_support import add_dataset, fake_settings
from tests.conftest import wait_until


def _annotations(store: Store) -> list[dict[str, object]]:
    frame = store.fetch_df(
        "SELECT image_id, kind, description::VARCHAR AS description, categories, prompt_version, "
        "category_list_version, tokens_in, simulated FROM annotations ORDER BY id"
    )
    return frame.to_dict("records")


def _run(manager: JobManager, *datasets: str, timeout: float = 30, **options: object):  # type: ignore[no-untyped-def]
    job = manager.start(JobRequest(tuple(datasets), **options))  # type: ignore[arg-type]
    assert job.wait(timeout), "the job did not finish"
    return job.progress()


def test_fused_run_sends_one_request_per_image_and_stores_everything(
    store: Store, fake: FakeGemini, tmp_path: Path
) -> None:
    add_dataset(store, tmp_path, "REAL", 12)
    settings = fake_settings(fake, tmp_path)
    progress = _run(JobManager(store, settings), "REAL")

    assert (progress.status, progress.done, progress.failed, progress.requests) == ("completed", 12, 0, 12)
    assert fake.request_count == 12 and all(r.has_image for r in fake.records)
    rows = _annotations(store)
    assert len(rows) == 12 and {r["kind"] for r in rows} == {"fused"}
    assert all(r["prompt_version"] == PROMPT_VERSION and r["categories"] for r in rows)
    assert all(r["category_list_version"] == store.category_list_version() for r in rows)
    run = store.run(progress.run_id)
    assert (run.status, run.done, run.requests) == ("completed", 12, 12)
    assert run.tokens_in == sum(int(r["tokens_in"]) for r in rows) == progress.tokens_in
    assert "gemini_api_key" not in json.dumps(run.settings) and "test-key" not in json.dumps(run.settings)
    facts = store.fetch_all("SELECT format, width, height, size_bytes FROM images ORDER BY name")
    assert facts[0][:3] == ("JPEG", 100, 60) and facts[0][3] > 0
    image_ids = [r[0] for r in store.fetch_all("SELECT id FROM images")]
    assert all(thumbnail_path(settings.cache_dir, i).is_file() for i in image_ids)
    summary = store.dataset_summary("REAL")
    assert (summary.described, summary.categorized, summary.failed) == (12, 12, 0)


def test_a_second_run_finds_nothing_to_do(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 5)
    manager = JobManager(store, fake_settings(fake, tmp_path))
    _run(manager, "REAL")
    again = _run(manager, "REAL")
    assert (again.total, again.requests) == (0, 0)
    assert fake.request_count == 5


def test_two_pass_describes_then_categorizes_the_text(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 4)
    progress = _run(JobManager(store, fake_settings(fake, tmp_path)), "REAL", mode="two-pass")
    assert (progress.done, progress.requests) == (4, 8)
    with_image = Counter(r.has_image for r in fake.records)
    assert with_image == {True: 4, False: 4}
    rows = _annotations(store)
    assert Counter(r["kind"] for r in rows) == {"describe": 4, "categorize": 4}
    assert all(r["categories"] is None for r in rows if r["kind"] == "describe")
    current = store.current_annotations(store.dataset_id("REAL"))
    assert (current["kind"] == "categorize").all() and current["description"].notna().all()


def test_categorize_mode_recategorizes_after_the_list_changes_without_sending_images(
    store: Store, fake: FakeGemini, tmp_path: Path
) -> None:
    add_dataset(store, tmp_path, "REAL", 6)
    manager = JobManager(store, fake_settings(fake, tmp_path))
    _run(manager, "REAL")
    assert _run(manager, "REAL", mode="categorize").total == 0  # same list: nothing to do
    store.save_category_list([*ensure_categories(store), Category("robots", "machines")], note="added robots")
    fake.reset()
    progress = _run(manager, "REAL", mode="categorize")
    assert (progress.done, progress.requests) == (6, 6)
    assert not any(r.has_image for r in fake.records)
    current = store.current_annotations(store.dataset_id("REAL"))
    assert (current["category_list_version"] == store.category_list_version()).all()
    # the description travels with the new categories: every annotation is a full snapshot
    assert current["description"].notna().all()


def test_fused_run_categorizes_described_images_from_text(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 3)
    manager = JobManager(store, fake_settings(fake, tmp_path))
    _run(manager, "REAL")
    store.save_category_list([*ensure_categories(store), Category("robots")], note="added robots")
    fake.reset()
    progress = _run(manager, "REAL")
    assert progress.requests == 3 and not any(r.has_image for r in fake.records)


def test_429_storm_honours_the_servers_retry_delay(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 4)
    fake.retry_delay_s = 1
    fake.inject("http_429", times=2)  # both workers' first requests
    progress = _run(JobManager(store, fake_settings(fake, tmp_path, num_workers=2)), "REAL")
    assert (progress.status, progress.done, progress.failed) == ("completed", 4, 0)
    assert progress.rate_limited == 2 and progress.retries == 2
    first_429 = min(r.received_at for r in fake.records if r.status == 429)
    answered = [r.received_at for r in fake.records if r.status == 200]
    # RetryInfo said 1 s: no worker came back sooner (the 429 held every worker, not only the one it answered)
    assert len(answered) == 4 and min(answered) >= first_429 + 1.0


@pytest.mark.parametrize("fault", ["http_500", "http_503", "http_504"])
def test_server_errors_are_retried(store: Store, fake: FakeGemini, tmp_path: Path, fault: str) -> None:
    add_dataset(store, tmp_path, "REAL", 3)
    fake.inject(fault, times=2)
    progress = _run(JobManager(store, fake_settings(fake, tmp_path)), "REAL")
    assert (progress.done, progress.failed, progress.retries, progress.requests) == (3, 0, 2, 5)


def test_timeouts_are_retried(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 2)
    fake.hang_s = 3
    fake.inject("hang")
    progress = _run(JobManager(store, fake_settings(fake, tmp_path, request_timeout_seconds=0.3)), "REAL")
    assert (progress.done, progress.failed, progress.retries) == (2, 0, 1)


def test_errors_that_outlast_the_retries_become_failures(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 2)
    fake.fault_for(lambda request: True, "http_500", times=3)
    progress = _run(JobManager(store, fake_settings(fake, tmp_path, num_workers=1, max_retries=1)), "REAL")
    assert (progress.done, progress.failed) == (1, 1)
    assert store.failure_counts([store.dataset_id("REAL")])["kind"].tolist() == ["server_error"]


def _fail_after(fake: FakeGemini, successes: int, fault: str) -> None:
    seen = Counter[str]()
    lock = threading.Lock()

    def after_some(request: GenerateRequest) -> bool:
        with lock:
            seen["n"] += 1
            return seen["n"] > successes

    fake.fault_for(after_some, fault)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("key_invalid", "The Gemini API key was rejected (400 API_KEY_INVALID): set GEMINI_API_KEY"),
        ("http_403", "Gemini refused the key (403 PERMISSION_DENIED"),
        ("http_404", "was not found on API version v1beta (404"),
        ("location_unsupported", "Gemini is not available where this machine is (400 FAILED_PRECONDITION"),
    ],
)
def test_fatal_errors_stop_the_whole_run_at_once(
    store: Store, fake: FakeGemini, tmp_path: Path, fault: str, message: str
) -> None:
    add_dataset(store, tmp_path, "REAL", 60)
    fake.latency_s = 0.05
    _fail_after(fake, 5, fault)
    workers = 4
    progress = _run(JobManager(store, fake_settings(fake, tmp_path, num_workers=workers)), "REAL", timeout=10)
    assert progress.status == "failed" and message in progress.message
    # the workers stopped after the requests already in flight: nothing else was sent
    assert fake.request_count <= 5 + workers
    run = store.run(progress.run_id)
    assert run.status == "failed" and message in run.message
    assert len(_annotations(store)) == progress.done <= 5
    # the images not reached are not failures: the next run (with the problem fixed) does them
    assert store.failure_counts([store.dataset_id("REAL")]).empty


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("safety", "safety"),
        ("prompt_blocked", "prompt_blocked"),
        ("max_tokens", "max_tokens"),
        ("malformed_json", "invalid_json"),
        ("off_list_category", "off_list"),
    ],
)
def test_unusable_answers_fail_one_image_and_are_never_stored_as_descriptions(
    store: Store, fake: FakeGemini, tmp_path: Path, fault: str, kind: str
) -> None:
    add_dataset(store, tmp_path, "REAL", 3)
    fake.inject(fault)
    manager = JobManager(store, fake_settings(fake, tmp_path, num_workers=1))
    progress = _run(manager, "REAL")
    assert (progress.done, progress.failed, progress.failures_by_kind) == (2, 1, {kind: 1})
    rows = _annotations(store)
    assert len(rows) == 2
    assert not any("ERROR" in str(r["description"]) for r in rows)
    failures = store.open_failures([store.dataset_id("REAL")])
    assert failures["kind"].tolist() == [kind] and failures["stage"].tolist() == ["model"]
    assert store.run(progress.run_id).tokens_in > 0  # the failed request was billed and is counted


def test_retry_failed_sends_only_the_failed_images_and_resolves_them(
    store: Store, fake: FakeGemini, tmp_path: Path
) -> None:
    add_dataset(store, tmp_path, "REAL", 5)
    fake.inject("safety", times=2)
    manager = JobManager(store, fake_settings(fake, tmp_path, num_workers=1))
    assert _run(manager, "REAL").failed == 2
    fake.reset()
    retried = _run(manager, "REAL", retry_failed=True)
    assert (retried.total, retried.done, fake.request_count) == (2, 2, 2)
    assert store.dataset_summary("REAL").failed == 0
    assert store.fetch_one("SELECT count(*) FROM failures WHERE NOT resolved") == (0,)


def test_image_and_source_problems_are_per_image_failures(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    folder = add_dataset(store, tmp_path, "REAL", 3)
    (folder / "img000.jpg").write_bytes(b"")  # empty
    (folder / "img001.jpg").unlink()  # gone since the import
    progress = _run(JobManager(store, fake_settings(fake, tmp_path)), "REAL")
    assert (progress.done, progress.failed) == (1, 2)
    failures = store.open_failures([store.dataset_id("REAL")]).set_index("name")
    assert failures.loc["img000.jpg", "kind"] == "empty" and failures.loc["img000.jpg", "stage"] == "prepare"
    assert failures.loc["img001.jpg", "stage"] == "read"
    assert fake.request_count == 1


def test_an_unreachable_service_stops_the_run_instead_of_failing_every_image(
    store: Store, fake: FakeGemini, tmp_path: Path
) -> None:
    add_dataset(store, tmp_path, "REAL", 30)
    settings = fake_settings(fake, tmp_path, num_workers=2, max_retries=0)
    fake.stop()
    progress = _run(JobManager(store, settings), "REAL")
    assert progress.status == "failed" and "kept failing" in progress.message
    assert progress.failed < 30


def test_pause_resume_and_cancel_leave_a_resumable_run(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 20)
    fake.latency_s = 0.1
    manager = JobManager(store, fake_settings(fake, tmp_path, num_workers=1))
    job = manager.start(JobRequest(("REAL",)))
    wait_until(lambda: job.progress().done >= 2, what="two images done")
    job.pause()
    assert store.run(job.run_id).status == "paused"
    time.sleep(0.3)  # let the request in flight land
    sent = fake.request_count
    time.sleep(0.4)
    assert fake.request_count == sent  # nothing is sent while paused
    job.resume()
    wait_until(lambda: job.progress().done >= sent + 2, what="two more images after resuming")
    job.cancel()
    assert job.wait(10)
    progress = job.progress()
    assert progress.status == "cancelled" and 0 < progress.done < 20
    assert store.run(job.run_id).status == "cancelled"
    assert len(_annotations(store)) == progress.done  # everything finished was written

    resumed = manager.resume(job.run_id)
    assert resumed.run_id == job.run_id and resumed.wait(30)
    final = resumed.progress()
    assert (final.status, final.done, final.total) == ("completed", 20, 20)
    per_image = Counter(r["image_id"] for r in _annotations(store))
    assert len(per_image) == 20 and set(per_image.values()) == {1}
    assert fake.request_count == 20  # nothing stored was sent twice


def test_resuming_a_run_does_not_retry_its_own_failures(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 4)
    fake.inject("safety")
    manager = JobManager(store, fake_settings(fake, tmp_path, num_workers=1))
    first = _run(manager, "REAL")
    resumed = manager.resume(first.run_id)
    assert resumed.wait(10) and resumed.progress().requests == first.requests  # no new request
    assert _run(manager, "REAL").requests == 1  # a new run does retry it


def test_runs_left_running_by_a_dead_process_are_marked_interrupted(store: Store, tmp_path: Path) -> None:
    run_id = store.create_run("fused", [], {"mode": "fused"})
    JobManager(store, fake_settings(FakeGemini(), tmp_path))
    assert store.run(run_id).status == "interrupted"


def test_two_jobs_never_work_on_the_same_dataset(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 10)
    fake.latency_s = 0.2
    manager = JobManager(store, fake_settings(fake, tmp_path, num_workers=1))
    job = manager.start(JobRequest(("REAL",)))
    with pytest.raises(Exception, match="already working on REAL"):
        manager.start(JobRequest(("REAL",), mode="two-pass"))
    job.cancel()
    assert job.wait(10)


def test_one_run_covers_several_datasets_and_simulated_runs_are_marked(
    store: Store, fake: FakeGemini, tmp_path: Path
) -> None:
    add_dataset(store, tmp_path, "REAL", 3)
    add_dataset(store, tmp_path, "GEN", 2, color=(220, 30, 40))
    manager = JobManager(store, fake_settings(fake, tmp_path))
    job = manager.start(JobRequest(("REAL", "GEN")), simulated=True)
    assert job.wait(10)
    assert job.progress().done == 5
    assert store.run(job.run_id).simulated
    assert all(r["simulated"] for r in _annotations(store))
    assert store.runs()["datasets"].iloc[0] == "GEN, REAL"


def test_human_labels_are_never_touched(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 2)
    image_id = store.fetch_all("SELECT min(id) FROM images")[0][0]
    store.cursor().execute(
        "INSERT INTO human_labels (image_id, categories, reviewed, reviewer) VALUES (?, ['people'], true, 'ann')",
        [image_id],
    )
    _run(JobManager(store, fake_settings(fake, tmp_path)), "REAL")
    assert store.fetch_all("SELECT image_id, categories, reviewed, reviewer, version FROM human_labels") == [
        (image_id, ["people"], True, "ann", 1)
    ]


def test_estimate_counts_requests_per_mode(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 10)
    settings = fake_settings(fake, tmp_path)
    fused = estimate(store, settings, JobRequest(("REAL",)))
    two_pass = estimate(store, settings, JobRequest(("REAL",), mode="two-pass"))
    assert (fused.images, fused.requests, two_pass.requests) == (10, 10, 20)
    assert 0 < fused.cost_usd < two_pass.cost_usd and fused.basis.startswith("typical sizes")
    categorize = estimate(store, settings, JobRequest(("REAL",), mode="categorize"))
    assert (categorize.images, categorize.without_description) == (0, 10)
    _run(JobManager(store, settings), "REAL")
    store.save_category_list([*ensure_categories(store), Category("robots")], note="added robots")
    after = estimate(store, settings, JobRequest(("REAL",), mode="categorize"))
    assert after.requests == 10 and after.basis.startswith("typical sizes")


def test_rate_limiter_spaces_requests_and_holds_everyone() -> None:
    limiter = RateLimiter(1200)  # one every 50 ms
    stop = threading.Event()
    start = time.monotonic()
    for slot in range(4):
        assert limiter.acquire(stop)
        assert time.monotonic() - start >= slot * 0.05 - 0.001  # never before its slot
    limiter.hold(0.2)
    start = time.monotonic()
    assert limiter.acquire(stop)
    assert time.monotonic() - start >= 0.19
    stop.set()
    assert not RateLimiter(1).acquire(stop)


def test_backoff_honours_the_server_delay_and_grows() -> None:
    assert 53 <= backoff_delay(1, 2.0, 53.0) <= 54.1
    assert 1.0 <= backoff_delay(1, 2.0, None) <= 3.0
    assert 4.0 <= backoff_delay(3, 2.0, None) <= 12.0
    assert backoff_delay(30, 2.0, None) <= 90


def test_a_real_run_never_counts_simulated_output_as_done(store: Store, fake: FakeGemini, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "REAL", 3)
    manager = JobManager(store, fake_settings(fake, tmp_path))
    simulated = manager.start(JobRequest(("REAL",)), simulated=True)
    assert simulated.wait(10)
    assert manager.start(JobRequest(("REAL",)), simulated=True).wait(10)
    assert fake.request_count == 3  # simulated work counts as done for another simulated run
    real = _run(manager, "REAL")
    assert (real.done, fake.request_count) == (3, 6)
    current = store.current_annotations(store.dataset_id("REAL"))
    assert not current["simulated"].any()
