"""`labeling duplicates`: exact and near duplicates within and across datasets, and REAL/GEN leakage."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from labeling.cli import context
from labeling.errors import InputError


def register(subparsers: Any) -> None:
    finding = subparsers.add_parser(
        "duplicates",
        help="exact and near-duplicate images within and across datasets, and REAL/GEN leakage",
        description="Group images with the same bytes (sha256) or nearly the same picture (pHash and dHash "
        "within --distance bits), within and across datasets; a group under two labels is leakage. Needs "
        "`labeling scan` first. The groups are saved in the database for Review.",
    )
    finding.add_argument("--datasets", nargs="+", required=True, metavar="NAME", help="datasets, e.g. REAL GEN")
    finding.add_argument("--csv", metavar="FILE", help="also write every group's images as CSV")
    finding.add_argument(
        "--distance",
        type=int,
        metavar="N",
        help="bits pHash and dHash may differ by (default: the near_duplicate_distance setting, 6)",
    )
    finding.set_defaults(handler=run_duplicates)


def run_duplicates(args: argparse.Namespace) -> int:
    from labeling.duplicates import find_duplicates

    settings = context.settings(args)
    distance = settings.near_duplicate_distance if args.distance is None else args.distance
    report = find_duplicates(context.store(args), args.datasets, distance)
    for line in report.summary_lines():
        print(line)
    for line in report.group_lines():
        print(line)
    if args.csv:
        target = Path(args.csv)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(report.csv_bytes())
        except OSError as exc:
            raise InputError(f"Cannot write {target} ({exc.strerror}): pick a writable path.") from None
        print(f"Wrote {target} ({sum(len(g.images) for g in report.groups):,} rows: one per image of a group)")
    return 0
