"""The audit's view of `image_facts`: one categorical value or number per image and fact, ready to compare.

`derive` turns the store's rows (`Store.image_facts`) into two frames aligned with the input rows: `categorical`
(one string column per categorical fact, every image carrying exactly one value, so a fact's values split the
images) and `numeric` (one float column per numeric fact, NaN where the fact does not apply, e.g. the JPEG
quality of a PNG). Long-tailed text facts (camera make, software, WxH) keep their TOP_VALUES most common values
and fold the rest into "other"; each PNG text key becomes its own yes/no fact. Hashes, names and ids are never
facts: they identify files, they do not describe how they were made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import pandas as pd

__all__ = [
    "CATEGORICAL",
    "FOLDED",
    "NUMERIC",
    "OTHER",
    "QUALITY_BUCKETS",
    "TOP_TEXT_KEYS",
    "TOP_VALUES",
    "DerivedFacts",
    "FactSpec",
    "derive",
]

FactKind = Literal["categorical", "numeric"]
TOP_VALUES = 8  # distinct values kept per long-tailed text fact; the rest count as OTHER
TOP_TEXT_KEYS = 20  # PNG text keys that each become a yes/no fact (the most common ones)
OTHER = "other"
NONE = "none"
UNKNOWN = "unknown"
NOT_JPEG = "not JPEG"
# JPEG quality buckets (upper bounds, inclusive): GenImage's REAL side sits in 96-100 (ImageNet's quality 96).
QUALITY_BUCKETS: tuple[tuple[int, str], ...] = (
    (75, "<=75"),
    (85, "76-85"),
    (90, "86-90"),
    (95, "91-95"),
    (100, "96-100"),
)
# Megapixel buckets (upper bounds, exclusive).
_MP_BUCKETS: tuple[tuple[float, str], ...] = (
    (0.1, "<0.1 MP"),
    (0.3, "0.1-0.3 MP"),
    (0.6, "0.3-0.6 MP"),
    (1.1, "0.6-1.1 MP"),
    (2.5, "1.1-2.5 MP"),
    (float("inf"), ">=2.5 MP"),
)


@dataclass(frozen=True)
class FactSpec:
    """One fact the audit compares: its key (a column of DerivedFacts), what to call it and its kind.

    `group` says what fixing it takes: "encoding" (re-encode), "size" (resize or crop), "metadata" (strip it),
    "pixels" (the decoded image itself: may be content, may be processing).
    """

    key: str
    title: str
    kind: FactKind
    group: str


# (key, title, group) of the numeric facts, in report order.
NUMERIC: tuple[tuple[str, str, str], ...] = (
    ("size_bytes", "File size (bytes)", "encoding"),
    ("bytes_per_pixel", "Bytes per pixel", "encoding"),
    ("jpeg_quality", "JPEG quality", "encoding"),
    ("width", "Width (px)", "size"),
    ("height", "Height (px)", "size"),
    ("megapixels", "Megapixels", "size"),
    ("aspect", "Aspect ratio (w/h)", "size"),
    ("luma_mean", "Mean brightness", "pixels"),
    ("luma_std", "Brightness contrast (std)", "pixels"),
    ("clip_high", "Share of blown highlights", "pixels"),
    ("clip_low", "Share of crushed shadows", "pixels"),
    ("saturation_mean", "Mean saturation", "pixels"),
    ("sharpness", "Sharpness (Laplacian variance)", "pixels"),
    ("high_freq", "High-frequency energy share", "pixels"),
)
# (key, title, group) of the fixed categorical facts; the text-key facts follow them.
CATEGORICAL: tuple[tuple[str, str, str], ...] = (
    ("format", "Format", "encoding"),
    ("jpeg_quality_bucket", "JPEG quality bucket", "encoding"),
    ("jpeg_subsampling", "JPEG chroma subsampling", "encoding"),
    ("jpeg_progressive", "Progressive JPEG", "encoding"),
    ("jpeg_tables", "JPEG quantization tables", "encoding"),
    ("mode", "Colour mode", "encoding"),
    ("bit_depth", "Bit depth", "encoding"),
    ("animated", "Frames", "encoding"),
    ("dimensions", "Size (WxH)", "size"),
    ("megapixel_bucket", "Size bucket", "size"),
    ("orientation", "EXIF orientation", "metadata"),
    ("exif", "EXIF present", "metadata"),
    ("exif_make", "EXIF camera make", "metadata"),
    ("exif_model", "EXIF camera model", "metadata"),
    ("exif_software", "Software (EXIF)", "metadata"),
    ("exif_datetime", "EXIF capture time", "metadata"),
    ("exif_gps", "GPS position", "metadata"),
    ("icc", "ICC profile present", "metadata"),
    ("icc_description", "ICC profile", "metadata"),
    ("xmp", "XMP present", "metadata"),
    ("generator", "Generator (text metadata)", "metadata"),
    ("c2pa", "C2PA manifest", "metadata"),
    ("c2pa_generator", "C2PA claim generator", "metadata"),
)
TEXT_KEY_PREFIX = "text_key:"
# The long-tailed facts: their TOP_VALUES most common values are kept, the rest fold into OTHER.
FOLDED = ("dimensions", "exif_make", "exif_model", "exif_software", "icc_description", "generator", "c2pa_generator")


@dataclass(frozen=True)
class DerivedFacts:
    """The facts of the rows given to `derive`, row-aligned with them (same index)."""

    specs: tuple[FactSpec, ...]
    categorical: pd.DataFrame  # one str column per categorical spec key
    numeric: pd.DataFrame  # one float column per numeric spec key
    unfolded: pd.DataFrame  # the long-tailed facts before OTHER folding (for counting distinct values)

    def spec(self, key: str) -> FactSpec:
        """The spec of the fact `key` (KeyError when there is none)."""
        for spec in self.specs:
            if spec.key == key:
                return spec
        raise KeyError(key)


def derive(raw: pd.DataFrame) -> DerivedFacts:
    """The audit's facts of each row of an `image_facts` frame (rows with facts; the caller drops error rows)."""
    raw = raw.reset_index(drop=True)
    col = _column_getter(raw)
    numeric = pd.DataFrame(index=raw.index)
    for key, _title, _group in NUMERIC:
        if key == "megapixels":
            numeric[key] = col("width").astype(float) * col("height").astype(float) / 1e6
        elif key == "aspect":
            computed = col("width").astype(float) / col("height").astype(float).replace(0.0, np.nan)
            numeric[key] = col("aspect").astype(float).fillna(computed)
        else:
            numeric[key] = pd.to_numeric(col(key), errors="coerce").astype(float)

    fmt = _text(col("format"), UNKNOWN).str.upper()
    is_jpeg = fmt.isin(["JPEG", "MPO"])  # Pillow calls a multi-picture camera JPEG "MPO"
    cats: dict[str, pd.Series] = {
        "format": fmt,
        "jpeg_quality_bucket": _quality_bucket(col("jpeg_quality"), col("jpeg_table"), is_jpeg),
        "jpeg_subsampling": _text(col("jpeg_subsampling"), UNKNOWN).where(is_jpeg, NOT_JPEG),
        "jpeg_progressive": _yes_no(col("jpeg_progressive")).where(is_jpeg, NOT_JPEG),
        "jpeg_tables": _integer_text(col("jpeg_tables"), UNKNOWN).where(is_jpeg, NOT_JPEG),
        "mode": _text(col("mode"), UNKNOWN),
        "bit_depth": _integer_text(col("bit_depth"), UNKNOWN),
        "animated": _frames(col("frames")),
        "dimensions": _dimensions(col("width"), col("height")),
        "megapixel_bucket": _megapixel_bucket(numeric["megapixels"]),
        "orientation": _integer_text(col("orientation"), NONE),
        "exif": _yes_no(col("exif")),
        "exif_make": _text(col("exif_make"), NONE),
        "exif_model": _text(col("exif_model"), NONE),
        "exif_software": _text(col("exif_software"), NONE),
        "exif_datetime": _per_unique(
            col("exif_datetime_original"), lambda v: "no" if _missing(v) or not str(v).strip() else "yes"
        ),
        "exif_gps": _yes_no(col("exif_gps")),
        "icc": _yes_no(col("icc")),
        "icc_description": _text(col("icc_description"), NONE),
        "xmp": _yes_no(col("xmp")),
        "generator": _text(col("generator"), NONE),
        "c2pa": _yes_no(col("c2pa")),
        "c2pa_generator": _text(col("c2pa_generator"), NONE),
    }
    specs = [FactSpec(key, title, "numeric", group) for key, title, group in NUMERIC]
    specs += [FactSpec(key, title, "categorical", group) for key, title, group in CATEGORICAL]
    key_sets = _key_sets(col("text_keys"))
    for key in _common_text_keys(key_sets):
        fact = TEXT_KEY_PREFIX + key
        specs.append(FactSpec(fact, f"Text key {key!r}", "categorical", "metadata"))
        cats[fact] = _has_key(key_sets, key)
    unfolded = pd.DataFrame({key: cats[key] for key in FOLDED}, index=raw.index).astype(object)
    for key in FOLDED:
        cats[key] = _top(cats[key], "other sizes" if key == "dimensions" else OTHER)
    categorical = pd.DataFrame(cats, index=raw.index).astype(object)
    return DerivedFacts(tuple(specs), categorical, numeric, unfolded)


# ------------------------------------------------------------------------------------------------ helpers


def _column_getter(raw: pd.DataFrame):  # type: ignore[no-untyped-def]
    """A column of `raw`, or all-missing when the scan did not fill it (an older store, a partial frame)."""

    def get(name: str) -> pd.Series:
        if name in raw.columns:
            return raw[name]
        return pd.Series([None] * len(raw), index=raw.index, dtype=object)

    return get


def _per_unique(values: pd.Series, func: Callable[[Any], str]) -> pd.Series:
    """`func` of every cell, computed once per distinct value (a column has a handful; the images 200k)."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped = np.array([func(u) for u in uniques] + [func(None)], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)  # code -1 (missing) takes the last


def _text(values: pd.Series, missing: str) -> pd.Series:
    """Stripped strings, `missing` for null or blank cells."""
    return _per_unique(values, lambda v: missing if _missing(v) else (str(v).strip() or missing))


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def _integer_text(values: pd.Series, missing: str) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    return _per_unique(numbers, lambda v: missing if _missing(v) else str(int(v)))


def _yes_no(values: pd.Series) -> pd.Series:
    return _per_unique(values, lambda v: UNKNOWN if _missing(v) else ("yes" if v else "no"))


def _frames(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    return _per_unique(numbers, lambda v: UNKNOWN if _missing(v) else ("animated" if v > 1 else "single frame"))


def _top(values: pd.Series, other: str = OTHER) -> pd.Series:
    """Values outside the TOP_VALUES most common become `other` (ties broken by the value, for stable output)."""
    counts = values.value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    keep = {value for value, _count in ordered[:TOP_VALUES]}
    return values.where(values.isin(keep), other)


def _dimensions(width: pd.Series, height: pd.Series) -> pd.Series:
    w, h = pd.to_numeric(width, errors="coerce"), pd.to_numeric(height, errors="coerce")
    known = w.notna() & h.notna()
    text = w.fillna(0).astype("int64").astype(str) + "x" + h.fillna(0).astype("int64").astype(str)
    return text.where(known, UNKNOWN).astype(object)


def _quality_bucket(quality: pd.Series, table: pd.Series, is_jpeg: pd.Series) -> pd.Series:
    q = pd.to_numeric(quality, errors="coerce")
    bucket = _per_unique(q, lambda v: UNKNOWN if _missing(v) else next(b for bound, b in QUALITY_BUCKETS if v <= bound))
    custom = _text(table, "").str.lower().eq("custom")
    # An encoder's own tables: the quality is only the nearest IJG match, so the table is the fact.
    bucket = bucket.where(~custom, "custom table")
    return bucket.where(is_jpeg, NOT_JPEG).astype(object)


def _megapixel_bucket(megapixels: pd.Series) -> pd.Series:
    bounds = [-np.inf, *(bound for bound, _label in _MP_BUCKETS)]
    labels = [label for _bound, label in _MP_BUCKETS]
    buckets = pd.cut(megapixels, bins=bounds, labels=labels, right=False).astype(object)
    return buckets.where(megapixels.notna(), UNKNOWN).astype(object)


def _keys_of(value: object) -> list[str]:
    if value is None or isinstance(value, float):
        return []
    return [str(key) for key in list(value)]  # type: ignore[call-overload]


def _common_text_keys(key_sets: pd.Series) -> list[str]:
    counts: dict[str, int] = {}
    for keys, images in key_sets.value_counts().items():
        for key in cast(tuple[str, ...], keys):
            counts[key] = counts.get(key, 0) + int(images)
    return sorted(counts, key=lambda key: (-counts[key], key))[:TOP_TEXT_KEYS]


def _key_sets(values: pd.Series) -> pd.Series:
    """Each cell's keys as one hashable, sorted tuple (lists cannot be factorized)."""
    return pd.Series([tuple(sorted(set(_keys_of(v)))) for v in values], index=values.index, dtype=object)


def _has_key(key_sets: pd.Series, key: str) -> pd.Series:
    return _per_unique(key_sets, lambda keys: "yes" if keys and key in keys else "no")
