"""Benchmark the S3 mirror against baselines measured in the same run, on a local moto server.

Run from the repository root:  .venv/bin/python bench/mirror_bench.py [--objects 1500] [--workers 16]

Starts one moto S3 server subprocess (labeling.fake_s3) seeded with OBJECTS images of SIZE bytes, and a
100,000-key bucket, then measures objects per second for:
  (a) sequential: one get_object + file write at a time (the naive loop the seed's download.py ran)
  (b) raw parallel GET ceiling: WORKERS threads on one shared client doing get_object().read() only
  (c) labeling.mirror.mirror(): WORKERS threads, atomic writes, DB state in batches, log file
Rounds alternate (b) and (c) so both see the same server and machine load; the median of the per-round ratios
(c)/(b) is the figure to read (the best rounds are shown too). The client's CPU time per object (process_time) is
reported as well: unlike objects/s it does not depend on what else the machine runs.
Goal: (c) >= 85% of (b).

Listing + matching for 100,000 keys: the paginated listing (1,000 keys a page, boto3 over HTTP) is timed apart from
the matching (KeyIndex over the listed keys, 100,000 CSV names, a quarter of them listed with another extension)
and the full analysis after the listing (matching + refused keys + already-local check against an empty folder).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

import boto3
from botocore.config import Config

from labeling.fake_s3 import DUMMY_KEY_ID, DUMMY_SECRET, LocalS3Server
from labeling.matching import KeyIndex
from labeling.mirror import mirror
from labeling.names import NameList
from labeling.s3 import S3Source
from labeling.s3_analysis import analyze
from labeling.store import Store

MIRROR_BUCKET = "bench-mirror"
LIST_BUCKET = "bench-listing"
PREFIX = "datalake_training/REAL/"


def _keys(count: int, prefix: str) -> list[str]:
    return [f"{prefix}part{i % 10}/img_{i:06d}.jpg" for i in range(count)]


def _client(endpoint: str, pool: int) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=DUMMY_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET,
        config=Config(max_pool_connections=pool, retries={"mode": "standard"}),
    )


def sequential(endpoint: str, keys: list[str], folder: Path) -> float:
    client = _client(endpoint, 1)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for key in keys:
        data = client.get_object(Bucket=MIRROR_BUCKET, Key=key)["Body"].read()
        (folder / key.rsplit("/", 1)[-1]).write_bytes(data)
    return len(keys) / (time.perf_counter() - started)


def ceiling(endpoint: str, keys: list[str], workers: int) -> tuple[float, float]:
    """(objects/s, client CPU ms per object) of bare parallel GETs."""
    client = _client(endpoint, workers)
    client.head_bucket(Bucket=MIRROR_BUCKET)  # connect before the clock starts
    started, cpu = time.perf_counter(), time.process_time()

    def get(key: str) -> int:
        return len(client.get_object(Bucket=MIRROR_BUCKET, Key=key)["Body"].read())

    with ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(get, keys))
    assert total > 0
    return len(keys) / (time.perf_counter() - started), (time.process_time() - cpu) * 1000 / len(keys)


def mirrored(endpoint: str, folder: Path, db: Path, workers: int) -> tuple[float, float, float]:
    """(objects/s of mirror() alone, objects/s including the analysis' listing, client CPU ms per object)."""
    source = S3Source(MIRROR_BUCKET, PREFIX, endpoint_url=endpoint, max_pool_connections=workers)
    source.check()  # client created and connected before the clock starts, as for the ceiling
    store = Store(db)
    try:
        started = time.perf_counter()
        analysis = analyze(source, None, output_dir=folder, store=store)
        cpu = time.process_time()
        report = mirror(source, analysis, store=store, workers=workers)
        cpu = time.process_time() - cpu
        total = time.perf_counter() - started
    finally:
        store.close()
    assert report.failed == 0 and report.fetched == len(analysis.to_fetch)
    return report.fetched / report.seconds, report.fetched / total, cpu * 1000 / report.fetched


def listing_and_matching(endpoint: str, count: int, folder: Path) -> dict[str, float]:
    """Seconds of the listing, of KeyIndex + match alone, and of the whole analysis after the listing
    (wall time, and CPU time of this process, which does not depend on what else the machine runs)."""
    source = S3Source(LIST_BUCKET, PREFIX, endpoint_url=endpoint)
    source.check()
    started = time.perf_counter()
    objects = list(source.list_objects())
    listed = time.perf_counter() - started
    assert len(objects) == count
    names = [item.key.rsplit("/", 1)[-1] for item in objects]
    names = [name[:-4] + ".png" if i % 4 == 0 else name for i, name in enumerate(names)]  # stem matches too
    started, cpu = time.perf_counter(), time.process_time()
    result = KeyIndex(item.key for item in objects).match(names)
    matching, matching_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(result.found) == count
    started, cpu = time.perf_counter(), time.process_time()
    analysis = analyze(source, NameList(names=names), output_dir=folder, objects=objects)
    whole, whole_cpu = time.perf_counter() - started, time.process_time() - cpu
    assert len(analysis.to_fetch) == count
    return {
        "listing_s": listed,
        "matching_s": matching,
        "matching_cpu_s": matching_cpu,
        "analysis_after_listing_s": whole,
        "analysis_cpu_s": whole_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=800)
    parser.add_argument("--size", type=int, default=100_000, help="bytes per object")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--list-keys", type=int, default=100_000)
    args = parser.parse_args()

    keys = _keys(args.objects, PREFIX)
    seed = {
        MIRROR_BUCKET: [(key, args.size) for key in keys],
        LIST_BUCKET: [(key, 1) for key in _keys(args.list_keys, PREFIX)],
    }
    work = Path(tempfile.mkdtemp(prefix="mirror_bench_"))
    print(
        f"Machine: {platform.machine()} {os.cpu_count()} CPUs, {platform.python_implementation()} "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}"
    )
    started = time.perf_counter()
    try:
        with LocalS3Server(work / "moto.log", seed=seed) as server:
            print(
                f"moto server seeded with {args.objects:,} x {args.size:,} B and {args.list_keys:,} keys "
                f"in {time.perf_counter() - started:.1f} s at {server.endpoint}"
            )
            os.environ.setdefault("AWS_ACCESS_KEY_ID", DUMMY_KEY_ID)
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
            ceilings, mirrors, end_to_end, ratios, cpu_ceiling, cpu_mirror = [], [], [], [], [], []
            for round_number in range(args.rounds):
                rate_b, cpu_b = ceiling(server.endpoint, keys, args.workers)
                folder = work / f"mirror{round_number}"
                rate, total_rate, cpu_c = mirrored(
                    server.endpoint, folder, work / f"state{round_number}.duckdb", args.workers
                )
                shutil.rmtree(folder)
                ceilings.append(rate_b)
                mirrors.append(rate)
                end_to_end.append(total_rate)
                ratios.append(rate / rate_b)
                cpu_ceiling.append(cpu_b)
                cpu_mirror.append(cpu_c)
                print(
                    f"round {round_number + 1}: ceiling {rate_b:,.0f}/s ({cpu_b:.2f} ms CPU/object), mirror "
                    f"{rate:,.0f}/s ({cpu_c:.2f} ms CPU/object) = {rate / rate_b:.0%}; incl. listing "
                    f"{total_rate:,.0f}/s; load {os.getloadavg()[0]:.1f}"
                )
            sample = keys[: max(100, args.objects // 3)]
            baseline = sequential(server.endpoint, sample, work / "sequential")
            listing = listing_and_matching(server.endpoint, args.list_keys, work / "empty")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    best_ceiling, best_mirror = max(ceilings), max(mirrors)
    print()
    print(f"(a) sequential get+write:              {baseline:8,.0f} objects/s ({len(sample):,} objects)")
    print(
        f"(b) raw parallel GET ceiling ({args.workers} thr): {statistics.median(ceilings):8,.0f} objects/s median, "
        f"best {best_ceiling:,.0f}; client CPU {statistics.median(cpu_ceiling):.2f} ms/object"
    )
    print(
        f"(c) mirror() ({args.workers} workers):          {statistics.median(mirrors):8,.0f} objects/s median, "
        f"best {best_mirror:,.0f}; client CPU {statistics.median(cpu_mirror):.2f} ms/object"
    )
    print(
        f"    (c)/(b) median of rounds {statistics.median(ratios):.0%} (best/best {best_mirror / best_ceiling:.0%})"
        f"   [goal >= 85%];  (c)/(a) {statistics.median(mirrors) / baseline:.1f}x"
    )
    print(f"    mirror incl. analysis listing:     {statistics.median(end_to_end):8,.0f} objects/s median")
    print(
        f"Listing {args.list_keys:,} keys (moto re-sorts the whole bucket for every 1,000-key page): "
        f"{listing['listing_s']:.1f} s"
    )
    print(
        f"Matching {args.list_keys:,} names (KeyIndex + match): {listing['matching_s']:.3f} s wall, "
        f"{listing['matching_cpu_s']:.3f} s CPU"
    )
    print(
        f"Whole analysis after the listing (matching, unsafe keys, already-local check): "
        f"{listing['analysis_after_listing_s']:.3f} s wall, {listing['analysis_cpu_s']:.3f} s CPU   [goal <= 1 s]"
    )
    print(f"Load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
