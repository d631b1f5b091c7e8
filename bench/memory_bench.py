"""Peak memory of a captioning run over huge images, with and without the shared decode budget.

Run from the repository root:  .venv/bin/python bench/memory_bench.py [--images 8] [--workers 8] [--side 8000]

Each run is a fresh process (so its peak RSS is its own): it imports `--images` PNGs of side x side pixels
(64 megapixels at 8000) and describes them with `--workers` workers against the in-process fake Gemini.
Baseline: the budget off (decode_budget_megapixels 0). Goal: 8 workers on 64-MP PNGs under 1.5 GB peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.support import cpu_model, peak_rss_mib

ROOT = Path(__file__).resolve().parents[1]


def make_images(folder: Path, count: int, side: int) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    base = Image.linear_gradient("L").resize((side, side)).convert("RGB")
    for i in range(count):
        base.rotate(90 * (i % 4)).save(folder / f"huge{i}.png", compress_level=1)


def child(folder: str, workers: int, budget: float) -> dict[str, float]:
    """One run in this process: import, describe, and report the peak RSS."""
    from labeling.datasets import import_dataset
    from labeling.fake_gemini import FakeGemini
    from labeling.jobs import JobManager
    from labeling.planning import JobRequest
    from labeling.settings import Settings
    from labeling.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="membench-"))
    with FakeGemini() as fake, Store(tmp / "bench.duckdb") as store:
        import_dataset(store, "HUGE", label="REAL", images_dir=folder)
        settings = Settings(
            gemini_api_key="bench-key",
            gemini_base_url=fake.base_url,
            num_workers=workers,
            cache_dir=str(tmp / "cache"),
            decode_budget_megapixels=budget,
            request_timeout_seconds=60,
        )
        start = time.perf_counter()
        job = JobManager(store, settings).start(JobRequest(("HUGE",)))
        job.wait()
        progress = job.progress()
    peak_mib = peak_rss_mib()
    return {
        "done": progress.done,
        "failed": progress.failed,
        "seconds": time.perf_counter() - start,
        "peak_mib": peak_mib,
    }


def run_child(folder: Path, workers: int, budget: float) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(folder), "--workers", str(workers), "--budget", str(budget)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--side", type=int, default=8000)
    parser.add_argument("--budget", type=float, default=128.0, help="decode budget in megapixels")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.workers, args.budget)))
        return 0
    folder = Path(tempfile.mkdtemp(prefix="membench-images-"))
    make_images(folder, args.images, args.side)
    print(
        f"memory_bench on {cpu_model()}, {os.cpu_count()} CPUs; {args.images} PNGs of {args.side}x{args.side} "
        f"({args.side * args.side / 1e6:.0f} MP), {args.workers} workers; load {os.getloadavg()[0]:.1f}"
    )
    baseline = run_child(folder, args.workers, 0)
    budgeted = run_child(folder, args.workers, args.budget)
    for label, figures in (("budget off (baseline)", baseline), (f"budget {args.budget:g} MP", budgeted)):
        print(
            f"{label}: peak RSS {figures['peak_mib']:,.0f} MiB, {figures['done']:.0f} done, "
            f"{figures['failed']:.0f} failed, {figures['seconds']:.1f} s"
        )
    print(
        f"budget / baseline: peak RSS {budgeted['peak_mib'] / baseline['peak_mib']:.2f}x, "
        f"time {budgeted['seconds'] / baseline['seconds']:.2f}x; goal < 1,536 MiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
