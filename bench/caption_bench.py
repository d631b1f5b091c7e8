"""Benchmark the captioning runner against the fake Gemini server (run as a separate process, like the real API).

Run from the repository root:  .venv/bin/python bench/caption_bench.py [--quick]

1. Throughput: fake latency 0.5 s, 16 workers, no quota. Ideal = 16 / 0.5 = 32 images/s; goal >= 90%.
   Measured with 640x480 JPEGs (sent as they are) and with 1024x768 ones (decoded and shrunk to 768 px).
2. Quota: fake quota Q requests/min (sliding 60 s window, 429 + RetryInfo beyond it), the runner's limit set to
   Q as a user would. Goal after the first minute: sustained use >= 95% of Q and < 1% of requests answered 429.
3. Requests and tokens per image: fused mode (one request) against two-pass mode (the seed's two-call flow:
   describe the image, then categorize the description text), measured on the same images.
Prints the figures and the machine; paste them into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from PIL import Image, ImageDraw

import labeling.annotators.gemini  # noqa: F401 - imported before any timing: its ~0.8 s of CPU is once a process
from bench.support import cpu_model
from labeling.datasets import import_dataset
from labeling.jobs import JobManager, Progress
from labeling.planning import JobRequest
from labeling.settings import Settings
from labeling.store import Store

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class FakeProcess:
    process: subprocess.Popen[str]
    base_url: str

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process has used so far (Linux)."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_fake(latency: float, rpm: int = 0) -> FakeProcess:
    """The fake Gemini server in its own process, so its CPU does not compete with the runner's GIL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "labeling.fake_gemini", "--port", "0", "--latency", str(latency), "--rpm", str(rpm)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"(http://\S+)", line)
    if not found:
        process.kill()
        raise SystemExit(f"the fake server did not start: {line!r}")
    return FakeProcess(process, found.group(1))


def make_images(folder: Path, count: int, size: tuple[int, int] = (1024, 768)) -> Path:
    """Photo-sized JPEGs (prepared down to 768 px as real ones would be), varied colours."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image = Image.new("RGB", size, ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256))
        draw = ImageDraw.Draw(image)
        draw.ellipse([100 + i % 200, 100, 600, 500], fill=((i * 13) % 256, 200, 80))
        image.save(folder / f"img{i:05d}.jpg", quality=88)
    return folder


def settings_for(fake: FakeProcess, tmp: Path, **changes: object) -> Settings:
    base = Settings(
        gemini_api_key="bench-key",
        gemini_base_url=fake.base_url,
        request_timeout_seconds=30,
        cache_dir=str(tmp / "cache"),
        db_path=str(tmp / "bench.duckdb"),
    )
    return base.replace(**changes)


def fresh_store(tmp: Path, name: str, folder: Path) -> Store:
    store = Store(tmp / f"{name}.duckdb")
    import_dataset(store, "BENCH", label="REAL", images_dir=folder)
    return store


def thread_cpu_seconds(name_suffix: str) -> float:
    """CPU time (user + system) of this process's live threads whose names end with `name_suffix` (Linux)."""
    total = 0.0
    for thread in threading.enumerate():
        if thread.name.endswith(name_suffix) and thread.native_id is not None:
            try:
                stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run(
    store: Store, settings: Settings, request: JobRequest, sample_every: float = 0.0
) -> tuple[Progress, float, list[tuple[float, Progress]], float]:
    """The finished run's progress, its seconds, progress samples, and the CPU seconds of its writer thread."""
    manager = JobManager(store, settings)
    start = time.perf_counter()
    job = manager.start(request)
    samples: list[tuple[float, Progress]] = []
    writer = 0.0
    while not job.wait(sample_every or 0.2):
        writer = max(writer, thread_cpu_seconds("-writer"))  # read while it lives: it ends with the run
        if sample_every:
            samples.append((time.perf_counter() - start, job.progress()))
    return job.progress(), time.perf_counter() - start, samples, writer


def throughput(tmp: Path, images: int, size: tuple[int, int]) -> dict[str, float]:
    folder = make_images(tmp / f"throughput-{size[0]}", images, size=size)
    fake = start_fake(latency=0.5)
    try:
        store = fresh_store(tmp, f"throughput-{size[0]}", folder)
        settings = settings_for(fake, tmp, num_workers=16, requests_per_minute=0)
        client_cpu, server_cpu, load = time.process_time(), fake.cpu_seconds(), os.getloadavg()[0]
        progress, seconds, samples, writer_cpu = run(store, settings, JobRequest(("BENCH",), num_workers=16), 1.0)
        client_cpu, server_cpu = time.process_time() - client_cpu, fake.cpu_seconds() - server_cpu
    finally:
        fake.stop()
    assert progress.done == images, progress
    prepare_ms = _prepare_cpu_ms(folder, settings)
    request_ms = _request_cpu_ms(folder, settings, tmp)
    # steady state: between 10% and 90% done, away from the ramp-up and the last, partly idle, second
    marks = [(t, p.done) for t, p in samples if images * 0.1 <= p.done <= images * 0.9]
    steady = (marks[-1][1] - marks[0][1]) / (marks[-1][0] - marks[0][0]) if len(marks) >= 2 else 0.0
    return {
        "images": images,
        "seconds": seconds,
        "wall_rate": images / seconds,
        "steady_rate": steady,
        "ideal": 32.0,
        "client_ms": client_cpu / images * 1000,
        "server_ms": server_cpu / images * 1000,
        "prepare_ms": prepare_ms,
        "request_ms": request_ms,
        "record_ms": writer_cpu / images * 1000,
        "load_before": load,
        "load_after": os.getloadavg()[0],
    }


def _prepare_cpu_ms(folder: Path, settings: Settings, sample: int = 60) -> float:
    """CPU per image of the preparation alone (read, decode, resize, encode, thumbnail), as the runner does it."""
    from labeling.images import prepare

    files = sorted(folder.iterdir())[:sample]
    started = time.process_time()
    for path in files:
        prepare(path.read_bytes(), max_size=settings.image_max_size, thumb_size=320)
    return (time.process_time() - started) / len(files) * 1000


def _request_cpu_ms(folder: Path, settings: Settings, tmp: Path, sample: int = 60) -> float:
    """CPU per image of the request alone, as the runner sends it (building it, HTTP, reading the answer), on
    prepared images of this run, one at a time to a fake without latency."""
    from labeling.annotators.gemini import GeminiAnnotator
    from labeling.images import prepare
    from labeling.taxonomy import ensure_categories

    categories = ensure_categories(Store(tmp / "request-cpu.duckdb"))
    prepared = [
        prepare(path.read_bytes(), max_size=settings.image_max_size) for path in sorted(folder.iterdir())[:sample]
    ]
    fake = start_fake(latency=0.0)
    try:
        annotator = GeminiAnnotator(settings.replace(gemini_base_url=fake.base_url), max_workers=1)
        annotator.describe_and_categorize(prepared[0].data, "image/jpeg", categories, 3)  # connect, build once
        started = time.thread_time()
        for image in prepared:
            annotator.describe_and_categorize(image.data, image.mime_type, categories, 3)
        return (time.thread_time() - started) / len(prepared) * 1000
    finally:
        fake.stop()


def quota(tmp: Path, rpm: int, seconds: float) -> dict[str, float]:
    images = int(rpm * seconds / 60) + 16 * 4  # enough work to keep going until the time is up
    folder = make_images(tmp / "quota", images, size=(640, 480))
    fake = start_fake(latency=0.5, rpm=rpm)
    try:
        store = fresh_store(tmp, "quota", folder)
        settings = settings_for(fake, tmp, num_workers=16, requests_per_minute=rpm, retry_backoff_seconds=1.0)
        manager = JobManager(store, settings)
        start = time.perf_counter()
        job = manager.start(JobRequest(("BENCH",), num_workers=16, requests_per_minute=rpm))
        samples: list[tuple[float, Progress]] = []
        while time.perf_counter() - start < seconds:
            time.sleep(1.0)
            samples.append((time.perf_counter() - start, job.progress()))
        job.cancel()
        job.wait(60)
    finally:
        fake.stop()
    after = [(t, p) for t, p in samples if t >= 60.0]
    (t0, p0), (t1, p1) = after[0], after[-1]
    ok = (p1.requests - p1.rate_limited) - (p0.requests - p0.rate_limited)
    refused = p1.rate_limited - p0.rate_limited
    sent = p1.requests - p0.requests
    return {
        "rpm": rpm,
        "seconds": seconds,
        "window_s": t1 - t0,
        "per_minute": ok / (t1 - t0) * 60,
        "use": ok / (t1 - t0) * 60 / rpm,
        "requests": sent,
        "rate_limited": refused,
        "share_429": refused / sent if sent else 0.0,
        "first_minute_429": samples[0][1].rate_limited if samples else 0,
        "total_429": p1.rate_limited,
    }


def per_image(tmp: Path, images: int) -> dict[str, dict[str, float]]:
    folder = make_images(tmp / "modes", images, size=(1024, 768))
    fake = start_fake(latency=0.0)
    results: dict[str, dict[str, float]] = {}
    try:
        for mode in ("fused", "two-pass"):
            store = fresh_store(tmp, f"mode-{mode}", folder)
            settings = settings_for(fake, tmp, num_workers=8)
            progress, _, _, _ = run(store, settings, JobRequest(("BENCH",), mode=mode))
            run_row = store.run(progress.run_id)
            done = run_row.done
            results[mode] = {
                "images": done,
                "requests_per_image": run_row.requests / done,
                "input_per_image": run_row.tokens_in / done,
                "output_per_image": (run_row.tokens_out + run_row.tokens_thinking) / done,
                "cost_per_1000": run_row.cost_usd / done * 1000,
            }
            store.close()
    finally:
        fake.stop()
    return results


def machine() -> str:
    return f"{cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: check the script, not the figures")
    parser.add_argument("--images", type=int, default=960, help="images for the throughput run")
    parser.add_argument("--rpm", type=int, default=600, help="quota Q, requests per minute")
    parser.add_argument("--quota-seconds", type=float, default=150.0, help="length of the quota run")
    parser.add_argument("--skip-quota", action="store_true")
    parser.add_argument("--only-throughput", action="store_true", help="just the throughput runs")
    args = parser.parse_args()
    if args.quick:
        args.images, args.quota_seconds, args.rpm = 96, 70.0, 300
    print(f"caption_bench {date.today()} on {machine()}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        # 640x480 JPEGs are sent as they are (only the thumbnail is decoded); 1024x768 ones are prepared.
        for size in ((640, 480), (1024, 768)):
            t = throughput(tmp, args.images, size)
            print(
                f"throughput {size[0]}x{size[1]}: {t['images']:.0f} images in {t['seconds']:.1f} s = "
                f"{t['wall_rate']:.1f} images/s overall, {t['steady_rate']:.1f} images/s steady; ideal 32/s -> "
                f"{t['wall_rate'] / 32:.0%} overall, {t['steady_rate'] / 32:.0%} steady (goal >= 90%); CPU per "
                f"image: runner {t['client_ms']:.1f} ms (preparation {t['prepare_ms']:.1f} ms, request and answer "
                f"through the SDK {t['request_ms']:.1f} ms, recording {t['record_ms']:.1f} ms, the rest "
                f"{t['client_ms'] - t['prepare_ms'] - t['request_ms'] - t['record_ms']:.1f} ms: threads, pacing, "
                f"progress, thumbnails written), fake server "
                f"{t['server_ms']:.1f} ms; load average "
                f"{t['load_before']:.1f} before, {t['load_after']:.1f} after"
            )
        if args.only_throughput:
            return 0
        modes = per_image(tmp, 48 if args.quick else 200)
        for mode, figures in modes.items():
            print(
                f"{mode}: {figures['requests_per_image']:.2f} requests/image, "
                f"{figures['input_per_image']:.0f} input + {figures['output_per_image']:.0f} output tokens/image, "
                f"${figures['cost_per_1000']:.4f} per 1,000 images (gemini-2.5-flash-lite prices)"
            )
        fused, two = modes["fused"], modes["two-pass"]
        total_fused = fused["input_per_image"] + fused["output_per_image"]
        total_two = two["input_per_image"] + two["output_per_image"]
        print(
            f"fused vs two-pass (seed flow): {fused['requests_per_image'] / two['requests_per_image']:.2f}x "
            f"requests, {total_fused / total_two:.2f}x tokens, {fused['cost_per_1000'] / two['cost_per_1000']:.2f}x "
            "cost"
        )
        if not args.skip_quota:
            q = quota(tmp, args.rpm, args.quota_seconds)
            print(
                f"quota Q={q['rpm']:.0f}/min for {q['seconds']:.0f} s: after the first minute "
                f"{q['per_minute']:.1f} successful requests/min = {q['use']:.1%} of Q (goal >= 95%), "
                f"{q['rate_limited']:.0f} of {q['requests']:.0f} requests answered 429 = {q['share_429']:.2%} "
                f"(goal < 1%); 429s in the whole run: {q['total_429']:.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
