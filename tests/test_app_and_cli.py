"""One database, the app and the command line at once (real processes: `streamlit run serve.py` and `labeling`).

The app holds the DuckDB file; a command on it runs through the app's control interface with the same output
and exit code as alone, its jobs in the app's job manager. A command that holds the file first is named by the
app, which opens the database once the command ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from labeling import presence
from labeling.fake_gemini import FakeGemini
from labeling.store import Store
from tests.browser import served_app
from tests.caption_support import add_dataset
from tests.conftest import ROOT, wait_until

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def slow_fake() -> Iterator[FakeGemini]:
    with FakeGemini(latency_s=0.15) as server:
        yield server


@pytest.fixture
def filled(tmp_path: Path) -> Path:
    db = tmp_path / "labeling.duckdb"
    with Store(db) as store:
        add_dataset(store, tmp_path / "images", "REAL", 24)
        add_dataset(store, tmp_path / "images", "GEN", 6, color=(200, 40, 40), prefix="gen")
    return db


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands (alone or through the app) keep thumbnails in the test's folder, never the repository's data/."""
    monkeypatch.setenv("LABELING_CACHE_DIR", str(tmp_path / "cache"))


def _env(fake: FakeGemini | None = None) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("LABELING_", "GEMINI_", "GOOGLE_"))}
    cache = {"LABELING_CACHE_DIR": os.environ["LABELING_CACHE_DIR"]}
    return {**kept, **cache, **(fake.env() if fake else {}), "LABELING_NUM_WORKERS": "2"}


def _cli(db: Path, *args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "labeling", "--db", str(db), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def _start(db: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "labeling", "--db", str(db), *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _app(db: Path, tmp_path: Path, **options: bool):  # type: ignore[no-untyped-def]
    return served_app(db, tmp_path / "cache", env=_env(), **options)


def _annotations(db: Path) -> Counter[str]:
    with Store(db) as store:
        rows = store.fetch_all("SELECT i.name FROM annotations a JOIN images i ON i.id = a.image_id")
    return Counter(name for (name,) in rows)


def _runs(db: Path) -> list[tuple[int, str, int]]:
    with Store(db) as store:
        return [
            (int(i), str(s), int(d)) for i, s, d in store.fetch_all("SELECT id, status, done FROM runs ORDER BY id")
        ]


def _describing(process: subprocess.Popen[str], db: Path) -> None:
    """Wait until the delegated job has recorded some images (read through the app, as a user would)."""

    def some_done() -> bool:
        listed = _cli(db, "datasets", "--json", env=_env())
        return listed.returncode == 0 and any(row["described"] for row in json.loads(listed.stdout))

    wait_until(some_done, timeout=120, interval=0.3, what="the first descriptions")
    assert process.poll() is None, "the command ended before it could be interrupted"


def test_read_commands_through_the_app_print_what_they_print_alone(filled: Path, tmp_path: Path) -> None:
    commands = [
        ("datasets",),
        ("datasets", "--json"),
        ("images", "--dataset", "REAL", "--status", "found"),
        ("categories", "list"),
        ("images", "--dataset", "NOPE"),  # an error: the same line on stderr, the same exit code
    ]
    alone = [_cli(filled, *command, env=_env()) for command in commands]
    (tmp_path / "alone").mkdir()
    (tmp_path / "through").mkdir()
    alone.append(_cli(filled, "export", "--dataset", "GEN", "--output", "gen.csv", env=_env(), cwd=tmp_path / "alone"))
    with _app(filled, tmp_path, browser=False):
        link = presence.find_app(filled)
        assert link is not None and presence.app_file(filled).stat().st_mode & 0o077 == 0  # this user only
        through = [_cli(filled, *command, env=_env()) for command in commands]
        through.append(
            _cli(filled, "export", "--dataset", "GEN", "--output", "gen.csv", env=_env(), cwd=tmp_path / "through")
        )
    assert [p.returncode for p in through] == [p.returncode for p in alone] == [0, 0, 0, 0, 1, 0]
    for one, other in zip(alone[:-1], through[:-1], strict=True):
        assert (other.stdout, other.stderr) == (one.stdout, one.stderr)
    assert "There is no dataset named 'NOPE'" in through[4].stderr
    # The relative --output means the caller's folder, not the app's.
    assert (tmp_path / "through" / "gen.csv").read_bytes() == (tmp_path / "alone" / "gen.csv").read_bytes()
    assert not presence.app_file(filled).exists()  # the link goes with the app


def test_describe_runs_in_the_app_and_ctrl_c_stops_it_like_alone(
    filled: Path, tmp_path: Path, slow_fake: FakeGemini
) -> None:
    with _app(filled, tmp_path, browser=False):
        process = _start(filled, "describe", "--dataset", "REAL", "--yes", env=_env(slow_fake))
        _describing(process, filled)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 130, (out, err)
        assert "Stopping after the requests in flight" in err
        assert "Interrupted: progress is saved in the database" in err
        assert "Run #1 interrupted" in out
        again = _cli(filled, "describe", "--dataset", "REAL", "--yes", env=_env(slow_fake))
        assert again.returncode == 0, again.stderr
        assert "Run #2 completed" in again.stdout
    annotations = _annotations(filled)
    assert len(annotations) == 24 and set(annotations.values()) == {1}  # every image once, none twice
    assert [(run_id, status) for run_id, status, _ in _runs(filled)] == [(1, "interrupted"), (2, "completed")]


def test_two_commands_at_once_through_one_app(filled: Path, tmp_path: Path, slow_fake: FakeGemini) -> None:
    with _app(filled, tmp_path, browser=False):
        real = _start(filled, "describe", "--dataset", "REAL", "--yes", env=_env(slow_fake))
        gen = _start(filled, "describe", "--dataset", "GEN", "--yes", env=_env(slow_fake))
        outputs = [process.communicate(timeout=180) for process in (real, gen)]
        assert [real.returncode, gen.returncode] == [0, 0], outputs
        assert "24 done" in outputs[0][0] and "6 done" in outputs[1][0]
    assert sum(_annotations(filled).values()) == 30 and set(_annotations(filled).values()) == {1}


def test_the_app_killed_mid_job_the_command_says_so_and_the_run_resumes(
    filled: Path, tmp_path: Path, slow_fake: FakeGemini
) -> None:
    with _app(filled, tmp_path, browser=False) as (_, app):
        process = _start(filled, "describe", "--dataset", "REAL", "--yes", env=_env(slow_fake))
        _describing(process, filled)
        app.kill()  # -9: no shutdown, no last writes
        app.wait()
        out, err = process.communicate(timeout=60)
    assert process.returncode == 1, (out, err)
    assert "stopped while it ran this command" in err and "run the same command again to resume" in err
    again = _cli(filled, "describe", "--dataset", "REAL", "--yes", env=_env(slow_fake))  # no app now: it runs here
    assert again.returncode == 0, again.stderr
    annotations = _annotations(filled)
    assert len(annotations) == 24 and set(annotations.values()) == {1}
    statuses = [status for _, status, _ in _runs(filled)]
    assert statuses[0] == "interrupted" and statuses[-1] == "completed"


def test_a_killed_command_leaves_its_job_running_in_the_app(
    filled: Path, tmp_path: Path, slow_fake: FakeGemini
) -> None:
    with _app(filled, tmp_path, browser=False):
        process = _start(filled, "describe", "--dataset", "REAL", "--yes", env=_env(slow_fake))
        _describing(process, filled)
        process.kill()
        process.wait()

        def all_described() -> bool:
            listed = json.loads(_cli(filled, "datasets", "--json", env=_env()).stdout)
            return any(row["name"] == "REAL" and row["described"] == 24 for row in listed)

        wait_until(all_described, timeout=120, interval=0.5, what="the job to finish in the app")
    assert _runs(filled)[0][1:] == ("completed", 24)


def test_the_control_interface_refuses_browsers_and_strangers(filled: Path, tmp_path: Path) -> None:
    with _app(filled, tmp_path, browser=False):
        link = presence.find_app(filled)
        assert link is not None
        base = f"http://127.0.0.1:{link.port}"

        def status(headers: dict[str, str], path: str = "/ping") -> int:
            request = urllib.request.Request(base + path, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    return int(response.status)
            except urllib.error.HTTPError as refused:
                return int(refused.code)

        token = {"Authorization": f"Bearer {link.token}"}
        assert status(token) == 200
        assert status({}) == 401
        assert status({"Authorization": "Bearer wrong"}) == 401
        assert status({**token, "Origin": "http://evil.example"}) == 403  # a web page cannot drive it
        assert status({**token, "Host": f"evil.example:{link.port}"}) == 403  # nor through DNS rebinding
        with pytest.raises(OSError):  # loopback only
            urllib.request.urlopen(f"http://{_outside_address()}:{link.port}/ping", timeout=2)


def _outside_address() -> str:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("10.255.255.255", 1))  # no packet is sent: this picks the outward interface
            address = str(probe.getsockname()[0])
        except OSError:
            pytest.skip("this machine has no address beside loopback")
    if address.startswith("127."):
        pytest.skip("this machine has no address beside loopback")
    return address


def test_an_app_without_a_link_is_named_by_the_lock_message(filled: Path) -> None:
    """An older app (or another user's, whose link this user cannot read) holds the file: nothing to delegate to."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from labeling.store import Store; s = Store(sys.argv[1]); "
         "print('open', flush=True); time.sleep(60)", str(filled)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        result = _cli(filled, "datasets", env=_env())
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert f"(PID {holder.pid}): stop that app or command first" in result.stderr


def test_the_app_names_the_command_holding_the_database_and_opens_it_after(filled: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.browser import launch

    slower = FakeGemini(latency_s=1.0).__enter__()  # 24 s with one worker: the app starts while it runs
    process = _start(filled, "describe", "--dataset", "REAL", "--yes", "--num-workers", "1", env=_env(slower))
    wait_until(lambda: presence.find_command(filled) is not None, timeout=60, what="the command's status file")
    try:
        with _app(filled, tmp_path) as (url, _), sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(url + "/datasets")
            held = page.get_by_text("The database is in use by labeling", exact=False)
            expect(held).to_be_visible(timeout=60_000)
            text = held.inner_text()
            assert f"describe --dataset REAL --yes --num-workers 1, PID {process.pid}, started" in text
            expect(page.get_by_text("of 24 images", exact=False)).to_be_visible(timeout=60_000)
            out, err = process.communicate(timeout=180)
            assert process.returncode == 0, (out, err)
            # No reload: the page notices the command ended, opens the database and shows the app.
            expect(page.get_by_text("The database is in use", exact=False)).to_have_count(0, timeout=60_000)
            expect(page.get_by_text("Running jobs")).to_be_visible(timeout=30_000)
            browser.close()
    finally:
        if process.poll() is None:
            process.kill()
        slower.stop()
    assert not presence.command_file(filled).exists()
    assert sum(_annotations(filled).values()) == 24


def test_delegated_job_shows_on_the_run_page(filled: Path, tmp_path: Path, slow_fake: FakeGemini) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.browser import launch

    with _app(filled, tmp_path) as (url, _), sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(url + "/run")
        expect(page.get_by_role("heading", name="Run", exact=True)).to_be_visible(timeout=60_000)
        process = _start(filled, "describe", "--dataset", "REAL", "--yes", "--num-workers", "1", env=_env(slow_fake))
        try:
            sidebar = page.locator("[data-testid='stSidebar']")
            expect(sidebar.get_by_text("#1 fused", exact=False)).to_be_visible(timeout=60_000)
            # The progress card lists the app's own jobs, live: the delegated one is one of them.
            expect(page.get_by_role("button", name="Pause")).to_be_visible(timeout=60_000)
            out, err = process.communicate(timeout=180)
            assert process.returncode == 0, (out, err)
        finally:
            if process.poll() is None:
                process.kill()
            browser.close()
    assert sum(_annotations(filled).values()) == 24


def test_an_app_whose_link_does_not_answer_is_named_by_the_lock_message(filled: Path, tmp_path: Path) -> None:
    """A link this command cannot use (another user's app, a token that does not match): the lock message."""
    with _app(filled, tmp_path, browser=False) as (_, app):
        link = presence.app_file(filled)
        stored = json.loads(link.read_text())
        link.write_text(json.dumps({**stored, "token": "not-the-token"}))
        result = _cli(filled, "datasets", env=_env())
    assert result.returncode == 1
    assert f"in use by the labeling app (PID {app.pid}): stop it (Ctrl+C where it runs) first" in result.stderr


def _on_a_terminal(db: Path, *args: str, keys: bytes) -> tuple[int, str]:
    """Run a command on a terminal of its own; when it asks "[y/N]", type `keys`. Its exit code and screen."""
    import pty

    command = [sys.executable, "-m", "labeling", "--db", str(db), *args]
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the command on its terminal
        os.chdir(ROOT)
        os.execve(sys.executable, command, {**_env(), "GEMINI_API_KEY": "unused"})
    shown = b""
    while b"[y/N]" not in shown:
        shown += os.read(terminal, 1024)
    os.write(terminal, keys)
    _, status = os.waitpid(pid, 0)
    with contextlib.suppress(OSError):
        while chunk := os.read(terminal, 1024):
            shown += chunk
    return os.waitstatus_to_exitcode(status), shown.decode()


def test_a_confirmation_prompt_is_answered_at_the_callers_terminal(filled: Path, tmp_path: Path) -> None:
    """Without --yes on a terminal, `describe` asks "Start? [y/N]": the question comes from the app, the answer
    from the caller's keyboard, and Ctrl+C there stops the command as it does alone."""
    with _app(filled, tmp_path, browser=False):
        declined = _on_a_terminal(filled, "describe", "--dataset", "GEN", keys=b"n\n")
        interrupted = _on_a_terminal(filled, "describe", "--dataset", "GEN", keys=b"\x03")
    assert declined[0] == 1 and "Estimate: 6 images" in declined[1] and "Not started." in declined[1]
    assert interrupted[0] == 130 and "Interrupted: progress is saved" in interrupted[1]
    assert not _annotations(filled)


def test_queued_writes_to_one_stream_go_out_as_one_event_in_order() -> None:
    import queue

    from labeling.control_server import _joined

    events: queue.Queue[dict[str, object]] = queue.Queue()
    for event in ({"stream": "out", "text": "b"}, {"stream": "err", "text": "c"}, {"exit": 0}):
        events.put(event)
    joined, pending = _joined(events, {"stream": "out", "text": "a"})  # type: ignore[arg-type]
    assert joined == {"stream": "out", "text": "ab"} and pending == {"stream": "err", "text": "c"}
    assert _joined(events, pending) == ({"stream": "err", "text": "c"}, {"exit": 0})  # type: ignore[arg-type]
