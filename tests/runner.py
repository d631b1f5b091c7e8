"""Run the whole test suite inside .venv: make sure Chromium is there for browser tests, then pytest.

pytest's exit code 5 (no tests collected) counts as a failure: a suite that ran nothing proves nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CHROMIUM = "/usr/bin/chromium"


def ensure_chromium() -> None:
    """Install Debian's chromium for the browser tests when it is missing and we may (root, apt-get)."""
    if os.path.exists(CHROMIUM) or shutil.which("chromium"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("Installing Debian's chromium for the browser tests ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], check=True, env=env, stdout=subprocess.DEVNULL)
    elif os.environ.get("CI"):
        sys.exit("Chromium is required for the browser tests in CI: apt-get install -y chromium")
    else:
        print("Chromium is not installed: browser tests will be skipped (apt-get install -y chromium).")


def main(args: list[str]) -> int:
    ensure_chromium()
    workers = ["-n", "auto"] if not any(arg.startswith("-n") for arg in args) else []
    code = subprocess.call([sys.executable, "-m", "pytest", *workers, *args])
    if code == 5:
        print("pytest collected no tests: that is a failure.", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
