"""Benchmark Gemini Batch Mode against the fake Gemini server (its own process, like the real API).

Run from the repository root:  .venv/bin/python bench/batch_bench.py [--images 100000] [--quick]

1. Shard writing alone (images read, prepared as for a synchronous request, base64 and JSONL to disk under
   batch.shard_mb): images/s, MB/s, CPU per image, and the peak resident memory while writing (goal < 300 MB).
2. A whole batch run (write, upload, create, poll, download, record) on the fake: wall time, the runner's CPU per
   image against the synchronous runner's CPU per image on the same images in the same run, and HTTP requests
   per image (goal: none per image; a few per shard).
Prints the figures and the machine; paste them into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from PIL import Image, ImageDraw

from bench.caption_bench import FakeProcess, fresh_store, settings_for
from bench.support import cpu_model, peak_rss_mib, reset_peak_rss, rss_mib
from labeling.annotators.gemini import GeminiAnnotator
from labeling.batch_shards import LineMaker, ShardWriter, write_work
from labeling.dataset_sources import source_for_dataset
from labeling.jobs import JobManager
from labeling.planning import JobRequest, plan, work_items
from labeling.recorder import Outcome
from labeling.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def make_small_images(folder: Path, count: int, size: tuple[int, int] = (320, 240)) -> Path:
    """Small JPEGs (sent as they are, like thumbnails-sized datasets), each a little different."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = Image.new("RGB", size, ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
        ImageDraw.Draw(image).ellipse([10 + i % 100, 10, 200, 180], fill=((i * 13) % 256, 200, 80))
        image.save(folder / f"img{i:06d}.jpg", quality=85)
    return folder


def start_fake(log: Path, running_s: float) -> FakeProcess:
    import re
    import subprocess

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "labeling.fake_gemini",
            "--port",
            "0",
            "--log",
            str(log),
            "--batch-pending-seconds",
            "0",
            "--batch-seconds",
            str(running_s),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    found = re.search(r"(http://\S+)", process.stdout.readline())
    if not found:
        process.kill()
        raise SystemExit("the fake server did not start")
    return FakeProcess(process, found.group(1))


def write_only(tmp: Path, folder: Path, settings: Settings) -> dict[str, float]:
    """Shard writing on its own, as the batch executor does it, into a throwaway run."""
    store = fresh_store(tmp, "write", folder)
    rows, work, _ = plan(store, JobRequest(("BENCH",), executor="batch"))
    items = work_items(work)
    annotator = GeminiAnnotator(settings)
    lines = LineMaker(annotator, store.categories(), settings.max_categories)
    folder_out = tmp / "shards"
    writer = ShardWriter(store, 1, folder_out, int(settings.batch_shard_mb * 1_000_000))
    failed: list[Outcome] = []
    rss_before = rss_mib()
    reset_peak_rss()  # the writing's own peak, not the image generation's before it
    cpu, wall = time.process_time(), time.perf_counter()
    write_work(
        items,
        lines=lines,
        writer=writer,
        sources={r.id: source_for_dataset(r, settings) for r in rows},
        settings=settings,
        workers=settings.num_workers,
        record=failed.append,
        stop=threading.Event(),
    )
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    written = sum(p.stat().st_size for p in folder_out.glob("*.jsonl"))
    shards = len(store.batch_shards(1))
    store.close()
    annotator.close()
    return {
        "images": len(items),
        "failed": len(failed),
        "seconds": wall,
        "images_per_s": len(items) / wall,
        "mb_per_s": written / 1e6 / wall,
        "mb": written / 1e6,
        "shards": shards,
        "cpu_ms": cpu * 1000 / len(items),
        "rss_before": rss_before,
        "rss_peak": peak_rss_mib(),
    }


def whole_run(tmp: Path, folder: Path, executor: str, images: int, workers: int) -> dict[str, float]:
    """One run on a fresh database and a fresh fake; the runner's CPU and the HTTP requests it made."""
    log = tmp / f"{executor}-requests.jsonl"
    fake = start_fake(log, running_s=0.5)
    try:
        settings = settings_for(
            fake,
            tmp,
            num_workers=workers,
            batch_shard_mb=50,
            batch_poll_seconds=0.5,
            cache_dir=str(tmp / f"cache-{executor}"),
        )
        store = fresh_store(tmp, executor, folder)
        cpu, wall = time.process_time(), time.perf_counter()
        job = JobManager(store, settings).start(JobRequest(("BENCH",), executor=executor))
        job.wait()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        progress = job.progress()
        shards = len(store.batch_shards(job.run_id))
        store.close()
        fake_cpu = fake.cpu_seconds()
    finally:
        fake.stop()
    calls: Counter[str] = Counter()
    if log.exists():
        for line in log.read_text().splitlines():
            record = json.loads(line)
            calls[str(record.get("api_method") or record.get("method") or "generateContent")] += 1
    done = progress.done + progress.failed
    return {
        "images": done,
        "failed": progress.failed,
        "seconds": wall,
        "cpu_ms": cpu * 1000 / max(done, 1),
        "fake_cpu_ms": fake_cpu * 1000 / max(done, 1),
        "http": sum(calls.values()),
        "per_image": sum(calls.values()) / max(done, 1),
        "shards": shards,
        "calls": dict(calls),  # type: ignore[dict-item]
        "status": progress.status,  # type: ignore[dict-item]
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="images (the goal is stated for 100,000)")
    parser.add_argument("--sync-images", type=int, default=500, help="images for the synchronous baseline")
    parser.add_argument("--shard-mb", type=float, default=500.0, help="batch.shard_mb for the writing run")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="small sizes: check the script, not the figures")
    parser.add_argument("--only-writing", action="store_true", help="the shard writing alone (rate, CPU, memory)")
    args = parser.parse_args()
    images = 200 if args.quick else args.images
    sync_images = min(images, 100 if args.quick else args.sync_images)
    print(f"machine: {cpu_model()}, Python {sys.version.split()[0]}, {date.today()}")
    with tempfile.TemporaryDirectory(prefix="batch-bench-") as name:
        tmp = Path(name)
        folder = make_small_images(tmp / "images", images)
        settings = Settings(
            gemini_api_key="bench-key",
            gemini_base_url="http://127.0.0.1:9",  # never called: writing sends nothing
            cache_dir=str(tmp / "cache-write"),
            num_workers=args.workers,
            batch_shard_mb=args.shard_mb,
        )
        w = write_only(tmp, folder, settings)
        print(
            f"shard writing: {w['images']:,.0f} images ({w['failed']:.0f} failed) in {w['seconds']:.1f} s = "
            f"{w['images_per_s']:,.0f} images/s, {w['mb']:,.0f} MB in {w['shards']:.0f} shards = "
            f"{w['mb_per_s']:.1f} MB/s; CPU {w['cpu_ms']:.2f} ms/image; peak RSS {w['rss_peak']:.0f} MiB "
            f"while writing ({w['rss_before']:.0f} MiB when it started; goal < 300 MB)"
        )
        if args.only_writing:
            return 0
        b = whole_run(tmp, folder, "batch", images, args.workers)
        print(
            f"batch run: {b['images']:,.0f} images ({b['failed']:.0f} failed, {b['status']}) in {b['seconds']:.1f} s, "
            f"{b['shards']:.0f} shards; runner CPU {b['cpu_ms']:.2f} ms/image (fake {b['fake_cpu_ms']:.2f}); "
            f"{b['http']:.0f} HTTP requests = {b['per_image']:.4f} per image (goal: no per-image request): {b['calls']}"
        )
        small = tmp / "sync-images"
        small.mkdir()
        for path in sorted(folder.iterdir())[:sync_images]:
            (small / path.name).write_bytes(path.read_bytes())
        s = whole_run(tmp, small, "sync", sync_images, args.workers)
        print(
            f"synchronous run: {s['images']:,.0f} images in {s['seconds']:.1f} s; runner CPU {s['cpu_ms']:.2f} "
            f"ms/image; {s['per_image']:.2f} HTTP requests per image"
        )
        print(f"batch vs synchronous runner CPU per image: {b['cpu_ms'] / s['cpu_ms']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
