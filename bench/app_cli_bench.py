"""One database for the app and the command line: what a command costs when it runs through the app.

Run from the repository root:  .venv/bin/python bench/app_cli_bench.py [--images 20000] [--describe 400] [--runs 5]

Read commands, each the median wall time of fresh `labeling` processes, on the 20,000-image database of
bench/review_bench.py: on a free database (the baseline, in the same run), then with `streamlit run serve.py`
holding it, when the command runs through the app's control interface. Goal: under 1.5x the baseline.
Then `labeling describe` of photo-sized JPEGs against the fake Gemini in its own process: images per second when
the command runs alone, and when it runs in the app's job manager through the control interface.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from bench.caption_bench import make_images, start_fake  # noqa: E402
from bench.review_bench import build, machine  # noqa: E402
from labeling import presence  # noqa: E402
from labeling.datasets import import_dataset  # noqa: E402
from labeling.store import Store  # noqa: E402

READS = [
    ("datasets", "--json"),
    ("images", "--dataset", "BENCH", "--status", "found"),
    ("categories", "list"),
    ("export", "--dataset", "BENCH", "--output", "{tmp}/bench.csv"),
]


def _cli(db: Path, args: tuple[str, ...], env: dict[str, str], tmp: Path) -> float:
    command = [sys.executable, "-m", "labeling", "--db", str(db), *(a.format(tmp=tmp) for a in args)]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    return time.perf_counter() - started


def _median(db: Path, args: tuple[str, ...], env: dict[str, str], tmp: Path, runs: int) -> float:
    _cli(db, args, env, tmp)  # warm the page cache once
    return statistics.median(_cli(db, args, env, tmp) for _ in range(runs))


class _App:
    """`streamlit run serve.py` on a database, until the app has published its control link."""

    def __init__(self, db: Path, tmp: Path) -> None:
        port = 8790
        env = {**os.environ, "LABELING_DB": str(db), "LABELING_CACHE_DIR": str(tmp / "app-cache")}
        options = ["--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "serve.py", *options],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 90
        while presence.find_app(db) is None:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise SystemExit("the app did not start")
            time.sleep(0.2)
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=30).read()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _describe(db: Path, env: dict[str, str], tmp: Path) -> tuple[float, str]:
    command = [sys.executable, "-m", "labeling", "--db", str(db), "describe", "--dataset", "REAL", "--yes"]
    started = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env, cwd=ROOT)
    return time.perf_counter() - started, done.stdout.strip().splitlines()[-1]


def _reads(tmp: Path, args: argparse.Namespace) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABELING_", "GEMINI_", "GOOGLE_"))}
    db = tmp / "reads.duckdb"
    build(db, tmp / "pictures", args.images)
    print(f"\nRead commands on {args.images:,} images, median of {args.runs} fresh processes:")
    alone = {command: _median(db, command, env, tmp, args.runs) for command in READS}
    reads_app = _App(db, tmp)
    try:
        through = {command: _median(db, command, env, tmp, args.runs) for command in READS}
    finally:
        reads_app.stop()
    for command in READS:
        ratio = through[command] / alone[command]
        shown = " ".join(command).replace("{tmp}/", "")
        print(f"  {shown:<44} alone {alone[command]:6.3f} s   through the app {through[command]:6.3f} s   "
              f"{ratio:4.2f}x (goal < 1.5x)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000, help="images of the database the reads run on")
    parser.add_argument("--describe", type=int, default=400, help="images the describe runs caption")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-reads", action="store_true", help="only the describe runs")
    parser.add_argument("--latency", type=float, default=0.2, help="the fake Gemini's seconds per answer")
    parser.add_argument("--rounds", type=int, default=2, help="describe runs each way, alternating")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LABELING_", "GEMINI_", "GOOGLE_"))}
    print(f"Machine: {machine()}; load {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if not args.skip_reads:
            _reads(tmp, args)

        fake = start_fake(args.latency)
        try:
            env_fake = {**env, "GOOGLE_GEMINI_BASE_URL": fake.base_url, "GEMINI_API_KEY": "bench-key"}
            folder = make_images(tmp / "photos", args.describe)
            print(f"\n`labeling describe` of {args.describe} JPEGs (1024x768), fake Gemini {args.latency} s an answer:")
            rates: dict[str, list[float]] = {"alone": [], "through the app": []}
            for round_number in range(args.rounds):
                for where in ("alone", "through the app") if round_number % 2 == 0 else ("through the app", "alone"):
                    run_db = tmp / f"describe-{round_number}-{where.replace(' ', '-')}.duckdb"
                    with Store(run_db) as store:
                        import_dataset(store, "REAL", label="REAL", images_dir=folder)
                    shutil.rmtree(tmp / "cache", ignore_errors=True)
                    app = _App(run_db, tmp) if where != "alone" else None
                    try:
                        run_env = {**env_fake, "LABELING_CACHE_DIR": str(tmp / "cache")}
                        seconds, summary = _describe(run_db, run_env, tmp)
                    finally:
                        if app is not None:
                            app.stop()
                    rates[where].append(args.describe / seconds)
                    print(f"  {where:<16} {seconds:6.1f} s  {rates[where][-1]:6.1f} images/s   {summary}")
            alone_rate, app_rate = (statistics.median(rates[w]) for w in ("alone", "through the app"))
            print(f"  medians: alone {alone_rate:.1f} images/s, through the app {app_rate:.1f} images/s: "
                  f"{app_rate / alone_rate:.2f}x the throughput")  # fmt: skip
        finally:
            fake.process.kill()
    print(f"\nLoad at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
