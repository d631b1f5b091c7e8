"""`labeling download`, `labeling batch-download` and `labeling analyze-s3`: S3 prefixes, analysed then mirrored."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeling.cli import context
from labeling.errors import InputError
from labeling.vocabulary import DATALAKE_PREFIX_TEMPLATE, MIRROR_WORKERS
from labeling.wording import count

if TYPE_CHECKING:
    from labeling.mirror import MirrorReport
    from labeling.names import NameList
    from labeling.s3 import S3Source
    from labeling.s3_analysis import S3Analysis

FIRST = 10  # missing names printed; the full list goes to a CSV


def add_s3_flags(parser: argparse.ArgumentParser, *, workers: bool = True) -> None:
    """--bucket, --profile, --region, --endpoint-url (and --num-workers): shared by every S3 command."""

    parser.add_argument("--bucket", help="S3 bucket (default: s3.bucket in config.yaml or LABELING_S3_BUCKET)")
    parser.add_argument(
        "--profile",
        help="AWS profile (default: AWS_PROFILE / s3.profile); credentials come only from boto3's standard chain",
    )
    parser.add_argument("--region", help="AWS region of the bucket (default: AWS_REGION / s3.region)")
    parser.add_argument("--endpoint-url", help="S3-compatible endpoint (default: AWS_ENDPOINT_URL / s3.endpoint_url)")
    if workers:
        parser.add_argument(
            "--num-workers", type=int, default=MIRROR_WORKERS, help=f"parallel downloads (default {MIRROR_WORKERS})"
        )


def register(subparsers: Any) -> None:

    download = subparsers.add_parser(
        "download",
        help="mirror the S3 objects named in a CSV list to a local folder (resumable)",
        description="Analyze first (listed, available, missing, ambiguous, already there, to fetch), ask, then "
        "download in parallel. Stop it any time: the next run fetches only what is missing.",
    )
    download.add_argument("--csv-file", required=True, help="CSV list of image names (e.g. csv_real_gen/real.csv)")
    download.add_argument("--output-dir", required=True, help="local folder to mirror into (e.g. REAL)")
    download.add_argument(
        "--s3-prefix",
        required=True,
        help='prefix in the bucket, e.g. "datalake_training/REAL/" (or s3://bucket/prefix/)',
    )
    download.add_argument("--auto-confirm", action="store_true", help="do not ask before downloading")
    download.add_argument("--dataset", help="also create/refresh this dataset from the mirrored folder")
    download.add_argument("--label", default="", help="label of --dataset (REAL, GEN, ...)")
    add_s3_flags(download)
    download.set_defaults(handler=run_download)

    batch = subparsers.add_parser(
        "batch-download",
        help="download every REAL_*.csv / GEN_*.csv of a folder, configured from the file names",
        description="REAL_foo.csv becomes dataset REAL_foo (label REAL), prefix datalake_training/REAL/ and "
        "folder OUTPUT_ROOT/REAL/; GEN_*.csv likewise. Other files are skipped.",
    )
    batch.add_argument("--csv-dir", required=True, help="folder holding REAL_*.csv and GEN_*.csv lists")
    batch.add_argument("--output-root", default=".", help="folder under which REAL/ and GEN/ are created")
    batch.add_argument(
        "--prefix-template",
        default=DATALAKE_PREFIX_TEMPLATE,
        help=f"S3 prefix per label (default {DATALAKE_PREFIX_TEMPLATE!r})",
    )
    batch.add_argument("--auto-confirm", action="store_true", help="do not ask before downloading")
    batch.add_argument("--no-datasets", action="store_true", help="only download; do not create the datasets")
    add_s3_flags(batch)
    batch.set_defaults(handler=run_batch_download)

    analyzing = subparsers.add_parser(
        "analyze-s3", help="what an S3 prefix holds for a CSV list, without fetching anything"
    )
    analyzing.add_argument("--s3-prefix", required=True, help="prefix in the bucket, or s3://bucket/prefix/")
    analyzing.add_argument("--csv-file", help="CSV list of names (default: every image under the prefix)")
    analyzing.add_argument("--output-dir", help="local folder: also count what is already there")
    analyzing.add_argument("--problems-csv", help="write every missing/ambiguous/rejected name to this CSV")
    analyzing.add_argument("--json", action="store_true", help="print the numbers as JSON")
    add_s3_flags(analyzing, workers=False)
    analyzing.set_defaults(handler=run_analyze)


def make_source(args: argparse.Namespace, prefix: str, *, workers: int = MIRROR_WORKERS) -> S3Source:
    """The S3 source of a command: flags first, then settings (config.yaml, environment)."""
    from labeling.s3 import parse_s3_uri, s3_source

    settings = context.settings(args)
    bucket = getattr(args, "bucket", None) or ""
    if prefix.startswith("s3://"):
        bucket_in_uri, prefix = parse_s3_uri(prefix)
        if bucket and bucket != bucket_in_uri:
            raise InputError(f"--bucket {bucket} and the prefix's bucket {bucket_in_uri} differ: give one.")
        bucket = bucket_in_uri
    bucket = bucket or settings.s3_bucket
    if not bucket:
        raise InputError(
            "No S3 bucket given: pass --bucket, write the prefix as s3://bucket/prefix/, or set "
            "s3.bucket in config.yaml (or LABELING_S3_BUCKET)."
        )
    return s3_source(
        bucket,
        prefix,
        settings,
        profile=args.profile,
        region=args.region,
        endpoint_url=args.endpoint_url,
        workers=workers,
    )


def _read_names(csv_file: str) -> NameList:
    from labeling.datasets import read_csv_file
    from labeling.names import parse_name_list

    return parse_name_list(read_csv_file(csv_file), csv_file)


def _confirm(question: str, auto: bool) -> bool:
    if auto:
        return True
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        raise InputError(
            "No answer to the confirmation (stdin is not interactive): pass --auto-confirm to "
            "download without the question."
        ) from None
    return answer.strip().lower() in {"y", "yes"}


def _write_problems(analysis: S3Analysis, path: Path) -> None:
    from labeling.files import write_atomically
    from labeling.spreadsheet import frame_csv

    write_atomically(path, frame_csv(analysis.problems_frame()))


def _print_analysis(analysis: S3Analysis, problems_file: Path | None) -> None:
    for line in analysis.summary_lines(FIRST):
        print(line)
    if problems_file is not None and not analysis.problems_frame().empty:
        _write_problems(analysis, problems_file)
        print(f"  full list of missing/ambiguous/rejected names: {problems_file}")


def _print_report(report: MirrorReport) -> None:
    megabytes = report.bytes_fetched / 1e6
    rate = report.fetched / report.seconds if report.seconds else 0.0
    print(
        f"Fetched {count(report.fetched, 'file')} ({megabytes:,.1f} MB) in {report.seconds:.1f} s "
        f"({rate:,.0f} files/s); "
        f"{report.failed:,} failed; {report.already_local:,} were already there. Log: {report.log_file}"
    )
    for key, message in report.failures[:FIRST]:
        print(f"  failed: {key}: {message}")
    if report.failed:
        print("Run the same command again to retry the failed files.")


def _problems_path(output_dir: str) -> Path:
    return Path(output_dir) / "logs" / f"problems_{datetime.now().strftime('%Y%m%d_%H%M%S')}.csv"


def _import_mirrored(
    args: argparse.Namespace,
    dataset: str,
    label: str,
    names: NameList,
    csv_file: str,
    source: S3Source,
    output_dir: str,
) -> None:
    from labeling.datasets import import_names
    from labeling.sources import LocalFolderSource

    report = import_names(
        context.store(args),
        dataset,
        names,
        LocalFolderSource(output_dir),
        label=label,
        list_file=csv_file,
        source_options={"mirrored_from": source.uri, **source.options},
    )
    print(
        f"Dataset {report.dataset}: {report.listed:,} listed, {report.found:,} found in {output_dir}, "
        f"{report.missing:,} missing, {report.ambiguous:,} ambiguous, {report.rejected:,} rejected; "
        f"{report.added:,} new."
    )


def run_download(args: argparse.Namespace) -> int:
    from labeling.mirror import mirror
    from labeling.s3_analysis import analyze

    names = _read_names(args.csv_file)
    source = make_source(args, args.s3_prefix, workers=args.num_workers)
    store = context.store(args)
    analysis = analyze(source, names, output_dir=args.output_dir, store=store)
    _print_analysis(analysis, _problems_path(args.output_dir))
    if analysis.to_fetch:
        size = analysis.bytes_to_fetch / 1e6
        if not _confirm(
            f"Download {count(len(analysis.to_fetch), 'file')} ({size:,.1f} MB) into {args.output_dir}?",
            args.auto_confirm,
        ):
            print("Nothing downloaded.")
            return 0
        report = mirror(source, analysis, store=store, workers=args.num_workers, show_bar=sys.stderr.isatty())
        _print_report(report)
    else:
        print("Nothing to download: every available file is already there.")
        report = None
    if args.dataset:
        _import_mirrored(args, args.dataset, args.label, names, args.csv_file, source, args.output_dir)
    return 1 if report is not None and report.failed else 0


def run_batch_download(args: argparse.Namespace) -> int:
    from labeling.mirror import mirror, plan_batch
    from labeling.s3_analysis import analyze

    jobs, skipped = plan_batch(args.csv_dir, args.output_root, args.prefix_template)
    if skipped:
        print(f"Skipped (names must start with REAL_ or GEN_): {', '.join(skipped)}")
    if not jobs:
        raise InputError(f"No REAL_*.csv or GEN_*.csv in {args.csv_dir}: name the lists like REAL_batch1.csv.")
    store = context.store(args)
    planned: list[tuple[Any, NameList, S3Source, S3Analysis]] = []
    for job in jobs:
        print(f"\n{job.csv_file.name}: dataset {job.dataset}, prefix {job.prefix}, folder {job.output_dir}")
        names = _read_names(str(job.csv_file))
        source = make_source(args, job.prefix, workers=args.num_workers)
        analysis = analyze(source, names, output_dir=job.output_dir, store=store)
        _print_analysis(analysis, _problems_path(str(job.output_dir)))
        planned.append((job, names, source, analysis))
    total = sum(len(analysis.to_fetch) for *_, analysis in planned)
    size = sum(analysis.bytes_to_fetch for *_, analysis in planned) / 1e6
    if total and not _confirm(
        f"\nDownload {count(total, 'file')} ({size:,.1f} MB) for {count(len(planned), 'list')}?", args.auto_confirm
    ):
        print("Nothing downloaded.")
        return 0
    failed = 0
    filled: set[Path] = set()
    for job, names, source, analysis in planned:
        if job.output_dir in filled:
            # An earlier list filled the same folder: what it fetched now counts as already there.
            analysis = analyze(source, names, output_dir=job.output_dir, store=store)
        if analysis.to_fetch:
            print(f"\n{job.dataset}: fetching {count(len(analysis.to_fetch), 'file')} into {job.output_dir}")
            report = mirror(source, analysis, store=store, workers=args.num_workers, show_bar=sys.stderr.isatty())
            _print_report(report)
            failed += report.failed
        filled.add(job.output_dir)
        if not args.no_datasets:
            _import_mirrored(args, job.dataset, job.label, names, str(job.csv_file), source, str(job.output_dir))
    return 1 if failed else 0


def run_analyze(args: argparse.Namespace) -> int:
    from labeling.s3_analysis import analyze

    names = _read_names(args.csv_file) if args.csv_file else None
    source = make_source(args, args.s3_prefix)
    analysis = analyze(source, names, output_dir=args.output_dir, store=context.store(args))
    if args.problems_csv:
        _write_problems(analysis, Path(args.problems_csv))
    if args.json:
        print(json.dumps(analysis.counts(), indent=2))
    else:
        _print_analysis(analysis, None)
        if args.problems_csv:
            print(f"  full list of missing/ambiguous/rejected names: {args.problems_csv}")
    return 0


def run_s3_import(args: argparse.Namespace, print_report: Any) -> int:
    """`labeling import --s3-uri s3://bucket/prefix/ [--csv-file LIST]`: a dataset whose images stay in S3."""
    from labeling.datasets import read_csv_file
    from labeling.s3_analysis import import_s3_dataset

    if args.images_dir:
        raise InputError("Give either --images-dir or --s3-uri, not both.")
    csv_data = read_csv_file(args.csv_file) if args.csv_file else None
    source = make_source(args, args.s3_uri)
    report = import_s3_dataset(
        context.store(args),
        args.dataset,
        source,
        csv_data=csv_data,
        csv_name=str(Path(args.csv_file)) if args.csv_file else None,
        label=args.label,
    )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print_report(report)
    return 0
