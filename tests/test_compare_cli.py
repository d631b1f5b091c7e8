"""The seed's plot commands on seed-format CSVs, and `labeling compare` / `labeling export` on a real database."""

from __future__ import annotations

import csv
import io
import json
import re
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from labeling.comparison import STATS_CSV_COLUMNS, compare, findings, seed_dataset_name, seed_distribution
from labeling.errors import InputError
from labeling.stats import fisher_exact_two_sided, two_proportion_z_test, wilson_interval
from labeling.store import Store
from tests.test_analytics import add_dataset, annotate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def write_seed_csv(path: Path, prefix: str, categories: list[list[str]], errors: int = 0) -> Path:
    """A seed categorized CSV: one row per image, plus `errors` "ERROR: ..." rows the seed wrote on failure."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image_name", "description", "categories"])
    for i, cats in enumerate(categories):
        writer.writerow([f"{prefix}_{i}.jpg", json.dumps({"summary": f"image {i}", "objects": []}), ", ".join(cats)])
    for i in range(errors):
        writer.writerow([f"{prefix}_err{i}.jpg", "ERROR: 429 quota exceeded", ""])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


# REAL: 40 images, 10 with animals; GEN: 40 images, 30 with animals. People equal (20 of 40 each).
REAL_CATS = [["animals", "people"]] * 10 + [["people"]] * 10 + [["food"]] * 20
GEN_CATS = [["animals", "people"]] * 20 + [["animals"]] * 10 + [["food"]] * 10


@pytest.fixture
def seed_reports(tmp_path: Path) -> tuple[Path, Path]:
    reports = tmp_path / "reports"
    return (
        write_seed_csv(reports / "real_descriptions_categorized.csv", "real", REAL_CATS, errors=2),
        write_seed_csv(reports / "gen_descriptions_categorized.csv", "gen", GEN_CATS),
    )


def test_plot_category_distribution_writes_a_png(
    run_cli: Callable[..., Any], seed_reports: tuple[Path, Path], tmp_path: Path
) -> None:
    real, _ = seed_reports
    output = tmp_path / "reports" / "category_distribution.png"
    result = run_cli("plot-category-distribution", "--csv-path", str(real), "--output-path", str(output))
    assert result.code == 0, result.err
    width, height = png_size(output)
    assert width > 600 and height > 200
    assert "REAL: 40 categorized images of 42 rows (left out: 2 seed errors)" in result.out


def test_seed_plot_commands_default_to_the_seed_report_names(
    run_cli: Callable[..., Any], seed_reports: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, gen = seed_reports
    monkeypatch.chdir(tmp_path)
    for command, name in (
        ("plot-combined-distribution", "combined_category_distribution.png"),
        ("plot-normalized-distribution", "normalized_category_distribution.png"),
    ):
        result = run_cli(command, "--real-csv", str(real), "--gen-csv", str(gen))
        assert result.code == 0, result.err
        png_size(tmp_path / "reports" / name)
        assert "GEN has significantly more 'animals' than REAL (75% vs 25%, adjusted p < 0.001)." in result.out
        assert "Overall, the category profiles differ" in result.out
    result = run_cli("plot-category-distribution", "--csv-path", str(gen))
    assert result.code == 0, result.err
    png_size(tmp_path / "reports" / "category_distribution.png")


def test_plot_pair_svg_and_stats_csv(
    run_cli: Callable[..., Any], seed_reports: tuple[Path, Path], tmp_path: Path
) -> None:
    real, gen = seed_reports
    svg, stats_path = tmp_path / "n.svg", tmp_path / "stats.csv"
    result = run_cli(
        "plot-normalized-distribution",
        "--real-csv",
        str(real),
        "--gen-csv",
        str(gen),
        "--output-path",
        str(svg),
        "--stats-csv",
        str(stats_path),
        "--top",
        "2",
    )
    assert result.code == 0, result.err
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<svg") and "75.0%" in text and "bars can sum past 100%" in text
    stats = pd.read_csv(stats_path)
    assert list(stats.columns) == STATS_CSV_COLUMNS
    assert len(stats) == 6  # every category (BH counts them all), not only the top 2 drawn


def test_seed_plot_errors_are_one_line(run_cli: Callable[..., Any], tmp_path: Path) -> None:
    result = run_cli("plot-category-distribution", "--csv-path", str(tmp_path / "nope.csv"))
    assert result.code == 1 and "does not exist" in result.err
    empty = write_seed_csv(tmp_path / "empty.csv", "x", [[], []])
    result = run_cli("plot-category-distribution", "--csv-path", str(empty))
    assert result.code == 1 and "no categorized rows" in result.err
    real = write_seed_csv(tmp_path / "real.csv", "r", [["a"]])
    result = run_cli("plot-category-distribution", "--csv-path", str(real), "--output-path", str(tmp_path / "x.jpg"))
    assert result.code == 1 and ".png or .svg" in result.err


def test_seed_distribution_counts_each_image_once_per_category() -> None:
    data = (
        b"image_name,description,categories\n"
        b'a.jpg,x,"animals, animals, people"\n'
        b"b.jpg,ERROR: blocked,\n"
        b"c.jpg,y,\n"
        b"a.jpg,dup,food\n"
    )  # a repeated name keeps its first row
    seed = seed_distribution(data, "REAL")
    assert (seed.rows, seed.labelled, seed.errors, seed.uncategorized) == (3, 1, 1, 1)
    assert seed.frame.to_dict("records") == [
        {"dataset": "REAL", "category": "animals", "count": 1, "total": 1},
        {"dataset": "REAL", "category": "people", "count": 1, "total": 1},
    ]
    assert seed_dataset_name("reports/gen_descriptions_categorized.csv") == "GEN"
    assert seed_dataset_name("x/real-2024.csv") == "REAL"
    assert seed_dataset_name("mine.csv") == "mine"
    with pytest.raises(InputError):
        seed_distribution(b"image_name,description\na.jpg,x\n", "REAL")


def _db_datasets(store: Store) -> None:
    real = add_dataset(store, "REAL", [f"r{i}.jpg" for i in range(40)], label="REAL")
    gen = add_dataset(store, "GEN", [f"g{i}.jpg" for i in range(40)], label="GEN")
    annotate(store, {real[f"r{i}.jpg"]: cats for i, cats in enumerate(REAL_CATS)})
    annotate(store, {gen[f"g{i}.jpg"]: cats for i, cats in enumerate(GEN_CATS)})


def test_compare_writes_chart_and_stats_with_the_right_values(
    run_cli: Callable[..., Any], store: Store, db_path: Path, tmp_path: Path
) -> None:
    _db_datasets(store)
    store.close()
    chart, stats_path = tmp_path / "chart.png", tmp_path / "stats.csv"
    result = run_cli(
        "compare",
        "--datasets",
        "REAL",
        "GEN",
        "--output-path",
        str(chart),
        "--stats-csv",
        str(stats_path),
        "--source",
        "model",
    )
    assert result.code == 0, result.err
    png_size(chart)
    assert "REAL: 40 labelled images; GEN: 40 labelled images (model labels)" in result.out
    stats = pd.read_csv(stats_path)
    assert list(stats.columns) == STATS_CSV_COLUMNS
    assert list(stats.columns[:9]) == [
        "category",
        "dataset",
        "count",
        "total",
        "share",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adjusted",
    ]
    rows = {(r.category, r.dataset): r for r in stats.itertuples()}
    animals_gen, animals_real = rows[("animals", "GEN")], rows[("animals", "REAL")]
    assert (animals_real.count, animals_real.total, animals_gen.count, animals_gen.total) == (10, 40, 30, 40)
    assert animals_gen.share == pytest.approx(0.75)
    assert (animals_gen.ci_low, animals_gen.ci_high) == pytest.approx(wilson_interval(30, 40))
    assert animals_gen.difference == pytest.approx(0.5)
    assert animals_gen.test == "two-proportion z"
    assert animals_gen.p_value == pytest.approx(two_proportion_z_test(10, 40, 30, 40))
    people = rows[("people", "GEN")]
    assert people.p_value == pytest.approx(1.0)
    # Three categories: BH multiplies the smallest p by 3 / 1 (and keeps the order).
    smallest = min(r.p_value for r in stats.itertuples())
    assert stats["p_adjusted"].min() == pytest.approx(min(1.0, smallest * 3))
    assert set(stats["label_source"]) == {"model"} and set(stats["reference"]) == {"REAL"}
    # Chart order: count across datasets (animals 40, food 30, people 40 -> animals, people, food).
    assert list(dict.fromkeys(stats["category"])) == ["animals", "people", "food"]


def test_compare_options_normalized_top_reference_sort(
    run_cli: Callable[..., Any], store: Store, tmp_path: Path
) -> None:
    _db_datasets(store)
    store.close()
    svg = tmp_path / "chart.svg"
    result = run_cli(
        "compare",
        "--datasets",
        "GEN",
        "REAL",
        "--normalized",
        "--top",
        "2",
        "--reference",
        "REAL",
        "--sort",
        "difference",
        "--output-path",
        str(svg),
    )
    assert result.code == 0, result.err
    text = svg.read_text(encoding="utf-8")
    assert "Top 2 categories by REAL's count" in text and "effective labels" in text
    # REAL's top 2 by count are food (20) and people (20); food differs more (50% vs 25%).
    assert "REAL has significantly fewer" not in result.out
    bad = run_cli("compare", "--datasets", "REAL", "NOPE", "--output-path", str(svg))
    assert bad.code == 1 and "no dataset named 'NOPE'" in bad.err


def test_export_command_csv_and_parquet(
    run_cli: Callable[..., Any], store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _db_datasets(store)
    store.close()
    output = tmp_path / "out" / "real.csv"
    result = run_cli("export", "--dataset", "REAL", "--output-csv", str(output), "--source", "model")
    assert result.code == 0, result.err
    assert result.out.strip() == f"Exported 40 images of REAL (model labels) as CSV to {output}."
    lines = output.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "image_name,description,categories" and len(lines) == 41
    assert re.fullmatch(r'r0\.jpg,image \d+,"animals, people"', lines[1])  # summary-only: its plain text
    result = run_cli("export", "--dataset", "GEN", "--output-csv", str(tmp_path / "gen.parquet"), "--extra-columns")
    assert result.code == 0, result.err
    assert "as PARQUET" in result.out and "effective labels" in result.out
    assert pd.read_parquet(tmp_path / "gen.parquet")["label_source"].unique().tolist() == ["effective"]
    monkeypatch.chdir(tmp_path)
    result = run_cli("export", "--dataset", "GEN", "--source", "human", "--format", "csv")
    assert result.code == 0, result.err
    assert (tmp_path / "reports" / "GEN_human_categorized.csv").read_text() == "image_name,description,categories\n"


def test_findings_for_three_datasets_and_no_difference() -> None:
    dist = pd.DataFrame(
        [
            ("A", "x", 10, 100),
            ("B", "x", 50, 100),
            ("C", "x", 30, 100),
            ("A", "y", 5, 100),
            ("B", "y", 6, 100),
            ("C", "y", 5, 100),
        ],
        columns=["dataset", "category", "count", "total"],
    )
    result = compare(dist, label_source="model")
    sentences = result.findings()
    assert sentences == ["'x' differs across the datasets (A 10%, B 50%, C 30%; adjusted p < 0.001)."]
    assert result.stats["test"].unique().tolist() == ["chi-square"]
    same = pd.DataFrame([("REAL", "x", 3, 10), ("GEN", "x", 4, 10)], columns=["dataset", "category", "count", "total"])
    stats = compare(same).stats
    assert stats["test"].iloc[0] == "fisher"
    assert stats["p_value"].iloc[0] == pytest.approx(fisher_exact_two_sided(3, 7, 4, 6))
    assert findings(stats, ["REAL", "GEN"], "REAL") == [
        "No category differs significantly between REAL and GEN after adjusting for 1 category "
        "(smallest adjusted p = 1.00)."
    ]
