"""`labeling audit` (the technical-bias audit of scanned datasets) and `labeling debias` (matched subsets)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeling.cli import context
from labeling.wording import count

if TYPE_CHECKING:
    from labeling.audit import Audit

STRATA = ("size", "format", "quality")  # labeling.debias.STRATA, without importing pandas at start-up
SEPARATION_LINES = 8  # facts listed under "separates best"


def register(subparsers: Any) -> None:
    auditing = subparsers.add_parser(
        "audit",
        help="technical-bias audit: what besides content tells the datasets apart (format, size, metadata, ...)",
        description="Compare the scanned technical facts of datasets (run `labeling scan` first): per-fact tests "
        "adjusted with Benjamini-Hochberg, each fact's AUC alone, a cross-validated shortcut score and findings "
        "with what to do.",
    )
    auditing.add_argument("--datasets", nargs="+", required=True, metavar="NAME", help="datasets, e.g. REAL GEN")
    auditing.add_argument("--json", metavar="FILE", help="also write the whole audit as JSON")
    auditing.add_argument("--html", metavar="FILE", help="also write the report as a self-contained HTML page")
    auditing.add_argument("--csv", metavar="FILE", help="also write the per-image facts as CSV")
    auditing.set_defaults(handler=run_audit)

    matching = subparsers.add_parser(
        "debias",
        help="REAL and GEN subsets matched on content and technical strata, as seed CSVs and name lists",
        description="Keep, per combination of category set and strata, as many images of each side as the smaller "
        "side has; duplicates and leaked images are left out. Prints the shortcut score and category test before "
        "and after.",
    )
    matching.add_argument("--datasets", nargs=2, required=True, metavar="NAME", help="the two datasets: REAL GEN")
    matching.add_argument(
        "--strata", nargs="*", choices=STRATA, default=list(STRATA), help="technical strata to match (default all)"
    )
    matching.add_argument(
        "--source", choices=("model", "human", "effective"), default="effective", help="labels to match content on"
    )
    matching.add_argument(
        "--no-content", action="store_true", help="match the technical strata only (datasets not categorized yet)"
    )
    matching.add_argument("--output-dir", default="reports/debiased", help="folder for the files (default %(default)s)")
    matching.set_defaults(handler=run_debias)


def run_audit(args: argparse.Namespace) -> int:
    from labeling.audit_run import run_audit
    from labeling.files import write_atomically

    store = context.store(args)
    run = run_audit(store, args.datasets, context.settings(args).near_duplicate_distance)
    result = run.audit
    print(_report_text(result))
    print()
    if run.duplicates is None:
        print(f"Duplicates: not searched ({run.note})")
    else:
        print("Duplicates (saved for Review's filter; `labeling duplicates --csv FILE` lists every group):")
        print("\n".join(f"  {line}" for line in run.duplicates.summary_lines()))
    if args.json:
        write_atomically(args.json, json.dumps(result.to_json(), indent=2, ensure_ascii=False).encode("utf-8"))
        print(f"Wrote {args.json}")
    if args.html:
        from labeling.audit_report import html_report

        write_atomically(args.html, html_report(result).encode("utf-8"))
        print(f"Wrote {args.html}")
    if args.csv:
        from labeling.audit_report import facts_csv

        write_atomically(args.csv, facts_csv(store.image_facts([store.dataset_id(n) for n in args.datasets])))
        print(f"Wrote {args.csv}")
    return 0


def _report_text(result: Audit) -> str:
    from labeling.audit_run import finding_line

    lines = []
    for dataset in result.datasets:
        side = f", {result.sides[dataset.side].name} side" if dataset.side is not None and result.sides else ""
        lines.append(
            f"{dataset.name}: {count(dataset.audited, 'image')} with facts ({dataset.errors:,} unreadable){side}"
        )
    if not any(d.audited for d in result.datasets):
        lines.append("No facts yet: run `labeling scan --dataset NAME` for each dataset first.")
        return "\n".join(lines)
    score = result.shortcut
    lines.append("")
    lines.append(f"Shortcut score: {score.score:.3f}. {score.sentence}" if score.computed else score.reason)
    if score.computed and score.leans_on:
        lines.append("  leans on: " + ", ".join(f"{w.title} ({w.share:.0%})" for w in score.leans_on[:5]))
    lines.append("")
    lines.append("Findings:" if result.findings else "Findings: nothing stands out.")
    for finding in result.findings:
        lines.append(f"  [{finding.severity}] {finding_line(finding)}")
    lines.append("")
    lines.append("Separates best (AUC of the fact alone):")
    for s in result.separation[:SEPARATION_LINES]:
        auc = "n/a" if math.isnan(s.auc) else f"{s.auc:.3f}"
        lines.append(f"  {auc}  {s.title}" + (f" ({s.direction})" if s.direction else ""))
    return "\n".join(lines)


def run_debias(args: argparse.Namespace) -> int:
    from labeling.debias import before_after, debias, seed_csv
    from labeling.files import write_atomically

    store = context.store(args)
    copies = _duplicates_left_out(store, args.datasets, context.settings(args).near_duplicate_distance)
    result = debias(
        store, args.datasets, strata=args.strata, source=args.source, exclude=copies, content=not args.no_content
    )
    folder = Path(args.output_dir)
    for name, counts in result.counts().items():
        left_out = ", ".join(f"{n:,} {reason}" for reason, n in counts.items() if reason not in ("before", "kept"))
        print(
            f"{name}: kept {counts['kept']:,} of {counts['before']:,}"
            + (f" (left out: {left_out})" if left_out else "")
        )
        csv_name, names_name = result.file_names(name)
        write_atomically(folder / csv_name, seed_csv(store, result, name))
        write_atomically(folder / names_name, result.names_text(name))
    if not any(counts["kept"] for counts in result.counts().values()):
        print(
            "Nothing matched: the sides share no combination of the chosen strata; match on fewer (--strata)."
            if args.no_content
            else "Nothing matched: categorize the datasets first (`labeling describe`), or pass --no-content."
        )
    report = before_after(store, result)
    print(f"Shortcut score: {_num(report.score_before)} before, {_num(report.score_after)} after.")
    print(f"Category test p: {_num(report.category_p_before, 4)} before, {_num(report.category_p_after, 4)} after.")
    print(f"Wrote the seed CSVs and name lists to {folder}")
    return 0


def _num(value: float, digits: int = 3) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _duplicates_left_out(store: Any, datasets: list[str], distance: int) -> set[int]:
    """Leaked images and extra copies, when the datasets are hashed (else none: the debias counts unscanned ones)."""
    from labeling.duplicates import find_duplicates
    from labeling.errors import InputError

    try:
        return find_duplicates(store, datasets, distance).left_out()
    except InputError:
        return set()
