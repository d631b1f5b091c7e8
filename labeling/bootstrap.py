"""First-use setup with the standard library only: create `.venv`, install what is needed, relaunch inside it.

`python3 streamlit_app.py` and `python3 -m tests` both come through here, so the README's two commands work on
a machine that has nothing but Python 3.11+ and pip. While it installs it prints what it fetches and how far it
is, as plain lines that read the same in a terminal and in a CI log; all of pip's output goes to
`.venv/install.log`, and when pip fails its messages are shown whole with what to do.

What makes the first start short (bench/first_start_bench.py measures it): a recent pip (it resolves these
requirements in half the time of the pip that Python 3.11 bundles), one pip call for all requirement files,
no byte-compiling of every installed file (Python compiles the few hundred modules the app imports, once),
and the editable install of this package built while the main install waits on the network.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed"
LOG = VENV / "install.log"
PIP = "pip>=25"  # --progress-bar raw, and twice as fast a resolver as Python 3.11's bundled pip 23
PIP_INSTALL = ["-m", "pip", "install", "--disable-pip-version-check", "--no-input"]
# No byte-compiling of every file of every package (about 20 s here): Python compiles what it imports, once.
FAST = ["--no-compile", "--progress-bar", "raw"]
VENV_HINT = (
    "What to do: install Python's venv module and pip (on Debian or Ubuntu: apt install python3-venv python3-pip), "
    "then run the same command again."
)
HINT = (
    "What to do: check that this machine reaches the package index (https://pypi.org, or the index set in your "
    "pip.conf) and has disk space, then run the same command again: it goes on from where it stopped. "
    f"pip's whole output is in {LOG}. If it still fails, delete {VENV} and try once more."
)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def site_packages() -> Path:
    return Path(sysconfig.get_path("purelib", "venv", vars={"base": str(VENV), "platbase": str(VENV)}))


def _requirements_digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in [*files, ROOT / "pyproject.toml"]:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def normalized(name: str) -> str:
    """A project name as pip compares it (PEP 503): `MarkupSafe`, `markupsafe` and `Markup_Safe` are one."""
    return re.sub(r"[-_.]+", "-", name).lower()


def name_and_version(filename: str) -> tuple[str, str]:
    """('pandas', '3.1.1') from a wheel or sdist file name; a local folder has no version."""
    if filename.endswith(".whl"):
        name, version = filename.split("-")[:2]
        return name, version
    for suffix in (".tar.gz", ".zip", ".tar.bz2"):
        if filename.endswith(suffix):
            name, _, version = filename.removesuffix(suffix).rpartition("-")
            return name, version
    return filename, ""


class PipProgress:
    """Turns pip's output, line by line, into short progress lines: what is fetched, how far, and the install.

    pip prints one line per file it fetches, `Progress DONE of TOTAL` lines while it downloads (with
    `--progress-bar raw`), and nothing while it unpacks; `tick()`, called every second, then reports the
    packages that have appeared in site-packages so far.
    """

    FILE = re.compile(r"\s*(Downloading|Using cached|Processing) (\S+)(?: \((\d[\d.]* (?:bytes|kB|MB|GB))\))?")
    BYTES = re.compile(r"\s*Progress (\d+) of (\d+)")
    QUIET_SECONDS = 10  # a "still ..." line after this long without one, so a slow step never looks stuck

    def __init__(
        self, emit: Callable[[str], None], site: Path | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.emit_line, self.site, self.clock = emit, site, clock
        self.started = self.last_said = clock()
        self.lock = threading.Lock()
        self.begin()

    def begin(self) -> None:
        """Count afresh for the next pip call; the clock goes on."""
        self.fetched: dict[str, str] = {}  # normalized name -> the version fetched last
        self.already = 0
        self.downloading = ""  # the file whose Progress lines come now
        self.download_said = 0.0
        self.to_install: list[str] = []  # pip's install order, normalized
        self.present: set[str] = set()  # dist-info folders there before the install began
        self.installed = 0

    def say(self, text: str) -> None:
        with self.lock:
            self._say(text)

    def _say(self, text: str) -> None:
        now = self.clock()
        self.last_said = now
        self.emit_line(f"{now - self.started:4.0f}s  {text}")

    def feed(self, line: str) -> None:
        with self.lock:
            self._feed(line.rstrip())

    def _feed(self, line: str) -> None:
        if got := self.BYTES.match(line):
            self._bytes(int(got[1]), int(got[2]))
        elif got := self.FILE.match(line):
            self._file(got[1], got[2].rsplit("/", 1)[-1], got[3])
        elif line.startswith("Requirement already satisfied:"):
            self.already += 1
        elif line.startswith("INFO: pip is looking at multiple versions of "):
            name = line.removeprefix("INFO: pip is looking at multiple versions of ").split(" ", 1)[0]
            self._say(f"pip is trying several versions of {name} to fit the other requirements ...")
        elif line.startswith("Building wheels for collected packages: "):
            self._say(f"building from source: {line.split(': ', 1)[1]} ...")
        elif line.startswith("Installing collected packages: "):
            self._install_begins(line.split(": ", 1)[1].split(", "))
        elif line.startswith("Successfully installed "):
            self.to_install = []
            self._say(f"installed {_count(len(line.split()) - 2, 'package')}")

    def _file(self, how: str, filename: str, size: str | None) -> None:
        if filename.endswith(".metadata"):  # the resolver reading a package's metadata, not the package
            return
        name, version = name_and_version(filename)
        self.fetched[normalized(name)] = version
        what = f"{normalized(name)} {version}".strip()
        number = f"[{len(self.fetched)}]"
        if how == "Downloading":
            self._say(f"{number} downloading {what}" + (f" ({size})" if size else ""))
        else:
            source = "in pip's cache" if how == "Using cached" else "local file"
            self._say(f"{number} {what} ({source})")
        self.downloading = what if how == "Downloading" else ""
        self.download_said = self.clock()

    def _bytes(self, done: int, total: int) -> None:
        """A line for a long download every few seconds, none for the many that take a moment."""
        if self.downloading and 0 < done < total and self.clock() - self.download_said >= 5:
            self.download_said = self.clock()
            self._say(f"     {self.downloading}: {done * 100 // total}% of {_megabytes(total)}")

    def _install_begins(self, names: list[str]) -> None:
        self.to_install = [normalized(name) for name in names]
        self.present = self._dist_infos()
        self.downloading = ""
        already = f" ({self.already} already there)" if self.already else ""
        self._say(f"installing {_count(len(names), 'package')}{already} ...")

    def _dist_infos(self) -> set[str]:
        if self.site is None or not self.site.is_dir():
            return set()
        return {path.name for path in self.site.glob("*.dist-info")}

    def tick(self) -> None:
        """Report install progress (unpacking prints nothing), or that a quiet step still goes on."""
        with self.lock:
            if self.to_install and self.installed < len(self.to_install):
                self._install_tick()
            elif self.clock() - self.last_said >= self.QUIET_SECONDS:
                done = f"{len(self.fetched)} fetched" if self.fetched else "resolving"
                self._say(f"... still working ({done})")

    def _install_tick(self) -> None:
        new = {normalized(name.split("-")[0]) for name in self._dist_infos() - self.present}
        count = sum(1 for name in self.to_install if name in new)
        if count > self.installed and self.clock() - self.last_said >= 3:
            self.installed = count
            last = max(self.to_install.index(name) for name in new if name in self.to_install)
            self._say(f"[{count}/{len(self.to_install)}] installed {self.to_install[last]}")
        elif self.clock() - self.last_said >= self.QUIET_SECONDS:
            self._say(f"... still installing ({self.installed} of {len(self.to_install)} done)")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _fail(what: str, code: int, output: str, hint: str = HINT) -> None:
    """Stop with pip's (or venv's) own messages, whole, and what to do: no traceback."""
    sys.stdout.flush()
    print(f"\n{what} failed (exit code {code}). Its messages:\n", file=sys.stderr)
    print(output.rstrip() or "(none)", file=sys.stderr)
    print(f"\n{hint}", file=sys.stderr)
    sys.exit(1)


@contextmanager
def _ticking(progress: PipProgress) -> Iterator[None]:
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(1):
            progress.tick()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_pip(command: list[str], progress: PipProgress, what: str) -> None:
    """Run pip with its output turned into progress lines and kept in the log; on failure show its errors whole."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # lines as they happen, not in 8 kB chunks
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace", cwd=ROOT, env=env
    )
    assert proc.stdout is not None and proc.stderr is not None
    errors: list[str] = []
    progress.begin()
    reader = threading.Thread(target=_read_errors, args=(proc.stderr, errors, progress), daemon=True)
    reader.start()
    with LOG.open("a", encoding="utf-8") as log, _ticking(progress):
        log.write(f"$ {' '.join(command)}\n")
        for line in proc.stdout:
            log.write(line)
            progress.feed(line)
        code = proc.wait()
        reader.join()
        log.writelines(errors)
    if code:
        _fail(what, code, "".join(errors))
    warnings = sum(1 for line in errors if line.startswith("WARNING:"))
    if warnings:
        progress.say(f"pip gave {_count(warnings, 'warning')}: see {LOG}")


def _read_errors(stream: Iterator[str], errors: list[str], progress: PipProgress) -> None:
    for line in stream:
        errors.append(line)
        if "Retrying" in line:  # a slow or flaky network: say why nothing moves
            progress.say(line.strip().removeprefix("WARNING: ")[:160])


def _run_quietly(command: list[str], what: str, hint: str = HINT) -> None:
    done = subprocess.run(command, capture_output=True, text=True, errors="replace", cwd=ROOT)
    if done.returncode:
        _fail(what, done.returncode, done.stdout + done.stderr, hint)


def _pip_version(site: Path) -> tuple[int, ...]:
    """The version of the pip installed there, read from its dist-info folder (no process started)."""
    for path in site.glob("pip-*.dist-info"):
        return tuple(int(part) for part in re.findall(r"\d+", path.name.split("-")[1])[:2])
    return ()


def _system_pip_can_target() -> bool:
    """Whether this Python's own pip can install into another environment (`pip --python`, pip 22.3+)."""
    try:
        import pip
    except ImportError:
        return False
    return tuple(int(part) for part in re.findall(r"\d+", pip.__version__)[:2]) >= (22, 3)


def _make_venv(progress: PipProgress) -> None:
    """`.venv` with a recent pip, made without pip when this Python's pip can fill it (seconds sooner)."""
    system_pip = _system_pip_can_target()
    if not venv_python().exists():
        progress.say(f"creating {VENV}")
        without = ["--without-pip"] if system_pip else []
        _run_quietly([sys.executable, "-m", "venv", *without, str(VENV)], "Creating the virtual environment", VENV_HINT)
    have = _pip_version(site_packages())
    if have >= (25,):
        return
    progress.say("getting a recent pip")
    if not have and not system_pip:
        _run_quietly([str(venv_python()), "-m", "ensurepip"], "Putting pip into the virtual environment", VENV_HINT)
    python = ["--python", str(venv_python())] if not have and system_pip else []
    installer = [sys.executable, "-m", "pip", *python] if python else [str(venv_python()), "-m", "pip"]
    run_pip([*installer, *PIP_INSTALL[2:], "--progress-bar", "off", PIP], progress, "Installing pip")


def ensure_venv(requirement_files: list[str]) -> Path:
    """Create `.venv` and install the requirements (and this package, editable) when they changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file also runs under an old python3
        sys.exit(f"labeling needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    files = [ROOT / name for name in requirement_files]
    wanted = _requirements_digest(files)
    installed = STAMP.read_text().split() if STAMP.exists() else []
    if venv_python().exists() and wanted in installed:
        return venv_python()
    print(f"Installing {', '.join(requirement_files)} into {VENV} (first use only) ...", flush=True)
    progress = PipProgress(lambda line: print(line, flush=True), site_packages())
    try:
        _install(files, progress)
    except KeyboardInterrupt:
        sys.exit("\nStopped. The next start goes on from where this one stopped.")
    STAMP.write_text("\n".join([*installed, wanted]) + "\n")  # one line per installed set (app, tests)
    progress.say(f"ready: {VENV} is set up")
    return venv_python()


def _install(files: list[Path], progress: PipProgress) -> None:
    _make_venv(progress)
    pip = [str(venv_python()), *PIP_INSTALL, *FAST]
    # This package alone, in its own process: its build backend runs while the main install waits on the network.
    with tempfile.TemporaryFile("w+", encoding="utf-8") as editable_log:
        editable = subprocess.Popen(
            [*pip, "--no-deps", "--no-warn-conflicts", "-e", str(ROOT)],
            stdout=editable_log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        try:
            run_pip([*pip, *(arg for file in files for arg in ("-r", str(file)))], progress, "pip install")
        finally:
            code = editable.wait()
        editable_log.seek(0)
        output = editable_log.read()
    with LOG.open("a", encoding="utf-8") as log:
        log.write(output)
    if code:
        _fail("Installing this project itself (pip install -e .)", code, output)


def _relaunch(python: Path, args: list[str]) -> None:
    """Replace this process with `python args...` (a child process on Windows, where exec is emulated)."""
    if os.name == "nt":
        sys.exit(subprocess.call([str(python), *args], cwd=ROOT))
    os.chdir(ROOT)
    os.execv(str(python), [str(python), *args])  # noqa: S606 - replaces this process on purpose


def launch_app(extra_args: list[str]) -> None:
    """Install on first use, then `streamlit run serve.py`: the app and its picture routes (.streamlit/config.toml)."""
    python = ensure_venv(["requirements.txt"])
    _relaunch(python, ["-m", "streamlit", "run", str(ROOT / "serve.py"), *extra_args])


def run_tests(extra_args: list[str]) -> None:
    """Install runtime and test dependencies on first use, then run the whole test suite."""
    python = ensure_venv(["requirements.txt", "requirements-dev.txt"])
    _relaunch(python, ["-m", "tests.runner", *extra_args])
