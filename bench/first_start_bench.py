"""First start benchmark: from `git clone` to an app that answers, as a new user runs the README's command.

Each run clones this repository (its committed HEAD) into a temp folder and times `python3 streamlit_app.py`,
which creates `.venv`, installs requirements.txt and starts the server, until /_stcore/health answers 200; then
it stops the server. The baseline is the same clone with the old bootstrap (`git show REV:labeling/bootstrap.py`,
default 5f5c651: venv with Python's bundled pip, one quiet pip call per requirement file with byte-compiling,
then `pip install --no-deps -e .`). Old and new alternate within a run, so both see the same network and load.

After the server answered, each clone also imports what the app's first page imports (pandas, Streamlit, the
store, the page helpers) once: the new bootstrap skips pip's byte-compiling, so that first import compiles the
modules it loads; this column shows what that moves to the first page.

pip's download cache: by default the user's (~/.cache/pip, as warm as it is); --cold-cache gives every run an
empty PIP_CACHE_DIR, as on a machine that never ran pip. Medians.

Run: .venv/bin/python bench/first_start_bench.py [--runs 1] [--cold-cache] [--baseline-rev 5f5c651]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import cpu_model

ROOT = Path(__file__).resolve().parent.parent
# The base interpreter, not a venv's: a new user has only the system's python3 and its pip.
PYTHON = str(Path(sys.base_prefix) / ("python.exe" if os.name == "nt" else "bin/python3"))
FIRST_PAGE_IMPORTS = (
    "import pandas, streamlit, labeling.store, labeling.settings, labeling.datasets, "
    "labeling.annotators.providers, pages.common"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clone(into: Path, baseline_rev: str | None) -> Path:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(into)], check=True)
    if baseline_rev:
        old = subprocess.run(
            ["git", "show", f"{baseline_rev}:labeling/bootstrap.py"], cwd=ROOT, check=True, capture_output=True
        ).stdout
        (into / "labeling" / "bootstrap.py").write_bytes(old)
    return into


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _first_start(clone: Path, env: dict[str, str], log: Path) -> float:
    """Seconds from `python3 streamlit_app.py` until the health check answers 200; the server is then stopped."""
    port = _free_port()
    command = [PYTHON, "streamlit_app.py", "--server.port", str(port), "--server.headless", "true"]
    began = time.perf_counter()
    with log.open("w") as out:
        # Its own session: streamlit_app.py execs into the server, and the whole group is stopped below.
        process = subprocess.Popen(
            command, cwd=clone, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            while not _healthy(f"http://127.0.0.1:{port}/_stcore/health"):
                if process.poll() is not None:
                    raise SystemExit(f"the first start in {clone} ended with {process.returncode}: see {log}")
                time.sleep(0.25)
            return time.perf_counter() - began
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def _first_import(clone: Path) -> float:
    began = time.perf_counter()
    subprocess.run(
        [str(clone / ".venv/bin/python"), "-c", FIRST_PAGE_IMPORTS], cwd=clone, check=True, capture_output=True
    )
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--cold-cache", action="store_true", help="an empty pip cache for every start")
    parser.add_argument("--baseline-rev", default="5f5c651", help="the commit whose bootstrap.py is the baseline")
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {name: {"start": [], "import": []} for name in ("old", "new")}
    loads = []
    with tempfile.TemporaryDirectory(prefix="first-start-") as tmp:
        for run in range(args.runs):
            for name in ("old", "new") if run % 2 == 0 else ("new", "old"):
                folder = Path(tmp) / f"{name}-{run}"
                clone = _clone(folder, args.baseline_rev if name == "old" else None)
                env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHONPATH"))}
                if args.cold_cache:
                    env["PIP_CACHE_DIR"] = str(Path(tmp) / f"pip-cache-{name}-{run}")
                loads.append(os.getloadavg()[0])
                results[name]["start"].append(_first_start(clone, env, Path(tmp) / f"{name}-{run}.log"))
                results[name]["import"].append(_first_import(clone))
                print(
                    f"run {run + 1} {name}: first start {results[name]['start'][-1]:6.1f} s, "
                    f"first-page imports {results[name]['import'][-1]:5.2f} s (load {loads[-1]:.1f})",
                    flush=True,
                )
                subprocess.run(["rm", "-rf", str(folder)], check=True)
    old = {key: statistics.median(values) for key, values in results["old"].items()}
    new = {key: statistics.median(values) for key, values in results["new"].items()}
    cache = "an empty pip cache per start" if args.cold_cache else "the user's pip cache as it is"
    print(f"Machine: {cpu_model()}, {os.cpu_count()} CPUs, load {statistics.median(loads):.1f} (median at each start)")
    print(f"Medians of {args.runs}, {cache}; baseline: bootstrap.py of {args.baseline_rev}")
    print(f"  first start, clone to health 200   old {old['start']:6.1f} s   new {new['start']:6.1f} s   ", end="")
    print(f"{old['start'] / new['start']:.2f}x faster")
    print(f"  first-page imports, once           old {old['import']:6.2f} s   new {new['import']:6.2f} s")
    total_old, total_new = old["start"] + old["import"], new["start"] + new["import"]
    print(f"  both together                      old {total_old:6.1f} s   new {total_new:6.1f} s   ", end="")
    print(f"{total_old / total_new:.2f}x faster")


if __name__ == "__main__":
    main()
