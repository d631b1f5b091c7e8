"""The technical-bias audit over image_facts: its statistics against scipy, the shortcut score on sets built to
be separable and not, the findings' text, and the exports (JSON, offline HTML, formula-safe CSV)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from labeling.audit import Audit, Finding, audit, audit_store
from labeling.audit_report import facts_csv, html_report
from labeling.errors import InputError
from labeling.stats import ks_two_sample, mann_whitney_auc
from labeling.store import Store
from labeling.store.facts import FactRow

HOSTILE = "<img src=x onerror=alert(1)>"
REAL_SIZES = [(500, 375), (375, 500), (640, 480), (500, 333), (800, 600), (1024, 768), (480, 360)]


def _pixels(rng: np.random.Generator) -> dict[str, float]:
    return {
        "luma_mean": float(rng.normal(115, 30)),
        "luma_std": float(rng.normal(55, 10)),
        "clip_high": float(rng.uniform(0, 0.05)),
        "clip_low": float(rng.uniform(0, 0.05)),
        "saturation_mean": float(rng.uniform(0.1, 0.6)),
        "sharpness": float(rng.lognormal(5, 1)),
        "high_freq": float(rng.uniform(0.01, 0.2)),
    }


def _jpeg(rng: np.random.Generator, size: tuple[int, int], quality: int = 96, **extra: Any) -> dict[str, Any]:
    w, h = size
    nbytes = int(w * h * 0.4 * rng.uniform(0.7, 1.3))
    base = {
        "format": "JPEG",
        "width": w,
        "height": h,
        "size_bytes": nbytes,
        "aspect": w / h,
        "bytes_per_pixel": nbytes / (w * h),
        "mode": "RGB",
        "bit_depth": 8,
        "frames": 1,
        "jpeg_quality": quality,
        "jpeg_table": "standard",
        "jpeg_subsampling": "4:2:0",
        "jpeg_progressive": False,
        "jpeg_tables": 2,
        "exif": False,
        "exif_gps": False,
        "icc": False,
        "xmp": False,
        "c2pa": False,
    }
    return {**base, **_pixels(rng), **extra}


def _png(rng: np.random.Generator, size: tuple[int, int] = (512, 512), **extra: Any) -> dict[str, Any]:
    w, h = size
    nbytes = int(w * h * 1.8 * rng.uniform(0.7, 1.3))
    base = {
        "format": "PNG",
        "width": w,
        "height": h,
        "size_bytes": nbytes,
        "aspect": w / h,
        "bytes_per_pixel": nbytes / (w * h),
        "mode": "RGB",
        "bit_depth": 8,
        "frames": 1,
        "exif": False,
        "exif_gps": False,
        "icc": False,
        "xmp": False,
        "c2pa": False,
    }
    return {**base, **_pixels(rng), **extra}


def _add(store: Store, name: str, label: str, facts: list[dict[str, Any]]) -> None:
    """A dataset of len(facts) images whose image_facts rows are `facts` (an "error" key makes a failed scan)."""
    dataset_id = store.save_dataset(name, label=label, source_kind="none")
    names = [f"{i:05d}.img" for i in range(len(facts))]
    frame = pd.DataFrame({"name": names, "location": names, "status": "found", "detail": None})
    store.upsert_images(dataset_id, frame)
    ids = dict(zip(*store.image_ids_by_name(dataset_id)[["name", "image_id"]].to_numpy().T, strict=True))
    store.record_facts([FactRow(int(ids[n]), "test", **f) for n, f in zip(names, facts, strict=True)])


def _separable(rng: np.random.Generator, n: int = 40) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    real = [_jpeg(rng, REAL_SIZES[i % len(REAL_SIZES)], exif=True, exif_make="Canon") for i in range(n)]
    gen = [_png(rng) for _ in range(n)]
    return real, gen


@pytest.fixture(scope="module")
def separable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Audit]]:
    """REAL: JPEG q96 camera files of 7 sizes; GEN: PNG 512x512, 12 with SD parameters, 8 with C2PA."""
    store = Store(tmp_path_factory.mktemp("audit") / "audit.duckdb")
    rng = np.random.default_rng(1)
    real, gen = _separable(rng)
    for i in range(12):
        gen[i] |= {"text_keys": ["parameters"], "generator": "Stable Diffusion WebUI"}
    for i in range(20, 28):
        gen[i] |= {"c2pa": True, "c2pa_generator": "Adobe Firefly"}
    _add(store, "imagenet", "REAL", [*real, {"error": "not an image"}])
    _add(store, "sd14", "GEN", gen)
    yield store, audit_store(store, ["imagenet", "sd14"])
    store.close()


# ------------------------------------------------------------------------------------------- statistics


def test_the_tests_are_scipys_on_the_same_counts(store: Store) -> None:
    rng = np.random.default_rng(7)
    real = [_jpeg(rng, (640, 480)) for _ in range(30)]
    gen = [_jpeg(rng, (640, 480)) for _ in range(30)]
    for i in range(10):
        real[i] |= {"format": "PNG"}
    for i in range(25):
        gen[i] |= {"format": "PNG"}
    for i in range(3):
        real[i] |= {"exif_gps": True}  # 3 vs 0: expected cells below 5, so Fisher
    modes = ["RGB"] * 15 + ["RGBA"] * 10 + ["L"] * 5
    for row, mode in zip(real, modes, strict=True):
        row["mode"] = mode
    for row, mode in zip(gen, ["RGB"] * 25 + ["RGBA"] * 2 + ["L"] * 3, strict=True):
        row["mode"] = mode
    _add(store, "R", "REAL", real)
    _add(store, "G", "GEN", gen)
    result = audit_store(store, ["R", "G"])

    fmt = result.categorical_fact("format")
    png = next(v for v in fmt.values if v.value == "PNG")
    assert [c.count for c in png.counts] == [10, 25] and png.test == "two-proportion z"
    z_p = sps.chi2_contingency([[10, 20], [25, 5]], correction=False).pvalue
    assert png.p_value == pytest.approx(z_p) and fmt.p_value == pytest.approx(z_p)

    gps = result.categorical_fact("exif_gps")
    assert gps.test == "fisher"
    assert gps.p_value == pytest.approx(sps.fisher_exact([[27, 3], [30, 0]]).pvalue)

    mode = result.categorical_fact("mode")
    assert mode.test == "chi-square"
    table = [[15, 10, 5], [25, 2, 3]]
    chi = sps.chi2_contingency(table, correction=False)
    assert mode.p_value == pytest.approx(chi.pvalue) and mode.statistic == pytest.approx(chi.statistic)

    luma = result.numeric_fact("luma_mean")
    first = [r["luma_mean"] for r in real]
    second = [r["luma_mean"] for r in gen]
    ks = sps.ks_2samp(first, second)
    assert (luma.ks_statistic, luma.p_value) == (pytest.approx(ks.statistic), pytest.approx(ks.pvalue))
    auc = roc_auc_score([0] * 30 + [1] * 30, first + second)
    assert luma.auc == pytest.approx(max(auc, 1 - auc)) and luma.cliffs_delta == pytest.approx(2 * auc - 1)
    assert luma.sides[0].median == pytest.approx(np.median(first))

    tests = [*result.categorical, *result.numeric]
    tested = [t for t in tests if not math.isnan(t.p_value)]
    expected = sps.false_discovery_control([t.p_value for t in tested])
    assert [t.q_value for t in tested] == pytest.approx(list(expected))
    assert all(math.isnan(t.q_value) for t in tests if math.isnan(t.p_value))


def test_the_two_sample_wrappers_are_scipy_and_sklearn() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=50), rng.normal(0.5, size=40)
    ks = sps.ks_2samp(a, b)
    assert ks_two_sample(a, b) == (pytest.approx(ks.statistic), pytest.approx(ks.pvalue))
    assert mann_whitney_auc(a, b) == pytest.approx(roc_auc_score([0] * 50 + [1] * 40, [*a, *b]))
    assert mann_whitney_auc([1.0, 1.0], [1.0]) == 0.5
    assert math.isnan(mann_whitney_auc([], [1.0])) and math.isnan(ks_two_sample([math.nan], [1.0])[1])


# ------------------------------------------------------------------------------------------ shortcut score


def test_separable_sets_score_high_and_the_model_leans_on_format_and_size(separable: tuple[Store, Audit]) -> None:
    _store, result = separable
    score = result.shortcut
    assert score.computed and score.score > 0.95
    assert {m.model for m in score.models} == {"logistic regression", "gradient boosting"}
    assert score.score == max(m.auc for m in score.models)
    assert score.sentence.startswith("Technical facts alone tell REAL from GEN with AUC 1.00")
    top = [w.fact for w in score.leans_on[:6]]
    assert {"format", "dimensions"} <= set(top), top
    groups = {result.categorical_fact(f).group for f in top if f in {c.fact for c in result.categorical}}
    assert groups <= {"encoding", "size", "metadata"}
    assert not any(w.fact in ("luma_mean", "sharpness", "high_freq") for w in score.leans_on[:6])
    assert result.separation[0].auc == pytest.approx(1.0)
    assert [s.auc for s in result.separation if not math.isnan(s.auc)] == sorted(
        (s.auc for s in result.separation if not math.isnan(s.auc)), reverse=True
    )


def test_sets_from_one_distribution_score_near_chance(store: Store) -> None:
    rng = np.random.default_rng(11)

    def draw() -> dict[str, Any]:
        size = REAL_SIZES[int(rng.integers(len(REAL_SIZES)))]
        return _jpeg(rng, size) if rng.random() < 0.5 else _png(rng, size)

    _add(store, "A", "REAL", [draw() for _ in range(150)])
    _add(store, "B", "GEN", [draw() for _ in range(150)])
    result = audit_store(store, ["A", "B"])
    assert result.shortcut.computed and result.shortcut.score < 0.65
    assert result.findings[0].severity == "info" and "barely" in result.findings[0].text
    assert not [f for f in result.findings if f.severity in ("critical", "high")]


def test_small_sides_say_why_there_is_no_score(store: Store) -> None:
    rng = np.random.default_rng(5)
    real, gen = _separable(rng, n=5)
    _add(store, "R", "REAL", real)
    _add(store, "G", "GEN", gen)
    score = audit_store(store, ["R", "G"]).shortcut
    assert not score.computed and math.isnan(score.score)
    assert "at least 10 per side" in score.reason and "REAL has 5" in score.reason


# ------------------------------------------------------------------------------------------------ findings


def test_findings_say_what_differs_and_what_to_do(separable: tuple[Store, Audit]) -> None:
    _store, result = separable
    texts = [f.text for f in result.findings]
    assert result.findings[0].fact == "shortcut" and result.findings[0].severity == "critical"
    fmt = next(f for f in result.findings if f.fact == "format")
    assert fmt.text == "All GEN files are PNG and all REAL files are JPEG (quality ~96)"
    assert "Re-encode both sides" in fmt.action and fmt.severity == "critical"
    assert "All GEN images are 512x512 (REAL: 7 sizes, 0% at 512x512)" in texts
    sd = next(f for f in result.findings if f.fact == "text_key:parameters")
    assert sd.text.startswith("12 GEN files carry Stable Diffusion parameters in a text chunk")
    assert "Strip metadata" in sd.action
    assert any(t.startswith("20% of GEN files (8) carry a C2PA manifest (Adobe Firefly)") for t in texts)
    assert any(t.startswith("EXIF camera make in 100% of REAL, 0% of GEN") for t in texts)
    ranks = ["critical", "high", "medium", "low", "info"]
    assert [ranks.index(f.severity) for f in result.findings] == sorted(
        ranks.index(f.severity) for f in result.findings
    )


def test_error_rows_are_counted_and_left_out(separable: tuple[Store, Audit]) -> None:
    _store, result = separable
    imagenet = next(d for d in result.datasets if d.name == "imagenet")
    assert (imagenet.rows, imagenet.errors, imagenet.audited, imagenet.side) == (41, 1, 40, 0)
    assert [s.images for s in result.sides] == [40, 40]
    unreadable = next(f for f in result.findings if "could not be read" in f.text)
    assert unreadable.text == "1 of 41 imagenet files could not be read and is left out"


def test_jpeg_qualities_that_differ_and_an_unscanned_dataset_are_findings(store: Store) -> None:
    rng = np.random.default_rng(8)
    _add(store, "R", "REAL", [_jpeg(rng, REAL_SIZES[i % 7]) for i in range(30)])
    _add(store, "G", "GEN", [_jpeg(rng, REAL_SIZES[i % 7], quality=75) for i in range(30)])
    _add(store, "later", "GEN", [])
    result = audit_store(store, ["R", "G", "later"])
    texts = [f.text for f in result.findings]
    assert "REAL JPEGs have quality ~96, GEN JPEGs ~75 (AUC 1.00 alone)" in texts
    assert "later has no scanned images, so the audit knows nothing about its files" in texts
    assert not any(f.fact == "format" for f in result.findings)  # both sides are JPEG


def test_a_format_share_gap_names_the_format_that_differs(store: Store) -> None:
    rng = np.random.default_rng(9)
    _add(store, "R", "REAL", [_jpeg(rng, REAL_SIZES[i % 7]) for i in range(30)])
    _add(store, "G", "GEN", [_jpeg(rng, REAL_SIZES[i % 7]) for i in range(15)] + [_png(rng) for _ in range(15)])
    finding = next(f for f in audit_store(store, ["R", "G"]).findings if f.fact == "format")
    assert finding.text == "50% of GEN files are PNG, against 0% of REAL files"  # not "both are JPEG"


def test_extra_findings_come_first_and_sides_follow_labels(store: Store) -> None:
    rng = np.random.default_rng(2)
    real, gen = _separable(rng, n=12)
    _add(store, "R1", "REAL", real[:6])
    _add(store, "R2", "REAL", real[6:])
    _add(store, "G", "GEN", gen)
    leak = Finding("critical", "", "3 images are in both sets", "Remove them from one side.", source="duplicates")
    result = audit_store(store, ["R1", "R2", "G"], extra_findings=[leak])
    assert result.findings[0] == leak
    assert [(s.name, s.datasets) for s in result.sides] == [("REAL", ("R1", "R2")), ("GEN", ("G",))]
    assert result.categorical_fact("format").values[0].test == "chi-square"  # three datasets


def test_an_unknown_side_or_no_datasets_is_refused(store: Store) -> None:
    with pytest.raises(InputError):
        audit_store(store, [])
    frame = pd.DataFrame({"dataset": ["A"], "name": ["x"], "format": ["PNG"], "error": [None]})
    with pytest.raises(InputError):
        audit(frame, sides=(["A"], ["B"]))
    alone = audit(frame)
    assert alone.sides == () and not alone.shortcut.computed and alone.findings[0].severity == "info"


# ------------------------------------------------------------------------------------------------ exports


def test_json_round_trips(separable: tuple[Store, Audit]) -> None:
    _store, result = separable
    data = result.to_json()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert data["shortcut"]["score"] == pytest.approx(result.shortcut.score)
    assert {"datasets", "sides", "categorical", "numeric", "separation", "findings"} <= set(data)


def test_html_report_escapes_outside_text_and_needs_no_network(store: Store) -> None:
    rng = np.random.default_rng(4)
    real, gen = _separable(rng, n=12)
    hostile_gen = HOSTILE + "<script>alert(2)</script>"
    _add(store, HOSTILE, "REAL", [r | {"exif_make": HOSTILE} for r in real])
    _add(
        store, hostile_gen, "GEN", [g | {"generator": "</td><script>x()</script>", "text_keys": [HOSTILE]} for g in gen]
    )
    page = html_report(audit_store(store, [HOSTILE, hostile_gen]), charts=3)
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert re.search(r"https?://", page) is None
    assert page.count("<svg") == 3 and "Content-Security-Policy" in page


def test_facts_csv_is_formula_safe(separable: tuple[Store, Audit], tmp_path: Path) -> None:
    store, _result = separable
    facts = store.image_facts([store.dataset_id("sd14")])
    facts.loc[0, "exif_make"] = '=HYPERLINK("x")'
    text = facts_csv(facts).decode("utf-8")
    assert "'=HYPERLINK" in text and "\n=HYPERLINK" not in text and ",=HYPERLINK" not in text
    assert "parameters" in text  # list cells joined, not dropped
