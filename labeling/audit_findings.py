"""Plain-language findings of the technical-bias audit, each with what to do, most severe first.

Pure rules over the audit's results (labeling.audit). A categorical fact raises a finding when one of its values
is much more common on one side (the share gap, thresholds below) and the difference is significant after
Benjamini-Hochberg; a numeric fact when it alone separates the sides (its AUC). Facts that restate another
finding (JPEG subsampling when the formats already differ, width when the WxH finding says it) stay quiet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labeling.audit import AuditDataset, CategoricalResult, Finding, NumericResult, Side
    from labeling.shortcut import ShortcutScore

__all__ = [
    "DOMINANT_SHARE",
    "GAP_CRITICAL",
    "GAP_HIGH",
    "GAP_MEDIUM",
    "METADATA_GAP",
    "METADATA_ONE_SIDED",
    "NUMERIC_AUC_HIGH",
    "NUMERIC_AUC_MEDIUM",
    "SCORE_CRITICAL",
    "SCORE_HIGH",
    "SCORE_MEDIUM",
    "audit_findings",
]

# Shortcut score thresholds (cross-validated AUC of technical facts alone).
SCORE_CRITICAL = 0.9
SCORE_HIGH = 0.75
SCORE_MEDIUM = 0.6
# Share gap of one value between the sides (0..1) for encoding and size facts.
GAP_CRITICAL = 0.8
GAP_HIGH = 0.5
GAP_MEDIUM = 0.2
DOMINANT_SHARE = 0.8  # "GEN images are (almost) all 512x512" from this share of one size
# Metadata: a detector can memorise a tag that only one side carries, so smaller gaps count.
METADATA_GAP = 0.2  # presence gap for a high finding
METADATA_ONE_SIDED = 0.01  # present in at least this share of one side and absent from the other: medium
# Numeric facts: the fact alone separates the sides with this AUC.
NUMERIC_AUC_HIGH = 0.9
NUMERIC_AUC_MEDIUM = 0.75

_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3, "info": 4}
_STRIP = (
    "Strip metadata from both sides before training (EXIF, XMP, ICC, PNG text chunks, C2PA), for example by "
    "re-encoding the pixels only."
)
_REENCODE = (
    "Re-encode both sides to the same format and JPEG quality before training (for example every image to JPEG "
    "at one quality), or JPEG-compress both at random qualities as augmentation."
)
_RESIZE = "Resize or crop both sides to one size before training (for example random crops of one size from both)."
_PIXELS = (
    "This may be content or processing (resizing, compression, denoising): audit again after re-encoding and "
    "resizing both sides; if it stays, balance the content or match the processing."
)
# What a PNG text key says about who made the file.
KNOWN_TEXT_KEYS = {
    "parameters": "Stable Diffusion parameters",
    "prompt": "a ComfyUI prompt",
    "workflow": "a ComfyUI workflow",
    "dream": "InvokeAI dream parameters",
    "sd-metadata": "InvokeAI metadata",
    "invokeai_metadata": "InvokeAI metadata",
    "software": "a software name",
    "comment": "a comment",
}
_EXIF_FAMILY = ("exif_make", "exif", "exif_model", "exif_datetime", "exif_software", "exif_gps", "orientation")
_ENCODING_RESTATED = ("jpeg_quality_bucket", "jpeg_subsampling", "jpeg_progressive", "jpeg_tables")
_SIZE_RESTATED = ("megapixel_bucket", "width", "height", "megapixels", "aspect")
_ABSENT = {"none", "no", "unknown"}


def audit_findings(
    categorical: Sequence[CategoricalResult],
    numeric: Sequence[NumericResult],
    sides: Sequence[Side],
    score: ShortcutScore,
    alpha: float,
    datasets: Sequence[AuditDataset] = (),
) -> list[Finding]:
    """The findings of one audit, most severe first (ties: the larger difference first)."""
    from labeling.audit import Finding

    scanned = _dataset_findings(datasets)
    if len(sides) != 2:
        alone = Finding(
            "info",
            "",
            "No two sides to compare: only per-dataset tables are shown.",
            "Label the datasets REAL and GEN, or audit exactly two datasets.",
        )
        return [*scanned, alone]
    cats = {r.fact: r for r in categorical}
    nums = {r.fact: r for r in numeric}
    found: list[tuple[Finding, float]] = [_score_finding(score, (sides[0].name, sides[1].name))]
    format_finding = _format(cats.get("format"), nums.get("jpeg_quality"), sides, alpha)
    quality_finding = None if format_finding else _jpeg_quality(nums.get("jpeg_quality"), sides, alpha)
    size_finding = _dimensions(cats.get("dimensions"), sides, alpha) or _megapixels(
        nums.get("megapixels"), sides, alpha
    )
    found += [f for f in (format_finding, quality_finding, size_finding) if f]
    found += _metadata(cats, sides, alpha)
    skip = set(_EXIF_FAMILY) | {"format", "dimensions", "generator", "c2pa", "c2pa_generator", "icc", "xmp"}
    skip |= {r.fact for r in categorical if r.fact.startswith("text_key:")}
    skip |= {"icc_description"} if any(f.fact == "icc" for f, _size in found) else set()
    if format_finding:
        skip |= set(_ENCODING_RESTATED) | {"jpeg_quality", "size_bytes", "bytes_per_pixel"}
    if quality_finding:
        skip |= {"jpeg_quality", "jpeg_quality_bucket"}
    if size_finding:
        skip |= set(_SIZE_RESTATED)
    for result in categorical:
        if result.fact not in skip:
            found += _generic_categorical(result, sides, alpha)
    for number in numeric:
        if number.fact not in skip:
            found += _numeric(number, sides, alpha)
    if len(found) == 1 and not math.isnan(score.score) and score.score < SCORE_MEDIUM:
        found.append(
            (
                Finding(
                    "info",
                    "",
                    "No single technical fact tells the sides apart beyond the thresholds.",
                    "Nothing to fix in the files; keep the processing of both sides the same as the sets grow.",
                ),
                0.0,
            )
        )
    found += [(finding, 0.0) for finding in scanned]
    ordered = sorted(enumerate(found), key=lambda item: (_RANK[item[1][0].severity], -item[1][1], item[0]))
    return [finding for _i, (finding, _size) in ordered]


# ------------------------------------------------------------------------------------------------ rules


def _dataset_findings(datasets: Sequence[AuditDataset]) -> list[Finding]:
    """Datasets without facts (not scanned yet) and files the scan could not read."""
    from labeling.audit import Finding

    out = []
    for d in datasets:
        if d.audited == 0:
            out.append(
                Finding(
                    "high",
                    "",
                    f"{d.name} has no scanned images, so the audit knows nothing about its files",
                    f"Scan it first (labeling scan --dataset {d.name}, or the Scan step).",
                )
            )
        elif d.errors:
            out.append(
                Finding(
                    "low",
                    "",
                    f"{d.errors:,} of {d.rows:,} {d.name} files could not be read and "
                    + ("is left out" if d.errors == 1 else "are left out"),
                    'Check those files (Review\'s technical-fact filter "Unreadable in the scan" lists them with '
                    "the reason): unreadable files on one side only are a bias too.",
                )
            )
    return out


def _score_finding(score: ShortcutScore, names: tuple[str, str]) -> tuple[Finding, float]:
    from labeling.audit import Finding

    if not score.computed:
        return (Finding("info", "shortcut", score.reason, "Scan more images of the smaller side."), 0.0)
    value = score.score
    severity = (
        "critical"
        if value >= SCORE_CRITICAL
        else "high"
        if value >= SCORE_HIGH
        else "medium"
        if value >= SCORE_MEDIUM
        else "info"
    )
    leans = ", ".join(w.title for w in score.leans_on[:3])
    action = (
        f"Fix the findings below and audit again; the model leans most on: {leans}."
        if severity != "info"
        else "Nothing to fix at the file level."
    )
    return (Finding(severity, "shortcut", score.sentence, action), value)


def _format(
    fmt: CategoricalResult | None, quality: NumericResult | None, sides: Sequence[Side], alpha: float
) -> tuple[Finding, float] | None:
    from labeling.audit import Finding

    if fmt is None or not _significant(fmt.q_value, alpha) or math.isnan(fmt.gap) or abs(fmt.gap) < GAP_MEDIUM:
        return None
    if _dominant(fmt, 0)[0] == _dominant(fmt, 1)[0]:
        # Both sides are mostly one format: the sentence names the format whose share differs.
        # What the second side has more of reads best ("50% of GEN files are PNG"), among the widest gaps.
        value = max(
            (v.value for v in fmt.values),
            key=lambda v: (
                round(abs(_side_share(fmt, v, 1) - _side_share(fmt, v, 0)), 9),
                _side_share(fmt, v, 1) - _side_share(fmt, v, 0),
            ),
        )
        text = (
            f"{_pct(_side_share(fmt, value, 1))} of {sides[1].name} files are {value}, against "
            f"{_pct(_side_share(fmt, value, 0))} of {sides[0].name} files"
        )
        return (Finding(_gap_severity(abs(fmt.gap)), "format", text, _REENCODE), abs(fmt.gap))
    parts = []
    for s in (1, 0):
        value, share = _dominant(fmt, s)
        note = ""
        if value in ("JPEG", "MPO") and quality is not None and len(quality.sides) == 2:
            median = quality.sides[s].median
            note = "" if math.isnan(median) else f" (quality ~{median:.0f})"
        parts.append(_describe(share, f"{sides[s].name} files", f"{value}{note}"))
    text = f"{_capital(parts[0])} and {parts[1]}"
    return (Finding(_gap_severity(abs(fmt.gap)), "format", text, _REENCODE), abs(fmt.gap))


def _dimensions(dims: CategoricalResult | None, sides: Sequence[Side], alpha: float) -> tuple[Finding, float] | None:
    from labeling.audit import Finding

    if dims is None or not _significant(dims.q_value, alpha) or math.isnan(dims.gap) or abs(dims.gap) < GAP_MEDIUM:
        return None
    # The side where one size dominates leads the sentence.
    s = max((0, 1), key=lambda i: _dominant(dims, i)[1])
    value, share = _dominant(dims, s)
    other = 1 - s
    other_share = _side_share(dims, value, other)
    sizes = dims.distinct[other]
    if share >= DOMINANT_SHARE:
        lead = _describe(share, f"{sides[s].name} images", value)
        plural = "s" if sizes != 1 else ""
        text = f"{_capital(lead)} ({sides[other].name}: {sizes:,} size{plural}, {_pct(other_share)} at {value})"
    else:
        text = (
            f"{dims.title} differs: {value} in {_pct(share)} of {sides[s].name} vs {_pct(other_share)} of "
            f"{sides[other].name} ({dims.distinct[s]:,} vs {sizes:,} sizes)"
        )
    return (Finding(_gap_severity(abs(dims.gap)), "dimensions", text, _RESIZE), abs(dims.gap))


def _jpeg_quality(quality: NumericResult | None, sides: Sequence[Side], alpha: float) -> tuple[Finding, float] | None:
    """Both sides are JPEG but at different qualities (the formats finding covers JPEG against PNG)."""
    from labeling.audit import Finding

    if quality is None or math.isnan(quality.auc) or quality.auc < NUMERIC_AUC_MEDIUM:
        return None
    if not _significant(quality.q_value, alpha):
        return None
    first, second = quality.sides
    text = (
        f"{sides[0].name} JPEGs have quality ~{first.median:.0f}, {sides[1].name} JPEGs ~{second.median:.0f} "
        f"(AUC {quality.auc:.2f} alone)"
    )
    action = "Re-encode both sides to one JPEG quality before training, or JPEG-compress both at random qualities."
    severity = "critical" if quality.auc >= NUMERIC_AUC_HIGH else "high"
    return (Finding(severity, "jpeg_quality", text, action), quality.auc)


def _megapixels(pixels: NumericResult | None, sides: Sequence[Side], alpha: float) -> tuple[Finding, float] | None:
    """The sides' resolutions differ though no one size dominates either side."""
    from labeling.audit import Finding

    if pixels is None or math.isnan(pixels.auc) or pixels.auc < NUMERIC_AUC_MEDIUM:
        return None
    if not _significant(pixels.q_value, alpha):
        return None
    first, second = pixels.sides
    larger = "larger" if second.median > first.median else "smaller"
    text = (
        f"{sides[1].name} images are {larger} than {sides[0].name} (median {second.median:.2f} MP vs "
        f"{first.median:.2f} MP; AUC {pixels.auc:.2f} alone)"
    )
    severity = "high" if pixels.auc >= NUMERIC_AUC_HIGH else "medium"
    return (Finding(severity, "megapixels", text, _RESIZE), pixels.auc)


def _metadata(cats: dict[str, CategoricalResult], sides: Sequence[Side], alpha: float) -> list[tuple[Finding, float]]:
    from labeling.audit import Finding

    out: list[tuple[Finding, float]] = []
    # EXIF: one finding led by the EXIF fact whose presence differs most, the others in brackets.
    exif = [(key, _presence(cats[key])) for key in _EXIF_FAMILY if key in cats and _metadata_differs(cats[key], alpha)]
    if exif:
        lead_key, (a, b) = max(exif, key=lambda item: abs(item[1][1] - item[1][0]))
        lead = cats[lead_key]
        more = [f"{cats[k].title.lower()} {_pct(p[1])} vs {_pct(p[0])}" for k, p in exif if k != lead_key]
        text = f"{lead.title} in {_pct(a)} of {sides[0].name}, {_pct(b)} of {sides[1].name}"
        text += f" (also {'; '.join(more)})" if more else ""
        out.append((Finding(_metadata_severity(a, b), lead_key, text, _STRIP), abs(b - a)))
    for key, result in cats.items():
        if not key.startswith("text_key:") or not _metadata_differs(result, alpha):
            continue
        name = key.removeprefix("text_key:")
        counts = _presence_counts(result)
        what = KNOWN_TEXT_KEYS.get(name.lower(), "a text chunk")
        s = 1 if counts[1] / max(1, sides[1].images) >= counts[0] / max(1, sides[0].images) else 0
        text = (
            f"{counts[s]:,} {sides[s].name} files carry {what} in a text chunk ({name!r}); "
            f"{sides[1 - s].name}: {counts[1 - s]:,}"
        )
        a, b = _presence(result)
        out.append((Finding(_metadata_severity(a, b), key, text, _STRIP), abs(b - a)))
    for key, label in (("generator", "name their generator in text metadata"), ("c2pa", "carry a C2PA manifest")):
        tag = cats.get(key)
        if tag is None or not _metadata_differs(tag, alpha):
            continue
        a, b = _presence(tag)
        counts = _presence_counts(tag)
        s = 1 if b >= a else 0
        names = _present_values(cats.get("c2pa_generator" if key == "c2pa" else key), s)
        named = f" ({', '.join(names)})" if names else ""
        text = (
            f"{_pct((a, b)[s])} of {sides[s].name} files ({counts[s]:,}) {label}{named}; "
            f"{sides[1 - s].name}: {_pct((a, b)[1 - s])}"
        )
        out.append((Finding(_metadata_severity(a, b), key, text, _STRIP), abs(b - a)))
    for key, action in (
        ("icc", "Convert both sides to sRGB and drop the ICC profile before training."),
        ("xmp", _STRIP),
    ):
        present = cats.get(key)
        if present is not None and _metadata_differs(present, alpha):
            a, b = _presence(present)
            text = f"{present.title} in {_pct(a)} of {sides[0].name}, {_pct(b)} of {sides[1].name}"
            out.append((Finding(_metadata_severity(a, b), key, text, action), abs(b - a)))
    return out


def _generic_categorical(result: CategoricalResult, sides: Sequence[Side], alpha: float) -> list[tuple[Finding, float]]:
    from labeling.audit import Finding

    if not _significant(result.q_value, alpha) or math.isnan(result.gap) or abs(result.gap) < GAP_MEDIUM:
        return []
    a, b = _side_share(result, result.top_value, 0), _side_share(result, result.top_value, 1)
    text = f"{result.title}: {result.top_value} in {_pct(b)} of {sides[1].name} vs {_pct(a)} of {sides[0].name}"
    actions = {
        "encoding": "Convert both sides to the same colour mode, bit depth and encoding before training.",
        "size": _RESIZE,
        "metadata": _STRIP,
        "pixels": _PIXELS,
    }
    severity = _gap_severity(abs(result.gap)) if result.group in ("encoding", "size") else _metadata_severity(a, b)
    return [(Finding(severity, result.fact, text, actions.get(result.group, _REENCODE)), abs(result.gap))]


def _numeric(result: NumericResult, sides: Sequence[Side], alpha: float) -> list[tuple[Finding, float]]:
    from labeling.audit import Finding

    if math.isnan(result.auc) or result.auc < NUMERIC_AUC_MEDIUM or not _significant(result.q_value, alpha):
        return []
    first, second = result.sides
    text = (
        f"{result.title} is {result.direction} (median {_num(second.median)} vs {_num(first.median)} in "
        f"{sides[0].name}; AUC {result.auc:.2f} alone)"
    )
    action = {"encoding": _REENCODE, "size": _RESIZE, "pixels": _PIXELS}.get(result.group, _STRIP)
    if result.group == "pixels":
        severity = "medium" if result.auc >= NUMERIC_AUC_HIGH else "low"
    else:
        severity = "high" if result.auc >= NUMERIC_AUC_HIGH else "medium"
    return [(Finding(severity, result.fact, text, action), result.auc)]


# ------------------------------------------------------------------------------------------------ helpers


def _significant(q: float, alpha: float) -> bool:
    return not math.isnan(q) and q < alpha


def _gap_severity(gap: float) -> str:
    return "critical" if gap >= GAP_CRITICAL else "high" if gap >= GAP_HIGH else "medium"


def _metadata_severity(a: float, b: float) -> str:
    return "high" if abs(b - a) >= METADATA_GAP else "medium"


def _metadata_differs(result: CategoricalResult, alpha: float) -> bool:
    """A metadata fact's presence differs: significantly, and by METADATA_ONE_SIDED on a side the other lacks
    or by GAP_MEDIUM."""
    if not _significant(result.q_value, alpha) or len(result.values) < 2:
        return False
    a, b = _presence(result)
    one_sided = min(a, b) == 0 and max(a, b) >= METADATA_ONE_SIDED
    return one_sided or abs(b - a) >= GAP_MEDIUM


def _presence(result: CategoricalResult) -> tuple[float, float]:
    """Share of each side's images where the fact is present (a value other than none / no / unknown)."""
    shares = [0.0, 0.0]
    for value in result.values:
        if value.value not in _ABSENT:
            for s in (0, 1):
                share = value.sides[s].share
                shares[s] += 0.0 if math.isnan(share) else share
    return (shares[0], shares[1])


def _presence_counts(result: CategoricalResult) -> tuple[int, int]:
    counts = [0, 0]
    for value in result.values:
        if value.value not in _ABSENT:
            counts[0] += value.sides[0].count
            counts[1] += value.sides[1].count
    return (counts[0], counts[1])


def _present_values(result: CategoricalResult | None, side: int, limit: int = 3) -> list[str]:
    if result is None:
        return []
    present = [v for v in result.values if v.value not in _ABSENT and v.sides[side].count > 0]
    present.sort(key=lambda v: -v.sides[side].count)
    return [v.value for v in present[:limit]]


def _dominant(result: CategoricalResult, side: int) -> tuple[str, float]:
    best = max(result.values, key=lambda v: (v.sides[side].count, -result.values.index(v)))
    return best.value, _side_share(result, best.value, side)


def _side_share(result: CategoricalResult, value: str, side: int) -> float:
    for v in result.values:
        if v.value == value:
            share = v.sides[side].share
            return 0.0 if math.isnan(share) else share
    return 0.0


def _describe(share: float, subject: str, value: str) -> str:
    """ "all GEN files are PNG" or "87% of GEN files are PNG"."""
    return f"all {subject} are {value}" if share >= 1.0 else f"{_pct(share)} of {subject} are {value}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _pct(share: float) -> str:
    if math.isnan(share):
        return "n/a"
    value = 100 * share
    return f"{value:.0f}%" if value >= 10 or value == 0 else f"{value:.1f}%"


def _num(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"
