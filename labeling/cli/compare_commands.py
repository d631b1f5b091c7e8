"""The seed's plot commands (reading its categorized CSVs, no database) and `labeling compare` / `labeling export`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labeling.cli import context
from labeling.errors import InputError
from labeling.vocabulary import EXPORT_FORMATS, LABEL_SOURCES

if TYPE_CHECKING:
    import pandas as pd

    from labeling.comparison import Comparison, SeedDistribution

SEED_OUTPUTS = {
    "single": "reports/category_distribution.png",
    "combined": "reports/combined_category_distribution.png",
    "normalized": "reports/normalized_category_distribution.png",
}


def register(subparsers: Any) -> None:
    single = subparsers.add_parser(
        "plot-category-distribution",
        help="bar chart of one seed categorized CSV (PNG or SVG)",
        description="Count the categories of a seed `image_name,description,categories` CSV and draw them.",
    )
    single.add_argument(
        "--csv-path", required=True, help="categorized CSV, e.g. reports/real_descriptions_categorized.csv"
    )
    single.add_argument(
        "--output-path",
        default=SEED_OUTPUTS["single"],
        help=f"chart file, .png or .svg (default {SEED_OUTPUTS['single']})",
    )
    single.add_argument("--dataset-name", help="name in the title (default REAL/GEN from the file name)")
    single.add_argument("--top", type=int, metavar="N", help="only the N most frequent categories")
    single.set_defaults(handler=run_plot_single)

    for kind, what in (("combined", "raw counts"), ("normalized", "% of each dataset's images")):
        pair = subparsers.add_parser(
            f"plot-{kind}-distribution",
            help=f"REAL vs GEN grouped bars of {what.replace('%', '%%')} from seed categorized CSVs",
            description=f"Grouped bars of {what} per category for the seed's REAL and GEN categorized CSVs, "
            "with the per-category tests on stdout.",
        )
        pair.add_argument("--real-csv", required=True, help="REAL categorized CSV")
        pair.add_argument("--gen-csv", required=True, help="GEN categorized CSV")
        pair.add_argument(
            "--output-path", default=SEED_OUTPUTS[kind], help=f"chart file, .png or .svg (default {SEED_OUTPUTS[kind]})"
        )
        _add_view_flags(pair)
        pair.add_argument("--stats-csv", metavar="FILE", help="also write the per-category statistics as CSV")
        pair.set_defaults(handler=run_plot_pair, normalized=kind == "normalized")

    comparing = subparsers.add_parser(
        "compare",
        help="compare category distributions of datasets in the database: chart and statistics",
        description="Grouped bars (raw or normalized) of any number of datasets, per-category shares with 95% "
        "Wilson intervals, tests of equal shares adjusted with Benjamini-Hochberg, and an overall test.",
    )
    comparing.add_argument("--datasets", nargs="+", required=True, metavar="NAME", help="datasets, e.g. REAL GEN")
    comparing.add_argument("--normalized", action="store_true", help="%% of each dataset's images, not counts")
    comparing.add_argument(
        "--source",
        choices=LABEL_SOURCES,
        default="effective",
        help="label source: effective (default), model or human (reviewed images only)",
    )
    _add_view_flags(comparing)
    comparing.add_argument("--output-path", required=True, help="chart file, .png or .svg")
    comparing.add_argument("--stats-csv", metavar="FILE", help="also write the per-category statistics as CSV")
    comparing.set_defaults(handler=run_compare)

    exporting = subparsers.add_parser(
        "export",
        help="write datasets' labels as the seed's categorized CSV or as Parquet",
        description="CSV in the seed's format (image_name,description,categories) that imports back losslessly, "
        "or Parquet; formula-like cells are neutralised for spreadsheets. Several datasets are one file each, "
        "written into a folder.",
    )
    exporting.add_argument(
        "--dataset",
        required=True,
        action="append",
        metavar="NAME",
        help="dataset name; repeat it for several (--dataset REAL --dataset GEN)",
    )
    exporting.add_argument(
        "--output-csv",
        "--output",
        dest="output",
        metavar="FILE",
        help="file to write for one dataset (default reports/<dataset>_<source>_categorized.<format>)",
    )
    exporting.add_argument(
        "--output-dir",
        metavar="FOLDER",
        help="folder to write one file per dataset into, named as the default file (default reports)",
    )
    exporting.add_argument(
        "--source",
        choices=LABEL_SOURCES,
        default="effective",
        help="label source: effective (default), model or human (reviewed images only)",
    )
    exporting.add_argument("--format", choices=EXPORT_FORMATS, help="csv or parquet (default: from the suffix)")
    exporting.add_argument(
        "--extra-columns",
        action="store_true",
        help="add dataset, label_source, reviewed, model_categories, human_categories, reviewer",
    )
    exporting.set_defaults(handler=run_export)


def _add_view_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--top", type=int, metavar="N", help="only the N categories with the most images")
    parser.add_argument(
        "--reference",
        metavar="NAME",
        help="dataset differences are measured against (and top-N ranks by); default the first",
    )
    parser.add_argument(
        "--sort",
        choices=("count", "difference"),
        default="count",
        help="order categories by count (default) or by share difference",
    )


def _print_comparison(result: Comparison, chart_path: Path, stats_csv: str | None) -> None:
    from labeling.charts import save_chart
    from labeling.comparison import stats_csv_bytes

    save_chart(result.chart(), chart_path)
    print(f"Wrote {chart_path}")
    if stats_csv:
        target = Path(stats_csv)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(stats_csv_bytes(result.stats))
        except OSError as exc:
            raise InputError(f"Cannot write {target} ({exc.strerror}): pick a writable path.") from None
        print(f"Wrote {target} ({len(result.stats):,} rows: one per category and dataset)")
    for sentence in result.findings():
        print(sentence)
    print(result.overall_text())


def run_plot_single(args: argparse.Namespace) -> int:
    from labeling.charts import save_chart
    from labeling.comparison import compare, read_seed_distribution, seed_dataset_name

    name = args.dataset_name or seed_dataset_name(args.csv_path)
    seed = read_seed_distribution(args.csv_path, name)
    print(seed.summary())
    result = compare(
        seed.frame, top_n=args.top, label_source=f"the CSV {Path(args.csv_path).name}", labels={name: name}
    )
    save_chart(result.chart(), Path(args.output_path))
    print(f"Wrote {args.output_path}")
    return 0


def _seed_pair(real_csv: str, gen_csv: str) -> tuple[pd.DataFrame, list[SeedDistribution]]:
    import pandas as pd

    from labeling.comparison import read_seed_distribution

    seeds = [read_seed_distribution(real_csv, "REAL"), read_seed_distribution(gen_csv, "GEN")]
    return pd.concat([seed.frame for seed in seeds], ignore_index=True), seeds


def run_plot_pair(args: argparse.Namespace) -> int:
    from labeling.comparison import compare

    dist, seeds = _seed_pair(args.real_csv, args.gen_csv)
    for seed in seeds:
        print(seed.summary())
    source = f"the CSVs {Path(args.real_csv).name} and {Path(args.gen_csv).name}"
    result = compare(
        dist,
        reference=args.reference,
        rank_by=args.reference,
        normalized=args.normalized,
        top_n=args.top,
        sort=args.sort,
        label_source=source,
        labels={"REAL": "REAL", "GEN": "GEN"},
    )
    _print_comparison(result, Path(args.output_path), args.stats_csv)
    return 0


def run_compare(args: argparse.Namespace) -> int:
    from labeling.comparison import compare

    store = context.store(args)
    dist = store.category_distribution(args.datasets, args.source)
    labels = {name: store.dataset(name).label for name in dict.fromkeys(args.datasets)}
    result = compare(
        dist,
        reference=args.reference,
        rank_by=args.reference,
        normalized=args.normalized,
        top_n=args.top,
        sort=args.sort,
        label_source=args.source,
        labels=labels,
    )
    totals = dist.drop_duplicates("dataset")
    print(
        "; ".join(
            f"{name}: {int(total):,} labelled images"
            for name, total in zip(totals["dataset"], totals["total"], strict=True)
        )
        + f" ({args.source} labels)"
    )
    _print_comparison(result, Path(args.output_path), args.stats_csv)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from labeling.exporting import ExportResult, default_export_name, export_dataset, export_datasets, export_format

    datasets = list(dict.fromkeys(args.dataset))
    if args.output and (len(datasets) > 1 or args.output_dir):
        raise InputError("--output-csv names one dataset's file: for several give a folder with --output-dir.")
    results: list[ExportResult]
    if len(datasets) > 1 or args.output_dir:  # one file per dataset, named as the app's zip and folder exports
        fmt = export_format(None, args.format)
        folder = args.output_dir or context.caller_path("reports")
        results = export_datasets(
            context.store(args), datasets, folder, source=args.source, fmt=fmt, extra_columns=args.extra_columns
        )
    else:
        fmt = export_format(args.output, args.format)
        default = Path("reports") / default_export_name(datasets[0], args.source, fmt)
        output = args.output or context.caller_path(str(default))
        results = [
            export_dataset(
                context.store(args), datasets[0], output, source=args.source, fmt=fmt, extra_columns=args.extra_columns
            )
        ]
    for result in results:
        print(result.summary())
    return 0
