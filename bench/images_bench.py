"""Benchmark labeling.images.prepare against a naive baseline measured in the same run.

Run from the repository root:  .venv/bin/python bench/images_bench.py [--n 20]

Generates photo-like 12-megapixel JPEGs (4000x3000, quality 90) and 1024x1024 PNGs in a temp dir, then
measures milliseconds per image for:
  (a) baseline: full decode + LANCZOS resize to 768 + JPEG encode (no thumbnail)
  (b) draft decode alone: DCT-scaled decode at the final size, no resize, no encode
  (c) prepare(): draft decode + orient + LANCZOS to 768 + JPEG encode + thumbnail
and for PNGs, prepare() against decode alone. Then throughput of prepare() with 1 and 2 threads.
Goals: prepare >= 3x faster than (a); prepare <= 1.3x draft decode alone.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import PIL
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.support import photo_like
from labeling.images import prepare

MAX_SIZE = 768


def make_inputs(folder: Path, n: int) -> tuple[list[bytes], list[bytes]]:
    """Write the inputs to disk (as a real run would read them) and return their bytes."""
    jpegs, pngs = [], []
    for i in range(n):
        jpeg_path, png_path = folder / f"photo{i}.jpg", folder / f"image{i}.png"
        photo_like(4000, 3000, seed=i).save(jpeg_path, "JPEG", quality=90)
        photo_like(1024, 1024, seed=1000 + i).save(png_path, "PNG")
        jpegs.append(jpeg_path.read_bytes())
        pngs.append(png_path.read_bytes())
    return jpegs, pngs


def fit(size: tuple[int, int], longest: int) -> tuple[int, int]:
    scale = longest / max(size)
    return (round(size[0] * scale), round(size[1] * scale)) if scale < 1 else size


def baseline(data: bytes) -> bytes:
    """What a straightforward implementation does: full decode, LANCZOS, encode."""
    with Image.open(io.BytesIO(data)) as img:
        small = img.convert("RGB").resize(fit(img.size, MAX_SIZE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=90)
    return out.getvalue()


def draft_decode(data: bytes) -> Image.Image:
    """The floor for any JPEG path: DCT-scaled decode at the final size, nothing else."""
    with Image.open(io.BytesIO(data)) as img:
        img.draft("RGB", fit(img.size, MAX_SIZE))
        img.load()
        return img


def full_decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img


def ms_per_image(
    methods: dict[str, Callable[[bytes], object]], inputs: list[bytes], repeat: int = 3
) -> dict[str, float]:
    """Median over images of each method's best of `repeat` runs, in CPU milliseconds of this thread.

    The methods take turns on each image, and CPU time (not wall time) is counted, so other work on a
    shared machine neither skews the ratios nor favours whichever method happened to run in a quiet moment.
    """
    for func in methods.values():
        func(inputs[0])  # warm-up: plugin registration, first allocations
    best = {name: [float("inf")] * len(inputs) for name in methods}
    for _ in range(repeat):
        for i, data in enumerate(inputs):
            for name, func in methods.items():
                start = time.thread_time()
                func(data)
                best[name][i] = min(best[name][i], time.thread_time() - start)
    return {name: statistics.median(times) * 1000 for name, times in best.items()}


def images_per_second(inputs: list[bytes], threads: int, rounds: int = 3) -> float:
    """Throughput of prepare() over the whole list with `threads` workers (best of `rounds`)."""
    best = float("inf")
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for _ in range(rounds):
            start = time.perf_counter()
            list(pool.map(prepare, inputs))
            best = min(best, time.perf_counter() - start)
    return len(inputs) / best


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20, help="images of each kind (default 20)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        print(f"Generating {args.n} 4000x3000 JPEGs (q90) and {args.n} 1024x1024 PNGs ...", flush=True)
        jpegs, pngs = make_inputs(Path(tmp), args.n)

    jpeg_mb = statistics.mean(len(d) for d in jpegs) / 1e6
    png_mb = statistics.mean(len(d) for d in pngs) / 1e6
    jpeg_ms = ms_per_image({"baseline": baseline, "draft": draft_decode, "prepare": prepare}, jpegs)
    base, draft, ours = jpeg_ms["baseline"], jpeg_ms["draft"], jpeg_ms["prepare"]
    png_ms = ms_per_image({"decode": full_decode, "prepare": prepare}, pngs)
    png_decode, png_ours = png_ms["decode"], png_ms["prepare"]
    one_thread = images_per_second(jpegs, threads=1)
    two_threads = images_per_second(jpegs, threads=2)

    speedup, overhead, png_ratio = base / ours, ours / draft, png_ours / png_decode
    verdict = {True: "met", False: "MISSED"}
    print(
        f"""
Machine: {os.cpu_count()} CPUs, {cpu_model()}; Python {platform.python_version()}, Pillow {PIL.__version__};
{date.today().isoformat()}; n={args.n} images of each kind, median CPU ms/image (best of 3 per image).
Throughput is wall-clock.

| JPEG 4000x3000 q90 ({jpeg_mb:.1f} MB avg) -> 768 px       | ms/image |
|---------------------------------------------------------|---------:|
| (a) baseline: full decode + LANCZOS + JPEG encode        | {base:8.1f} |
| (b) draft decode alone                                  | {draft:8.1f} |
| (c) prepare() incl. 320 px thumbnail                     | {ours:8.1f} |

| PNG 1024x1024 ({png_mb:.1f} MB avg)                          | ms/image |
|---------------------------------------------------------|---------:|
| decode alone                                            | {png_decode:8.1f} |
| prepare() incl. thumbnail                                | {png_ours:8.1f} |

| prepare() on the JPEGs | images/s |
|------------------------|---------:|
| 1 thread               | {one_thread:8.1f} |
| 2 threads              | {two_threads:8.1f} |

- speedup of prepare vs (a): {speedup:.2f}x (goal >= 3x: {verdict[speedup >= 3]})
- prepare / draft decode alone: {overhead:.2f}x (goal <= 1.3x: {verdict[overhead <= 1.3]})
- PNG prepare / decode alone: {png_ratio:.2f}x
- 2 threads / 1 thread: {two_threads / one_thread:.2f}x"""
    )


if __name__ == "__main__":
    main()
