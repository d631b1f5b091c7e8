"""The fake's Files API and Batch Mode, through the real google-genai client (and raw httpx for the
resumable upload protocol). The fake clock is advanced instead of sleeping."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from google import genai
from google.genai import errors, types

from labeling.fake_gemini import FakeGemini
from tests.fake_gemini_fixtures import *  # noqa: F403 - the shared fake and server fixtures

MODEL = "gemini-2.5-flash-lite"
HOUR = 3600.0


@pytest.fixture
def client(fake: FakeGemini) -> genai.Client:
    return genai.Client(api_key="k", http_options=types.HttpOptions(base_url=fake.base_url, api_version="v1beta"))


def _line(key: str, text: str, **request: Any) -> str:
    return json.dumps({"key": key, "request": {"contents": [{"role": "user", "parts": [{"text": text}]}], **request}})


def _upload(client: genai.Client, lines: list[str], name: str = "requests") -> types.File:
    data = ("\n".join(lines) + "\n").encode()
    return client.files.upload(file=io.BytesIO(data), config={"mime_type": "application/jsonl", "display_name": name})


def _results(client: genai.Client, job: types.BatchJob) -> dict[str | None, dict[str, Any]]:
    assert job.dest is not None and job.dest.file_name is not None
    raw = client.files.download(file=job.dest.file_name)
    rows = [json.loads(line) for line in raw.decode().splitlines()]
    return {row.get("key"): row for row in rows}


def _finish(fake: FakeGemini, client: genai.Client, name: str) -> types.BatchJob:
    """Poll as a client would, advancing the fake clock between polls."""
    states = []
    for _ in range(10):
        job = client.batches.get(name=name)
        states.append(job.state)
        if job.done:
            return job
        fake.advance(1.0)
    raise AssertionError(f"batch never ended: {states}")


# -- Files API -------------------------------------------------------------------------------------------


def test_upload_get_list_delete(fake: FakeGemini, client: genai.Client) -> None:
    uploaded = _upload(client, [_line("a", "hi")], name="my requests")
    assert uploaded.name is not None and uploaded.name.startswith("files/")
    assert uploaded.state == types.FileState.ACTIVE and uploaded.source == types.FileSource.UPLOADED
    assert uploaded.display_name == "my requests" and uploaded.mime_type == "application/jsonl"
    assert uploaded.size_bytes == len(_line("a", "hi")) + 1
    assert uploaded.create_time and uploaded.expiration_time
    assert (uploaded.expiration_time - uploaded.create_time).total_seconds() == 48 * HOUR
    assert client.files.get(name=uploaded.name).sha256_hash == uploaded.sha256_hash
    second = _upload(client, [_line("b", "hi")])
    assert {f.name for f in client.files.list()} == {uploaded.name, second.name}
    client.files.delete(name=uploaded.name)
    with pytest.raises(errors.ClientError) as refused:
        client.files.get(name=uploaded.name)
    assert refused.value.code == 403 and "may not exist" in str(refused.value.message)
    assert fake.api_call_counts()["files.upload"] == 4  # a start and one chunk per file


def test_list_pages(client: genai.Client) -> None:
    names = {_upload(client, [_line(str(i), "x")]).name for i in range(3)}
    pager = client.files.list(config={"page_size": 2})
    assert len(pager.page) == 2
    assert {f.name for f in pager} == names


def test_files_expire_after_48_hours(fake: FakeGemini, client: genai.Client) -> None:
    uploaded = _upload(client, [_line("a", "hi")])
    assert uploaded.name is not None
    fake.advance(47 * HOUR)
    assert client.files.get(name=uploaded.name).name == uploaded.name
    fake.advance(HOUR)
    with pytest.raises(errors.ClientError) as refused:
        client.files.get(name=uploaded.name)
    assert refused.value.code == 403 and refused.value.status == "PERMISSION_DENIED"
    assert list(client.files.list()) == []
    assert fake.stored_bytes() == 0


def test_uploaded_files_cannot_be_downloaded(client: genai.Client) -> None:
    uploaded = _upload(client, [_line("a", "hi")])
    assert uploaded.name is not None
    with pytest.raises(errors.ClientError):
        client.files.download(file=uploaded.name)


def test_size_and_storage_limits(fake: FakeGemini, client: genai.Client) -> None:
    fake.max_file_bytes = 50
    with pytest.raises(errors.ClientError) as too_big:
        _upload(client, ["x" * 60])
    assert too_big.value.code == 400
    fake.max_file_bytes, fake.max_storage_bytes = 2 * 1024**3, 30
    _upload(client, ["x" * 20])
    with pytest.raises(errors.ClientError) as full:
        _upload(client, ["x" * 20])
    assert full.value.code == 429
    fake.max_storage_bytes = 20 * 1024**3


def _start(fake: FakeGemini, size: int) -> str:
    answer = httpx2.post(
        f"{fake.base_url}/upload/v1beta/files",
        headers={
            "x-goog-api-key": "k",
            "X-Goog-Upload-Protocol": "resumable",
            "X-Goog-Upload-Command": "start",
            "X-Goog-Upload-Header-Content-Length": str(size),
            "X-Goog-Upload-Header-Content-Type": "application/jsonl",
        },
        json={"file": {"displayName": "resumed"}},
    )
    assert answer.status_code == 200
    return answer.headers["x-goog-upload-url"]


def _send(url: str, command: str, offset: int, data: bytes = b"") -> httpx2.Response:
    headers = {"X-Goog-Upload-Command": command, "X-Goog-Upload-Offset": str(offset)}
    return httpx2.post(url, headers=headers, content=data)


def test_an_interrupted_upload_resumes_from_the_offset_it_queries(fake: FakeGemini, client: genai.Client) -> None:
    data = ("\n".join(_line(f"k{i}", f"text {i}") for i in range(20)) + "\n").encode()
    url = _start(fake, len(data))
    fake.interrupt_upload(after_bytes=300)
    with pytest.raises(httpx2.TransportError):
        _send(url, "upload, finalize", 0, data)
    query = httpx2.post(url, headers={"X-Goog-Upload-Command": "query"})
    assert query.headers["x-goog-upload-status"] == "active"
    received = int(query.headers["x-goog-upload-size-received"])
    assert received == 300
    wrong = _send(url, "upload, finalize", 0, data)  # the offset it no longer has
    assert wrong.status_code == 400 and wrong.headers["x-goog-upload-size-received"] == "300"
    done = _send(url, "upload, finalize", received, data[received:])
    assert done.headers["x-goog-upload-status"] == "final"
    file = done.json()["file"]
    assert file["sizeBytes"] == str(len(data)) and file["state"] == "ACTIVE"
    job = client.batches.create(model=MODEL, src=file["name"])
    assert job.name is not None
    assert len(_results(client, _finish(fake, client, job.name))) == 20
    # start, the cut chunk (0: dropped), the query, the refused offset, the resumed chunk; then the SDK's upload
    assert [c.status for c in fake.api_calls if c.method == "files.upload"] == [200, 0, 200, 400, 200]


# -- Batch Mode --------------------------------------------------------------------------------------------


def test_file_batch_end_to_end(fake: FakeGemini, client: genai.Client) -> None:
    schema = {"type": "OBJECT", "properties": {"summary": {"type": "STRING"}}, "required": ["summary"]}
    config = {"responseMimeType": "application/json", "responseSchema": schema}
    lines = [_line(f"img-{i}", f"describe {i}", generationConfig=config) for i in range(5)]
    uploaded = _upload(client, lines)
    job = client.batches.create(model=MODEL, src=str(uploaded.name), config={"display_name": "nightly"})
    assert job.state == types.JobState.JOB_STATE_PENDING and job.display_name == "nightly"
    assert job.model == f"models/{MODEL}" and job.name is not None and job.name.startswith("batches/")
    fake.advance(fake.batch_pending_s)
    assert client.batches.get(name=job.name).state == types.JobState.JOB_STATE_RUNNING
    done = _finish(fake, client, job.name)
    assert done.state == types.JobState.JOB_STATE_SUCCEEDED and done.end_time is not None
    results = _results(client, done)
    assert set(results) == {f"img-{i}" for i in range(5)}
    for row in results.values():
        text = row["response"]["candidates"][0]["content"]["parts"][0]["text"]
        assert set(json.loads(text)) == {"summary"}
    assert fake.api_call_counts()["batches.create"] == 1


def test_raw_operation_matches_the_real_shape(fake: FakeGemini, client: genai.Client) -> None:
    uploaded = _upload(client, [_line("a", "hi"), _line("b", "hi")])
    job = client.batches.create(model=MODEL, src=str(uploaded.name))
    raw = httpx2.get(f"{fake.base_url}/v1beta/{job.name}", headers={"x-goog-api-key": "k"}).json()
    assert raw["metadata"]["@type"].endswith("GenerateContentBatch")
    assert raw["metadata"]["batchStats"] == {"requestCount": "2", "pendingRequestCount": "2"}
    assert raw["metadata"]["state"] == "BATCH_STATE_PENDING" and "done" not in raw
    fake.advance(1 * HOUR)
    raw = httpx2.get(f"{fake.base_url}/v1beta/{job.name}", headers={"x-goog-api-key": "k"}).json()
    assert raw["done"] is True and raw["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    assert raw["metadata"]["batchStats"] == {"requestCount": "2", "successfulRequestCount": "2"}
    assert raw["response"]["responsesFile"] == raw["metadata"]["output"]["responsesFile"]
    assert raw["metadata"]["inputConfig"] == {"fileName": uploaded.name}
    assert raw["response"]["responsesFile"] == "files/batch-" + str(job.name).removeprefix("batches/")


def test_bad_lines_become_line_errors(fake: FakeGemini, client: genai.Client) -> None:
    lines = [_line("good", "hi"), "{not json", json.dumps({"key": "empty", "request": {"contents": []}})]
    lines.append(_line("sdk", "hi", config={"responseMimeType": "application/json"}))  # ignored (#1608)
    job = client.batches.create(model=MODEL, src=str(_upload(client, lines).name))
    assert job.name is not None
    rows = _results(client, _finish(fake, client, job.name))
    assert "response" in rows["good"] and rows["empty"]["error"]["code"] == 3
    assert rows[None]["error"]["code"] == 3  # the unreadable line has no key to report
    sdk_text = rows["sdk"]["response"]["candidates"][0]["content"]["parts"][0]["text"]
    with pytest.raises(json.JSONDecodeError):
        json.loads(sdk_text)  # the config was dropped: plain text, not JSON
    raw = httpx2.get(f"{fake.base_url}/v1beta/{job.name}", headers={"x-goog-api-key": "k"}).json()
    stats = {"requestCount": "4", "successfulRequestCount": "2", "failedRequestCount": "2"}
    assert raw["metadata"]["batchStats"] == stats


def test_line_errors_at_a_rate_reuse_the_generate_content_faults(fake: FakeGemini, client: genai.Client) -> None:
    fake.inject("http_503", times=2)
    job = client.batches.create(model=MODEL, src=str(_upload(client, [_line(str(i), "x") for i in range(4)]).name))
    assert job.name is not None
    rows = _results(client, _finish(fake, client, job.name))
    assert [rows[k].get("error", {}).get("code") for k in "0123"] == [14, 14, None, None]  # UNAVAILABLE


def test_inline_batch(fake: FakeGemini, client: genai.Client) -> None:
    requests: list[types.InlinedRequestOrDict] = [
        {"contents": [{"role": "user", "parts": [{"text": f"hello {i}"}]}], "metadata": {"key": f"r{i}"}}
        for i in range(3)
    ]
    job = client.batches.create(model=MODEL, src=requests)
    assert job.name is not None
    done = _finish(fake, client, job.name)
    assert done.dest is not None and done.dest.inlined_responses is not None
    answers = done.dest.inlined_responses
    assert [a.metadata for a in answers] == [{"key": f"r{i}"} for i in range(3)]
    assert all(a.response is not None and a.response.text for a in answers)


def test_inline_batches_over_the_size_limit_are_refused(fake: FakeGemini, client: genai.Client) -> None:
    fake.max_inline_batch_bytes = 2000
    big: list[types.InlinedRequestOrDict] = [{"contents": [{"role": "user", "parts": [{"text": "x" * 3000}]}]}]
    with pytest.raises(errors.ClientError) as refused:
        client.batches.create(model=MODEL, src=big)
    assert refused.value.code == 400 and "payload size exceeds" in str(refused.value.message)
    fake.max_inline_batch_bytes = 20 * 1024 * 1024


def test_concurrent_batches_are_capped(fake: FakeGemini, client: genai.Client) -> None:
    fake.max_concurrent_batches = 2
    src: list[types.InlinedRequestOrDict] = [{"contents": [{"role": "user", "parts": [{"text": "x"}]}]}]
    client.batches.create(model=MODEL, src=src)
    client.batches.create(model=MODEL, src=src)
    with pytest.raises(errors.ClientError) as refused:
        client.batches.create(model=MODEL, src=src)
    assert refused.value.code == 429 and refused.value.status == "RESOURCE_EXHAUSTED"
    fake.advance(HOUR)  # both ended: room again
    client.batches.create(model=MODEL, src=src)
    fake.max_concurrent_batches = 100


def test_cancel_delete_and_list(fake: FakeGemini, client: genai.Client) -> None:
    src: list[types.InlinedRequestOrDict] = [{"contents": [{"role": "user", "parts": [{"text": "x"}]}]}]
    first, second = client.batches.create(model=MODEL, src=src), client.batches.create(model=MODEL, src=src)
    assert first.name is not None and second.name is not None
    client.batches.cancel(name=first.name)
    cancelled = client.batches.get(name=first.name)
    assert cancelled.state == types.JobState.JOB_STATE_CANCELLED and cancelled.done
    fake.advance(HOUR)
    with pytest.raises(errors.ClientError):
        client.batches.cancel(name=second.name)  # it already succeeded
    assert {job.name for job in client.batches.list(config={"page_size": 1})} == {first.name, second.name}
    client.batches.delete(name=first.name)
    with pytest.raises(errors.ClientError) as gone:
        client.batches.get(name=first.name)
    assert gone.value.code == 404
    assert [job.name for job in client.batches.list()] == [second.name]


def test_job_faults(fake: FakeGemini, client: genai.Client) -> None:
    src: list[types.InlinedRequestOrDict] = [{"contents": [{"role": "user", "parts": [{"text": "x"}]}]}]
    fake.inject("batch_failed")
    fake.inject("batch_expired")
    fake.inject("batch_stuck_pending")
    failed, expired, stuck = (client.batches.create(model=MODEL, src=src).name for _ in range(3))
    assert failed and expired and stuck
    fake.advance(HOUR)
    assert client.batches.get(name=failed).state == types.JobState.JOB_STATE_FAILED
    assert client.batches.get(name=expired).state == types.JobState.JOB_STATE_RUNNING
    fake.advance(47 * HOUR)
    gone = client.batches.get(name=expired)
    assert gone.state == types.JobState.JOB_STATE_EXPIRED and gone.done and gone.dest is None
    assert client.batches.get(name=stuck).state == types.JobState.JOB_STATE_PENDING


def test_a_batch_from_a_missing_file_is_refused(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as refused:
        client.batches.create(model=MODEL, src="files/nosuchfile00")
    assert refused.value.code == 403


def test_calls_are_logged(tmp_path: Path, client: genai.Client, fake: FakeGemini) -> None:
    fake.log_path = tmp_path / "log.jsonl"
    try:
        src: list[types.InlinedRequestOrDict] = [{"contents": [{"role": "user", "parts": [{"text": "x"}]}]}]
        job = client.batches.create(model=MODEL, src=src)
        assert job.name is not None
        client.batches.get(name=job.name)
    finally:
        fake.log_path = None
    lines = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [(line["method"], line["api_method"], line["status"]) for line in lines] == [
        ("POST", "batches.create", 200),
        ("GET", "batches.get", 200),
    ]
    assert fake.request_count == 0  # generateContent requests are counted apart
