"""Gemini Batch Mode end to end: shards written, uploaded resumably, submitted, polled and recorded through the
real google-genai SDK against the fake's Files API and batches; kill -9 at each stage, then the same command
again: every image described exactly once and no shard given a second batch job."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from labeling.annotators import prompts
from labeling.annotators.gemini import GeminiAnnotator
from labeling.batch_shards import LineMaker, ShardWriter
from labeling.fake_gemini import FakeGemini, GenerateRequest
from labeling.jobs import Job, JobManager
from labeling.planning import JobRequest, estimate
from labeling.settings import Settings
from labeling.store import Store
from labeling.taxonomy import ensure_categories
from tests.caption_support import add_dataset, fake_settings
from tests.conftest import ROOT, wait_until
from tests.fake_gemini_fixtures import *  # noqa: F403 - the shared fake and server fixtures

SHARD_MB = 0.013  # a fused line of a small test image is ~6 KB (mostly prompt and schema): two lines a shard


@pytest.fixture
def quick(fake: FakeGemini) -> FakeGemini:
    """The shared fake with batches that finish within a fraction of a second."""
    fake.batch_pending_s, fake.batch_running_s = 0.05, 0.05
    return fake


def _settings(fake: FakeGemini, tmp_path: Path, **changes: object) -> Settings:
    return fake_settings(fake, tmp_path, **{"batch_shard_mb": SHARD_MB, "batch_poll_seconds": 0.05, **changes})


def _width_is(width: int) -> Callable[[GenerateRequest], bool]:
    """A fault rule for the request (batch line) carrying the image `width` pixels wide."""

    def rule(request: GenerateRequest) -> bool:
        return bool(request.images) and Image.open(io.BytesIO(request.images[0].data)).width == width

    return rule


def _run(store: Store, settings: Settings, request: JobRequest | None = None, timeout: float = 60) -> Job:
    manager = JobManager(store, settings)
    job = manager.start(request or JobRequest(("REAL",), executor="batch"))
    assert job.wait(timeout), "the batch run did not end"
    return job


def _annotations_per_image(store: Store) -> Counter[str]:
    return Counter(
        name for (name,) in store.fetch_all("SELECT i.name FROM annotations a JOIN images i ON i.id = a.image_id")
    )


def _creates(fake: FakeGemini) -> list[str]:
    return [call.path for call in fake.api_calls if call.method == "batches.create" and call.status == 200]


# -- the shard writer and the request lines ---------------------------------------------------------------


def test_lines_use_the_rest_nesting_and_shards_stay_under_the_limit(tmp_path: Path, store: Store) -> None:
    settings = Settings(gemini_api_key="k", cache_dir=str(tmp_path / "cache"))
    annotator = GeminiAnnotator(settings)
    categories = ensure_categories(store)
    lines = LineMaker(annotator, categories, 2)
    limit = 30_000
    writer = ShardWriter(store, 7, tmp_path / "shards", limit)
    for image_id in range(1, 8):
        writer.add("fused", image_id, lines.image_line("fused", image_id, "QUJD" * 500, "image/jpeg"))
    writer.add("categorize", 99, lines.text_line(99, {"summary": "a cat"}))
    numbers = writer.close()
    shards = store.batch_shards(7)
    assert [s.shard for s in shards] == sorted(numbers) and len(shards) >= 3
    assert {s.kind for s in shards} == {"fused", "categorize"}
    assert sorted(i for s in shards for i in s.image_ids) == [1, 2, 3, 4, 5, 6, 7, 99]
    for shard in shards:
        path = Path(shard.path)
        assert path.stat().st_size == shard.bytes <= limit and shard.state == "written"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert [int(r["key"]) for r in rows] == list(shard.image_ids)
        for row in rows:
            request = row["request"]
            assert set(row) == {"key", "request"} and "config" not in request  # python-genai#1608
            config = request["generationConfig"]
            assert config["responseMimeType"] == "application/json"
            assert "responseSchema" in config and "responseJsonSchema" not in config  # crmne/ruby_llm#894
            assert request["systemInstruction"]["parts"][0]["text"]
            parts = request["contents"][0]["parts"]
            if shard.kind == "fused":
                assert parts[0]["inlineData"] == {"mimeType": "image/jpeg", "data": "QUJD" * 500}
                assert config["responseSchema"] == prompts.fused_prompt(categories, 2).schema
            else:
                assert parts == [{"text": 'Image description:\n{"summary": "a cat"}'}]
    assert not list((tmp_path / "shards").glob("*.part"))


def test_a_batch_line_asks_what_a_synchronous_request_asks(fake: FakeGemini, tmp_path: Path, store: Store) -> None:
    settings = fake_settings(fake, tmp_path)
    annotator = GeminiAnnotator(settings)
    categories = ensure_categories(store)
    annotator.describe_and_categorize(make_image_bytes(), "image/jpeg", categories, 2)
    sent = fake.records[-1]
    assert sent.thinking is not None
    request = annotator.rest_request(prompts.fused_prompt(categories, 2), make_image_bytes(), "image/jpeg")
    assert set(request["generationConfig"]) == set(sent.generation_config_keys)
    # The SDK sends nested keys in snake_case (thinking_budget); REST JSON takes either spelling.
    assert request["generationConfig"]["thinkingConfig"] == {
        "".join(w if i == 0 else w.title() for i, w in enumerate(k.split("_"))): v
        for k, v in (sent.thinking or {}).items()
    }


def make_image_bytes() -> bytes:
    from tests.conftest import image_bytes

    return image_bytes((80, 60))


def test_answers_are_read_by_the_synchronous_parsing(tmp_path: Path, store: Store) -> None:
    annotator = GeminiAnnotator(Settings(gemini_api_key="k"))
    categories = ensure_categories(store)
    name = categories[0].name
    description = {field: "x" for field in prompts.DESCRIPTION_FIELDS} | {"summary": "A cat.", "categories": [name]}
    answer = {
        "candidates": [{"content": {"parts": [{"text": json.dumps(description)}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 100},
    }
    half = {"input": 0.05, "output": 0.2, "cached": 0.005}
    annotation = annotator.annotation_from_response("fused", answer, categories, 2, price=half)
    assert annotation.categories == [name] and annotation.summary == "A cat."
    assert annotation.cost_usd == pytest.approx((1000 * 0.05 + 100 * 0.2) / 1e6)
    from labeling.annotators.base import ResponseFailure

    blocked = {"candidates": [{"content": {"role": "model"}, "finishReason": "SAFETY"}]}
    with pytest.raises(ResponseFailure) as failure:
        annotator.annotation_from_response("fused", blocked, categories, 2)
    assert failure.value.kind == "safety"
    # A field this SDK version does not know (the live API adds them) is dropped, as the SDK itself does.
    newer = {**answer, "usageMetadata": {**answer["usageMetadata"], "newField": 3}, "brandNewField": {}}
    assert annotator.annotation_from_response("fused", newer, categories, 2).categories == [name]


def test_the_estimate_and_the_accounting_cost_half(tmp_path: Path, store: Store) -> None:
    add_dataset(store, tmp_path, "REAL", 4)
    settings = Settings(gemini_api_key="k")
    standard = estimate(store, settings, JobRequest(("REAL",)))
    batch = estimate(store, settings, JobRequest(("REAL",), executor="batch"))
    assert batch.cost_usd == pytest.approx(standard.cost_usd / 2) and batch.service_tier == "batch"
    assert settings.price_for("gemini-2.5-flash-lite", batch=True) == {"input": 0.05, "output": 0.2, "cached": 0.005}
    with pytest.raises(Exception, match="fused"):
        JobRequest(("REAL",), mode="two-pass", executor="batch").check()


def test_shard_state_verbs(store: Store, tmp_path: Path) -> None:
    store.add_batch_shard(3, 1, "fused", str(tmp_path / "a"), 10, [5, 6])
    store.update_batch_shard(3, 1, state="uploading", upload_url="http://x/u", uploaded_bytes=4)
    shard = store.batch_shard(3, 1)
    assert (shard.state, shard.upload_url, shard.uploaded_bytes, shard.image_ids) == (
        "uploading",
        "http://x/u",
        4,
        (5, 6),
    )
    assert store.images_in_open_shards(3) == {5, 6}
    store.update_batch_shard(3, 1, state="recorded")
    assert store.images_in_open_shards(3) == set() and store.next_batch_shard(3) == 2
    with pytest.raises(ValueError):
        store.update_batch_shard(3, 1, kind="describe")


# -- runs through the real SDK ---------------------------------------------------------------------------


def test_three_shards_end_to_end(quick: FakeGemini, tmp_path: Path, store: Store) -> None:
    add_dataset(store, tmp_path, "REAL", 6)
    job = _run(store, _settings(quick, tmp_path))
    progress = job.progress()
    assert (progress.status, progress.done, progress.failed) == ("completed", 6, 0), progress.message
    shards = store.batch_shards(job.run_id)
    assert len(shards) == 3 and {s.state for s in shards} == {"recorded"}
    assert [s.done for s in shards] == [2, 2, 2]
    assert set(_annotations_per_image(store).values()) == {1} and len(_annotations_per_image(store)) == 6
    assert len(_creates(quick)) == 3 and not quick.records  # no synchronous generateContent at all
    counts = quick.api_call_counts()
    assert counts["files.download"] == 3 and counts["files.delete"] == 6  # inputs and results deleted
    assert quick.stored_bytes() == 0
    assert progress.cost_usd > 0
    run = store.run(job.run_id)
    assert run.settings["executor"] == "batch" and run.done == 6
    assert not list(Path(tmp_path / "cache" / "batch").rglob("*.jsonl"))  # local shards cleaned up
    assert store.fetch_one("SELECT count(*) FROM images WHERE format = 'JPEG'") == (6,)  # facts stored


def test_per_line_errors_are_recorded_as_failures(quick: FakeGemini, tmp_path: Path, store: Store) -> None:
    add_dataset(store, tmp_path, "REAL", 6)
    quick.fault_for(_width_is(101), "safety")  # an answer withheld
    quick.fault_for(_width_is(102), "image_invalid")  # a line's 400
    job = _run(store, _settings(quick, tmp_path))
    progress = job.progress()
    assert (progress.done, progress.failed) == (4, 2), progress.failures_by_kind
    kinds = dict(store.fetch_all("SELECT i.name, f.kind FROM failures f JOIN images i ON i.id = f.image_id"))
    assert kinds == {"img001.jpg": "safety", "img002.jpg": "image_rejected"}
    assert len(_creates(quick)) == 3  # failures are not resent


def test_transient_line_errors_are_resent_alone(quick: FakeGemini, tmp_path: Path, store: Store) -> None:
    add_dataset(store, tmp_path, "REAL", 4)
    quick.fault_for(_width_is(103), "http_503", times=1)
    job = _run(store, _settings(quick, tmp_path, batch_shard_mb=1.0))
    assert job.progress().done == 4
    shards = store.batch_shards(job.run_id)
    assert [(s.lines, s.resubmit_of, s.attempt) for s in shards] == [(4, None, 1), (1, 1, 2)]
    assert set(_annotations_per_image(store).values()) == {1}


def test_an_expired_job_is_resubmitted_for_its_missing_lines(quick: FakeGemini, tmp_path: Path, store: Store) -> None:
    add_dataset(store, tmp_path, "REAL", 3)
    quick.inject("batch_expired")
    manager = JobManager(store, _settings(quick, tmp_path, batch_shard_mb=1.0))
    job = manager.start(JobRequest(("REAL",), executor="batch"))
    wait_until(lambda: any(s.state == "submitted" for s in store.batch_shards(job.run_id)), what="a submitted job")
    quick.advance(49 * 3600)  # the job passes its 48 h
    assert job.wait(60)
    shards = store.batch_shards(job.run_id)
    assert shards[0].job_state == "JOB_STATE_EXPIRED" and shards[0].state == "recorded"
    assert (shards[1].resubmit_of, shards[1].lines, shards[1].image_ids) == (1, 3, shards[0].image_ids)
    assert job.progress().done == 3 and set(_annotations_per_image(store).values()) == {1}
    assert len(_creates(quick)) == 2


def test_categorize_sends_text_only_lines(quick: FakeGemini, tmp_path: Path, store: Store) -> None:
    add_dataset(store, tmp_path, "REAL", 3)
    settings = _settings(quick, tmp_path, batch_shard_mb=1.0)
    _run(store, settings)
    store.add_category("extra-things", "things no image has")  # a new list version: categorize again
    job = _run(store, settings, JobRequest(("REAL",), mode="categorize", executor="batch"))
    assert job.progress().done == 3
    (shard,) = store.batch_shards(job.run_id)
    assert shard.kind == "categorize"
    rows = store.fetch_all("SELECT kind, description IS NOT NULL FROM current_annotations")
    assert rows == [("categorize", True)] * 3


# -- kill -9 of `labeling describe --batch`, then the same command ------------------------------------------


def _describe(db_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "labeling", "--db", str(db_path), "describe", "--dataset", "REAL"),
            *("--batch", "--poll-seconds", "0.05", "--yes"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_when(process: subprocess.Popen[str], ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 60
    while not ready() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert process.poll() is None, process.communicate()[1]
    process.send_signal(signal.SIGKILL)
    process.wait(10)


def _kill_then_resume(
    tmp_path: Path, db_path: Path, fake: FakeGemini, ready: Callable[[], bool], before_resume: Callable[[], None]
) -> tuple[str, list[tuple[str, int]]]:
    with Store(db_path) as store:
        add_dataset(store, tmp_path, "REAL", 8)
    env = {
        **os.environ,
        **fake.env("kill-key"),
        "LABELING_CACHE_DIR": str(tmp_path / "cache"),
        "LABELING_BATCH_SHARD_MB": str(SHARD_MB),
        "LABELING_RETRY_BACKOFF": "3",
    }
    _kill_when(_describe(db_path, env), ready)
    with Store(db_path) as store:
        at_kill = [(s.state, s.uploaded_bytes) for s in store.batch_shards(1)]
    before_resume()
    finished = _describe(db_path, env)
    out, err = finished.communicate(timeout=120)
    assert finished.returncode == 0, err
    with Store(db_path) as store:
        per_image = _annotations_per_image(store)
        assert len(per_image) == 8 and set(per_image.values()) == {1}  # every image described exactly once
        shards = store.batch_shards(1)
        assert {s.state for s in shards} == {"recorded"} and len(shards) == 4
        names = [s.batch_name for s in shards]
        assert len(set(names)) == 4
        runs = store.fetch_all("SELECT id, status FROM runs ORDER BY id")
        assert runs == [(1, "completed")], runs  # the same run resumed
    creates = _creates(fake)
    assert len(creates) == len(shards), creates  # no shard got a second batch job
    assert "Resuming batch run #1" in out and "shard 4" in err
    return err, at_kill


@pytest.mark.slow  # two real `labeling` processes
def test_kill_9_during_an_upload_resumes_at_the_servers_offset(tmp_path: Path, db_path: Path) -> None:
    with FakeGemini(batch_pending_s=0.05, batch_running_s=0.05) as fake:
        fake.interrupt_upload(2048)  # the first shard's chunk is cut; the client waits 3 s before it retries

        def cut() -> bool:
            return any(call.method == "files.upload" and call.status == 0 for call in fake.api_calls)

        _, at_kill = _kill_then_resume(tmp_path, db_path, fake, cut, lambda: None)
        # killed with sessions open and a chunk cut short: the second run asked each upload URL for its offset
        # (the server kept 2,048 bytes the client never saw confirmed) and went on from there
        assert "uploading" in {state for state, _ in at_kill}, at_kill


@pytest.mark.slow  # two real `labeling` processes
def test_kill_9_while_jobs_are_pending_polls_them_without_creating_again(tmp_path: Path, db_path: Path) -> None:
    with FakeGemini(batch_pending_s=3600, batch_running_s=0.05) as fake:

        def all_submitted() -> bool:
            return len(_creates(fake)) == 4 and any(c.method == "batches.get" for c in fake.api_calls)

        _, at_kill = _kill_then_resume(tmp_path, db_path, fake, all_submitted, lambda: fake.advance(3601))
        assert {state for state, _ in at_kill} == {"submitted"}


@pytest.mark.slow  # two real `labeling` processes
def test_kill_9_while_results_download_records_each_image_once(tmp_path: Path, db_path: Path) -> None:
    with FakeGemini(batch_pending_s=0.05, batch_running_s=0.05) as fake:

        def downloading() -> bool:
            return any(c.method == "files.download" for c in fake.api_calls)

        _, at_kill = _kill_then_resume(tmp_path, db_path, fake, downloading, lambda: None)
        assert any(state != "recorded" for state, _ in at_kill), at_kill


def test_ctrl_c_like_cancel_leaves_a_resumable_state(quick: FakeGemini, tmp_path: Path, store: Store) -> None:
    add_dataset(store, tmp_path, "REAL", 4)
    quick.batch_pending_s = 3600
    settings = _settings(quick, tmp_path)
    manager = JobManager(store, settings)
    job = manager.start(JobRequest(("REAL",), executor="batch"))
    wait_until(lambda: len(_creates(quick)) == 2, what="two jobs")
    job.cancel(interrupted=True)
    assert job.wait(30) and job.progress().status == "interrupted"
    quick.advance(3601)
    resumed = _run(store, settings, JobRequest(("REAL",), executor="batch", resume_run=job.run_id))
    assert resumed.progress().done == 4 and len(_creates(quick)) == 2
    assert set(_annotations_per_image(store).values()) == {1}


def test_a_job_pending_too_long_is_reported_as_stuck(quick: FakeGemini, tmp_path: Path, store: Store) -> None:
    add_dataset(store, tmp_path, "REAL", 2)
    quick.inject("batch_stuck_pending")
    manager = JobManager(store, _settings(quick, tmp_path, batch_shard_mb=1.0, batch_stuck_hours=0.0002))
    job = manager.start(JobRequest(("REAL",), executor="batch"))
    wait_until(
        lambda: (
            (store.batch_shards(job.run_id) or [None])[0] is not None
            and "stuck" in str(store.batch_shards(job.run_id)[0].error)
        ),
        what="a stuck report",
    )
    (shard,) = store.batch_shards(job.run_id)
    assert shard.state == "submitted" and "JOB_STATE_PENDING" in str(shard.error)  # still polled
    job.cancel()
    assert job.wait(30)


def test_a_job_refused_for_the_projects_job_limit_waits_for_a_running_one(
    quick: FakeGemini, tmp_path: Path, store: Store
) -> None:
    quick.max_concurrent_batches = 1  # the project's limit, lower than batch.max_jobs
    add_dataset(store, tmp_path, "REAL", 6)
    job = _run(store, _settings(quick, tmp_path))
    progress = job.progress()
    assert (progress.status, progress.done, progress.failed) == ("completed", 6, 0), progress.message
    refused = [c for c in quick.api_calls if c.method == "batches.create" and c.status == 429]
    assert refused and len(_creates(quick)) == 3  # each shard got exactly one job, after waiting its turn


def test_the_enqueued_token_budget_keeps_jobs_from_being_refused(
    quick: FakeGemini, tmp_path: Path, store: Store
) -> None:
    quick.max_concurrent_batches = 1
    add_dataset(store, tmp_path, "REAL", 6)
    job = _run(store, _settings(quick, tmp_path, batch_max_enqueued_tokens=1))  # room for one job at a time
    assert job.progress().status == "completed" and len(_creates(quick)) == 3
    assert not [c for c in quick.api_calls if c.method == "batches.create" and c.status == 429]


def test_cancel_cancels_the_remote_jobs_and_a_resume_resends_their_lines(
    quick: FakeGemini, tmp_path: Path, store: Store
) -> None:
    add_dataset(store, tmp_path, "REAL", 4)
    quick.batch_pending_s = 3600
    settings = _settings(quick, tmp_path)
    job = JobManager(store, settings).start(JobRequest(("REAL",), executor="batch"))
    wait_until(lambda: len(_creates(quick)) == 2, what="two jobs")
    job.cancel()  # the Run page's Cancel
    assert job.wait(30) and job.progress().status == "cancelled"
    cancels = [c for c in quick.api_calls if c.method == "batches.cancel" and c.status == 200]
    assert len(cancels) == 2
    quick.batch_pending_s = 0.05
    resumed = _run(store, settings, JobRequest(("REAL",), executor="batch", resume_run=job.run_id))
    assert resumed.progress().done == 4 and set(_annotations_per_image(store).values()) == {1}
    assert len(_creates(quick)) == 4  # the cancelled jobs' lines went again as new shards


def test_another_databases_job_with_the_same_run_and_shard_is_never_taken_for_ours(
    quick: FakeGemini, tmp_path: Path, store: Store
) -> None:
    other = Store(tmp_path / "other.duckdb")
    add_dataset(other, tmp_path / "other", "REAL", 2)
    quick.batch_pending_s, quick.max_concurrent_batches = 3600, 1
    first = JobManager(other, _settings(quick, tmp_path / "o")).start(JobRequest(("REAL",), executor="batch"))
    wait_until(lambda: len(_creates(quick)) == 1, what="the other database's job")
    first.cancel(interrupted=True)  # Ctrl+C: its job stays in the project, holding the only slot
    assert first.wait(30)
    theirs = other.batch_shards(first.run_id)[0].batch_name
    add_dataset(store, tmp_path, "REAL", 2)
    ours = JobManager(store, _settings(quick, tmp_path)).start(JobRequest(("REAL",), executor="batch"))
    wait_until(lambda: any(c.method == "batches.create" and c.status == 429 for c in quick.api_calls), what="a 429")
    quick.batch_pending_s = 0.05
    quick.advance(3601)  # their job ends: the slot frees
    assert ours.wait(30) and ours.progress().done == 2
    assert store.batch_shards(ours.run_id)[0].batch_name != theirs  # our own job, not the look-alike
    assert store.database_id() != other.database_id()
    other.close()


def test_images_a_batch_run_still_waits_for_are_not_sent_again_by_another_run(
    quick: FakeGemini, tmp_path: Path, store: Store
) -> None:
    add_dataset(store, tmp_path, "REAL", 4)
    quick.batch_pending_s = 3600
    settings = _settings(quick, tmp_path)
    batch = JobManager(store, settings).start(JobRequest(("REAL",), executor="batch"))
    wait_until(lambda: len(_creates(quick)) == 2, what="two jobs")
    batch.cancel(interrupted=True)  # jobs still pending in the project
    assert batch.wait(30)
    again = _run(store, settings, JobRequest(("REAL",)))  # a synchronous run over the same dataset
    assert again.progress().total == 0 and quick.request_count == 0  # nothing sent twice
