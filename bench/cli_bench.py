"""CLI start-up benchmark: what a person waits for when they type a `labeling` command, in fresh processes.

Measured, each as the median wall time of fresh processes:
- `labeling --help` and `labeling datasets --json` on an empty database (goals: under 0.3 s and 1 s);
- baselines in the same run: a bare `python -c pass` (the interpreter's own start) and a process that imports
  what the CLI loaded eagerly before commands imported their modules on use (the Gemini SDK, pandas, DuckDB,
  Altair through labeling.jobs, labeling.charts and labeling.store).
Then the import-time breakdown (`python -X importtime`) of each command: its heaviest top-level imports.

Run: .venv/bin/python bench/cli_bench.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import cpu_model

ROOT = Path(__file__).resolve().parent.parent
EAGER = "import labeling.jobs, labeling.charts, labeling.store, labeling.comparison, labeling.mirror"


def _wall(command: list[str], runs: int, env: dict[str, str]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _heaviest(command: list[str], env: dict[str, str], count: int = 6) -> list[tuple[str, float]]:
    """The top-level imports with the largest cumulative import time (ms)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *command], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    top: list[tuple[str, float]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if cumulative.isdigit() and not name.startswith(" ") and "." not in name.strip():
            top.append((name.strip(), int(cumulative) / 1000))
    return sorted(top, key=lambda item: -item[1])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "LABELING_DB": str(Path(tmp) / "empty.duckdb"), "LABELING_CACHE_DIR": tmp}
        cli = [sys.executable, "-m", "labeling"]
        subprocess.run([*cli, "datasets"], check=True, capture_output=True, env=env, cwd=ROOT)  # schema made once
        figures = {
            "python -c pass (interpreter start)": _wall([sys.executable, "-c", "pass"], args.runs, env),
            "importing what the CLI loaded eagerly before": _wall([sys.executable, "-c", EAGER], args.runs, env),
            "labeling --help": _wall([*cli, "--help"], args.runs, env),
            "labeling datasets --json (empty database)": _wall([*cli, "datasets", "--json"], args.runs, env),
        }
        breakdown = {
            name: _heaviest(["-m", "labeling", *extra], env)
            for name, extra in (("--help", ["--help"]), ("datasets --json", ["datasets", "--json"]))
        }
    print(
        f"Machine: {cpu_model()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; median of {args.runs} "
        "fresh processes"
    )
    eager = figures["importing what the CLI loaded eagerly before"]
    for name, seconds in figures.items():
        print(f"  {name:<46} {seconds:6.3f} s   {seconds / eager:5.2f}x the eager imports")
    for name, imports in breakdown.items():
        print(f"Heaviest imports of `labeling {name}`: " + ", ".join(f"{module} {ms:.0f} ms" for module, ms in imports))


if __name__ == "__main__":
    main()
