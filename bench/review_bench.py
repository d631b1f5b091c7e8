"""Benchmark the Review workspace on a 200,000-image dataset against a pandas baseline measured in the same run.

Run from the repository root:  .venv/bin/python bench/review_bench.py [--images 200000] [--repeat 5]

Builds a temp DuckDB file with one dataset of N images (bulk INSERT ... SELECT from range(): a structured
description of ~400 characters and 1-2 categories per image, a second model annotation for 20% of them, human
labels on 10%, failures on 1%), then measures server time, median of --repeat runs after a warm-up, of:
  - filter changes: `review.gallery(store, filter, page=1, page_size=24)` for typical filters (goal < 300 ms);
  - page changes: the same call on later pages (goal < 300 ms);
  - the focus view's calls: `review.focus`, `review.neighbor`, a save;
  - baseline: loading the whole dataset's effective labels into pandas, then filtering, sorting and paging there;
  - one Review-page rerun through AppTest after a filter change (the page's whole server time, thumbnails cached);
and checks what the gallery sends: the bytes of a page of thumbnails against the originals (photo-like JPEGs).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import streamlit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere

from bench.support import cpu_model, photo_like  # noqa: E402
from labeling import review  # noqa: E402
from labeling.review import ReviewFilter  # noqa: E402
from labeling.settings import load_settings  # noqa: E402
from labeling.store import Store  # noqa: E402
from labeling.thumbnails import Pictures  # noqa: E402

GOAL_MS = 300.0
PAGE_SIZE = 24

_FILL = """
INSERT INTO datasets (name, label, source_kind, source_uri) VALUES ('BENCH', 'REAL', 'local', $folder);
INSERT INTO images (dataset_id, name, location, status)
    SELECT d.id, printf('img_%07d.jpg', i), printf('img_%07d.jpg', i), 'found'
    FROM range($n) t(i), (SELECT id FROM datasets WHERE name = 'BENCH') d;
CREATE TEMP TABLE words AS SELECT
    ['harbor', 'forest', 'kitchen', 'street', 'mountain', 'beach', 'office', 'garden', 'stadium', 'market'] AS place,
    ['dog', 'woman', 'bicycle', 'bowl of soup', 'red car', 'old building', 'cat', 'crowd', 'sailboat', 'tree']
        AS subject,
    ['people', 'animals', 'food', 'landscapes', 'cityscapes', 'architecture', 'vehicles', 'plants', 'objects']
        AS category;
INSERT INTO annotations (image_id, kind, model, prompt_version, description, summary, categories)
    SELECT i.id, 'fused', 'bench-model', 'v1',
           json_object('summary', s.summary, 'setting', w.place[1 + (i.id * 7) % 10],
                       'lighting', CASE WHEN i.id % 3 = 0 THEN 'night' ELSE 'daylight' END,
                       'objects', [w.subject[1 + (i.id * 3) % 10], w.subject[1 + (i.id * 11) % 10]],
                       'details', repeat('The composition shows textures, edges and colours typical of the '
                                         || 'scene; ', 4)),
           s.summary,
           CASE WHEN i.id % 5 = 0 THEN [w.category[1 + i.id % 9], w.category[1 + (i.id * 5) % 9]]
                ELSE [w.category[1 + i.id % 9]] END
    FROM images i, words w,
         LATERAL (SELECT 'A photo of a ' || w.subject[1 + (i.id * 3) % 10] || ' at a ' || w.place[1 + (i.id * 7) % 10]
                         || ', image ' || i.id AS summary) s;
INSERT INTO annotations (image_id, kind, model, prompt_version, description, summary, categories)
    SELECT image_id, 'fused', 'bench-model-2', 'v2', description, summary, list_reverse(categories)
    FROM annotations WHERE image_id % 5 = 1;
INSERT INTO human_labels (image_id, categories, reviewed, reviewer, version)
    SELECT id, CASE WHEN id % 20 = 0 THEN ['people'] END, true, 'bench', 1 FROM images WHERE id % 10 = 0;
INSERT INTO failures (image_id, stage, kind, message)
    SELECT id, 'model', 'safety', 'blocked' FROM images WHERE id % 100 = 7;
"""

_BASELINE_SQL = """
SELECT i.id AS image_id, i.name, i.status, i.location,
       coalesce(h.summary, a.summary) AS summary, coalesce(h.categories, a.categories) AS categories,
       a.categories AS model_categories, h.categories AS human_categories,
       CAST(coalesce(h.description, a.description) AS VARCHAR) AS description,
       coalesce(h.reviewed, false) AS reviewed, h.updated_at,
       EXISTS (SELECT 1 FROM failures f WHERE f.image_id = i.id AND NOT f.resolved) AS failed
FROM images i LEFT JOIN current_annotations a ON a.image_id = i.id LEFT JOIN human_labels h ON h.image_id = i.id
WHERE i.dataset_id = ?
"""


CPU_MS: list[float] = []  # CPU time of the last median_ms call (this process, all DuckDB threads)


def median_ms(action: Callable[[], Any], repeat: int) -> float:
    """Median wall-clock milliseconds over `repeat` runs after one warm-up; CPU_MS[-1] gets the median CPU."""
    action()  # warm-up: first-run costs (plans, caches) are not what a reviewer waits for on every click
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        action()
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    CPU_MS.append(statistics.median(cpu))
    return statistics.median(times)


def load() -> str:
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load average unknown"


def machine() -> str:
    cpu = cpu_model()
    memory = ""
    try:
        kb = int(
            next(
                line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
            ).split()[1]
        )
        memory = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; Python {platform.python_version()}, DuckDB "
        f"{duckdb.__version__}, pandas {pd.__version__}, Streamlit {streamlit.__version__}"
    )


def build(db: Path, folder: Path, n: int) -> float:
    start = time.perf_counter()
    store = Store(db)
    try:
        cur = store.cursor()
        for statement in _FILL.split(";\n"):
            if statement.strip():
                params = {key: value for key, value in (("n", n), ("folder", str(folder))) if f"${key}" in statement}
                cur.execute(statement, params or None)
        review.category_options(store)  # the default category list, as a new app would create it
    finally:
        store.close()
    return time.perf_counter() - start


def baseline(store: Store, dataset_id: int, flt: ReviewFilter, page: int) -> pd.DataFrame:
    """What a page without a paged query would do: load everything, filter and page in pandas."""
    frame = store.fetch_df(_BASELINE_SQL, [dataset_id])
    keep = pd.Series(True, index=frame.index)
    if flt.state == "not_reviewed":
        keep &= ~frame["reviewed"]
    if flt.category:
        keep &= frame["categories"].map(lambda cats: cats is not None and flt.category in list(cats))
    if flt.text:
        needle = flt.text.lower()
        keep &= frame["name"].str.lower().str.contains(needle, regex=False) | frame["description"].fillna(
            ""
        ).str.lower().str.contains(needle, regex=False)
    rows = frame[keep].sort_values(["name", "image_id"])
    return rows.iloc[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]


def apptest_rerun_ms(db: Path, cache: Path, repeat: int) -> float:
    """One Review-page rerun after a filter change, through AppTest (server time of the whole script)."""
    from streamlit.testing.v1 import AppTest

    os.environ.update({"LABELING_DB": str(db), "LABELING_CACHE_DIR": str(cache), "LABELING_REVIEWER": "bench"})
    os.chdir(ROOT)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("pages/review.py")
    at.run()
    states = ["not_reviewed", "all"]
    times = []
    for i in range(repeat + 1):
        box = at.selectbox(key="rv_state")
        box.select(states[i % 2])
        start = time.perf_counter()
        at.run()
        times.append((time.perf_counter() - start) * 1000)
        if at.exception:
            raise RuntimeError(at.exception)
    return statistics.median(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-apptest", action="store_true", help="skip the whole-page AppTest measurement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="review_bench_") as tmp:
        tmpdir = Path(tmp)
        db, folder, cache = tmpdir / "bench.duckdb", tmpdir / "images", tmpdir / "cache"
        folder.mkdir()
        built = build(db, folder, args.images)
        print(f"Machine: {machine()}")
        print(f"Built {args.images:,} images (+annotations, labels, failures) in {built:.1f} s; {load()}")

        results: list[tuple[str, float]] = []
        store = Store(db)
        with contextlib.closing(store):
            dataset_id = store.dataset_id("BENCH")
            start = time.perf_counter()
            store.sync_derived()
            print(
                f"First gallery view indexes the dataset once (label state, search words): "
                f"{time.perf_counter() - start:.1f} s; later views only index new annotations"
            )
            filters = {
                "all, name order": ReviewFilter(dataset="BENCH"),
                "not reviewed": ReviewFilter(dataset="BENCH", state="not_reviewed"),
                "category animals (effective)": ReviewFilter(dataset="BENCH", category="animals"),
                "category people (model)": ReviewFilter(dataset="BENCH", category="people", category_source="model"),
                "disagreements": ReviewFilter(dataset="BENCH", disagreement=True),
                "failed": ReviewFilter(dataset="BENCH", state="failed"),
                "text 'harbor'": ReviewFilter(dataset="BENCH", text="harbor"),
                "text 'img_0123' (file name)": ReviewFilter(dataset="BENCH", text="img_0123"),
                "recently edited": ReviewFilter(dataset="BENCH", sort="recently_edited"),
            }
            print(
                f"\nFilter change: review.gallery(page 1, {PAGE_SIZE} per page), median of {args.repeat} "
                "(wall / CPU of this process)"
            )
            for label, flt in filters.items():
                ms = median_ms(functools.partial(review.gallery, store, flt, 1, PAGE_SIZE), args.repeat)
                results.append((f"filter: {label}", ms))
                print(f"  {label:<32} {ms:8.1f} ms / {CPU_MS[-1]:6.1f} ms CPU")
            pages = review.gallery(store, filters["all, name order"], 1, PAGE_SIZE).pages
            print("\nPage change (all images, name order)")
            for page in (2, pages // 2, pages):
                ms = median_ms(
                    functools.partial(review.gallery, store, filters["all, name order"], page, PAGE_SIZE), args.repeat
                )
                results.append((f"page {page:,} of {pages:,}", ms))
                print(f"  page {page:>6,} of {pages:,}{'':<14} {ms:8.1f} ms / {CPU_MS[-1]:6.1f} ms CPU")

            print("\nFocus view")
            first = int(review.gallery(store, filters["not reviewed"], 1, PAGE_SIZE).rows["image_id"].iloc[0])
            focus_ms = median_ms(lambda: review.focus(store, first), args.repeat)
            next_ms = median_ms(lambda: review.neighbor(store, filters["not reviewed"], first, 1), args.repeat)
            record = review.focus(store, first)
            start = time.perf_counter()
            review.save(store, record, reviewer="bench", categories=["plants"], reviewed=True)
            save_ms = (time.perf_counter() - start) * 1000
            ids = review.gallery(store, filters["not reviewed"], 2, 1000).rows["image_id"].tolist()
            start = time.perf_counter()
            store.bulk_categories(ids, "objects", add=True, reviewer="bench")
            bulk_ms = (time.perf_counter() - start) * 1000
            for label, ms in (
                ("focus record", focus_ms),
                ("next in filter", next_ms),
                ("save (one image)", save_ms),
                ("bulk add category, 1,000 images", bulk_ms),
            ):
                results.append((label, ms))
                print(f"  {label:<32} {ms:8.1f} ms")
            agreement_ms = median_ms(lambda: review.agreement(store, "BENCH"), args.repeat)
            progress_ms = median_ms(lambda: review.progress(store), args.repeat)
            print(f"  {'agreement per category':<32} {agreement_ms:8.1f} ms")
            print(f"  {'progress per dataset':<32} {progress_ms:8.1f} ms")

            print("\nBaseline: load the whole dataset into pandas, then filter/sort/page there")
            load_ms = median_ms(lambda: store.fetch_df(_BASELINE_SQL, [dataset_id]), max(1, args.repeat // 2))
            base_ms = median_ms(
                lambda: baseline(store, dataset_id, filters["text 'harbor'"], 1), max(1, args.repeat // 2)
            )
            ours_ms = dict(results)["filter: text 'harbor'"]
            print(
                f"  load only {load_ms:8.1f} ms; load + filter 'harbor' + page {base_ms:8.1f} ms "
                f"(ours {ours_ms:.1f} ms: {base_ms / ours_ms:.1f}x faster)"
            )

            print("\nWhat the gallery sends (one page of thumbnails vs the originals)")
            rows = review.gallery(store, filters["all, name order"], 1, PAGE_SIZE).rows.to_dict("records")
            original_bytes = 0
            for i, row in enumerate(rows):
                path = folder / str(row["location"])
                photo_like(3000, 2000, i).save(path, quality=90)
                original_bytes += path.stat().st_size
            pictures = Pictures(store, load_settings(env={"LABELING_CACHE_DIR": str(cache)}))
            start = time.perf_counter()
            thumbs = pictures.thumbnails(rows)
            cold_ms = (time.perf_counter() - start) * 1000
            warm_ms = median_ms(lambda: pictures.thumbnails(rows), args.repeat)
            thumb_bytes = sum(len(t.data) for t in thumbs)
            assert not any(t.placeholder for t in thumbs)
            print(
                f"  {len(rows)} thumbnails: {thumb_bytes / 1024:,.0f} KiB ({thumb_bytes / len(rows) / 1024:.1f} "
                f"KiB each) vs originals {original_bytes / 1024 / 1024:,.1f} MiB: "
                f"{original_bytes / thumb_bytes:.0f}x less"
            )
            print(f"  making them (first view, 3000x2000 JPEGs): {cold_ms:,.0f} ms; from the cache: {warm_ms:.1f} ms")

        if not args.no_apptest:
            page_ms = apptest_rerun_ms(db, cache, args.repeat)
            print(f"\nWhole Review page rerun after a filter change (AppTest, 24 cached thumbnails): {page_ms:.0f} ms")

        changes = [ms for label, ms in results if label.startswith(("filter", "page"))]
        worst = max(changes)
        print(
            f"\nFilter/page changes: median {statistics.median(changes):.1f} ms, worst {worst:.1f} ms "
            f"(goal < {GOAL_MS:.0f} ms): {'OK' if worst < GOAL_MS else 'MISSED'}; {load()}  [{date.today()}]"
        )


if __name__ == "__main__":
    main()
