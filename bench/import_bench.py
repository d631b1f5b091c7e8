"""Import benchmark: a 1,000,000-name CSV list matched against a 100,000-file folder, stored in DuckDB.

Baselines measured in the same run:
- plain Python: csv.reader + os.walk + dict lookups, the same matching rules, results kept in memory only
  (no database): the floor for any Python implementation;
- row-by-row INSERT (what a naive script does), timed on a sample and extrapolated to the full list.

Peak memory: the import alone runs once more in a fresh process, which reports its peak RSS (goal < 400 MB for
1,000,000 names), beside the peak of a process that only loads the same modules and opens a store.

Run: .venv/bin/python bench/import_bench.py [--names 1000000] [--files 100000]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.support import peak_rss_mib
from labeling.datasets import import_dataset
from labeling.store import Store


def make_folder(root: Path, files: int) -> None:
    """`files` empty image files in 100 subfolders; a tenth are .png so stem matching has work to do."""
    for index in range(files):
        folder = root / f"part{index % 100:03d}"
        if index < 100:
            folder.mkdir(parents=True, exist_ok=True)
        suffix = ".png" if index % 10 == 0 else ".jpg"
        (folder / f"img_{index:07d}{suffix}").touch()


def make_list(path: Path, names: int, files: int) -> None:
    """A headerless list: every file once (listed as .jpg), the rest names that are missing."""
    with path.open("w", encoding="utf-8") as out:
        for index in range(names):
            out.write(f"img_{index:07d}.jpg\n")


def plain_python(list_path: Path, root: Path) -> dict[str, int]:
    """The same rules in plain Python, kept in memory: exact basename, then stem among images."""
    by_name: dict[str, list[str]] = defaultdict(list)
    by_stem: dict[str, list[str]] = defaultdict(list)
    for folder, _, filenames in os.walk(root):
        for filename in filenames:
            relative = os.path.relpath(os.path.join(folder, filename), root)
            by_name[filename].append(relative)
            by_stem[os.path.splitext(filename)[0]].append(relative)
    counts = {"found": 0, "missing": 0, "ambiguous": 0}
    seen: set[str] = set()
    with list_path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.reader(handle):
            if not row or not row[0].strip() or row[0].strip() in seen:
                continue
            name = row[0].strip()
            seen.add(name)
            candidates = by_name.get(name) or by_stem.get(os.path.splitext(name)[0], [])
            key = "found" if len(candidates) == 1 else "ambiguous" if candidates else "missing"
            counts[key] += 1
    return counts


def row_by_row_rate(work: Path, rows: int = 20_000) -> float:
    """Rows per second of one INSERT per row, as a script looping over names would write."""
    con = duckdb.connect(str(work / "rowbyrow.duckdb"))
    con.execute(
        "CREATE TABLE images (dataset_id INTEGER, name VARCHAR, location VARCHAR, status VARCHAR, "
        "UNIQUE (dataset_id, name))"
    )
    start = time.perf_counter()
    for index in range(rows):
        con.execute("INSERT INTO images VALUES (1, ?, ?, 'found')", [f"n{index}.jpg", f"p/n{index}.jpg"])
    elapsed = time.perf_counter() - start
    con.close()
    return rows / elapsed


def child(list_path: str, root: str, db: str, import_it: bool) -> dict[str, float]:
    """In a fresh process: the import alone (or only opening the store), with the peak RSS it took."""
    with Store(db) as store:
        start = time.perf_counter()
        if import_it:
            import_dataset(
                store, "BENCH", csv_data=Path(list_path).read_bytes(), csv_name=list_path, images_dir=Path(root)
            )
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_mib": peak_rss_mib()}


def run_child(list_path: Path, root: Path, db: Path, import_it: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", str(list_path), str(root), str(db)]
    out = subprocess.run(
        [*command, "--import" if import_it else "--open-only"], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--names", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--import", dest="import_it", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--open-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        list_path, root, db = args.child
        print(json.dumps(child(list_path, root, db, import_it=args.import_it)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        root, list_path = work / "images", work / "list.csv"
        make_folder(root, args.files)
        make_list(list_path, args.names, args.files)

        start = time.perf_counter()
        baseline = plain_python(list_path, root)
        plain_seconds = time.perf_counter() - start

        with Store(work / "bench.duckdb") as store:
            start = time.perf_counter()
            report = import_dataset(
                store, "BENCH", csv_data=list_path.read_bytes(), csv_name=str(list_path), images_dir=root
            )
            import_seconds = time.perf_counter() - start
            start = time.perf_counter()
            again = import_dataset(
                store, "BENCH", csv_data=list_path.read_bytes(), csv_name=str(list_path), images_dir=root
            )
            reimport_seconds = time.perf_counter() - start
            start = time.perf_counter()
            store.dataset_summaries()
            summary_ms = (time.perf_counter() - start) * 1000
        rate = row_by_row_rate(work)
        fresh = run_child(list_path, root, work / "fresh.duckdb", import_it=True)
        idle = run_child(list_path, root, work / "idle.duckdb", import_it=False)

    assert (report.found, report.missing, report.ambiguous) == (
        baseline["found"],
        baseline["missing"],
        baseline["ambiguous"],
    ), (report, baseline)
    assert again.added == 0
    row_by_row_seconds = args.names / rate
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, duckdb {duckdb.__version__}"
    )
    print(f"{args.names:,} names against {args.files:,} files: {report.found:,} found, {report.missing:,} missing")
    print(f"import (parse + list + match + store):   {import_seconds:6.2f} s")
    print(f"re-import of the same list (idempotent): {reimport_seconds:6.2f} s")
    print(
        f"plain-Python matching, in memory only:   {plain_seconds:6.2f} s   ratio import/plain = "
        f"{import_seconds / plain_seconds:.2f}x"
    )
    print(
        f"row-by-row INSERT ({rate:,.0f} rows/s) would take {row_by_row_seconds:,.0f} s for the writes "
        f"alone   ratio = {row_by_row_seconds / import_seconds:.0f}x slower than import"
    )
    print(f"dataset summary query after import:      {summary_ms:6.0f} ms")
    print(
        f"import in a fresh process: {fresh['seconds']:.2f} s, peak RSS {fresh['peak_mib']:,.0f} MiB "
        f"(a process that only opens the store: {idle['peak_mib']:,.0f} MiB); goal < 400 MB"
    )


if __name__ == "__main__":
    main()
