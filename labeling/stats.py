"""Statistics for comparing category shares across datasets (REAL vs GEN and friends).

The tests and intervals are scipy.stats' (loaded when first used, so importing this module stays cheap).

The input of the DataFrame-level functions is a *distribution* frame with one row per (dataset, category):
`dataset` (str), `category` (str), `count` (images of that dataset carrying the category), `total` (labelled
images in that dataset, the same on every row of a dataset). Missing (dataset, category) rows mean count 0.
Datasets keep the order in which they first appear. Labels are multi-label (an image carries 1-2 categories),
so per-category tests are exact in what they ask (does this dataset carry category C more often?), while the
overall profile test counts category assignments and is only approximate.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labeling.errors import LabelingError, NotFoundError

__all__ = [
    "STATS_COLUMNS",
    "OverallTest",
    "benjamini_hochberg",
    "category_stats",
    "chi_square_homogeneity",
    "chi_square_sf",
    "complete_distribution",
    "dataset_order",
    "fisher_exact_two_sided",
    "ks_two_sample",
    "log2_lift",
    "mann_whitney_auc",
    "overall_test",
    "two_proportion_z_test",
    "wilson_interval",
]

Z_95 = 1.959963984540054
_MIN_EXPECTED = 5.0

STATS_COLUMNS = [
    "category",
    "dataset",
    "count",
    "total",
    "share",
    "ci_low",
    "ci_high",
    "difference",
    "log2_lift",
    "test",
    "p_value",
    "p_adjusted",
]
_REQUIRED = ("dataset", "category", "count", "total")


# --------------------------------------------------------------------------------------------- proportions


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a proportion k/n (95% by default; scipy's binomtest).

    n == 0 returns (nan, nan): with no images there is no estimate, and NaN keeps a chart or table from
    presenting it as a confident 0%.
    """
    from scipy import stats as sps

    _check_count(k, n)
    if n == 0:
        return (math.nan, math.nan)
    level = 2 * float(sps.norm.cdf(z)) - 1
    interval = sps.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    # Exact ends at k == 0 and k == n; floating point would leave 1e-17 crumbs.
    return (0.0 if k == 0 else float(interval.low), 1.0 if k == n else float(interval.high))


def two_proportion_z_test(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z test of k1/n1 == k2/n2.

    Equal to Pearson's chi-square test on the 2x2 table without continuity correction. Returns nan when
    either n is 0 (nothing to compare) and 1.0 when the pooled share is 0 or 1 (no variation at all).
    """
    _check_count(k1, n1)
    _check_count(k2, n2)
    if n1 == 0 or n2 == 0:
        return math.nan
    if k1 + k2 in (0, n1 + n2):
        return 1.0
    return _pearson([[k1, n1 - k1], [k2, n2 - k2]])[2]


def log2_lift(k1: int, n1: int, k2: int, n2: int, pseudo: float = 0.5) -> float:
    """log2 of the ratio of smoothed shares, (k1+pseudo)/(n1+2*pseudo) over (k2+pseudo)/(n2+2*pseudo).

    Smoothing keeps 0 counts finite (+1 means "twice as common in the first dataset"). nan when n1 or n2 is 0.
    """
    _check_count(k1, n1)
    _check_count(k2, n2)
    if n1 == 0 or n2 == 0:
        return math.nan
    share1 = (k1 + pseudo) / (n1 + 2 * pseudo)
    share2 = (k2 + pseudo) / (n2 + 2 * pseudo)
    return math.log2(share1 / share2)


# ----------------------------------------------------------------------------------------------- tests


def fisher_exact_two_sided(a: int, b: int, c: int, d: int) -> float:
    """Two-sided Fisher exact p-value of the 2x2 table [[a, b], [c, d]] (scipy.stats.fisher_exact).

    A zero margin gives 1.0, as in scipy.
    """
    from scipy import stats as sps

    for value in (a, b, c, d):
        if value < 0:
            raise ValueError(f"Fisher's test needs non-negative counts, got {value}.")
    return min(float(sps.fisher_exact([[a, b], [c, d]], alternative="two-sided").pvalue), 1.0)


def chi_square_homogeneity(counts: Sequence[int], totals: Sequence[int]) -> tuple[float, int, float]:
    """Pearson chi-square test that k datasets carry a category equally often: (statistic, dof, p).

    The table is k datasets x (has, has not). Datasets with total 0 carry no information and are left out;
    with fewer than two left the result is (nan, 0, nan). When nobody (or everybody) has the category the
    shares are identical: statistic 0, p 1. Otherwise `scipy.stats.chi2_contingency(table, correction=False)`.
    """
    if len(counts) != len(totals):
        raise ValueError("counts and totals must have the same length.")
    for k, n in zip(counts, totals, strict=True):
        _check_count(k, n)
    table = [[k, n - k] for k, n in zip(counts, totals, strict=True) if n > 0]
    if len(table) < 2:
        return (math.nan, 0, math.nan)
    if all(row[0] == 0 for row in table) or all(row[1] == 0 for row in table):
        return (0.0, len(table) - 1, 1.0)
    return _pearson(table)


def chi_square_sf(x: float, dof: float) -> float:
    """Survival function P(X > x) of the chi-square distribution with `dof` degrees of freedom; nan for
    dof <= 0."""
    from scipy import stats as sps

    if math.isnan(x) or math.isnan(dof) or dof <= 0:
        return math.nan
    return float(sps.chi2.sf(x, dof))


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order
    (scipy.stats.false_discovery_control). NaN entries pass through and do not count towards m."""
    from scipy import stats as sps

    present = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    for i in present:
        if not 0.0 <= pvalues[i] <= 1.0:
            raise ValueError(f"p-values must lie in [0, 1], got {pvalues[i]}.")
    adjusted = [math.nan] * len(pvalues)
    if present:
        for i, value in zip(present, sps.false_discovery_control([pvalues[i] for i in present]), strict=True):
            adjusted[i] = float(value)
    return adjusted


# ------------------------------------------------------------------------------------------- two samples


def ks_two_sample(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test, two-sided: (statistic D, p) from `scipy.stats.ks_2samp`.

    NaN values are dropped first; an empty sample leaves nothing to compare: (nan, nan).
    """
    import numpy as np
    from scipy import stats as sps

    x, y = _finite(a), _finite(b)
    if not len(x) or not len(y):
        return (math.nan, math.nan)
    with warnings.catch_warnings():
        # Small samples with ties: scipy falls back from the exact to the asymptotic p and says so; fine here.
        warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful", RuntimeWarning)
        result = sps.ks_2samp(x, y, alternative="two-sided", method="auto")
    return (float(result.statistic), float(np.clip(result.pvalue, 0.0, 1.0)))


def mann_whitney_auc(negatives: Sequence[float], positives: Sequence[float]) -> float:
    """P(a positive scores above a negative) + half the ties: the ROC AUC of the scores, from the Mann-Whitney
    U of `scipy.stats.mannwhitneyu` (U / (n1 * n2)). 0.5 means the scores say nothing; NaNs are dropped and an
    empty side gives nan."""
    from scipy import stats as sps

    x, y = _finite(negatives), _finite(positives)
    if not len(x) or not len(y):
        return math.nan
    if len(set(x.tolist()) | set(y.tolist())) == 1:
        return 0.5  # one value everywhere: scipy warns and answers nan, but no ordering is a coin toss
    u = sps.mannwhitneyu(y, x, alternative="two-sided", method="asymptotic").statistic
    return float(u) / (len(x) * len(y))


# ------------------------------------------------------------------------------------- distribution frames


def dataset_order(dist: pd.DataFrame) -> list[str]:
    """Dataset names in the order they first appear in the distribution frame (the order the user gave)."""
    _check_columns(dist)
    return [str(name) for name in pd.unique(dist["dataset"].astype(str))]


def complete_distribution(dist: pd.DataFrame) -> pd.DataFrame:
    """Validate a distribution frame and fill in missing (dataset, category) rows with count 0.

    Returns columns dataset, category, count, total (ints), one row per dataset x category, datasets in
    first-appearance order and categories in first-appearance order within that. Rows whose category is
    null only contribute their dataset's total (a dataset with labelled images but no categories yet).
    Raises LabelingError when the frame is missing columns or its counts contradict its totals.
    """
    datasets = dataset_order(dist)
    frame = dist.loc[:, list(_REQUIRED)].copy()
    frame["dataset"] = frame["dataset"].astype(str)
    totals = _dataset_totals(frame, datasets)
    labelled = frame[frame["category"].notna()].copy()
    labelled["category"] = labelled["category"].astype(str)
    _check_rows(labelled, totals)
    categories = [str(c) for c in pd.unique(labelled["category"])]
    counts = _count_lookup(labelled)
    rows = [
        (name, category, counts.get((name, category), 0), totals[name]) for name in datasets for category in categories
    ]
    out = pd.DataFrame(rows, columns=list(_REQUIRED))
    return out.astype({"dataset": object, "category": object, "count": "int64", "total": "int64"})


def category_stats(dist: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Per-category comparison of shares across datasets: one row per (category, dataset).

    Columns (see STATS_COLUMNS): category, dataset, count, total, share (count/total, nan when total is 0),
    ci_low and ci_high (95% Wilson), difference (share minus the reference dataset's share), log2_lift (vs the
    reference, smoothed), test, p_value and p_adjusted. `reference` defaults to the first dataset.

    `test` names the test of equal shares across all compared datasets (datasets with total 0 are not
    compared): "fisher" for two datasets when any expected 2x2 cell is below 5, "two-proportion z" for two
    datasets otherwise, "chi-square" for three or more, "none" when fewer than two datasets can be compared.
    p_value is that test's p (the same on every row of a category); p_adjusted is Benjamini-Hochberg across
    categories. Rows are sorted by category name, case-insensitively with the exact name breaking ties, then
    by dataset in the order given, so the result is the same whatever the input row order.
    """
    full = complete_distribution(dist)
    datasets = dataset_order(dist)
    ref = _resolve_reference(datasets, reference)
    if full.empty:
        return _empty_stats()
    totals = dict(zip(full["dataset"], full["total"], strict=False))
    compared = [name for name in datasets if totals[name] > 0]
    categories = sorted(pd.unique(full["category"]), key=lambda c: (str(c).casefold(), str(c)))
    counts = _count_lookup(full)

    tests: dict[str, tuple[str, float]] = {}
    for category in categories:
        ks = [counts[(name, category)] for name in compared]
        tests[category] = _equal_share_test(ks, [totals[name] for name in compared])
    adjusted = dict(zip(categories, benjamini_hochberg([tests[c][1] for c in categories]), strict=True))

    rows = []
    for category in categories:
        k_ref, n_ref = counts[(ref, category)], totals[ref]
        ref_share = k_ref / n_ref if n_ref else math.nan
        test, p = tests[category]
        for name in datasets:
            k, n = counts[(name, category)], totals[name]
            share = k / n if n else math.nan
            low, high = wilson_interval(k, n)
            lift = log2_lift(k, n, k_ref, n_ref)
            rows.append((category, name, k, n, share, low, high, share - ref_share, lift, test, p, adjusted[category]))
    return pd.DataFrame(rows, columns=STATS_COLUMNS)


@dataclass(frozen=True)
class OverallTest:
    """Result of the overall test that datasets share one category profile."""

    statistic: float
    dof: int
    p_value: float
    method: str
    note: str


def overall_test(dist: pd.DataFrame) -> OverallTest:
    """Chi-square test of homogeneity of the category-count profiles (datasets x categories counts table).

    Categories no dataset carries and datasets with no category counts are dropped first. Fewer than two of
    either leaves nothing to test: statistic, p_value nan, dof 0, and the note says why. Never raises on
    degenerate input (an empty frame included); raises LabelingError only for a malformed frame.
    """
    method = "chi-square homogeneity of category profiles"
    full = complete_distribution(dist)
    table = _profile_table(full)
    if len(table) < 2 or len(table[0]) < 2:
        note = "Not enough data for an overall test: it needs at least two datasets and two categories with counts."
        return OverallTest(math.nan, 0, math.nan, method, note)
    statistic, dof, p_value = _pearson(table)
    assignments = sum(map(sum, table))
    images = int(full.drop_duplicates("dataset")["total"].sum())
    per_image = f" (on average {assignments / images:.2f} per image)" if images else ""
    note = (
        f"Approximate: the table counts category assignments, not images, and an image can carry more "
        f"than one category{per_image}, so the cells are not independent observations. Read the "
        f"per-category tests for which categories differ."
    )
    return OverallTest(statistic, dof, p_value, method, note)


# ------------------------------------------------------------------------------------------------ helpers


def _profile_table(full: pd.DataFrame) -> list[list[int]]:
    """Datasets x categories counts from a completed distribution, all-zero rows and columns dropped."""
    width = full["category"].nunique()
    # complete_distribution yields a full grid, dataset-major, so the counts reshape into the table.
    counts = [int(v) for v in full["count"]]
    table = [counts[i : i + width] for i in range(0, len(counts), width)] if width else []
    table = [row for row in table if sum(row) > 0]
    keep = [j for j in range(width) if any(row[j] for row in table)]
    return [[row[j] for j in keep] for row in table]


def _equal_share_test(counts: list[int], totals: list[int]) -> tuple[str, float]:
    """Pick and run the test of equal shares for one category across the compared datasets."""
    if len(counts) < 2:
        return ("none", math.nan)
    if len(counts) == 2:
        (k1, k2), (n1, n2) = counts, totals
        table = [[k1, n1 - k1], [k2, n2 - k2]]
        if _min_expected(table) < _MIN_EXPECTED:
            return ("fisher", fisher_exact_two_sided(k1, n1 - k1, k2, n2 - k2))
        return ("two-proportion z", two_proportion_z_test(k1, n1, k2, n2))
    return ("chi-square", chi_square_homogeneity(counts, totals)[2])


def _count_lookup(frame: pd.DataFrame) -> dict[tuple[str, str], int]:
    columns = (frame["dataset"], frame["category"], frame["count"])
    return {(str(d), str(c)): int(k) for d, c, k in zip(*columns, strict=True)}


def _min_expected(table: list[list[int]]) -> float:
    rows = [sum(r) for r in table]
    cols = [sum(c) for c in zip(*table, strict=True)]
    n = sum(rows)
    return min(r * c / n for r in rows for c in cols) if n else 0.0


def _pearson(table: list[list[int]]) -> tuple[float, int, float]:
    """Pearson's chi-square (no continuity correction) of a table with no all-zero row or column."""
    from scipy import stats as sps

    result = sps.chi2_contingency(table, correction=False)
    return (float(result.statistic), int(result.dof), float(result.pvalue))


def _finite(values: Sequence[float]) -> Any:
    import numpy as np

    array = np.asarray(values, dtype=float)
    return array[~np.isnan(array)]


def _check_count(k: int, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"Need 0 <= k <= n, got k={k}, n={n}.")


def _check_columns(dist: pd.DataFrame) -> None:
    missing = [c for c in _REQUIRED if c not in dist.columns]
    if missing:
        raise LabelingError(
            f"The distribution table lacks the column(s) {', '.join(missing)}: it needs dataset, category, "
            "count and total (one row per dataset and category)."
        )


def _dataset_totals(frame: pd.DataFrame, datasets: list[str]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for name in datasets:
        values = pd.unique(frame.loc[frame["dataset"] == name, "total"])
        if len(values) != 1 or pd.isna(values[0]) or int(values[0]) < 0:
            raise LabelingError(
                f"Dataset {name!r} has inconsistent image totals {sorted(map(str, values))} in the "
                "distribution table: every row of a dataset must carry the same non-negative total."
            )
        totals[name] = int(values[0])
    return totals


def _check_rows(labelled: pd.DataFrame, totals: dict[str, int]) -> None:
    if labelled.duplicated(["dataset", "category"]).any():
        dup = labelled[labelled.duplicated(["dataset", "category"])].iloc[0]
        raise LabelingError(
            f"Category {dup['category']!r} appears twice for dataset {dup['dataset']!r} in the distribution "
            "table: aggregate to one row per dataset and category first."
        )
    columns = (labelled["dataset"], labelled["category"], labelled["count"])
    for name, category, count in zip(*columns, strict=True):
        if pd.isna(count) or not 0 <= int(count) <= totals[name]:
            raise LabelingError(
                f"Dataset {name!r} counts {count} images with category {category!r} but has "
                f"{totals[name]} labelled images: counts must lie between 0 and the total."
            )


def _resolve_reference(datasets: list[str], reference: str | None) -> str:
    if reference is None:
        return datasets[0] if datasets else ""
    if reference not in datasets:
        raise NotFoundError(
            f"Reference dataset {reference!r} is not among the compared datasets "
            f"({', '.join(datasets) or 'none'}): pick one of them."
        )
    return reference


def _empty_stats() -> pd.DataFrame:
    return pd.DataFrame({column: [] for column in STATS_COLUMNS})
