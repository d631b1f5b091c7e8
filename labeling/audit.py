"""The technical-bias audit: do two image sets differ in how their files were made, not just in what they show?

GenImage's REAL images are ImageNet JPEGs (mostly quality 96) while its fakes are lossless PNGs at one size per
generator, and detectors learn that instead of fakeness (Grommelt et al., "Fake or JPEG?", arXiv:2403.17608).
`audit()` compares the per-image technical facts (`Store.image_facts`, made by the scan) of any set of datasets:

- every categorical fact (format, JPEG quality bucket, camera make, PNG text keys, C2PA, WxH, ...): counts and
  shares per dataset, tested with the category comparison's engine (`labeling.stats`: Fisher exact or the
  two-proportion z test for two datasets, chi-square for more; a fact with more than two values is tested as a
  whole by chi-square homogeneity of its datasets x values table);
- every numeric fact (file size, width, JPEG quality, brightness, sharpness, ...): per-dataset quartiles, the
  two-sample Kolmogorov-Smirnov test between the two sides and the effect size as a ROC AUC (Mann-Whitney,
  folded to >= 0.5) with Cliff's delta = 2 * AUC - 1 before folding;
- Benjamini-Hochberg q-values over every fact-level test (categorical and numeric together);
- per-fact separation (the AUC of each fact alone, worst shortcut first), the shortcut score (labeling.shortcut)
  and plain-language findings with what to do (labeling.audit_findings).

Two *sides* are compared for everything that needs two (KS, AUC, the score, the findings): the datasets labelled
REAL against those labelled GEN, else the two datasets given, else whatever `sides` names. Rows whose scan
failed (`error` set) carry no facts: counted per dataset and left out.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from labeling.audit_facts import DerivedFacts, FactSpec, derive
from labeling.errors import InputError
from labeling.shortcut import MAX_PER_SIDE, MIN_PER_SIDE, SEED, ShortcutScore, shortcut_score
from labeling.stats import (
    benjamini_hochberg,
    category_stats,
    ks_two_sample,
    mann_whitney_auc,
    overall_test,
    wilson_interval,
)

if TYPE_CHECKING:
    from labeling.store import Store

__all__ = [
    "ALPHA",
    "Audit",
    "AuditDataset",
    "CategoricalResult",
    "CategoryValue",
    "Finding",
    "NumericResult",
    "NumericSummary",
    "Separation",
    "Side",
    "ValueCount",
    "audit",
    "audit_store",
    "resolve_sides",
]

ALPHA = 0.05  # significance level the findings read q-values at
MIN_SEPARATION_VALUES = 10  # values a numeric fact needs on each side before its AUC alone is ranked
QUANTILES = 101  # points per dataset and numeric fact kept for the ECDF charts (every percentile)
SEVERITIES = ("critical", "high", "medium", "low", "info")  # the order findings are sorted in


# ------------------------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class AuditDataset:
    """One audited dataset: how many of its images have facts, and which side it is on (None: neither)."""

    name: str
    label: str
    side: int | None  # 0 (first side), 1 (second side) or None
    rows: int  # rows in image_facts
    errors: int  # rows whose scan failed: no facts, left out
    audited: int  # rows - errors


@dataclass(frozen=True)
class Side:
    """One side of the comparison: its display name (a label like REAL, or a dataset name) and datasets."""

    name: str
    datasets: tuple[str, ...]
    images: int  # audited images


@dataclass(frozen=True)
class ValueCount:
    """How many of a dataset's (or side's) audited images carry one value of a categorical fact."""

    dataset: str
    count: int
    total: int
    share: float  # nan when total is 0
    ci_low: float  # 95% Wilson
    ci_high: float


@dataclass(frozen=True)
class CategoryValue:
    """One value of a categorical fact across the datasets, with the per-value test of equal shares."""

    value: str
    counts: tuple[ValueCount, ...]  # per dataset, in dataset order
    sides: tuple[ValueCount, ...]  # per side (two, or none without sides)
    test: str  # "fisher" | "two-proportion z" | "chi-square" | "none" (labeling.stats.category_stats)
    p_value: float
    q_value: float  # Benjamini-Hochberg over every value of every categorical fact


@dataclass(frozen=True)
class CategoricalResult:
    """A categorical fact: its values (most common first), its test as a whole and how well it separates."""

    fact: str
    title: str
    group: str  # encoding | size | metadata | pixels
    values: tuple[CategoryValue, ...]
    test: str  # the per-value test for a two-valued fact, "chi-square" for more values, "none" for one
    statistic: float  # the chi-square statistic (nan for Fisher / z / none)
    p_value: float
    q_value: float  # Benjamini-Hochberg over every fact-level test of the audit
    auc: float  # ROC AUC of the per-value share of the second side, >= 0.5; nan without sides
    top_value: str  # the value whose side shares differ most
    gap: float  # its share on the second side minus on the first (nan without sides)
    distinct: tuple[int, ...]  # distinct values per side before folding the rare ones into "other"


@dataclass(frozen=True)
class NumericSummary:
    """A numeric fact's distribution in one dataset (or side) over the images where it applies."""

    dataset: str
    n: int
    missing: int  # images where the fact does not apply or was not measured
    median: float
    q1: float
    q3: float
    mean: float
    minimum: float
    maximum: float
    quantiles: tuple[float, ...] = field(repr=False)  # 0th..100th percentile (empty when n == 0)


@dataclass(frozen=True)
class NumericResult:
    """A numeric fact: per-dataset summaries, the KS test and the effect size between the two sides."""

    fact: str
    title: str
    group: str
    summaries: tuple[NumericSummary, ...]  # per dataset
    sides: tuple[NumericSummary, ...]  # per side (two, or none without sides)
    ks_statistic: float
    p_value: float  # two-sided two-sample KS (scipy.stats.ks_2samp), nan when a side has no values
    q_value: float
    auc: float  # Mann-Whitney ROC AUC folded to >= 0.5
    cliffs_delta: float  # P(second > first) - P(second < first), -1..1: the sign says which side is higher
    direction: str  # "higher in GEN", "lower in GEN", "" when equal or not computed


@dataclass(frozen=True)
class Separation:
    """How well one fact alone tells the sides apart: its ROC AUC (0.5 chance, 1 a perfect shortcut)."""

    fact: str
    title: str
    kind: str  # categorical | numeric
    group: str
    auc: float
    direction: str  # numeric: "higher in GEN"; categorical: the value that differs most, with its shares


@dataclass(frozen=True)
class Finding:
    """One plain-language finding with what to do about it. `source` says which analysis made it."""

    severity: str  # critical | high | medium | low | info
    fact: str  # the fact key it is about ("shortcut" for the score, "" for none)
    text: str
    action: str
    source: str = "audit"  # e.g. "duplicates" for leakage findings passed in as extra_findings


@dataclass(frozen=True)
class Audit:
    """Everything the technical-bias audit found, ready for a page, the CLI, JSON or the HTML report."""

    datasets: tuple[AuditDataset, ...]
    sides: tuple[Side, ...]  # two, or none when no two sides could be formed
    categorical: tuple[CategoricalResult, ...]
    numeric: tuple[NumericResult, ...]
    separation: tuple[Separation, ...]  # worst shortcut first (nan AUCs last)
    shortcut: ShortcutScore
    findings: tuple[Finding, ...]  # extra findings first, then by severity
    alpha: float
    seconds: float

    @property
    def side_names(self) -> tuple[str, str] | None:
        """(first, second) side names, e.g. ("REAL", "GEN"), or None without sides."""
        return (self.sides[0].name, self.sides[1].name) if len(self.sides) == 2 else None

    def categorical_fact(self, fact: str) -> CategoricalResult:
        """The result of one categorical fact by key (KeyError when there is none)."""
        for result in self.categorical:
            if result.fact == fact:
                return result
        raise KeyError(f"No categorical fact {fact!r} in this audit.")

    def numeric_fact(self, fact: str) -> NumericResult:
        """The result of one numeric fact by key (KeyError when there is none)."""
        for result in self.numeric:
            if result.fact == fact:
                return result
        raise KeyError(f"No numeric fact {fact!r} in this audit.")

    def to_json(self) -> dict[str, Any]:
        """Everything above as plain dicts, lists, strings and numbers (NaN as None): ready for json.dumps."""
        return dict(_jsonable(asdict(self)))


# ---------------------------------------------------------------------------------------------- the audit


def audit_store(
    store: Store,
    datasets: Sequence[str],
    *,
    sides: tuple[Sequence[str], Sequence[str]] | None = None,
    extra_findings: Sequence[Finding] = (),
    min_per_side: int = MIN_PER_SIDE,
    max_per_side: int = MAX_PER_SIDE,
    seed: int = SEED,
) -> Audit:
    """`audit` of the named datasets' facts in the store, with their labels (REAL/GEN) from the store."""
    names = list(dict.fromkeys(datasets))
    if not names:
        raise InputError("Choose at least one dataset to audit.")
    ids = [store.dataset_id(name) for name in names]  # NotFoundError names the known datasets
    labels = store.dataset_labels()
    return audit(
        store.image_facts(ids),
        labels={name: labels.get(name, "") for name in names},
        datasets=names,
        sides=sides,
        extra_findings=extra_findings,
        min_per_side=min_per_side,
        max_per_side=max_per_side,
        seed=seed,
    )


def audit(
    facts: pd.DataFrame,
    *,
    labels: Mapping[str, str] | None = None,
    datasets: Sequence[str] | None = None,
    sides: tuple[Sequence[str], Sequence[str]] | None = None,
    extra_findings: Sequence[Finding] = (),
    min_per_side: int = MIN_PER_SIDE,
    max_per_side: int = MAX_PER_SIDE,
    seed: int = SEED,
) -> Audit:
    """The technical-bias audit of an `image_facts` frame (columns `dataset`, `name` and image_facts').

    `labels` maps dataset names to REAL/GEN/...; `datasets` fixes their order (default: first appearance) and
    may name datasets without facts (reported with 0 images). `sides` overrides how the two sides are formed
    (see `resolve_sides`). `extra_findings` (e.g. leakage from a duplicates analysis) come first in the
    findings. The shortcut score needs `min_per_side` images per side and samples at most `max_per_side` per
    side with `seed`. Raises InputError for a frame without a dataset column.
    """
    from labeling.audit_findings import audit_findings

    started = time.perf_counter()
    if "dataset" not in facts.columns:
        raise InputError("The facts table needs a 'dataset' column (Store.image_facts gives one).")
    labels = dict(labels or {})
    order = list(dict.fromkeys([*(datasets or []), *map(str, pd.unique(facts["dataset"].astype(str)))]))
    failed = facts["error"].notna() if "error" in facts.columns else pd.Series(False, index=facts.index)
    good = facts[~failed].reset_index(drop=True)
    row_dataset = good["dataset"].astype(str).to_numpy()
    side_list = resolve_sides(order, labels, sides)
    side_of = {name: i for i, side in enumerate(side_list) for name in side.datasets}
    row_side = np.array([side_of.get(name, -1) for name in row_dataset], dtype=int)
    sides_out = tuple(Side(s.name, s.datasets, int((row_side == i).sum())) for i, s in enumerate(side_list))

    rows_per = facts["dataset"].astype(str).value_counts()
    errors_per = facts.loc[failed, "dataset"].astype(str).value_counts()
    audited = tuple(
        AuditDataset(
            name,
            labels.get(name, ""),
            side_of.get(name),
            int(rows_per.get(name, 0)),
            int(errors_per.get(name, 0)),
            int(rows_per.get(name, 0)) - int(errors_per.get(name, 0)),
        )
        for name in order
    )
    derived = derive(good)
    categorical, numeric = _adjust(
        _categorical(derived, row_dataset, row_side, order, [side.name for side in sides_out]),
        _numeric(derived, row_dataset, row_side, order, sides_out),
    )
    names = (sides_out[0].name, sides_out[1].name) if len(sides_out) == 2 else ("", "")
    if len(sides_out) == 2:
        score = shortcut_score(
            derived, row_side, names, min_per_side=min_per_side, max_per_side=max_per_side, seed=seed
        )
    else:
        score = _no_sides_score(max_per_side, seed)
    separation = _separation(categorical, numeric, derived)
    found = audit_findings(categorical, numeric, sides_out, score, ALPHA, audited)
    result = Audit(
        audited,
        sides_out,
        categorical,
        numeric,
        separation,
        score,
        (*extra_findings, *found),
        ALPHA,
        0.0,
    )
    return _with_seconds(result, time.perf_counter() - started)


def resolve_sides(
    datasets: Sequence[str], labels: Mapping[str, str], sides: tuple[Sequence[str], Sequence[str]] | None = None
) -> list[Side]:
    """The two sides compared: `sides` when given, else REAL-labelled vs GEN-labelled datasets, else the two
    datasets when there are exactly two; otherwise none (an empty list: per-dataset tables only).

    A side is named by its label when it came from labels, by its dataset's name when it is one dataset, else
    by the dataset names joined with " + ". Raises InputError for a side naming an unknown dataset or a dataset
    on both sides.
    """
    if sides is not None:
        first, second = (list(dict.fromkeys(side)) for side in sides)
        for name in [*first, *second]:
            if name not in datasets:
                raise InputError(f"Side dataset {name!r} is not among the audited datasets: pick from them.")
        if not first or not second or set(first) & set(second):
            raise InputError("Each side needs at least one dataset, and no dataset can be on both sides.")
        return [Side(_side_name(first, labels), tuple(first), 0), Side(_side_name(second, labels), tuple(second), 0)]
    by_label = {
        role: [name for name in datasets if labels.get(name, "").strip().upper() == role] for role in ("REAL", "GEN")
    }
    if by_label["REAL"] and by_label["GEN"]:
        return [Side(role, tuple(by_label[role]), 0) for role in ("REAL", "GEN")]
    if len(datasets) == 2:
        return [Side(name, (name,), 0) for name in datasets]
    return []


# ------------------------------------------------------------------------------------------------ helpers


def _side_name(names: list[str], labels: Mapping[str, str]) -> str:
    if len(names) == 1:
        return names[0]
    common = {labels.get(name, "").strip().upper() for name in names}
    return common.pop() if len(common) == 1 and "" not in common else " + ".join(names)


def _categorical(
    derived: DerivedFacts, row_dataset: np.ndarray, row_side: np.ndarray, order: list[str], side_names: list[str]
) -> list[CategoricalResult]:
    """Counts, shares and tests of every categorical fact (q-values filled in later by `_adjust`)."""
    specs = [spec for spec in derived.specs if spec.kind == "categorical"]
    position = {name: i for i, name in enumerate(order)}
    row_position = np.array([position[name] for name in row_dataset], dtype=int)
    totals = np.bincount(row_position, minlength=len(order))
    two = len(side_names) == 2
    in_side = row_side >= 0
    side_totals = [int((row_side == i).sum()) for i in (0, 1)] if two else []
    facts: list[tuple[FactSpec, np.ndarray, list[str], np.ndarray, np.ndarray]] = []
    dist_rows: list[tuple[str, str | None, int, int]] = []
    for i, spec in enumerate(specs):
        # Integer codes and bincount: a crosstab per fact would cost seconds on 200k images.
        codes, uniques = pd.factorize(derived.categorical[spec.key].astype(str))
        m = len(uniques)
        table = np.bincount(codes * len(order) + row_position, minlength=m * len(order)).reshape(m, len(order))
        sides = np.bincount(codes[in_side] * 2 + row_side[in_side], minlength=m * 2).reshape(m, 2)
        ranked = sorted(range(m), key=lambda c: (-int(table[c].sum()), str(uniques[c])))
        values = [str(uniques[c]) for c in ranked]
        rank_of = np.empty(m, dtype=int)
        rank_of[ranked] = np.arange(m)
        facts.append((spec, rank_of[codes], values, table[ranked], sides[ranked]))
        # One distribution frame for every value of every fact, so BH runs over all of them at once.
        dist_rows += [
            (name, f"{i:04d}:{j:04d}", int(table[c, d]), int(totals[d]))
            for j, c in enumerate(ranked)
            for d, name in enumerate(order)
        ]
    dist_rows += [(name, None, 0, int(totals[d])) for d, name in enumerate(order)]  # totals of empty datasets
    dist = pd.DataFrame(dist_rows, columns=["dataset", "category", "count", "total"])
    per_value = category_stats(dist)
    lookup = {(str(r["category"]), str(r["dataset"])): r for r in per_value.to_dict("records")}

    results = []
    for i, (spec, codes, values, table, sides) in enumerate(facts):
        out_values = []
        for j, value in enumerate(values):
            rows = [lookup[(f"{i:04d}:{j:04d}", name)] for name in order]
            counts = tuple(
                ValueCount(
                    name, int(r["count"]), int(r["total"]), float(r["share"]), float(r["ci_low"]), float(r["ci_high"])
                )
                for name, r in zip(order, rows, strict=True)
            )
            side_counts = tuple(_value_count(side_names[s], int(sides[j, s]), side_totals[s]) for s in range(2) if two)
            first = rows[0]
            out_values.append(
                CategoryValue(
                    value, counts, side_counts, str(first["test"]), float(first["p_value"]), float(first["p_adjusted"])
                )
            )
        test, statistic, p = _fact_test(out_values, order, table)
        auc, top, gap = _categorical_separation(values, codes, row_side, sides, side_totals)
        raw = derived.unfolded[spec.key] if spec.key in derived.unfolded else derived.categorical[spec.key]
        distinct = tuple(int(raw[row_side == s].nunique()) for s in range(len(side_totals)))
        results.append(
            CategoricalResult(
                spec.key,
                spec.title,
                spec.group,
                tuple(out_values),
                test,
                statistic,
                p,
                math.nan,
                auc,
                top,
                gap,
                distinct,
            )
        )
    return results


def _value_count(name: str, count: int, total: int) -> ValueCount:
    low, high = wilson_interval(count, total)
    return ValueCount(name, count, total, count / total if total else math.nan, low, high)


def _fact_test(values: list[CategoryValue], order: list[str], table: np.ndarray) -> tuple[str, float, float]:
    """The test of a fact as a whole: its one 2 x k table for two values, chi-square homogeneity for more."""
    if len(values) < 2:
        return ("none", math.nan, math.nan)
    if len(values) == 2:
        return (values[0].test, math.nan, values[0].p_value)
    totals = table.sum(axis=0)
    dist = pd.DataFrame(
        [
            (name, value.value, int(table[j, d]), int(totals[d]))
            for d, name in enumerate(order)
            for j, value in enumerate(values)
        ],
        columns=["dataset", "category", "count", "total"],
    )
    result = overall_test(dist)  # the values split the images, so this table's cells are independent
    return ("chi-square" if not math.isnan(result.p_value) else "none", result.statistic, result.p_value)


def _categorical_separation(
    values: list[str], codes: np.ndarray, row_side: np.ndarray, sides: np.ndarray, side_totals: list[int]
) -> tuple[float, str, float]:
    """(AUC, most different value, its share gap) of a fact between the sides: nan, "", nan without sides.

    `codes` are the rows' positions in `values`; `sides` holds each value's count per side.
    """
    if len(side_totals) != 2 or min(side_totals) == 0:
        return (math.nan, "", math.nan)
    share = sides / np.array(side_totals, dtype=float)
    both = share[:, 0] + share[:, 1]
    # Score = the second side's share of the value relative to both: a monotone map of P(second | value).
    score = np.divide(share[:, 1], both, out=np.full(len(values), 0.5), where=both > 0)
    scores = score[codes]
    auc = mann_whitney_auc(scores[row_side == 0], scores[row_side == 1])
    gaps = share[:, 1] - share[:, 0]
    top = int(np.argmax(np.abs(gaps)))  # the first (most common) value wins a tie
    return (max(auc, 1 - auc), values[top], float(gaps[top]))


def _numeric(
    derived: DerivedFacts, row_dataset: np.ndarray, row_side: np.ndarray, order: list[str], sides: tuple[Side, ...]
) -> list[NumericResult]:
    results = []
    for spec in derived.specs:
        if spec.kind != "numeric":
            continue
        values = derived.numeric[spec.key].to_numpy(dtype=float)
        summaries = tuple(_summary(name, values[row_dataset == name]) for name in order)
        side_summaries = tuple(_summary(side.name, values[row_side == i]) for i, side in enumerate(sides))
        stat = p = auc = delta = math.nan
        direction = ""
        if len(sides) == 2:
            first, second = values[row_side == 0], values[row_side == 1]
            stat, p = ks_two_sample(first, second)
            counts = [int((~np.isnan(v)).sum()) for v in (first, second)]
            # A fact measured on a handful of one side's images (GEN's one JPEG) would lead with a chance AUC.
            raw = mann_whitney_auc(first, second) if min(counts) >= MIN_SEPARATION_VALUES else math.nan
            if min(counts) < MIN_SEPARATION_VALUES and min(counts) > 0:
                fewest = counts.index(min(counts))
                direction = f"too few values to rank (n={min(counts)} in {sides[fewest].name})"
            if not math.isnan(raw):
                auc, delta = max(raw, 1 - raw), 2 * raw - 1
                direction = "" if raw == 0.5 else f"{'higher' if raw > 0.5 else 'lower'} in {sides[1].name}"
        results.append(
            NumericResult(
                spec.key, spec.title, spec.group, summaries, side_summaries, stat, p, math.nan, auc, delta, direction
            )
        )
    return results


def _summary(name: str, values: np.ndarray) -> NumericSummary:
    present = values[~np.isnan(values)]
    missing = len(values) - len(present)
    if not len(present):
        nan = math.nan
        return NumericSummary(name, 0, missing, nan, nan, nan, nan, nan, nan, ())
    points = np.quantile(present, np.linspace(0, 1, QUANTILES), method="inverted_cdf")  # values that occur: true steps
    q1, median, q3 = np.quantile(present, [0.25, 0.5, 0.75])
    return NumericSummary(
        name,
        len(present),
        missing,
        float(median),
        float(q1),
        float(q3),
        float(present.mean()),
        float(present.min()),
        float(present.max()),
        tuple(float(v) for v in points),
    )


def _adjust(
    categorical: list[CategoricalResult], numeric: list[NumericResult]
) -> tuple[tuple[CategoricalResult, ...], tuple[NumericResult, ...]]:
    """Benjamini-Hochberg over every fact-level test, categorical and numeric together."""
    from dataclasses import replace

    q = benjamini_hochberg([r.p_value for r in categorical] + [r.p_value for r in numeric])
    cats = tuple(replace(r, q_value=q[i]) for i, r in enumerate(categorical))
    nums = tuple(replace(r, q_value=q[len(categorical) + i]) for i, r in enumerate(numeric))
    return cats, nums


def _separation(
    categorical: Sequence[CategoricalResult], numeric: Sequence[NumericResult], derived: DerivedFacts
) -> tuple[Separation, ...]:
    rows = [Separation(r.fact, r.title, "numeric", r.group, r.auc, r.direction) for r in numeric]
    for r in categorical:
        direction = ""
        if r.top_value:
            value = next(v for v in r.values if v.value == r.top_value)
            first, second = value.sides
            direction = (
                f"{r.top_value}: {_pct(second.share)} of {second.dataset} vs {_pct(first.share)} of {first.dataset}"
            )
        rows.append(Separation(r.fact, r.title, "categorical", r.group, r.auc, direction))
    # Worst shortcut first; facts that cannot be measured (nan) last, then by report order.
    position = {spec.key: i for i, spec in enumerate(derived.specs)}
    return tuple(
        sorted(rows, key=lambda s: (math.isnan(s.auc), -(0 if math.isnan(s.auc) else s.auc), position[s.fact]))
    )


def _pct(share: float) -> str:
    if math.isnan(share):
        return "n/a"
    value = 100 * share
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"


def _no_sides_score(max_per_side: int, seed: int) -> ShortcutScore:
    reason = (
        "Not computed: the score compares two sides. Label the datasets REAL and GEN, audit exactly two "
        "datasets, or name the two sides."
    )
    return ShortcutScore(False, reason, math.nan, (), (), (0, 0), (0, 0), max_per_side, 0, seed, 0, 0.0, reason)


def _with_seconds(result: Audit, seconds: float) -> Audit:
    from dataclasses import replace

    return replace(result, seconds=seconds)


def _jsonable(value: Any) -> Any:
    """Dataclass dicts made JSON-safe: tuples as lists, numpy scalars as Python, NaN and inf as None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
