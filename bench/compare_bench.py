"""Benchmark the compare aggregation and the export against baselines measured in the same run.

Run from the repository root:  .venv/bin/python bench/compare_bench.py [--images 1000000] [--keep DB]

Fills a fresh DuckDB file (the app's schema, migrations included) with two datasets of N images each using bulk
INSERT ... SELECT from range(): one annotation per image with 1-2 of 14 categories (10% of images also have an
older annotation, so "latest per image" matters), and human labels on 5% of images (reviewed; half of them
with their own categories). Then measures:

1. Aggregation for REAL + GEN (goal < 200 ms), per label source, warm: `Store.category_distribution`, which
   reads the label tally after a sync that finds nothing changed. Baselines on the same data:
   (a) pandas: pull (dataset, effective categories) per image from DuckDB, then explode + value_counts;
   (b) DuckDB straight from the schema's views (`category_distribution_from_views`), no tally.
   Also: building the tally from scratch (once per database) and an incremental sync after 1,000 new
   annotations and 100 review saves.
2. Export of one dataset's N rows (goal < 5 s): `export_dataset` to the seed's CSV (DuckDB COPY) and to Parquet.
   Baseline: fetch the same rows from DuckDB and write them with a Python csv.writer loop.

Times are wall clock (best of --repeat runs) and, in brackets, CPU seconds of the whole process (every DuckDB
thread), because the machine is shared: the load average is printed with the results.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from labeling.exporting import export_dataset
from labeling.store import Store
from labeling.vocabulary import LABEL_SOURCES, LabelSource

CATEGORIES = [
    "people",
    "animals",
    "food",
    "landscapes",
    "cityscapes",
    "architecture",
    "vehicles",
    "plants",
    "objects",
    "sports",
    "art",
    "text and documents",
    "night",
    "abstract",
]


def populate(store: Store, images: int) -> None:
    """Two datasets of `images` images each, annotations with history, and some human labels, in bulk SQL."""
    with store.transaction() as cur:
        for name in ("REAL", "GEN"):
            cur.execute("INSERT INTO datasets (name, label, source_kind) VALUES (?, ?, 'none')", [name, name])
            cur.execute(
                """
                INSERT INTO images (dataset_id, name, status)
                SELECT (SELECT id FROM datasets WHERE name = $name),
                       lower($name) || '_' || lpad(i::VARCHAR, 7, '0') || '.jpg', 'unlinked'
                FROM range($n) t(i)""",
                {"name": name, "n": images},
            )
        # Older annotations for 10% of the images (their categories must not count), then the current ones.
        for where, tag in (("id % 10 = 0", "old"), ("true", "current")):
            cur.execute(
                f"""
                INSERT INTO annotations (image_id, kind, model, prompt_version, description, summary, categories)
                SELECT id, 'fused', 'bench', 'v1',
                       -- Shaped like the model's structured description, as json.dumps writes it (~480 bytes).
                       '{{"summary": "A {tag} photo, number ' || id || ', of people at a table with cups", '
                       || '"objects": [{{"name": "person", "attributes": ["smiling", "seated"]}}, '
                       || '{{"name": "cup", "attributes": ["white", "ceramic"]}}], '
                       || '"scene": {{"indoor_outdoor": "indoor", "environment": "a cafe"}}, '
                       || '"style": {{"genre": "photo", "lighting": "soft daylight", "colors": ["brown", "white"]}}, '
                       || '"camera": {{"shot": "medium", "fov": "normal", "lens": "50mm standard"}}, '
                       || '"text": "none", "quality": {{"aesthetic": "pleasant", "issues": []}}}}',
                       'A {tag} photo, number ' || id,
                       CASE WHEN hash(id, 'n') % 3 = 0
                            THEN [$cats[1 + (hash(id) % 14)::INT], $cats[1 + (hash(id, 'b') % 14)::INT]]
                            ELSE [$cats[1 + ((hash(id) + {len(tag)}) % 14)::INT]] END
                FROM images WHERE {where} ORDER BY id""",
                {"cats": CATEGORIES},
            )
        cur.execute(
            """
            INSERT INTO human_labels (image_id, categories, reviewed, reviewer, version)
            SELECT id, CASE WHEN id % 2 = 0 THEN [$cats[1 + (hash(id, 'h') % 14)::INT]] END, true, 'bench', 1
            FROM images WHERE hash(id, 'r') % 20 = 0""",
            {"cats": CATEGORIES},
        )


def timed(action: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(best wall seconds, CPU seconds of that run, result)."""
    best: tuple[float, float, Any] | None = None
    for _ in range(repeat):
        cpu, wall = time.process_time(), time.perf_counter()
        result = action()
        run = (time.perf_counter() - wall, time.process_time() - cpu, result)
        if best is None or run[0] < best[0]:
            best = run
    assert best is not None
    return best


def pandas_baseline(store: Store) -> pd.DataFrame:
    """Pull each image's effective categories from DuckDB, count in pandas (explode + value_counts)."""
    frame = store.fetch_df(
        "SELECT d.name AS dataset, e.categories FROM effective_labels e "
        "JOIN datasets d ON d.id = e.dataset_id WHERE e.categories IS NOT NULL"
    )
    totals = frame.groupby("dataset").size()
    exploded = frame.explode("categories").dropna(subset=["categories"])
    # An image repeating a category counts once: drop repeats within the same image (same index).
    exploded = exploded.reset_index().drop_duplicates(["index", "categories"])
    counts = exploded.groupby("dataset")["categories"].value_counts().rename("count").reset_index()
    counts["total"] = counts["dataset"].map(totals)
    return counts.rename(columns={"categories": "category"})


def csv_writer_baseline(store: Store, path: Path) -> int:
    """Fetch the export's rows from DuckDB, write them with a Python csv.writer loop."""
    rows = store.fetch_all("""
        SELECT i.name, coalesce(h.description, a.description)::VARCHAR,
               coalesce(h.categories, a.categories)
        FROM images i JOIN datasets d ON d.id = i.dataset_id
        LEFT JOIN current_annotations a ON a.image_id = i.id LEFT JOIN human_labels h ON h.image_id = i.id
        WHERE d.name = 'REAL' ORDER BY i.name""")
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["image_name", "description", "categories"])
        for name, description, categories in rows:
            writer.writerow([name, description, ", ".join(categories or [])])
    return len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1_000_000, help="images per dataset (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per measurement (best is kept)")
    parser.add_argument("--keep", metavar="DB", help="keep the database at this path (reused when it exists)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="compare-bench-"))
    db_path = Path(args.keep) if args.keep else folder / "bench.duckdb"
    fresh = not db_path.exists()
    store = Store(db_path)
    print(
        f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"duckdb {duckdb.__version__}, pandas {pd.__version__}; load average {os.getloadavg()}"
    )
    if fresh:
        wall, cpu, _ = timed(lambda: populate(store, args.images), 1)
        print(f"populate 2 x {args.images:,} images: {wall:.1f} s")
    counts = store.fetch_one(
        "SELECT (SELECT count(*) FROM images), (SELECT count(*) FROM annotations), (SELECT count(*) FROM human_labels)"
    )
    print(f"images {counts[0]:,}, annotations {counts[1]:,}, human labels {counts[2]:,}" if counts else "")

    print("\n1. Aggregation, REAL + GEN (goal < 200 ms)")
    wall, cpu, _ = timed(lambda: store.sync_label_tally(rebuild=True), 1)
    print(f"   tally built from scratch (once per database): {wall:.2f} s [{cpu:.2f} s CPU]")
    results: dict[str, float] = {}
    for source in LABEL_SOURCES:

        def aggregate(source: LabelSource = source) -> pd.DataFrame:
            return store.category_distribution(["REAL", "GEN"], source)

        wall, cpu, frame = timed(aggregate, args.repeat)
        results[source] = wall
        print(
            f"   category_distribution({source!r}): {1000 * wall:.1f} ms [{1000 * cpu:.0f} ms CPU], {len(frame)} rows"
        )
    reference = store.category_distribution(["REAL", "GEN"], "effective")
    wall_views, cpu_views, from_views = timed(
        lambda: store.category_distribution_from_views(["REAL", "GEN"], "effective"), max(1, args.repeat // 2)
    )
    pd.testing.assert_frame_equal(reference, from_views)
    wall_pandas, cpu_pandas, by_pandas = timed(lambda: pandas_baseline(store), 1)
    merged = reference.merge(by_pandas, on=["dataset", "category"], suffixes=("", "_pandas"))
    assert len(merged) == len(reference) and (merged["count"] == merged["count_pandas"]).all()
    print(
        f"   baseline (b) DuckDB from the views, no tally: {1000 * wall_views:.0f} ms [{1000 * cpu_views:.0f} ms CPU]"
        f" -> tally {wall_views / results['effective']:.0f}x faster"
    )
    print(
        f"   baseline (a) pandas pull + explode/value_counts: {wall_pandas:.2f} s [{cpu_pandas:.2f} s CPU]"
        f" -> tally {wall_pandas / results['effective']:.0f}x faster"
    )

    ids = store.fetch_df("SELECT id FROM images ORDER BY hash(id, 'pick') LIMIT 1100")["id"].tolist()
    new = pd.DataFrame(
        {
            "image_id": ids[:1000],
            "kind": "fused",
            "model": "bench",
            "prompt_version": "v2",
            "description": '{"summary": "re-described"}',
            "summary": "re-described",
            "categories": [["food"]] * 1000,
        }
    )
    store.insert_annotations(new)
    with store.transaction() as cur:
        cur.execute(
            """INSERT INTO human_labels (image_id, categories, reviewed, reviewer) SELECT unnest($ids),
                       ['night'], true, 'bench' ON CONFLICT (image_id) DO UPDATE SET categories = ['night'],
                       version = human_labels.version + 1""",
            {"ids": ids[1000:]},
        )
    wall, cpu, what = timed(lambda: store.sync_label_tally(), 1)
    print(
        f"   incremental sync after 1,000 annotations + 100 review saves: {1000 * wall:.0f} ms "
        f"[{1000 * cpu:.0f} ms CPU] ({what})"
    )
    pd.testing.assert_frame_equal(
        store.category_distribution(["REAL", "GEN"], "effective"),
        store.category_distribution_from_views(["REAL", "GEN"], "effective"),
    )

    print(f"\n2. Export of REAL, {args.images:,} rows (goal < 5 s)")
    exports: dict[str, float] = {}
    for name, fmt, extra in (
        ("CSV", "csv", False),
        ("CSV + extra columns", "csv", True),
        ("Parquet", "parquet", False),
    ):
        target = folder / f"real.{fmt}"

        def export(fmt: str = fmt, extra: bool = extra, target: Path = target) -> Any:
            return export_dataset(store, "REAL", target, source="effective", fmt=fmt, extra_columns=extra)

        wall, cpu, result = timed(export, max(1, args.repeat // 2))
        exports[name] = wall
        print(f"   {name}: {wall:.2f} s [{cpu:.2f} s CPU], {result.rows:,} rows, {target.stat().st_size / 1e6:.0f} MB")
    wall_loop, cpu_loop, rows = timed(lambda: csv_writer_baseline(store, folder / "loop.csv"), 1)
    print(
        f"   baseline: fetch + Python csv.writer loop: {wall_loop:.2f} s [{cpu_loop:.2f} s CPU], {rows:,} rows "
        f"-> COPY {wall_loop / exports['CSV']:.1f}x faster"
    )
    print(f"\nload average at the end {os.getloadavg()}; {date.today()}")
    store.close()
    if not args.keep:
        for path in folder.iterdir():
            path.unlink()
        folder.rmdir()


if __name__ == "__main__":
    main()
