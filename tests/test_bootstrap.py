"""First start: pip's output becomes short progress lines, a failure shows pip's errors whole, and a set-up
`.venv` starts at once. The pip lines below are pip 26.3's own, captured from a real first install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from labeling import bootstrap
from labeling.bootstrap import PipProgress, name_and_version

RESOLVING = """\
Looking in indexes: https://pypi.org/simple
Collecting streamlit<2,>=1.67 (from -r requirements.txt (line 2))
  Downloading streamlit-1.67.0-py3-none-any.whl (11.2 MB)
Progress 0 of 11235773
Progress 262144 of 11235773
Progress 11235773 of 11235773
Processing /opt/pypi/files/altair-6.3.0-py3-none-any.whl (from -r requirements.txt (line 8))
Collecting imagehash>=4.3 (from -r requirements.txt (line 16))
  Downloading ImageHash-4.3.2-py2.py3-none-any.whl (296 kB)
Progress 0 of 296482
Progress 296482 of 296482
Collecting python-dateutil>=2.9.0 (from pandas>=2.2->-r requirements.txt (line 7))
  Downloading python_dateutil-4.0.0-py3-none-any.whl (92 kB)
Progress 0 of 92123
Progress 92123 of 92123
INFO: pip is looking at multiple versions of python-dateutil to determine which version is compatible with other requirements. This could take a while.
Processing /opt/pypi/files/python_dateutil-2.9.0.post0-py2.py3-none-any.whl (from pandas>=2.2->-r requirements.txt (line 7))
  Using cached pyyaml-6.0.4-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64.whl (828 kB)
Requirement already satisfied: six in ./.venv/lib/python3.11/site-packages (1.17.0)
Installing collected packages: websockets, MarkupSafe, ImageHash
"""  # noqa: E501 - pip's own lines, as long as it prints them


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _progress(site: Path | None = None) -> tuple[PipProgress, list[str], Clock]:
    lines: list[str] = []
    clock = Clock()
    return PipProgress(lines.append, site, clock), lines, clock


def test_each_fetched_package_is_one_numbered_line_saying_what_and_how_big() -> None:
    progress, lines, clock = _progress()
    for line in RESOLVING.splitlines(keepends=True):
        progress.feed(line)
        clock.now += 1
    assert lines == [
        "   2s  [1] downloading streamlit 1.67.0 (11.2 MB)",
        "   6s  [2] altair 6.3.0 (local file)",
        "   8s  [3] downloading imagehash 4.3.2 (296 kB)",
        "  12s  [4] downloading python-dateutil 4.0.0 (92 kB)",
        "  15s  pip is trying several versions of python-dateutil to fit the other requirements ...",
        "  16s  [4] python-dateutil 2.9.0.post0 (local file)",
        "  17s  [5] pyyaml 6.0.4 (in pip's cache)",
        "  19s  installing 3 packages (1 already there) ...",
    ]


def test_a_long_download_says_how_far_every_five_seconds_and_a_short_one_says_nothing_more() -> None:
    progress, lines, clock = _progress()
    progress.feed("  Downloading pyarrow-26.0.1-cp311-cp311-manylinux_2_28_x86_64.whl (55.0 MB)\n")
    for done in range(0, 55_000_001, 5_000_000):  # 5 MB a second
        progress.feed(f"Progress {done} of 55000000\n")
        clock.now += 1
    progress.feed("Progress 55000000 of 55000000\n")
    assert lines == [
        "   0s  [1] downloading pyarrow 26.0.1 (55.0 MB)",
        "   5s       pyarrow 26.0.1: 45% of 55.0 MB",
        "  10s       pyarrow 26.0.1: 90% of 55.0 MB",
    ]
    assert not any("\r" in line for line in lines)  # plain lines: a CI log reads them as they are


def test_the_install_reports_packages_as_they_appear_in_site_packages(tmp_path: Path) -> None:
    (tmp_path / "six-1.17.0.dist-info").mkdir()  # there before: not counted
    progress, lines, clock = _progress(tmp_path)
    progress.feed("Installing collected packages: websockets, watchdog, MarkupSafe, six\n")
    (tmp_path / "websockets-17.4.dist-info").mkdir()
    (tmp_path / "watchdog-7.1.0.dist-info").mkdir()
    clock.now += 1
    progress.tick()  # too soon after the last line
    clock.now += 2
    progress.tick()
    (tmp_path / "markupsafe-3.0.4.dist-info").mkdir()
    clock.now += 1
    progress.tick()
    clock.now += 11
    progress.tick()
    progress.feed("Successfully installed MarkupSafe-3.0.4 six-1.17.0 watchdog-7.1.0 websockets-17.4\n")
    assert lines == [
        "   0s  installing 4 packages ...",
        "   3s  [2/4] installed watchdog",
        "  15s  [3/4] installed markupsafe",
        "  15s  installed 4 packages",
    ]


def test_a_quiet_step_says_it_still_works() -> None:
    progress, lines, clock = _progress()
    progress.feed("Collecting streamlit<2,>=1.67 (from -r requirements.txt (line 2))\n")
    clock.now += 9
    progress.tick()
    clock.now += 1
    progress.tick()
    assert lines == ["  10s  ... still working (resolving)"]


def test_file_names_give_project_and_version() -> None:
    assert name_and_version("pandas-3.1.1-cp311-cp311-manylinux_2_28_x86_64.whl") == ("pandas", "3.1.1")
    assert name_and_version("python-multipart-0.0.9.tar.gz") == ("python-multipart", "0.0.9")
    assert name_and_version("bootstrap") == ("bootstrap", "")


def _project(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (root / "requirements.txt").write_text("streamlit>=1.67\n")
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.setattr(bootstrap, "ROOT", root)
    monkeypatch.setattr(bootstrap, "VENV", root / ".venv")
    monkeypatch.setattr(bootstrap, "STAMP", root / ".venv" / ".installed")
    monkeypatch.setattr(bootstrap, "LOG", root / ".venv" / "install.log")


def test_a_set_up_venv_starts_at_once_without_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _project(tmp_path, monkeypatch)
    python = bootstrap.venv_python()
    python.parent.mkdir(parents=True)
    python.write_text("")
    digest = bootstrap._requirements_digest([tmp_path / "requirements.txt"])
    bootstrap.STAMP.write_text(f"{'0' * 64}\n{digest}\n")

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"started a process: {args}")

    monkeypatch.setattr(bootstrap.subprocess, "Popen", no_process)
    monkeypatch.setattr(bootstrap.subprocess, "run", no_process)
    assert bootstrap.ensure_venv(["requirements.txt"]) == python
    assert capsys.readouterr().out == ""


def test_changed_requirements_install_again_and_are_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _project(tmp_path, monkeypatch)
    bootstrap.venv_python().parent.mkdir(parents=True)
    bootstrap.venv_python().write_text("")
    bootstrap.STAMP.write_text("an-older-set\n")
    installs: list[list[Path]] = []
    monkeypatch.setattr(bootstrap, "_install", lambda files, progress: installs.append(files))
    bootstrap.ensure_venv(["requirements.txt"])
    bootstrap.ensure_venv(["requirements.txt"])
    assert installs == [[tmp_path / "requirements.txt"]]
    digest = bootstrap._requirements_digest([tmp_path / "requirements.txt"])
    assert bootstrap.STAMP.read_text().split() == ["an-older-set", digest]


def test_a_pip_failure_shows_its_errors_whole_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _project(tmp_path, monkeypatch)
    bootstrap.VENV.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")  # no index, no find-links: pip answers without a network
    monkeypatch.delenv("PIP_FIND_LINKS", raising=False)
    progress, _, _ = _progress()
    command = [sys.executable, "-m", "pip", "install", "--no-index", "--disable-pip-version-check", "nothing-here"]
    with pytest.raises(SystemExit) as stopped:
        bootstrap.run_pip(command, progress, "pip install")
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert "pip install failed (exit code 1)" in err
    assert "ERROR: Could not find a version that satisfies the requirement nothing-here" in err
    assert "ERROR: No matching distribution found for nothing-here" in err
    assert "What to do: check that this machine reaches the package index" in err
    assert "Traceback" not in err
    assert "No matching distribution found for nothing-here" in bootstrap.LOG.read_text()
