"""labeling.stats against scipy (a test-only dependency) and hand-computed cases."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from labeling import stats
from labeling.errors import LabelingError, NotFoundError


def _dist(rows: list[tuple[str, str, int, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["dataset", "category", "count", "total"])


def _row(table: pd.DataFrame, category: str, dataset: str) -> dict[str, Any]:
    match = table[(table["category"] == category) & (table["dataset"] == dataset)]
    assert len(match) == 1
    return {str(k): v for k, v in match.iloc[0].to_dict().items()}


def _random_tables(count: int, seed: int) -> list[tuple[int, int, int, int]]:
    rng = random.Random(seed)
    tables = []
    for _ in range(count):
        scale = rng.choice([2, 6, 20, 80, 400])
        tables.append(tuple(rng.randint(0, scale) for _ in range(4)))
    return tables  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------------- wilson


@pytest.mark.parametrize(
    ("k", "n", "expected"),
    [
        (5, 10, (0.2366, 0.7634)),
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (1, 20, (0.0089, 0.2361)),
        (81, 263, (0.2553, 0.3662)),
    ],
)
def test_wilson_interval_matches_hand_computed_values(k: int, n: int, expected: tuple[float, float]) -> None:
    low, high = stats.wilson_interval(k, n)
    assert low == pytest.approx(expected[0], abs=5e-5)
    assert high == pytest.approx(expected[1], abs=5e-5)


def test_wilson_interval_ends_are_exact_and_n0_is_nan() -> None:
    assert stats.wilson_interval(0, 7)[0] == 0.0
    assert stats.wilson_interval(7, 7)[1] == 1.0
    assert all(math.isnan(v) for v in stats.wilson_interval(0, 0))
    with pytest.raises(ValueError):
        stats.wilson_interval(3, 2)


def test_wilson_interval_agrees_with_scipy_binomtest() -> None:
    for k, n in [(3, 17), (40, 41), (500, 1234), (1, 2)]:
        ci = sps.binomtest(k, n).proportion_ci(method="wilson")
        assert stats.wilson_interval(k, n) == pytest.approx((ci.low, ci.high), rel=1e-10)


# ----------------------------------------------------------------------------------------------- fisher


@pytest.mark.parametrize(
    "table",
    [
        (8, 2, 1, 5),
        (1, 9, 11, 3),
        (3, 7, 3, 7),  # identical shares: the observed table is the mode
        (5, 5, 5, 5),  # symmetric: the mirror table ties with the observed one
        (2, 8, 8, 2),
        (0, 10, 10, 0),
        (0, 5, 0, 7),  # zero column margin
        (0, 0, 3, 4),  # zero row margin
        (230, 47, 225, 278),
        (1, 1000, 9, 990),
        (12, 1988, 31, 2969),
    ],
)
def test_fisher_matches_scipy_on_named_tables(table: tuple[int, int, int, int]) -> None:
    a, b, c, d = table
    expected = sps.fisher_exact([[a, b], [c, d]], alternative="two-sided").pvalue
    assert stats.fisher_exact_two_sided(a, b, c, d) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_fisher_matches_scipy_on_random_tables() -> None:
    for a, b, c, d in _random_tables(400, seed=7):
        expected = sps.fisher_exact([[a, b], [c, d]]).pvalue
        assert stats.fisher_exact_two_sided(a, b, c, d) == pytest.approx(expected, rel=1e-9), (a, b, c, d)


def test_fisher_identical_shares_give_one() -> None:
    assert stats.fisher_exact_two_sided(3, 7, 6, 14) == 1.0
    assert stats.fisher_exact_two_sided(0, 10, 0, 10) == 1.0


# ------------------------------------------------------------------------------------------- z / chi-2


def test_two_proportion_z_equals_uncorrected_chi_square_2x2() -> None:
    for k1, n1, k2, n2 in [(30, 100, 45, 120), (1, 500, 20, 480), (250, 1000, 250, 1000), (7, 9, 2, 11)]:
        table = [[k1, n1 - k1], [k2, n2 - k2]]
        expected = sps.chi2_contingency(table, correction=False).pvalue
        assert stats.two_proportion_z_test(k1, n1, k2, n2) == pytest.approx(expected, rel=1e-10)


def test_two_proportion_z_edge_cases() -> None:
    assert stats.two_proportion_z_test(4, 10, 8, 20) == pytest.approx(1.0)
    assert stats.two_proportion_z_test(0, 10, 0, 20) == 1.0  # nobody has it: no variation
    assert stats.two_proportion_z_test(10, 10, 20, 20) == 1.0
    assert math.isnan(stats.two_proportion_z_test(0, 0, 3, 20))


@pytest.mark.parametrize(
    ("counts", "totals"),
    [
        ([30, 45], [100, 120]),
        ([30, 45, 12], [100, 120, 90]),
        ([1, 0, 5, 9], [50, 40, 60, 70]),
        ([400, 380, 520], [2000, 2100, 1900]),
    ],
)
def test_chi_square_homogeneity_matches_chi2_contingency(counts: list[int], totals: list[int]) -> None:
    table = [[k, n - k] for k, n in zip(counts, totals, strict=True)]
    expected = sps.chi2_contingency(table, correction=False)
    statistic, dof, p = stats.chi_square_homogeneity(counts, totals)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert dof == expected.dof
    assert p == pytest.approx(expected.pvalue, rel=1e-10)


def test_chi_square_homogeneity_degenerate_inputs() -> None:
    assert stats.chi_square_homogeneity([0, 0, 0], [10, 20, 30]) == (0.0, 2, 1.0)  # nobody has it
    assert stats.chi_square_homogeneity([5, 10, 15], [10, 20, 30])[2] == pytest.approx(1.0)
    # A dataset with no labelled images carries no information and is left out.
    assert stats.chi_square_homogeneity([3, 0, 9], [10, 0, 20]) == pytest.approx(
        stats.chi_square_homogeneity([3, 9], [10, 20])
    )
    statistic, dof, p = stats.chi_square_homogeneity([3], [10])
    assert math.isnan(statistic) and dof == 0 and math.isnan(p)


@pytest.mark.parametrize("dof", [0.5, 1, 2, 3, 5, 10, 30, 100, 500, 1000, 5000])
def test_chi_square_sf_matches_scipy_over_a_wide_range(dof: float) -> None:
    for upper in [1 - 1e-12, 0.999999, 0.9, 0.5, 0.05, 1e-3, 1e-6, 1e-10, 1e-50, 1e-200, 1e-300]:
        x = float(sps.chi2.isf(upper, dof))
        assert stats.chi_square_sf(x, dof) == pytest.approx(sps.chi2.sf(x, dof), rel=1e-10), (x, dof)


def test_chi_square_sf_edges() -> None:
    assert stats.chi_square_sf(0.0, 3) == 1.0
    assert stats.chi_square_sf(-1.0, 3) == 1.0
    assert stats.chi_square_sf(math.inf, 3) == 0.0
    assert stats.chi_square_sf(5000.0, 1) == 0.0  # underflows like scipy
    assert math.isnan(stats.chi_square_sf(1.0, 0))
    assert stats.chi_square_sf(2.0, 2) == pytest.approx(math.exp(-1.0), rel=1e-14)  # closed form for dof 2


# ------------------------------------------------------------------------------------------------- BH


def test_benjamini_hochberg_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    for size in [1, 2, 5, 40]:
        p = rng.uniform(0, 0.2, size).tolist()
        expected = sps.false_discovery_control(p, method="bh").tolist()
        assert stats.benjamini_hochberg(p) == pytest.approx(expected)
    tied = [0.01, 0.04, 0.04, 0.04, 0.9, 1.0]
    assert stats.benjamini_hochberg(tied) == pytest.approx(sps.false_discovery_control(tied).tolist())


def test_benjamini_hochberg_monotone_capped_and_nan_passthrough() -> None:
    p = [0.04, math.nan, 0.03, 0.9, math.nan, 0.02]
    adjusted = stats.benjamini_hochberg(p)
    assert math.isnan(adjusted[1]) and math.isnan(adjusted[4])
    present = [0.04, 0.03, 0.9, 0.02]
    expected = sps.false_discovery_control(present).tolist()
    assert [adjusted[i] for i in (0, 2, 3, 5)] == pytest.approx(expected)
    assert all(v <= 1.0 for v in stats.benjamini_hochberg([0.9, 0.95, 0.99]))
    assert stats.benjamini_hochberg([]) == []
    with pytest.raises(ValueError):
        stats.benjamini_hochberg([1.5])


# ------------------------------------------------------------------------------------------------ lift


def test_log2_lift_smoothed() -> None:
    assert stats.log2_lift(20, 100, 10, 100) == pytest.approx(math.log2(20.5 / 10.5))
    assert stats.log2_lift(0, 50, 0, 50) == 0.0
    assert math.isfinite(stats.log2_lift(0, 50, 9, 50))
    assert stats.log2_lift(5, 10, 5, 10, pseudo=0.0) == 0.0
    assert math.isnan(stats.log2_lift(0, 0, 1, 3))


# ------------------------------------------------------------------------------------------ frames


REAL_GEN = _dist(
    [
        ("REAL", "people", 60, 200),
        ("REAL", "animals", 30, 200),
        ("REAL", "food", 2, 200),
        ("GEN", "people", 20, 150),
        ("GEN", "animals", 45, 150),
        ("GEN", "Vehicles", 15, 150),  # absent from REAL: count 0 there
    ]
)


def test_complete_distribution_fills_missing_rows_with_zero_and_keeps_dataset_order() -> None:
    full = stats.complete_distribution(REAL_GEN)
    assert list(full.columns) == ["dataset", "category", "count", "total"]
    assert len(full) == 2 * 4
    assert stats.dataset_order(REAL_GEN) == ["REAL", "GEN"]
    row = _row(full, "Vehicles", "REAL")
    assert (row["count"], row["total"]) == (0, 200)


def test_category_stats_shape_columns_and_order() -> None:
    table = stats.category_stats(REAL_GEN)
    assert list(table.columns) == stats.STATS_COLUMNS
    assert len(table) == 8
    # Case-insensitive category order, datasets in the order given.
    assert list(table["category"].drop_duplicates()) == ["animals", "food", "people", "Vehicles"]
    assert list(table["dataset"][:2]) == ["REAL", "GEN"]


def test_category_stats_values() -> None:
    table = stats.category_stats(REAL_GEN)
    people_gen = _row(table, "people", "GEN")
    assert people_gen["share"] == pytest.approx(20 / 150)
    assert people_gen["difference"] == pytest.approx(20 / 150 - 60 / 200)
    assert people_gen["log2_lift"] == pytest.approx(stats.log2_lift(20, 150, 60, 200))
    assert (people_gen["ci_low"], people_gen["ci_high"]) == pytest.approx(stats.wilson_interval(20, 150))
    assert people_gen["test"] == "two-proportion z"
    expected = sps.chi2_contingency([[60, 140], [20, 130]], correction=False).pvalue
    assert people_gen["p_value"] == pytest.approx(expected, rel=1e-10)
    people_real = _row(table, "people", "REAL")
    assert people_real["p_value"] == people_gen["p_value"]  # the same p on every row of a category
    assert people_real["difference"] == 0.0 and people_real["log2_lift"] == 0.0
    # food: 2 vs 0 images, expected cells below 5 -> Fisher.
    food = _row(table, "food", "GEN")
    assert food["test"] == "fisher"
    assert food["p_value"] == pytest.approx(sps.fisher_exact([[2, 198], [0, 150]]).pvalue, rel=1e-9)
    per_category = table.drop_duplicates("category")
    expected_bh = sps.false_discovery_control(per_category["p_value"].to_numpy())
    assert per_category["p_adjusted"].to_numpy() == pytest.approx(expected_bh)


def test_category_stats_reference_and_three_datasets() -> None:
    dist = pd.concat([REAL_GEN, _dist([("SDXL", "people", 50, 100), ("SDXL", "animals", 10, 100)])])
    table = stats.category_stats(dist, reference="GEN")
    assert set(table["test"]) == {"chi-square"}
    assert _row(table, "people", "REAL")["difference"] == pytest.approx(60 / 200 - 20 / 150)
    expected = sps.chi2_contingency([[60, 140], [20, 130], [50, 50]], correction=False).pvalue
    assert _row(table, "people", "SDXL")["p_value"] == pytest.approx(expected, rel=1e-10)
    with pytest.raises(NotFoundError):
        stats.category_stats(dist, reference="MIDJOURNEY")


def test_category_stats_single_dataset_and_identical_shares() -> None:
    single = stats.category_stats(_dist([("REAL", "people", 3, 10), ("REAL", "food", 1, 10)]))
    assert set(single["test"]) == {"none"}
    assert single["p_value"].isna().all() and single["p_adjusted"].isna().all()
    same = stats.category_stats(_dist([("A", "people", 30, 100), ("B", "people", 60, 200)]))
    assert same["p_value"].iloc[0] == pytest.approx(1.0)
    assert same["difference"].tolist() == pytest.approx([0.0, 0.0])


def test_category_stats_dataset_without_labelled_images() -> None:
    table = stats.category_stats(_dist([("REAL", "people", 3, 10), ("GEN", "people", 0, 0)]))
    gen = _row(table, "people", "GEN")
    assert math.isnan(gen["share"]) and math.isnan(gen["ci_low"])
    assert gen["test"] == "none"


def test_category_stats_empty_frame() -> None:
    table = stats.category_stats(_dist([]))
    assert table.empty and list(table.columns) == stats.STATS_COLUMNS


def test_malformed_distributions_raise_labeling_errors() -> None:
    with pytest.raises(LabelingError, match="lacks the column"):
        stats.category_stats(pd.DataFrame({"dataset": ["A"], "count": [1]}))
    with pytest.raises(LabelingError, match="inconsistent image totals"):
        stats.category_stats(_dist([("A", "x", 1, 10), ("A", "y", 1, 11)]))
    with pytest.raises(LabelingError, match="counts must lie"):
        stats.category_stats(_dist([("A", "x", 12, 10)]))
    with pytest.raises(LabelingError, match="appears twice"):
        stats.category_stats(_dist([("A", "x", 1, 10), ("A", "x", 2, 10)]))


# ------------------------------------------------------------------------------------------ overall


def test_overall_test_matches_chi2_contingency_after_dropping_zero_columns() -> None:
    dist = pd.concat([REAL_GEN, _dist([("GEN", "unused", 0, 150)])])
    result = stats.overall_test(dist)
    table = [[60, 30, 2, 0], [20, 45, 0, 15]]  # people, animals, food, Vehicles; "unused" dropped
    expected = sps.chi2_contingency(table, correction=False)
    assert result.statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert result.dof == expected.dof == 3
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-10)
    assert "approximate" in result.note.lower() and "more than one category" in result.note
    assert "chi-square" in result.method


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [("REAL", "people", 3, 10), ("REAL", "food", 4, 10)],  # one dataset
        [("REAL", "people", 3, 10), ("GEN", "people", 5, 10)],  # one category
        [("REAL", "people", 0, 10), ("GEN", "people", 0, 10)],  # all-zero column
    ],
)
def test_overall_test_degenerate_inputs_do_not_raise(rows: list[tuple[str, str, int, int]]) -> None:
    result = stats.overall_test(_dist(rows))
    assert math.isnan(result.p_value) and math.isnan(result.statistic) and result.dof == 0
    assert "Not enough data" in result.note
