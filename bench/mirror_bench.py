"""Benchmark the S3 mirror against baselines measured in the same run, on a local moto server.

Run from the repository root:  .venv/bin/python bench/mirror_bench.py [--objects 1500] [--workers 16]

Starts one moto S3 server subprocess (labeling.fake_s3) seeded with OBJECTS images of SIZE bytes, and a
100,000-key bucket, then measures objects per second for:
  (a) sequential: one get_object + file write at a time (the naive loop the seed's download.py ran)
  (b) raw parallel GET ceiling: WORKERS threads on one shared client doing get_object().read() only
  (c) labeling.mirror.mirror(): WORKERS threads, atomic writes, DB state in batches, log file
Rounds alternate (b) and (c) so both see the same server state; the best round of each is reported.
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
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

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


def _client(endpoint: str, pool: int) -> object:
    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=DUMMY_KEY_ID,
                        aws_secret_access_key=DUMMY_SECRET,
                        config=Config(max_pool_connections=pool, retries={"mode": "standard"}))


def sequential(endpoint: str, keys: list[str], folder: Path) -> float:
    client = _client(endpoint, 1)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for key in keys:
        data = client.get_object(Bucket=MIRROR_BUCKET, Key=key)["Body"].read()  # type: ignore[attr-defined]
        (folder / key.rsplit("/", 1)[-1]).write_bytes(data)
    return len(keys) / (time.perf_counter() - started)


def ceiling(endpoint: str, keys: list[str], workers: int) -> float:
    client = _client(endpoint, workers)
    client.head_bucket(Bucket=MIRROR_BUCKET)  # type: ignore[attr-defined]  # connect before the clock starts
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(lambda key: len(client.get_object(  # type: ignore[attr-defined]
            Bucket=MIRROR_BUCKET, Key=key)["Body"].read()), keys))
    assert total > 0
    return len(keys) / (time.perf_counter() - started)


def mirrored(endpoint: str, folder: Path, db: Path, workers: int) -> tuple[float, float]:
    """(objects/s of mirror() alone, objects/s including the analysis' listing)."""
    source = S3Source(MIRROR_BUCKET, PREFIX, endpoint_url=endpoint, max_pool_connections=workers)
    source.check()  # client created and connected before the clock starts, as for the ceiling
    with Store(db) as store:
        started = time.perf_counter()
        analysis = analyze(source, None, output_dir=folder, store=store)
        report = mirror(source, analysis, store=store, workers=workers)
        total = time.perf_counter() - started
    assert report.failed == 0 and report.fetched == len(analysis.to_fetch)
    return report.fetched / report.seconds, report.fetched / total


def listing_and_matching(endpoint: str, count: int, folder: Path) -> dict[str, float]:
    source = S3Source(LIST_BUCKET, PREFIX, endpoint_url=endpoint)
    source.check()
    started = time.perf_counter()
    objects = list(source.list_objects())
    listed = time.perf_counter() - started
    assert len(objects) == count
    names = [item.key.rsplit("/", 1)[-1] for item in objects]
    names = [name[:-4] + ".png" if i % 4 == 0 else name for i, name in enumerate(names)]  # stem matches too
    started = time.perf_counter()
    result = KeyIndex(item.key for item in objects).match(names)
    matching = time.perf_counter() - started
    assert len(result.found) == count
    started = time.perf_counter()
    analysis = analyze(source, NameList(names=names), output_dir=folder, objects=objects)
    analysis_after_listing = time.perf_counter() - started
    assert len(analysis.to_fetch) == count
    return {"listing_s": listed, "matching_s": matching, "analysis_after_listing_s": analysis_after_listing}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1500)
    parser.add_argument("--size", type=int, default=100_000, help="bytes per object")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--list-keys", type=int, default=100_000)
    args = parser.parse_args()

    keys = _keys(args.objects, PREFIX)
    seed = {MIRROR_BUCKET: [(key, args.size) for key in keys],
            LIST_BUCKET: [(key, 1) for key in _keys(args.list_keys, PREFIX)]}
    work = Path(tempfile.mkdtemp(prefix="mirror_bench_"))
    print(f"Machine: {platform.machine()} {os.cpu_count()} CPUs, {platform.python_implementation()} "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    started = time.perf_counter()
    try:
        with LocalS3Server(work / "moto.log", seed=seed) as server:
            print(f"moto server seeded with {args.objects:,} x {args.size:,} B and {args.list_keys:,} keys "
                  f"in {time.perf_counter() - started:.1f} s at {server.endpoint}")
            os.environ.setdefault("AWS_ACCESS_KEY_ID", DUMMY_KEY_ID)
            os.environ.setdefault("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
            os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
            ceilings, mirrors, end_to_end = [], [], []
            for round_number in range(args.rounds):
                ceilings.append(ceiling(server.endpoint, keys, args.workers))
                folder = work / f"mirror{round_number}"
                rate, total_rate = mirrored(server.endpoint, folder, work / f"state{round_number}.duckdb",
                                            args.workers)
                mirrors.append(rate)
                end_to_end.append(total_rate)
                shutil.rmtree(folder)
                print(f"round {round_number + 1}: ceiling {ceilings[-1]:,.0f}/s, mirror {rate:,.0f}/s "
                      f"({rate / ceilings[-1]:.0%}), mirror incl. listing {total_rate:,.0f}/s")
            sample = keys[: max(100, args.objects // 3)]
            baseline = sequential(server.endpoint, sample, work / "sequential")
            listing = listing_and_matching(server.endpoint, args.list_keys, work / "empty")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    best_ceiling, best_mirror = max(ceilings), max(mirrors)
    print()
    print(f"(a) sequential get+write:             {baseline:8,.0f} objects/s ({len(sample):,} objects)")
    print(f"(b) raw parallel GET ceiling ({args.workers} thr): {best_ceiling:8,.0f} objects/s")
    print(f"(c) mirror() ({args.workers} workers):         {best_mirror:8,.0f} objects/s  = "
          f"{best_mirror / best_ceiling:.0%} of (b), {best_mirror / baseline:.1f}x (a)   [goal >= 85% of (b)]")
    print(f"    mirror incl. analysis listing:    {max(end_to_end):8,.0f} objects/s")
    print(f"Listing {args.list_keys:,} keys: {listing['listing_s']:.2f} s; matching {listing['matching_s']:.3f} s; "
          f"whole analysis after the listing {listing['analysis_after_listing_s']:.3f} s   [goal <= 1 s]")


if __name__ == "__main__":
    main()
