"""Benchmark the duplicate grouping (exact + near, band search in DuckDB) at 1,000,000 images, with baselines.

Run from the repository root:  .venv/bin/python bench/duplicates_bench.py [--images 1000000] [--distance 6]

Fills a fresh DuckDB file (the app's schema) with two datasets, REAL and GEN, of N/2 images each and one
`image_facts` row per image: random 64-bit pHash and dHash (numpy), sha256 of the row number. Into that it
plants known groups: exact copies within REAL and across REAL/GEN (same sha256 and hashes), near copies within
GEN and across (1..d bits flipped in each hash), chains of three whose ends are up to 2d apart (joined only
through the middle image), and decoys one bit beyond the distance in one hash (must stay apart). Then it times
`find_duplicates` (pairs, union-find, members, saving the groups) and checks it found exactly the planted groups.

Baselines in the same run: the same grouping on N/10 images (how it scales), and the naive all-pairs comparison
in DuckDB on --naive images, extrapolated by (N / naive)^2. Times are wall clock and, in brackets, CPU seconds of
the whole process (every DuckDB thread); the machine is shared, so the load average is printed too.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from bench.support import cpu_model, peak_rss_mib
from labeling.duplicates import DuplicateReport, find_duplicates
from labeling.store import Store
from labeling.store.base import registered


@dataclass(frozen=True)
class Planted:
    """What the data should yield: each group's image indexes and whether it is exact / leaks."""

    groups: dict[frozenset[int], tuple[str, bool]]  # indexes -> (kind, leakage)
    decoys: int


def _flip(rng: np.random.Generator, value: np.uint64, bits: int) -> np.uint64:
    for bit in rng.choice(64, size=bits, replace=False):
        value ^= np.uint64(1) << np.uint64(bit)
    return value


def plant(
    rng: np.random.Generator, n: int, distance: int, phash: np.ndarray, dhash: np.ndarray, sha: np.ndarray
) -> Planted:
    """Overwrite rows with known groups; indexes < n // 2 are REAL, the rest GEN. Returns what was planted."""
    half = n // 2
    scale = max(1, n // 1_000_000)
    free_real = iter(rng.permutation(half))
    free_gen = iter(half + rng.permutation(n - half))
    groups: dict[frozenset[int], tuple[str, bool]] = {}

    def copy(src: int, dst: int, bits: int, exact: bool) -> None:
        if exact:
            phash[dst], dhash[dst], sha[dst] = phash[src], dhash[src], sha[src]
        else:
            phash[dst] = _flip(rng, phash[src], bits)
            dhash[dst] = _flip(rng, dhash[src], int(rng.integers(0, bits + 1)))

    for _ in range(300 * scale):  # exact pairs within REAL
        a, b = next(free_real), next(free_real)
        copy(a, b, 0, True)
        groups[frozenset((a, b))] = ("exact", False)
    for _ in range(50 * scale):  # exact triples within REAL
        a, b, c = next(free_real), next(free_real), next(free_real)
        copy(a, b, 0, True)
        copy(a, c, 0, True)
        groups[frozenset((a, b, c))] = ("exact", False)
    for _ in range(200 * scale):  # exact across: the same file in REAL and GEN
        a, b = next(free_real), next(free_gen)
        copy(a, b, 0, True)
        groups[frozenset((a, b))] = ("exact", True)
    for _ in range(300 * scale):  # near within GEN
        a, b = next(free_gen), next(free_gen)
        copy(a, b, int(rng.integers(1, distance + 1)) if distance else 0, False)
        groups[frozenset((a, b))] = ("near", False)
    for _ in range(200 * scale):  # near across: a re-encoded REAL photo in GEN
        a, b = next(free_real), next(free_gen)
        copy(a, b, int(rng.integers(0, distance + 1)), False)
        groups[frozenset((a, b))] = ("near", True)
    for _ in range(50 * scale):  # chains a - b - c, each step at the distance
        a, b, c = next(free_gen), next(free_gen), next(free_gen)
        copy(a, b, distance, False)
        copy(b, c, distance, False)
        groups[frozenset((a, b, c))] = ("near", False)
    decoys = 0
    for index in range(400 * scale):  # one hash one bit beyond the distance: never a pair
        a, b = next(free_real), next(free_gen)
        if index % 2:
            phash[b], dhash[b] = _flip(rng, phash[a], distance + 1), _flip(rng, dhash[a], min(distance, 2))
        else:
            phash[b], dhash[b] = _flip(rng, phash[a], min(distance, 3)), _flip(rng, dhash[a], distance + 1)
        decoys += 1
    return Planted(groups, decoys)


def populate(store: Store, n: int, distance: int, seed: int) -> Planted:
    """REAL and GEN with n // 2 images each, their facts in bulk (INSERT ... SELECT from a frame)."""
    rng = np.random.default_rng(seed)
    phash = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    dhash = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    sha = np.arange(n, dtype=np.int64)  # the sha256 is of this number: equal numbers, equal bytes
    planted = plant(rng, n, distance, phash, dhash, sha)
    with store.transaction() as cur:
        for name, start, count in (("REAL", 0, n // 2), ("GEN", n // 2, n - n // 2)):
            cur.execute("INSERT INTO datasets (name, label, source_kind) VALUES (?, ?, 'local')", [name, name])
            cur.execute(
                "INSERT INTO images (id, dataset_id, name, location, status) "
                "SELECT i + 1, (SELECT id FROM datasets WHERE name = $name), "
                "lower($name) || '_' || lpad(i::VARCHAR, 7, '0') || '.jpg', "
                "lower($name) || '_' || lpad(i::VARCHAR, 7, '0') || '.jpg', 'found' "
                "FROM range($start, $stop) t(i)",
                {"name": name, "start": start, "stop": start + count},
            )
        frame = pd.DataFrame({"image_id": np.arange(1, n + 1), "sha": sha, "phash": phash, "dhash": dhash})
        with registered(cur, "bench_facts", frame):
            cur.execute(
                "INSERT INTO image_facts (image_id, facts_version, sha256, phash, dhash) "
                "SELECT image_id, 'bench', sha256(sha::VARCHAR), phash, dhash FROM bench_facts"
            )
    return planted


def check(report: DuplicateReport, planted: Planted) -> None:
    """The report holds exactly the planted groups, each of the planted kind and leakage."""
    found = {frozenset(image.image_id - 1 for image in g.images): (g.kind, g.leakage) for g in report.groups}
    missing = set(planted.groups) - set(found)
    extra = set(found) - set(planted.groups)
    wrong = [k for k in planted.groups if k in found and found[k] != planted.groups[k]]
    assert not missing and not extra and not wrong, (len(missing), len(extra), len(wrong))


def timed_search(store: Store, distance: int) -> tuple[float, float, float, DuplicateReport]:
    """(wall, CPU, wall of the SQL pair search alone, report)."""
    ids = [store.dataset_id("REAL"), store.dataset_id("GEN")]
    wall, cpu = time.perf_counter(), time.process_time()
    store.duplicate_pairs(ids, distance)
    pairs_wall = time.perf_counter() - wall
    wall, cpu = time.perf_counter(), time.process_time()
    report = find_duplicates(store, ["REAL", "GEN"], distance)
    return time.perf_counter() - wall, time.process_time() - cpu, pairs_wall, report


def naive(store: Store, sample: int, distance: int) -> tuple[float, float, int]:
    """All pairs of the first `sample` images compared in DuckDB: (wall, CPU, pairs found)."""
    wall, cpu = time.perf_counter(), time.process_time()
    row = store.fetch_one(
        "WITH h AS (SELECT image_id, phash, dhash FROM image_facts WHERE image_id <= ?) "
        "SELECT count(*) FROM h a JOIN h b ON a.image_id < b.image_id "
        "WHERE bit_count(xor(a.phash, b.phash)) <= ? AND bit_count(xor(a.dhash, b.dhash)) <= ?",
        [sample, distance, distance],
    )
    return time.perf_counter() - wall, time.process_time() - cpu, int(row[0]) if row else 0


def run(folder: Path, n: int, distance: int, seed: int) -> tuple[float, float, float, DuplicateReport, Store]:
    store = Store(folder / f"bench_{n}.duckdb")
    started = time.perf_counter()
    planted = populate(store, n, distance, seed)
    print(f"   populate {n:,} images + facts: {time.perf_counter() - started:.1f} s")
    wall, cpu, pairs_wall, report = timed_search(store, distance)
    check(report, planted)
    print(
        f"   find_duplicates: {wall:.2f} s [{cpu:.2f} s CPU] (pair search alone {pairs_wall:.2f} s); "
        f"{len(report.groups):,} groups = exactly the planted ones ({planted.decoys:,} decoys apart); "
        f"exact within {report.exact_within:,}, near within {report.near_within:,}, across {report.across:,}, "
        f"leaked REAL images {report.leaked_real_images:,}"
    )
    return wall, cpu, pairs_wall, report, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1_000_000, help="images in all (default 1,000,000)")
    parser.add_argument("--distance", type=int, default=6, help="near-duplicate distance (default 6)")
    parser.add_argument("--naive", type=int, default=20_000, help="images for the all-pairs baseline")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()

    print(
        f"Machine: {platform.platform()}, {cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}; load average {os.getloadavg()}"
    )
    with tempfile.TemporaryDirectory(prefix="duplicates-bench-") as tmp:
        folder = Path(tmp)
        small_n = args.images // 10
        print(f"\n1. Baseline: {small_n:,} images, distance {args.distance}")
        small_wall, _, _, _, small = run(folder, small_n, args.distance, args.seed)
        small.close()
        print(f"\n2. {args.images:,} images, distance {args.distance} (goal < 60 s on 2 cores)")
        wall, _, _, _, store = run(folder, args.images, args.distance, args.seed)
        print(f"   -> {wall / small_wall:.1f}x the time for 10x the images")
        print(f"\n3. Baseline: naive all-pairs in DuckDB on {args.naive:,} images")
        naive_wall, naive_cpu, pairs = naive(store, args.naive, args.distance)
        projected = naive_wall * (args.images / args.naive) ** 2
        print(
            f"   {naive_wall:.2f} s [{naive_cpu:.2f} s CPU] for {args.naive * (args.naive - 1) // 2:,} pairs "
            f"({pairs:,} near); extrapolated to {args.images:,}: {projected / 3600:.1f} h "
            f"-> band search {projected / wall:,.0f}x faster"
        )
        store.close()
    print(f"\npeak RSS {peak_rss_mib():,.0f} MiB; load average at the end {os.getloadavg()}; {date.today()}")


if __name__ == "__main__":
    main()
