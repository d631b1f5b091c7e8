"""First-use setup with the standard library only: create `.venv`, install what is needed, relaunch inside it.

`python3 streamlit_app.py` and `python3 -m tests` both come through here, so the README's two commands work on
a machine that has nothing but Python 3.11+ and pip.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def _requirements_digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for file in [*files, ROOT / "pyproject.toml"]:
        digest.update(file.name.encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()


def ensure_venv(requirement_files: list[str]) -> Path:
    """Create `.venv` and install the requirements (and this package, editable) when they changed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this file also runs under an old python3
        sys.exit(f"labeling needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    files = [ROOT / name for name in requirement_files]
    wanted = _requirements_digest(files)
    installed = STAMP.read_text().split() if STAMP.exists() else []
    if venv_python().exists() and wanted in installed:
        return venv_python()
    if not venv_python().exists():
        print(f"Creating {VENV} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    print("Installing requirements (first use only) ...", flush=True)
    pip = [str(venv_python()), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    for file in files:
        subprocess.run([*pip, "-r", str(file)], check=True, cwd=ROOT)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True, cwd=ROOT)
    STAMP.write_text("\n".join([*installed, wanted]) + "\n")  # one line per installed set (app, tests)
    return venv_python()


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
