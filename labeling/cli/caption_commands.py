"""`labeling describe`, `categorize`, the seed's `generate-descriptions` / `categorize-descriptions`, `fake-gemini`.

Every command works through the database: run it again after Ctrl+C, a crash or kill -9 and it continues
where the last committed batch left off. The CSV files of the seed's commands are written from the database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeling.cli import context
from labeling.errors import InputError, LabelingError
from labeling.vocabulary import MODES
from labeling.wording import count

if TYPE_CHECKING:
    from tqdm import tqdm

    from labeling.categories import Category
    from labeling.jobs import Progress
    from labeling.planning import JobRequest
    from labeling.settings import Settings
    from labeling.store import Store

INTERRUPTED = 130


def _run_flags(parser: argparse.ArgumentParser, *, modes: bool = True, default_workers: int | None = None) -> None:
    parser.add_argument(
        "--num-workers",
        type=int,
        default=default_workers,
        metavar="N",
        help="worker threads (default: processing.num_workers, 8)",
    )
    if modes:
        parser.add_argument(
            "--mode",
            choices=[m for m in MODES if m != "categorize"],
            default="fused",
            help="fused: one request per image for description and categories (default); "
            "two-pass: describe, then categorize the description (the seed's two requests)",
        )
    parser.add_argument(
        "--rpm",
        type=int,
        metavar="N",
        help="request-rate limit shared by all workers, per minute (0: none; default processing.requests_per_minute)",
    )
    parser.add_argument("--model", help="Gemini model (default: caption_model, gemini-2.5-flash-lite)")
    parser.add_argument(
        "--service-tier",
        choices=["standard", "flex", "priority"],
        help="standard, flex (half price, slower, best effort) or priority (default: service_tier)",
    )
    parser.add_argument("--retry-failed", action="store_true", help="only the images whose last attempt failed")
    parser.add_argument("--yes", "-y", action="store_true", help="start without asking after the estimate")


def _batch_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--batch",
        action="store_true",
        help="Gemini Batch Mode: half price, answers within 24 h; JSONL shards are uploaded as batch jobs and "
        "polled (run the same command again to resume after Ctrl+C or a crash)",
    )
    parser.add_argument(
        "--poll-seconds",
        type=float,
        metavar="S",
        help="with --batch: seconds between two looks at each job (default batch.poll_seconds, 30)",
    )


def register(subparsers: Any) -> None:
    describe = subparsers.add_parser(
        "describe",
        help="describe and categorize a dataset's images with Gemini (resumable)",
        description="Sends every found image still without a description for the current prompt version "
        "(and categorizes from text those described but not categorized for the current list). "
        "Prints the estimate first. Ctrl+C stops after the requests in flight; run it again to resume.",
    )
    describe.add_argument(
        "--dataset", action="append", required=True, metavar="NAME", help="dataset name (repeat for several)"
    )
    _run_flags(describe)
    _batch_flags(describe)
    describe.set_defaults(handler=run_describe)

    categorize = subparsers.add_parser(
        "categorize",
        help="categorize a dataset from its stored descriptions (no image is sent)",
        description="For images whose current categories were not made against the current category list.",
    )
    categorize.add_argument(
        "--dataset", action="append", required=True, metavar="NAME", help="dataset name (repeat for several)"
    )
    _run_flags(categorize, modes=False)
    _batch_flags(categorize)
    categorize.set_defaults(handler=run_categorize)

    generate = subparsers.add_parser(
        "generate-descriptions",
        help="the seed's command: describe a folder, write image_name,description CSV",
        description="Imports the folder as a dataset named after it (or --dataset), describes what is not "
        "described yet, and writes image_name,description (the description as JSON text).",
    )
    generate.add_argument("--images-dir", required=True, help="folder of images (searched recursively)")
    generate.add_argument("--output-csv", required=True, help="where to write image_name,description")
    generate.add_argument("--dataset", help="dataset name (default: the folder's name)")
    _run_flags(generate, default_workers=None)
    generate.set_defaults(handler=run_generate_descriptions)

    categorize_csv = subparsers.add_parser(
        "categorize-descriptions",
        help="the seed's command: categorize a descriptions CSV",
        description="Reads image_name,description; categorizes from the descriptions (no image sent; results "
        "already in the database are reused) and writes image_name,description,categories with "
        'categories joined by ", ".',
    )
    categorize_csv.add_argument("--input-csv", required=True, help="image_name,description CSV")
    categorize_csv.add_argument("--output-csv", required=True, help="where to write the categorized CSV")
    categorize_csv.add_argument(
        "--categories-csv", help="category list (Category[,Definition]); it becomes the active list when it differs"
    )
    _run_flags(categorize_csv, modes=False)
    categorize_csv.set_defaults(handler=run_categorize_descriptions)

    check = subparsers.add_parser(
        "check",
        help="test the Gemini key, model, API version and schema with one small request",
        description="Sends one tiny real request (a 64x64 image and the fused schema of the category list in "
        "force) and reports: key accepted, model found on the API version, schema accepted, service "
        "tier and the answer's tokens. Exit status 0 when a run can start, 1 otherwise.",
    )
    check.add_argument("--model", help="Gemini model (default: caption_model)")
    check.add_argument("--service-tier", choices=["standard", "flex", "priority"], help="tier to test")
    check.set_defaults(handler=run_check)

    fake = subparsers.add_parser(
        "fake-gemini",
        help="run the local fake Gemini server (offline demos, tests)",
        description="Answers like Gemini, from the images it receives; all output is "
        "simulated. Point labeling at it with the printed variables.",
    )
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    fake.add_argument("--latency", type=float, default=0.0, help="seconds added to every answer")
    fake.add_argument("--rpm", type=int, default=0, help="requests per minute before 429s (0: unlimited)")
    fake.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND[:RATE]",
        help="answer this share of requests (default 1.0: all) with the fault KIND, repeatable "
        "(e.g. --fault http_503:0.2 --fault daily_quota:0.01; kinds in FAULT_KINDS, batch jobs: batch_failed, "
        "batch_expired, batch_stuck_pending)",
    )
    fake.add_argument("--log", metavar="FILE", help="append one JSON line per request to FILE")
    fake.add_argument(
        "--batch-pending-seconds", type=float, default=1.0, metavar="N", help="a batch job's PENDING time"
    )
    fake.add_argument("--batch-seconds", type=float, default=2.0, metavar="N", help="then its RUNNING time")
    fake.add_argument(
        "--max-concurrent-batches", type=int, default=100, metavar="N", help="unended batch jobs before a 429"
    )
    fake.set_defaults(handler=run_fake_gemini)


# --- running a job from the command line --------------------------------------------------------------


def _settings(args: argparse.Namespace) -> Settings:
    return context.settings(
        args,
        num_workers=args.num_workers,
        requests_per_minute=args.rpm,
        caption_model=args.model,
        service_tier=getattr(args, "service_tier", None),
        batch_poll_seconds=getattr(args, "poll_seconds", None),
    )


def run_check(args: argparse.Namespace) -> int:
    """`labeling check`: one small real request, reported step by step."""
    from labeling.preflight import check_connection

    settings = context.settings(args, caption_model=args.model, service_tier=args.service_tier)
    report = check_connection(settings, _categories_for_check(args), settings.max_categories)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


def _categories_for_check(args: argparse.Namespace) -> list[Category]:
    """The list in force, or the default list when the database cannot be opened (say, the app holds it)."""
    from labeling.taxonomy import DEFAULT_CATEGORIES_FILE, ensure_categories, parse_category_csv

    try:
        return ensure_categories(context.store(args))
    except LabelingError:
        return parse_category_csv(DEFAULT_CATEGORIES_FILE.read_bytes(), str(DEFAULT_CATEGORIES_FILE))


def _confirm(line: str, args: argparse.Namespace) -> bool:
    print(f"Estimate: {line}")
    if args.yes or not sys.stdin.isatty():
        return True
    answer = input("Start? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def _print_outcome(progress: Progress, store: Store) -> None:
    from labeling.planning import price_unknown

    print(
        f"Run #{progress.run_id} {progress.status}: {progress.done:,} done, {progress.failed:,} failed, "
        f"{count(progress.requests, 'request')}, {progress.tokens_in:,} input + "
        f"{progress.tokens_out + progress.tokens_thinking:,} output tokens, "
        + (f"${progress.cost_usd:,.4f}" if progress.price_known else price_unknown(progress.model))
        + (" (simulated)" if progress.simulated else "")
        + "."
    )
    failures = store.run_failures(progress.run_id)
    for row in failures.to_dict("records"):
        print(f"  {row['images']:,} failed at {row['stage']} ({row['kind']}): {row['example']}")
    if not failures.empty:
        print("  Retry them with the same command and --retry-failed.")


def run_job(args: argparse.Namespace, request: JobRequest) -> int:
    """Estimate, confirm, run with a progress bar; Ctrl+C stops cleanly (a second one quits at once)."""
    from tqdm import tqdm

    from labeling.jobs import iter_progress
    from labeling.planning import estimate

    store = context.store(args)
    settings = _settings(args)
    if request.batch:
        request = _resumed_batch(store, request)
    plan = estimate(store, settings, request)
    if request.mode == "categorize" and plan.without_description:
        print(
            f"{count(plan.without_description, 'image')} "
            f"{'has' if plan.without_description == 1 else 'have'} no description yet: "
            "run `labeling describe` for them."
        )
    if plan.images == 0:
        print(
            "Nothing to do: every image is done for the current prompt and category list"
            + (" (or has no open failure)." if request.retry_failed else ".")
        )
        return 0
    if not _confirm(plan.line(), args):
        print("Not started.")
        return 1
    job = context.job_manager(args).start(request, settings=settings)
    bar = tqdm(total=plan.images, unit="img", dynamic_ncols=True, disable=None, desc=f"run #{job.run_id}")
    progress = job.progress()
    said: set[str] = set()
    shards: dict[int, str] = {}
    try:
        try:
            for progress in iter_progress(job, 0.5):
                _update_bar(bar, progress)
                context.publish(args, progress)
                _say_once(bar, progress, said)
                if request.batch:
                    _say_shards(bar, store, job.run_id, shards)
        except KeyboardInterrupt:
            print("\nStopping after the requests in flight (Ctrl+C again to quit at once) ...", file=sys.stderr)
            job.cancel(interrupted=True)
            job.wait()
            progress = job.progress()
    finally:
        bar.close()
    if request.batch:
        _say_shards(None, store, job.run_id, shards)
    _print_outcome(progress, store)
    if progress.status == "failed":
        raise LabelingError(progress.message)
    if progress.status == "interrupted":
        print("Interrupted: progress is saved in the database; run the same command again to resume.", file=sys.stderr)
        return INTERRUPTED
    return 0


def _resumed_batch(store: Store, request: JobRequest) -> JobRequest:
    """A batch run over the same datasets with shards still in flight is continued, not started again."""
    import dataclasses

    if request.resume_run is not None or request.retry_failed:
        return request
    ids = [store.dataset(name).id for name in dict.fromkeys(request.datasets)]
    open_run = store.open_batch_run(ids, request.mode)
    if open_run is None:
        return request
    print(f"Resuming batch run #{open_run}: its shards are still in flight.")
    return dataclasses.replace(request, resume_run=open_run)


def _say_shards(bar: tqdm | None, store: Store, run_id: int, said: dict[int, str]) -> None:
    """One line per shard each time its state or counts change: state, job state, lines, done, failed."""
    for shard in store.batch_shards(run_id):
        line = shard.line()
        if said.get(shard.shard) != line:
            said[shard.shard] = line
            if bar is None:
                print(line, file=sys.stderr)
            else:
                bar.write(line, file=sys.stderr)


def _update_bar(bar: tqdm, progress: Progress) -> None:
    bar.total = progress.total
    bar.n = progress.done + progress.failed
    postfix: dict[str, object] = {
        "failed": progress.failed,
        "rate": f"{progress.images_per_s:.1f}/s",
        "tokens": progress.tokens_in + progress.tokens_out + progress.tokens_thinking,
        "cost": f"${progress.cost_usd:.4f}" if progress.price_known else "unknown",
    }
    if progress.holds:
        postfix["hold"] = ", ".join(f"{h.reason} until {_clock(h.until)}" for h in progress.holds)
    bar.set_postfix(postfix, refresh=False)
    bar.refresh()


def _clock(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def _say_once(bar: tqdm, progress: Progress, said: set[str]) -> None:
    """Notices, holds and a pause message, each printed once above the bar."""
    from labeling.planning import price_unknown

    lines = [*progress.notices, *(f"{h.message} until {_clock(h.until)}" for h in progress.holds)]
    if progress.status == "paused" and progress.message:
        lines.append(progress.message)
    if not progress.price_known:
        lines.append(price_unknown(progress.model).capitalize() + ".")
    for line in lines:
        if line not in said:
            said.add(line)
            bar.write(line, file=sys.stderr)


def run_describe(args: argparse.Namespace) -> int:
    from labeling.planning import JobRequest

    return run_job(
        args,
        JobRequest(
            tuple(args.dataset),
            mode=args.mode,
            model=args.model,
            num_workers=args.num_workers,
            requests_per_minute=args.rpm,
            retry_failed=args.retry_failed,
            executor="batch" if args.batch else "sync",
        ),
    )


def run_categorize(args: argparse.Namespace) -> int:
    from labeling.planning import JobRequest

    return run_job(
        args,
        JobRequest(
            tuple(args.dataset),
            mode="categorize",
            model=args.model,
            num_workers=args.num_workers,
            requests_per_minute=args.rpm,
            retry_failed=args.retry_failed,
            executor="batch" if args.batch else "sync",
        ),
    )


# --- the seed's commands ------------------------------------------------------------------------------


def run_generate_descriptions(args: argparse.Namespace) -> int:
    from labeling import seed_runs
    from labeling.planning import JobRequest

    store = context.store(args)
    dataset = seed_runs.folder_dataset(store, Path(args.images_dir), args.dataset)
    request = JobRequest(
        (dataset,),
        mode=args.mode,
        model=args.model,
        num_workers=args.num_workers,
        requests_per_minute=args.rpm,
        retry_failed=args.retry_failed,
    )
    try:
        code = run_job(args, request)
    finally:
        written = seed_runs.write_descriptions_csv(store, dataset, args.output_csv)
        print(f"Wrote {written:,} descriptions to {args.output_csv}.")
    return code


def run_categorize_descriptions(args: argparse.Namespace) -> int:
    from labeling import seed_runs
    from labeling.datasets import read_csv_file
    from labeling.planning import JobRequest
    from labeling.seed_format import read_seed_rows

    store = context.store(args)
    data = read_csv_file(args.input_csv)
    rows = read_seed_rows(data, args.input_csv)
    if not rows:
        raise InputError(f"{args.input_csv} has no rows: nothing to categorize.")
    if args.categories_csv:
        version = seed_runs.adopt_category_csv(store, args.categories_csv)
        if version is not None:
            print(f"The category list from {args.categories_csv} is now the active list (version {version}).")
    dataset = seed_runs.dataset_for_rows(store, rows, args.input_csv, data)
    request = JobRequest(
        (dataset,),
        mode="categorize",
        model=args.model,
        num_workers=args.num_workers,
        requests_per_minute=args.rpm,
        retry_failed=args.retry_failed,
    )
    try:
        code = run_job(args, request)
    finally:
        written, skipped = seed_runs.write_categorized_csv(store, dataset, rows, args.output_csv)
        print(
            f"Wrote {written:,} categorized rows to {args.output_csv}"
            + (f"; {skipped:,} rows without a usable description or categories were left out." if skipped else ".")
        )
    return code


def run_fake_gemini(args: argparse.Namespace) -> int:
    from labeling.fake_gemini.__main__ import main as fake_main

    argv = ["--host", args.host, "--port", str(args.port), "--latency", str(args.latency), "--rpm", str(args.rpm)]
    argv += [f"--fault={spec}" for spec in args.fault]
    if args.log:
        argv += ["--log", args.log]
    argv += ["--batch-pending-seconds", str(args.batch_pending_seconds), "--batch-seconds", str(args.batch_seconds)]
    argv += ["--max-concurrent-batches", str(args.max_concurrent_batches)]
    return fake_main(argv)


__all__ = ["register", "run_job"]
