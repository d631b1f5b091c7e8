"""The Compare and Export pages through Streamlit's AppTest, on a real database with labelled datasets."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from labeling.store import Store
from tests.conftest import as_shown
from tests.test_analytics import add_dataset, annotate, review
from tests.test_compare_cli import GEN_CATS, REAL_CATS


@pytest.fixture
def labelled_db(db_path: Path) -> Path:
    with Store(db_path) as store:
        real = add_dataset(store, "REAL", [f"r{i}.jpg" for i in range(40)], label="REAL")
        gen = add_dataset(store, "GEN", [f"g{i}.jpg" for i in range(40)], label="GEN")
        add_dataset(store, "=HYPER", ["h.jpg"])  # a name that must stay text
        annotate(store, {real[f"r{i}.jpg"]: cats for i, cats in enumerate(REAL_CATS)})
        annotate(store, {gen[f"g{i}.jpg"]: cats for i, cats in enumerate(GEN_CATS)})
        review(store, real["r20.jpg"], categories=["night"])  # was food
    return db_path


def open_page(at: AppTest, page: str) -> AppTest:
    at.run()
    at.switch_page(f"pages/{page}.py")
    at.run()
    assert not at.exception, at.exception
    return at


def _chart(at: AppTest) -> Any:
    found = [node for node in _walk(at.main) if getattr(node, "type", "") == "vega_lite_chart"]
    assert len(found) == 1
    return found[0].proto


def chart_spec(at: AppTest) -> dict[str, Any]:
    """The Vega-Lite spec Streamlit sends for the page's (one) Altair chart."""
    spec: dict[str, Any] = json.loads(_chart(at).spec)
    return spec


def chart_rows(at: AppTest) -> list[dict[str, Any]]:
    """The rows the browser receives for the chart (Arrow-encoded beside the spec): aggregates only."""
    (dataset,) = _chart(at).datasets
    rows: list[dict[str, Any]] = convert_arrow_bytes_to_pandas_df(dataset.data.data).to_dict("records")
    return rows


def table_columns(at: AppTest) -> list[tuple[str, str, int]]:
    """(column, header shown, width px) of the page's first table, in order, from its column configuration."""
    config = json.loads(at.dataframe[0].proto.columns)
    return [(name, config[name]["label"], config[name]["width"]) for name in at.dataframe[0].value.columns]


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for child in getattr(node, "children", {}).values():
        yield from _walk(child)


def test_compare_page_defaults_to_real_vs_gen_with_chart_and_table(app: AppTest, labelled_db: Path) -> None:
    at = open_page(app, "compare")
    assert at.multiselect(key="compare_datasets").value == ["REAL", "GEN"]
    spec = chart_spec(at)
    assert spec["title"]["text"] == "REAL: 40 images · GEN: 40 images"
    # The effective_labels view takes a human value wherever one is set, reviewed or not.
    assert "Labels: effective labels, human where set and model elsewhere" in spec["title"]["subtitle"]
    rows = chart_rows(at)
    assert {(r["category"], r["dataset"], r["count"]) for r in rows} >= {
        ("animals", "GEN", 30),
        ("animals", "REAL", 10),
    }
    table = at.dataframe[0].value
    gen_animals = table[(table["category"] == "animals") & (table["dataset"] == "GEN")].iloc[0]
    assert gen_animals["share"] == "75.0% (59.8–85.8)"  # the share and its Wilson interval, one column
    assert gen_animals["difference"] == pytest.approx(50.0)
    assert gen_animals["p_adjusted"] == "< 0.001" and gen_animals["lift"] == pytest.approx(1.54)
    assert gen_animals["test"] == "two-proportion z"
    assert all(re.fullmatch(r"\d+\.\d% \(\d+\.\d–\d+\.\d\)", share) for share in table["share"])
    assert any("log2 lift are against REAL" in c.value for c in at.caption)
    texts = [m.value for m in at.markdown]
    assert any("GEN has significantly more 'animals' than REAL" in t for t in texts)
    assert any("Overall, the category profiles differ" in c.value for c in at.caption)
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Chart as PNG", "Chart as SVG", "Statistics as CSV"]


def test_compare_page_controls_change_chart_and_table(app: AppTest, labelled_db: Path) -> None:
    at = open_page(app, "compare")
    at.radio(key="compare_scale").set_value("% of images").run()
    rows = chart_rows(at)
    gen_animals = next(r for r in rows if r["category"] == "animals" and r["dataset"] == "GEN")
    assert gen_animals["value"] == pytest.approx(75.0) and gen_animals["label"] == "75.0%"
    assert any("sum past 100%" in line for line in chart_spec(at)["title"]["subtitle"])

    at.number_input(key="compare_top").set_value(1).run()
    assert {r["category"] for r in chart_rows(at)} == {"animals"}  # the most images over both datasets
    assert set(at.dataframe[0].value["category"]) == {"animals"}
    at.radio(key="compare_rank").set_value("Reference").run()
    assert {r["category"] for r in chart_rows(at)} == {"people"}  # REAL's most frequent: people 20, food 19

    at.number_input(key="compare_top").set_value(0).run()
    at.radio(key="compare_sort").set_value("difference").run()
    order = list(dict.fromkeys(r["category"] for r in chart_rows(at)))
    assert order[0] == "animals"  # 50 points apart

    at.selectbox(key="compare_reference").set_value("GEN").run()
    table = at.dataframe[0].value
    assert any("log2 lift are against GEN" in c.value for c in at.caption)
    real_animals = table[(table["category"] == "animals") & (table["dataset"] == "REAL")].iloc[0]
    assert real_animals["difference"] == pytest.approx(-50.0)
    assert any("REAL has significantly fewer 'animals' than GEN" in m.value for m in at.markdown)

    at.radio(key="compare_source").set_value("human").run()
    assert "No labelled images" not in " ".join(i.value for i in at.info)
    rows = chart_rows(at)
    assert {(r["dataset"], r["category"], r["count"]) for r in rows if r["count"]} == {("REAL", "night", 1)}


def test_compare_page_any_number_of_datasets_and_names_stay_text(app: AppTest, labelled_db: Path) -> None:
    at = open_page(app, "compare")
    at.multiselect(key="compare_datasets").set_value(["GEN", "REAL", "=HYPER"]).run()
    assert not at.exception
    spec = chart_spec(at)
    assert spec["title"]["text"] == "GEN: 40 images · REAL: 40 images · =HYPER: 0 images"
    # =HYPER has no labelled images: the tests compare the two others (no chi-square across three).
    assert set(at.dataframe[0].value["test"]) == {"two-proportion z", "fisher"}
    at.multiselect(key="compare_datasets").set_value(["=HYPER"]).run()
    assert any("No labelled images" in i.value for i in at.info)
    at.multiselect(key="compare_datasets").set_value([]).run()
    assert any("Choose at least one dataset" in i.value for i in at.info)


def test_compare_statistics_table_has_readable_headers_that_fit_the_page(app: AppTest, labelled_db: Path) -> None:
    at = open_page(app, "compare")
    columns = table_columns(at)
    assert [label for _, label, _ in columns] == [
        "Category",
        "Dataset",
        "Images",
        "Share (95% CI)",
        "Difference (pp)",
        "p",
        "p adjusted",
        "log2 lift",
        "Test",
    ]
    # The page's main column is 940 px at 1400 px wide with the sidebar open: every column fits beside the others.
    assert sum(width for _, _, width in columns) <= 900
    assert all(width >= 60 for _, _, width in columns)


def test_compare_page_without_datasets(app: AppTest) -> None:
    at = open_page(app, "compare")
    assert any("No datasets yet" in i.value for i in at.info)


def test_export_page_preview_download_and_write(app: AppTest, labelled_db: Path, tmp_path: Path) -> None:
    at = open_page(app, "export")
    at.multiselect(key="export_datasets").set_value(["REAL"]).run()
    preview = at.dataframe[0].value
    assert list(preview.columns) == ["image_name", "description", "categories"]
    assert len(preview) == 20
    assert any("40 images of REAL" in c.value for c in at.caption)
    assert [as_shown(b.label) for b in at.get("download_button")] == ["Download REAL_effective_categorized.csv"]

    at.radio(key="export_source").set_value("human").run()
    assert len(at.dataframe[0].value) == 1
    assert at.dataframe[0].value.iloc[0]["categories"] == "night"
    at.toggle(key="export_extra").set_value(True).run()
    assert "label_source" in at.dataframe[0].value.columns
    at.radio(key="export_format").set_value("parquet").run()
    assert [as_shown(b.label) for b in at.get("download_button")] == ["Download REAL_human_categorized.parquet"]

    target = tmp_path / "out" / "real.parquet"
    at.text_input[0].set_value(str(target))
    at.button[0].click().run()
    assert not at.exception
    assert any("Exported 1 image of REAL" in s.value for s in at.success)
    assert target.read_bytes()[:4] == b"PAR1"


def test_export_page_write_errors_are_shown(app: AppTest, labelled_db: Path, tmp_path: Path) -> None:
    at = open_page(app, "export")
    at.text_input[0].set_value(str(tmp_path))  # a folder, not a file
    at.button[0].click().run()
    assert not at.exception
    assert any("is a folder" in e.value for e in at.error)
