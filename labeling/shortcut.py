"""The shortcut score: how well technical facts alone tell one side from the other (cross-validated ROC AUC).

Two models on the same features (numeric facts standardized, with a missing flag where a fact can be absent;
categorical facts one-hot): a logistic regression and a histogram gradient-boosting classifier, each scored by
stratified k-fold ROC AUC with a fixed seed. The score is the better of the two. What the model leans on comes
from the logistic regression's standardized coefficients summed per fact: with L2 regularization the weight is
shared between facts that say the same thing (format, JPEG quality, subsampling), so every shortcut shows,
whereas permutation importance would call each of two redundant shortcuts unimportant.

scikit-learn is imported inside `shortcut_score`, so importing this module stays cheap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from labeling.audit_facts import DerivedFacts

__all__ = [
    "FOLDS",
    "MAX_PER_SIDE",
    "MIN_PER_SIDE",
    "SEED",
    "FactWeight",
    "ModelScore",
    "ShortcutScore",
    "shortcut_score",
    "shortcut_sentence",
]

MIN_PER_SIDE = 10  # below this per side a cross-validated AUC is noise: not computed
MAX_PER_SIDE = 20_000  # images per side the classifier sees at most (a seeded random sample beyond that)
FOLDS = 5
SEED = 0
SHORTCUT_STRONG = 0.75  # score from which the sentence says a detector can learn the files
SHORTCUT_SOME = 0.6  # score from which the facts tell the sides apart somewhat
_TOP_WEIGHTS = 10


@dataclass(frozen=True)
class ModelScore:
    """One model's cross-validated ROC AUC."""

    model: str  # "logistic regression" | "gradient boosting"
    auc: float  # mean over the folds
    fold_aucs: tuple[float, ...]


@dataclass(frozen=True)
class FactWeight:
    """How much the logistic regression leans on one fact: its share of the summed |standardized coefficient|."""

    fact: str
    title: str
    weight: float  # sum of |coefficient| over the fact's feature columns (standardized features)
    share: float  # weight / the sum over all facts, 0..1


@dataclass(frozen=True)
class ShortcutScore:
    """The shortcut score, or why it was not computed (`computed` False, `reason` says why, score nan)."""

    computed: bool
    reason: str
    score: float  # max of the models' AUCs
    models: tuple[ModelScore, ...]
    leans_on: tuple[FactWeight, ...]  # heaviest first, at most 10
    rows_per_side: tuple[int, int]  # images the classifier saw per side (after the cap)
    images_per_side: tuple[int, int]  # images with facts per side (before the cap)
    max_per_side: int
    folds: int
    seed: int
    features: int  # feature columns after one-hot encoding
    seconds: float
    sentence: str


def shortcut_score(
    facts: DerivedFacts,
    side: Sequence[int] | np.ndarray,
    names: tuple[str, str],
    *,
    min_per_side: int = MIN_PER_SIDE,
    max_per_side: int = MAX_PER_SIDE,
    folds: int = FOLDS,
    seed: int = SEED,
) -> ShortcutScore:
    """Cross-validated ROC AUC of telling side 1 from side 0 by the technical facts alone.

    `side` is row-aligned with `facts`: 0 (first side, e.g. REAL), 1 (second side, e.g. GEN) or -1 (in neither
    side: left out). Returns a not-computed score when a side has fewer than `min_per_side` images or no fact
    varies; never raises on small or constant input.
    """
    started = time.perf_counter()
    labels = np.asarray(side, dtype=int)
    counts = (int((labels == 0).sum()), int((labels == 1).sum()))
    if min(counts) < min_per_side:
        short = names[0] if counts[0] < min_per_side else names[1]
        reason = (
            f"Not computed: {short} has {min(counts):,} images with facts and the score needs at least "
            f"{min_per_side} per side for a cross-validated AUC that means anything. Scan more images."
        )
        return _not_computed(reason, counts, counts, max_per_side, folds, seed, started)
    rows = _sample(labels, max_per_side, seed)
    x, columns = _features(facts, rows)
    y = labels[rows]
    used = (int((y == 0).sum()), int((y == 1).sum()))
    if x.shape[1] == 0:
        reason = "Not computed: no technical fact varies across these images, so there is nothing to learn from."
        return _not_computed(reason, used, counts, max_per_side, folds, seed, started)
    k = max(2, min(folds, min(used)))
    models = _cross_validate(x, y, k, seed)
    leans_on = _weights(facts, x, y, columns)
    score = max(model.auc for model in models)
    return ShortcutScore(
        True,
        "",
        score,
        models,
        leans_on,
        used,
        counts,
        max_per_side,
        k,
        seed,
        x.shape[1],
        time.perf_counter() - started,
        shortcut_sentence(score, names),
    )


def shortcut_sentence(score: float, names: tuple[str, str]) -> str:
    """The plain-language reading of a shortcut score (thresholds SHORTCUT_STRONG and SHORTCUT_SOME)."""
    a, b = names
    if math.isnan(score):
        return "The shortcut score was not computed."
    if score >= SHORTCUT_STRONG:
        return (
            f"Technical facts alone tell {a} from {b} with AUC {score:.2f}: a detector trained on these sets can "
            "learn the files, not the images."
        )
    if score >= SHORTCUT_SOME:
        return (
            f"Technical facts alone tell {a} from {b} somewhat (AUC {score:.2f}): a detector can pick up part of "
            "its signal from the files rather than the images."
        )
    return f"Technical facts alone barely tell {a} from {b} (AUC {score:.2f}): no strong file-level shortcut."


# ------------------------------------------------------------------------------------------------ helpers


def _not_computed(
    reason: str,
    used: tuple[int, int],
    counts: tuple[int, int],
    cap: int,
    folds: int,
    seed: int,
    started: float,
) -> ShortcutScore:
    return ShortcutScore(
        False, reason, math.nan, (), (), used, counts, cap, folds, seed, 0, time.perf_counter() - started, reason
    )


def _sample(labels: np.ndarray, cap: int, seed: int) -> np.ndarray:
    """Row positions of both sides, at most `cap` per side drawn with a fixed seed, in row order."""
    rng = np.random.default_rng(seed)
    chosen = []
    for value in (0, 1):
        positions = np.flatnonzero(labels == value)
        if len(positions) > cap:
            positions = np.sort(rng.choice(positions, size=cap, replace=False))
        chosen.append(positions)
    return np.sort(np.concatenate(chosen))


def _features(facts: DerivedFacts, rows: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The feature matrix of `rows` and, per column, the fact it came from; constant columns dropped."""
    blocks: list[np.ndarray] = []
    owners: list[str] = []
    numeric = facts.numeric.iloc[rows]
    for spec in facts.specs:
        if spec.kind == "numeric":
            values = numeric[spec.key].to_numpy(dtype=float)
            missing = np.isnan(values)
            if missing.all():
                continue
            # The median fills the gaps and a flag says where they were: absent is itself a fact (no JPEG quality).
            filled = np.where(missing, np.nanmedian(values), values)
            if spec.key in ("size_bytes", "sharpness", "megapixels"):
                filled = np.log1p(np.maximum(filled, 0.0))  # long tails: logistic regression needs them tamed
            blocks.append(filled[:, None])
            owners.append(spec.key)
            if missing.any():
                blocks.append(missing[:, None].astype(float))
                owners.append(spec.key)
        else:
            dummies = pd.get_dummies(facts.categorical[spec.key].iloc[rows].astype(str), dtype=float)
            blocks.append(dummies.to_numpy())
            owners += [spec.key] * dummies.shape[1]
    if not blocks:
        return np.zeros((len(rows), 0)), []
    x = np.hstack(blocks)
    varies = x.std(axis=0) > 0
    return x[:, varies], [owner for owner, keep in zip(owners, varies, strict=True) if keep]


def _models(seed: int) -> list[tuple[str, object]]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [
        ("logistic regression", make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))),
        ("gradient boosting", HistGradientBoostingClassifier(max_iter=100, early_stopping=False, random_state=seed)),
    ]


def _cross_validate(x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> tuple[ModelScore, ...]:
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from threadpoolctl import threadpool_limits

    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = []
    # One thread: on a shared 2-CPU machine OpenMP's threads fight the other work and run 5-30x slower.
    with threadpool_limits(limits=1):
        for name, model in _models(seed):
            aucs = cross_val_score(model, x, y, cv=splitter, scoring="roc_auc", n_jobs=1)
            scores.append(ModelScore(name, float(np.mean(aucs)), tuple(float(a) for a in aucs)))
    return tuple(scores)


def _weights(facts: DerivedFacts, x: np.ndarray, y: np.ndarray, columns: list[str]) -> tuple[FactWeight, ...]:
    """Summed |standardized coefficient| per fact of a logistic regression fitted on all sampled rows."""
    _name, model = _models(0)[0]
    model.fit(x, y)  # type: ignore[attr-defined]
    coefficients = np.abs(model[-1].coef_[0])  # type: ignore[index]
    per_fact: dict[str, float] = {}
    for owner, weight in zip(columns, coefficients, strict=True):
        per_fact[owner] = per_fact.get(owner, 0.0) + float(weight)
    total = sum(per_fact.values()) or 1.0
    ordered = sorted(per_fact.items(), key=lambda item: (-item[1], item[0]))[:_TOP_WEIGHTS]
    return tuple(FactWeight(key, facts.spec(key).title, weight, weight / total) for key, weight in ordered)
