"""A debiased pair of subsets: REAL and GEN images matched on content and on chosen technical strata.

Matching is exact: images are grouped by their category set (content) and the chosen strata (size bucket,
format, JPEG quality bucket); each group keeps min(REAL, GEN) images from both sides, drawn with a fixed seed.
That is the largest pair of subsets whose joint distributions over those keys are identical, so neither the
categories nor the strata can tell the kept sides apart. Duplicates and leaked images are left out first.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from labeling.errors import InputError
from labeling.store import Store
from labeling.vocabulary import LabelSource, checked_source

if TYPE_CHECKING:
    import pandas as pd

SEED = 0  # the same choices on every run: an export can be made again and compared
STRATA = ("size", "format", "quality")
STRATUM_TITLES = {"size": "size bucket (longest side)", "format": "file format", "quality": "JPEG quality bucket"}
SIZE_EDGES = (256, 512, 768, 1024, 2048)  # longest side, px: buckets below, between and above these


def _known(value: float | None) -> bool:
    """A number that is there: not None, NaN or pandas' NA (an unreadable file has no size)."""
    import pandas as pd

    return value is not None and not bool(pd.isna(value))


def size_bucket(width: float | None, height: float | None) -> str:
    """The longest side's bucket, e.g. "512-767 px"."""
    if width is None or height is None or not (_known(width) and _known(height)):
        return "unknown"
    longest = max(int(width), int(height))
    low = 0
    for edge in SIZE_EDGES:
        if longest < edge:
            return f"{low}-{edge - 1} px" if low else f"< {edge} px"
        low = edge
    return f">= {SIZE_EDGES[-1]} px"


def quality_bucket(fmt: str | None, quality: float | None, table: str | None) -> str:
    """A JPEG's quality bucket as the audit counts them ("96-100", "custom table"); other formats are their own."""
    from labeling.audit_facts import QUALITY_BUCKETS

    if fmt not in ("JPEG", "MPO"):
        return str(fmt or "unknown")
    if table == "custom":
        return "custom table"  # an encoder's own tables: the nearest IJG quality says little
    if quality is None or not _known(quality):
        return "JPEG, quality unknown"
    return next(label for bound, label in QUALITY_BUCKETS if quality <= bound)


@dataclass(frozen=True)
class Debiased:
    """The kept subsets and what was left out, per dataset."""

    datasets: tuple[str, str]
    strata: tuple[str, ...]
    source: LabelSource
    content: bool  # matched on category sets too
    selection: pd.DataFrame  # dataset, image_id, name, categories, stratum, kept (bool), reason ("" when kept)

    def kept(self, dataset: str) -> pd.DataFrame:
        frame = self.selection
        return frame[(frame["dataset"] == dataset) & frame["kept"]]

    def counts(self) -> dict[str, dict[str, int]]:
        """Per dataset: images before, kept, and left out by reason, always in REASONS order (0 when none)."""
        out: dict[str, dict[str, int]] = {}
        for dataset in self.datasets:
            rows = self.selection[self.selection["dataset"] == dataset]
            entry = {"before": len(rows), "kept": int(rows["kept"].sum())}
            left_out = rows.loc[~rows["kept"], "reason"].value_counts()
            for reason in self.reasons():
                entry[reason] = int(left_out.get(reason, 0))
            out[dataset] = entry
        return out

    def reasons(self) -> list[str]:
        """Why images can be left out, in the order a person reads them."""
        label = [f"no {self.source} label"] if self.content else []
        return ["not scanned", "unreadable", "duplicate or leaked", *label, "no match on the other side"]

    def file_names(self, dataset: str) -> tuple[str, str]:
        """(seed CSV, name list) file names of one dataset's subset, safe on any file system."""
        from labeling.exporting import file_slug

        stem = f"{file_slug(dataset)}_debiased"
        return f"{stem}_categorized.csv", f"{stem}_names.txt"

    def names_text(self, dataset: str) -> bytes:
        """The kept image names of one dataset, one per line (a list the seed's download script reads)."""
        return "".join(f"{name}\n" for name in self.kept(dataset)["name"]).encode("utf-8")


def debias(
    store: Store,
    datasets: Sequence[str],
    *,
    strata: Sequence[str] = STRATA,
    source: str = "effective",
    exclude: Collection[int] = (),
    content: bool = True,
    seed: int = SEED,
) -> Debiased:
    """Match two datasets on content (category sets under `source`) and `strata`; `exclude`: image ids left out.

    Images without facts (not scanned, or unreadable) are left out and counted, and so are images without a label
    under `source` unless `content` is off (technical strata only, for datasets not categorized yet).
    """
    import pandas as pd

    names = list(dict.fromkeys(datasets))
    if len(names) != 2:
        raise InputError("A debiased export matches exactly two datasets (REAL and GEN): choose two.")
    unknown = [s for s in strata if s not in STRATA]
    if unknown:
        raise InputError(f"Unknown stratum {unknown[0]!r}: choose from {', '.join(STRATA)}.")
    label_source = checked_source(source)
    records = [store.dataset(name) for name in names]
    facts = store.image_facts([r.id for r in records]).set_index("image_id")
    excluded = {int(i) for i in exclude}
    frames = []
    for record in records:
        images = store.found_images(record.id)
        labels = store.image_labels(record.name, label_source).set_index("image_id")["categories"]
        frame = images.assign(dataset=record.name)
        frame["categories"] = frame["image_id"].map(labels) if content else None
        frames.append(frame)
    rows = pd.concat(frames, ignore_index=True)
    keyed = rows.join(facts[["format", "width", "height", "jpeg_quality", "jpeg_table"]], on="image_id")
    rows["stratum"] = _strata(keyed, strata)
    rows["reason"] = ""
    rows.loc[~rows["image_id"].isin(facts.index), "reason"] = "not scanned"
    rows.loc[rows["image_id"].isin(facts.index[facts["error"].notna()]), "reason"] = "unreadable"
    rows.loc[rows["image_id"].isin(excluded) & (rows["reason"] == ""), "reason"] = "duplicate or leaked"
    if content:
        rows.loc[rows["categories"].isna() & (rows["reason"] == ""), "reason"] = f"no {label_source} label"
    rows["kept"] = False
    candidates = rows[rows["reason"] == ""]
    for _, group in candidates.groupby("stratum", sort=False):
        sides = [group[group["dataset"] == name] for name in names]
        keep = min(len(side) for side in sides)
        for side in sides:
            chosen = side.sample(n=keep, random_state=seed).index if keep < len(side) else side.index
            rows.loc[chosen, "kept"] = True
    rows.loc[~rows["kept"] & (rows["reason"] == ""), "reason"] = "no match on the other side"
    selection = rows[["dataset", "image_id", "name", "categories", "stratum", "kept", "reason"]].reset_index(drop=True)
    return Debiased((names[0], names[1]), tuple(strata), label_source, content, selection)


def _strata(rows: pd.DataFrame, strata: Sequence[str]) -> list[str]:
    """Each image's matching key: its category set, then each chosen stratum (one pass over plain columns)."""
    keys: list[list[str]] = [
        [" + ".join(sorted(cats)) if cats is not None and not isinstance(cats, float) else ""]
        for cats in rows["categories"]
    ]
    for stratum in strata:
        if stratum == "size":
            values = [size_bucket(w, h) for w, h in zip(rows["width"], rows["height"], strict=True)]
        elif stratum == "format":
            values = [str(f) for f in rows["format"]]
        else:
            values = [
                quality_bucket(f, q, t)
                for f, q, t in zip(rows["format"], rows["jpeg_quality"], rows["jpeg_table"], strict=True)
            ]
        for key, value in zip(keys, values, strict=True):
            key.append(value)
    return [" | ".join(key) for key in keys]


def seed_csv(store: Store, debiased: Debiased, dataset: str) -> bytes:
    """The kept images of one dataset as the seed's categorized CSV (the same writer as every export)."""
    from labeling.exporting import export_bytes

    return export_bytes(store, dataset, source=debiased.source, names=list(debiased.kept(dataset)["name"]))


@dataclass(frozen=True)
class BeforeAfter:
    """The shortcut score and the category test on every scanned image against the kept subsets."""

    score_before: float  # nan when it could not be computed (too few images)
    score_after: float
    sentence_after: str
    category_p_before: float  # chi-square homogeneity of the two category profiles (labeling.stats)
    category_p_after: float


def before_after(store: Store, debiased: Debiased) -> BeforeAfter:
    """Audit the datasets as they are and as the kept subsets: what the debiasing bought."""
    from labeling.audit import audit
    from labeling.stats import overall_test

    records = [store.dataset(name) for name in debiased.datasets]
    facts = store.image_facts([r.id for r in records])
    labels = {r.name: r.label for r in records}
    kept_ids = set(debiased.selection.loc[debiased.selection["kept"], "image_id"].astype(int))
    before = audit(facts, labels=labels, datasets=list(debiased.datasets))
    after = audit(facts[facts["image_id"].isin(kept_ids)], labels=labels, datasets=list(debiased.datasets))
    labelled = debiased.selection[debiased.selection["categories"].notna()]
    return BeforeAfter(
        before.shortcut.score,
        after.shortcut.score,
        after.shortcut.sentence,
        overall_test(_distribution(labelled)).p_value,
        overall_test(_distribution(labelled[labelled["kept"]])).p_value,
    )


def _distribution(rows: pd.DataFrame) -> pd.DataFrame:
    """The category distribution frame of labeling.stats (dataset, category, count, total) of these images."""
    import pandas as pd

    totals = rows.groupby("dataset").size()
    exploded = rows[["dataset", "categories"]].explode("categories").dropna()
    counts = exploded.groupby(["dataset", "categories"]).size().rename("count").reset_index()
    counts = counts.rename(columns={"categories": "category"})
    counts["total"] = counts["dataset"].map(totals).astype(int)
    return pd.DataFrame(counts, columns=["dataset", "category", "count", "total"])
