"""Mirroring S3 prefixes to folders: parallel, atomic, resumable after kill -9 or an expired SSO session, safe."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import UnauthorizedSSOTokenError

from labeling.fake_s3 import LocalS3Server, object_body
from labeling.files import is_temp_file
from labeling.mirror import MirrorStopped, mirror, plan_batch
from labeling.names import parse_name_list
from labeling.s3 import S3Source
from labeling.s3_analysis import analyze
from labeling.store import Store
from tests import s3_fixtures
from tests.conftest import ROOT
from tests.s3_fixtures import MIRROR_BUCKET, MIRROR_COUNT, MIRROR_PREFIX, MIRROR_SIZE, mirror_keys

# The S3 fixtures, used by name below.
aws_env, bucket, s3_server = s3_fixtures.aws_env, s3_fixtures.bucket, s3_fixtures.s3_server


def relative_mirror_keys() -> list[str]:
    return [key[len(MIRROR_PREFIX) :] for key in mirror_keys()]


def mirror_list(tmp_path: Path) -> Path:
    """The CSV list naming every seeded mirror object by its file name only (found in its subfolder)."""
    csv_file = tmp_path / "real.csv"
    csv_file.write_text("\n".join(key.rsplit("/", 1)[-1] for key in mirror_keys()) + "\n", encoding="utf-8")
    return csv_file


def files_in(folder: Path) -> dict[str, Path]:
    """Final files of a mirror folder (logs and temp files aside), by relative path."""
    found = {}
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and not relative.startswith("logs/") and not is_temp_file(path.name):
            found[relative] = path
    return found


def temp_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob(".*.part")]


def seeded_source(server: LocalS3Server, **options: Any) -> S3Source:
    return S3Source(MIRROR_BUCKET, MIRROR_PREFIX, endpoint_url=server.endpoint, **options)


def test_mirror_fetches_in_parallel_and_records_state(aws_env: LocalS3Server, tmp_path: Path, store: Store) -> None:
    source = seeded_source(aws_env, max_pool_connections=8)
    names = parse_name_list(mirror_list(tmp_path).read_bytes())
    out = tmp_path / "REAL"
    analysis = analyze(source, names, output_dir=out, store=store)
    assert len(analysis.to_fetch) == MIRROR_COUNT and analysis.bytes_to_fetch == MIRROR_COUNT * MIRROR_SIZE
    seen: list[int] = []
    report = mirror(source, analysis, store=store, workers=8, progress=lambda p: seen.append(p.done))
    assert (report.fetched, report.failed, report.status) == (MIRROR_COUNT, 0, "completed")
    assert seen[-1] == MIRROR_COUNT and seen == sorted(seen)
    files = files_in(out)
    assert sorted(files) == sorted(relative_mirror_keys())
    assert all(path.read_bytes() == object_body(MIRROR_PREFIX + key, MIRROR_SIZE) for key, path in files.items())
    assert temp_files(out) == []
    assert len(store.mirror_done(str(out.resolve()))) == MIRROR_COUNT
    run = store.mirror_run(report.run_id or 0)
    assert (run["kind"], run["status"], run["done"]) == ("mirror", "completed", MIRROR_COUNT)
    log = Path(report.log_file or "")
    assert log.parent == out / "logs" and log.name.startswith("download_")
    assert "completed: fetched 400" in log.read_text()

    again = analyze(source, names, output_dir=out, store=store)
    assert (len(again.already_local), len(again.to_fetch)) == (MIRROR_COUNT, 0)


def test_kill_9_mid_mirror_then_resume(aws_env: LocalS3Server, tmp_path: Path, db_path: Path, run_cli: Any) -> None:
    csv_file = mirror_list(tmp_path)
    out = tmp_path / "REAL"
    args = [
        "download",
        "--csv-file",
        str(csv_file),
        "--output-dir",
        str(out),
        "--s3-prefix",
        MIRROR_PREFIX,
        "--bucket",
        MIRROR_BUCKET,
        "--endpoint-url",
        aws_env.endpoint,
        "--auto-confirm",
        "--num-workers",
        "2",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "labeling", "--db", str(db_path), *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while len(files_in(out)) < 40 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert process.poll() is None, "the mirror finished before it could be killed: make it longer"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    before = {key: path.stat().st_mtime_ns for key, path in files_in(out).items()}
    assert 40 <= len(before) < MIRROR_COUNT
    for key, path in files_in(out).items():  # no half file under a real name
        assert path.read_bytes() == object_body(MIRROR_PREFIX + key, MIRROR_SIZE), key

    start = aws_env.log_size()
    result = run_cli(*args)
    assert result.code == 0, result.err
    fetched_again = aws_env.object_gets(MIRROR_BUCKET, start)
    assert sorted(fetched_again) == sorted(MIRROR_PREFIX + key for key in set(relative_mirror_keys()) - set(before))
    files = files_in(out)
    assert sorted(files) == sorted(relative_mirror_keys())
    assert all(path.read_bytes() == object_body(MIRROR_PREFIX + key, MIRROR_SIZE) for key, path in files.items())
    assert all(files[key].stat().st_mtime_ns == mtime for key, mtime in before.items())  # finished: untouched
    assert temp_files(out) == []
    with Store(db_path) as store:
        statuses = store.fetch_all("SELECT status FROM runs WHERE kind = 'mirror' ORDER BY id")
    assert [status for (status,) in statuses] == ["interrupted", "completed"]


def test_expired_sso_session_stops_the_run_and_login_resumes_it(
    aws_env: LocalS3Server, tmp_path: Path, store: Store
) -> None:
    names = parse_name_list(mirror_list(tmp_path).read_bytes())
    out = tmp_path / "REAL"
    source = seeded_source(aws_env, profile=None)
    calls: list[int] = []
    lock = threading.Lock()

    def expire_after_60(**_: Any) -> None:
        with lock:
            calls.append(1)
            if len(calls) > 60:
                raise UnauthorizedSSOTokenError()

    source.client.meta.events.register("before-call.s3.GetObject", expire_after_60)
    with pytest.raises(MirrorStopped) as stopped:
        mirror(source, analyze(source, names, output_dir=out, store=store), store=store, workers=4)
    message = str(stopped.value)
    assert message.startswith("The AWS SSO session for profile default expired: run `aws sso login`")
    assert "\n" not in message and "finished files are kept" in message
    report = stopped.value.report
    assert report.fetched == 60 and report.failed == 0 and report.status == "failed"
    assert store.mirror_run(report.run_id or 0)["status"] == "failed"

    after_login = seeded_source(aws_env)
    analysis = analyze(after_login, names, output_dir=out, store=store)
    assert (len(analysis.already_local), len(analysis.to_fetch)) == (60, MIRROR_COUNT - 60)
    start = aws_env.log_size()
    resumed = mirror(after_login, analysis, store=store, workers=4)
    assert resumed.fetched == MIRROR_COUNT - 60
    assert len(aws_env.object_gets(MIRROR_BUCKET, start)) == MIRROR_COUNT - 60
    assert len(files_in(out)) == MIRROR_COUNT


def test_nothing_is_written_outside_the_folder(
    aws_env: LocalS3Server, bucket: str, tmp_path: Path, store: Store
) -> None:
    client = aws_env.client()
    for key in ("p/ok.jpg", "p/../evil.jpg", "p//rooted.jpg", "p/link/through.jpg"):
        client.put_object(Bucket=bucket, Key=key, Body=b"data")
    out = tmp_path / "box" / "REAL"
    outside = tmp_path / "outside"
    outside.mkdir()
    out.mkdir(parents=True)
    (out / "link").symlink_to(outside, target_is_directory=True)  # a folder link leading out of the mirror
    source = S3Source(bucket, "p/", endpoint_url=aws_env.endpoint)
    analysis = analyze(source, None, output_dir=out, store=store)
    assert sorted(key for key, _ in analysis.refused_keys) == ["../evil.jpg", "/rooted.jpg"]
    report = mirror(source, analysis, store=store, workers=2)
    assert report.fetched == 1 and report.failed == 1
    assert report.failures[0][0] == "link/through.jpg" and "outside" in report.failures[0][1]
    assert list(outside.iterdir()) == []
    assert sorted(path.name for path in tmp_path.rglob("*.jpg")) == ["ok.jpg"]
    assert store.mirror_failures(str(out.resolve()))["path"].tolist() == ["link/through.jpg"]


def test_changed_object_is_fetched_again(aws_env: LocalS3Server, bucket: str, tmp_path: Path, store: Store) -> None:
    client = aws_env.client()
    client.put_object(Bucket=bucket, Key="p/a.jpg", Body=b"first")
    client.put_object(Bucket=bucket, Key="p/b.jpg", Body=b"other")
    source = S3Source(bucket, "p/", endpoint_url=aws_env.endpoint)
    out = tmp_path / "out"
    mirror(source, analyze(source, None, output_dir=out, store=store), store=store, workers=2)
    client.put_object(Bucket=bucket, Key="p/a.jpg", Body=b"again")  # same size, new ETag
    analysis = analyze(source, None, output_dir=out, store=store)
    assert [item.key for item in analysis.to_fetch] == ["a.jpg"]
    mirror(source, analysis, store=store, workers=2)
    assert (out / "a.jpg").read_bytes() == b"again"


def test_download_cli_asks_first(
    aws_env: LocalS3Server, tmp_path: Path, run_cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv_file = tmp_path / "few.csv"
    csv_file.write_text("photo_0001.jpg\nphoto_0002.png\nnot_there.jpg\n")
    out = tmp_path / "REAL"
    args = [
        "download",
        "--csv-file",
        str(csv_file),
        "--output-dir",
        str(out),
        "--s3-prefix",
        f"s3://{MIRROR_BUCKET}/{MIRROR_PREFIX}",
        "--endpoint-url",
        aws_env.endpoint,
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    refused = run_cli(*args)
    assert refused.code == 1 and "pass --auto-confirm" in refused.err
    assert "available in S3                2" in refused.out and "missing: not_there.jpg" in refused.out
    assert files_in(out) == {}
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    assert "Nothing downloaded." in run_cli(*args).out
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    accepted = run_cli(*args, "--dataset", "REAL_few", "--label", "REAL")
    assert accepted.code == 0, accepted.err
    assert sorted(files_in(out)) == ["1/photo_0001.jpg", "2/photo_0002.jpg"]
    assert "Dataset REAL_few: 3 listed, 2 found" in accepted.out
    problems = list((out / "logs").glob("problems_*.csv"))
    assert problems and "not_there.jpg" in problems[0].read_text()


def test_download_needs_a_bucket(aws_env: LocalS3Server, tmp_path: Path, run_cli: Any) -> None:
    csv_file = tmp_path / "few.csv"
    csv_file.write_text("a.jpg\n")
    result = run_cli(
        "download",
        "--csv-file",
        str(csv_file),
        "--output-dir",
        str(tmp_path / "o"),
        "--s3-prefix",
        "datalake_training/REAL/",
        "--auto-confirm",
    )
    assert result.code == 1 and "No S3 bucket given: pass --bucket" in result.err


def test_plan_batch_derives_dataset_prefix_and_folder(tmp_path: Path) -> None:
    for name in ("REAL_batch1.csv", "GEN_dalle2.csv", "real_lower.csv", "notes.csv", "GEN.csv"):
        (tmp_path / name).write_text("a.jpg\n")
    jobs, skipped = plan_batch(tmp_path, tmp_path / "data")
    assert [(job.dataset, job.label, job.prefix, job.output_dir.name) for job in jobs] == [
        ("GEN_dalle2", "GEN", "datalake_training/GEN/", "GEN"),
        ("REAL_batch1", "REAL", "datalake_training/REAL/", "REAL"),
        ("REAL_lower", "REAL", "datalake_training/REAL/", "REAL"),
    ]
    assert skipped == ["GEN.csv", "notes.csv"]


def test_batch_download_cli(aws_env: LocalS3Server, bucket: str, tmp_path: Path, run_cli: Any) -> None:
    client = aws_env.client()
    for key in (
        "datalake_training/REAL/r1.jpg",
        "datalake_training/REAL/sub/r2.png",
        "datalake_training/GEN/g1.jpg",
        "datalake_training/GEN/g2.jpg",
    ):
        client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    lists = tmp_path / "csv_real_gen"
    lists.mkdir()
    (lists / "REAL_set.csv").write_text("r1.jpg\nr2.jpg\n")
    (lists / "GEN_set.csv").write_text("image_name\ng1.jpg\ng2.jpg\ng3.jpg\n")
    (lists / "README.txt").write_text("not a list")
    root = tmp_path / "mirror"
    result = run_cli(
        "batch-download",
        "--csv-dir",
        str(lists),
        "--output-root",
        str(root),
        "--bucket",
        bucket,
        "--endpoint-url",
        aws_env.endpoint,
        "--auto-confirm",
        "--num-workers",
        "4",
    )
    assert result.code == 0, result.err
    assert "Skipped (names must start with REAL_ or GEN_): README.txt" in result.out
    assert sorted(files_in(root / "REAL")) == ["r1.jpg", "sub/r2.png"]
    assert sorted(files_in(root / "GEN")) == ["g1.jpg", "g2.jpg"]
    listing = run_cli("datasets", "--json")
    rows = {row["name"]: row for row in json.loads(listing.out)}
    assert (rows["REAL_set"]["label"], rows["REAL_set"]["found"], rows["REAL_set"]["source_kind"]) == (
        "REAL",
        2,
        "local",
    )
    assert (rows["GEN_set"]["found"], rows["GEN_set"]["missing"]) == (2, 1)


def test_a_mirror_left_running_by_a_dead_process_shows_as_interrupted(store: Store, tmp_path: Path) -> None:
    from labeling.jobs import JobManager
    from labeling.settings import load_settings

    run_id = store.start_mirror_run({"output_dir": str(tmp_path)}, total=10)
    assert len(store.active_runs()) == 1  # what the sidebar lists as running
    JobManager(store, load_settings(env={}))  # the app or a CLI run starting up: it alone holds the file now
    assert store.active_runs().empty
    assert store.mirror_run(run_id)["status"] == "interrupted"
