"""kill -9 in the middle of `labeling describe`, then run it again: nothing stored is lost or sent twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from labeling.datasets import import_dataset
from labeling.fake_gemini import FakeGemini
from labeling.store import Store
from tests.caption_support import make_folder

ROOT = Path(__file__).resolve().parent.parent
IMAGES = 120


def _describe(db_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labeling",
            "--db",
            str(db_path),
            "describe",
            "--dataset",
            "REAL",
            "--num-workers",
            "4",
            "--yes",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _stored_widths(db_path: Path) -> Counter[int]:
    """How many annotations each image has, keyed by the image's width (unique per image here)."""
    with Store(db_path) as store:
        rows = store.fetch_all("SELECT i.name FROM annotations a JOIN images i ON i.id = a.image_id")
    return Counter(100 + int(name[3:6]) for (name,) in rows)


@pytest.mark.slow  # two real `labeling` processes
def test_kill_9_mid_run_then_resume(tmp_path: Path, db_path: Path) -> None:
    folder = make_folder(tmp_path / "REAL", IMAGES)
    with Store(db_path) as store:
        import_dataset(store, "REAL", label="REAL", images_dir=folder)

    with FakeGemini(latency_s=0.1) as fake:
        env = {**os.environ, **fake.env("kill-test-key"), "LABELING_CACHE_DIR": str(tmp_path / "cache")}
        process = _describe(db_path, env)
        deadline = time.monotonic() + 120
        while fake.request_count < 40 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        time.sleep(0.3)  # requests in flight at the kill reach the server (and go unanswered)
        first_run = Counter(r.image_width for r in fake.records)
        stored = _stored_widths(db_path)
        # killed mid-run, after at least one committed batch
        assert 0 < sum(stored.values()) < IMAGES, (sum(stored.values()), fake.request_count)
        assert set(stored.values()) == {1}

        fake.reset()
        finished = _describe(db_path, env)
        out, err = finished.communicate(timeout=120)
        assert finished.returncode == 0, err
        second_run = Counter(r.image_width for r in fake.records)

    final = _stored_widths(db_path)
    assert set(final) == {100 + i for i in range(IMAGES)}
    assert set(final.values()) == {1}  # every image has exactly one annotation: nothing stored was redone
    assert not set(second_run) & set(stored)  # nothing already stored was sent again
    assert set(second_run) | set(first_run) >= set(final)
    # only what was sent but not yet committed (the last batch, the requests in flight) is sent twice
    resent = set(second_run) & set(first_run)
    assert len(resent) < IMAGES // 2, (len(resent), sum(stored.values()), len(first_run))
    with Store(db_path) as store:
        runs = store.fetch_all("SELECT id, status FROM runs ORDER BY id")
        assert runs == [(1, "interrupted"), (2, "completed")]
        assert store.fetch_one("SELECT count(*) FROM current_annotations") == (IMAGES,)
    assert "Run #2 completed" in out


@pytest.mark.slow  # two real `labeling` processes
def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(tmp_path: Path, db_path: Path) -> None:
    count = 80
    folder = make_folder(tmp_path / "REAL", count)
    with Store(db_path) as store:
        import_dataset(store, "REAL", label="REAL", images_dir=folder)

    with FakeGemini(latency_s=0.1) as fake:
        env = {**os.environ, **fake.env("ctrl-c-key"), "LABELING_CACHE_DIR": str(tmp_path / "cache")}
        process = _describe(db_path, env)
        deadline = time.monotonic() + 120
        while fake.request_count < 20 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert "run the same command again to resume" in err and "Traceback" not in err
        stored = _stored_widths(db_path)
        with Store(db_path) as store:
            run = store.run(1)
        # Ctrl+C waits for the requests in flight and writes them: everything answered is stored
        answered = {r.image_width for r in fake.records if r.status == 200}
        assert run.status == "interrupted" and run.done == sum(stored.values()), run
        assert set(stored) == answered, (sorted(set(stored) ^ answered), err)

        fake.reset()
        finished = _describe(db_path, env)
        finished.communicate(timeout=120)
        assert finished.returncode == 0
        assert not {r.image_width for r in fake.records} & set(stored)
    final = _stored_widths(db_path)
    assert len(final) == count and set(final.values()) == {1}
