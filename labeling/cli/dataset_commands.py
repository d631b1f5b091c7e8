"""`labeling import` and `labeling datasets`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeling.cli import context
from labeling.vocabulary import IMAGE_STATUSES

if TYPE_CHECKING:
    from labeling.datasets import ImportReport

SUMMARY_FIELDS = (
    "name",
    "label",
    "source_kind",
    "source_uri",
    "listed",
    "found",
    "missing",
    "ambiguous",
    "rejected",
    "unlinked",
    "duplicates",
    "described",
    "categorized",
    "reviewed",
    "failed",
)


def register(subparsers: Any) -> None:
    importing = subparsers.add_parser(
        "import",
        help="create or refresh a dataset from a CSV list of names and/or a folder of images",
        description="A CSV list of names matched against a folder (recursive, extension-agnostic), a folder "
        "alone (every image in it), or a seed output CSV (image_name,description[,categories]).",
    )
    importing.add_argument("--dataset", required=True, help="dataset name, e.g. REAL")
    importing.add_argument("--label", default="", help="REAL, GEN or any label (default: none)")
    importing.add_argument("--csv-file", help="CSV list of image names, or a seed output CSV")
    importing.add_argument("--images-dir", help="folder holding the images (searched recursively)")
    importing.add_argument("--s3-uri", help="images stay in S3: s3://bucket/prefix/ (read through the local cache)")
    importing.add_argument("--profile", help="AWS profile for --s3-uri (credentials come from boto3's chain)")
    importing.add_argument("--region", help="AWS region for --s3-uri")
    importing.add_argument("--endpoint-url", help="S3-compatible endpoint for --s3-uri")
    importing.add_argument("--json", action="store_true", help="print the report as JSON")
    importing.set_defaults(handler=run_import)

    images = subparsers.add_parser("images", help="list a dataset's images of one status (missing, ambiguous, ...)")
    images.add_argument("--dataset", required=True)
    images.add_argument("--status", default="missing", choices=IMAGE_STATUSES)
    images.add_argument("--output-csv", help="write the full list to this CSV instead of printing it")
    images.set_defaults(handler=run_images)

    listing = subparsers.add_parser("datasets", help="list datasets with their counts")
    listing.add_argument("--json", action="store_true", help="print a JSON list of objects")
    listing.set_defaults(handler=run_datasets)

    scan = subparsers.add_parser(
        "scan",
        help="read each image's technical facts (format, JPEG quality, metadata, C2PA, pixels, hashes)",
        description="Reads every found image of the dataset once (new images only on a re-run) and stores its "
        "technical facts in image_facts: the base of the technical-bias audit.",
    )
    scan.add_argument("--dataset", required=True)
    scan.add_argument("--num-workers", type=int, metavar="N", help="parallel reads (default processing.num_workers)")
    scan.set_defaults(handler=run_scan)


def _print_report(report: ImportReport) -> None:
    print(
        f"Dataset {report.dataset}: {report.listed:,} listed, {report.found:,} found, {report.missing:,} missing, "
        f"{report.ambiguous:,} ambiguous, {report.rejected:,} rejected, {report.duplicates:,} duplicates"
        + (f", {report.unlinked:,} without an image source" if report.unlinked else "")
        + f"; {report.added:,} new."
    )
    if report.annotations_imported or report.seed_errors:
        print(
            f"Imported {report.annotations_imported:,} seed results; {report.seed_errors:,} seed errors "
            "recorded as failures to retry."
        )
    if report.stem_matches or report.case_matches:
        print(
            f"Found by a looser match: {report.stem_matches:,} by stem (another extension), "
            f"{report.case_matches:,} ignoring case; their detail says which."
        )
    for note in report.notes:
        print(f"Note: {note}.")
    if report.ambiguous or report.missing or report.rejected:
        print(
            f"List them with `labeling images --dataset {report.dataset} --status missing` (or ambiguous, "
            "rejected) or on the app's Datasets page."
        )


def run_import(args: argparse.Namespace) -> int:
    from labeling.datasets import import_dataset, read_csv_file

    if args.s3_uri:
        from labeling.cli.s3_commands import run_s3_import  # boto3 loads only for S3 imports

        return run_s3_import(args, _print_report)
    csv_data = read_csv_file(args.csv_file) if args.csv_file else None
    report = import_dataset(
        context.store(args),
        args.dataset,
        label=args.label,
        csv_data=csv_data,
        csv_name=str(Path(args.csv_file)) if args.csv_file else None,
        images_dir=args.images_dir,
        max_name_length=context.settings(args).max_name_length,
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        _print_report(report)
    return 0


def run_images(args: argparse.Namespace) -> int:
    from labeling.files import write_atomically
    from labeling.spreadsheet import frame_csv

    store = context.store(args)
    frame = store.images_with_status(store.dataset_id(args.dataset), args.status)
    if args.output_csv:
        write_atomically(args.output_csv, frame_csv(frame))
        print(f"Wrote {len(frame):,} {args.status} names to {args.output_csv}.")
    else:
        for name, detail in zip(frame["name"], frame["detail"], strict=True):
            print(f"{name}\t{detail}" if isinstance(detail, str) else name)
    return 0


def run_datasets(args: argparse.Namespace) -> int:
    summaries = context.store(args).dataset_summaries()
    records = [{field: getattr(summary, field) for field in SUMMARY_FIELDS} for summary in summaries]
    if args.json:
        print(json.dumps(records, indent=2, ensure_ascii=False))
        return 0
    if not records:
        print("No datasets yet: create one with `labeling import --dataset NAME --csv-file LIST --images-dir DIR`.")
        return 0
    columns = (
        "name",
        "label",
        "listed",
        "found",
        "missing",
        "ambiguous",
        "rejected",
        "described",
        "categorized",
        "reviewed",
        "failed",
    )
    widths = {column: max(len(column), *(len(f"{record[column]}") for record in records)) for column in columns}
    print("  ".join(column.ljust(widths[column]) for column in columns))
    for record in records:
        print("  ".join(f"{record[column]}".ljust(widths[column]) for column in columns))
    return 0


def run_scan(args: argparse.Namespace) -> int:
    from labeling.scan import ScanProgress, scan_dataset

    def show(progress: ScanProgress) -> None:
        if progress.scanned % 500 == 0 or progress.scanned == progress.total:
            print(
                f"\r{progress.scanned:,}/{progress.total:,} scanned, {progress.failed:,} without facts",
                end="",
                file=sys.stderr,
                flush=True,
            )

    report = scan_dataset(
        context.store(args), context.settings(args), args.dataset, workers=args.num_workers, progress=show
    )
    if report.total:
        print(file=sys.stderr)
    print(report.line())
    return 0
