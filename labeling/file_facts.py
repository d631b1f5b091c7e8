"""All technical facts of one image file's bytes, for the technical-bias audit: the one entry point `file_facts`.

One header read, at most one small pixel decode (labeling.images.small_decode) and one hash of the bytes per
file. The parts live beside it: labeling.jpeg_quality (quantization tables, subsampling), labeling.metadata_facts
(EXIF, ICC, XMP, generator), labeling.provenance (C2PA), labeling.pixel_stats (statistics and perceptual hashes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from PIL import ImageFile

from labeling.errors import ImageError
from labeling.images import (
    exif_of,
    header_facts,
    open_for_facts,
    oriented_size,
    small_decode,
    text_metadata,
)
from labeling.jpeg_quality import estimate_quality, subsampling
from labeling.metadata_facts import metadata_facts
from labeling.pixel_stats import STATS_SIZE, PixelStats, pixel_stats
from labeling.provenance import has_c2pa, read_credentials
from labeling.store.facts import FactRow

DEFAULT_MAX_PIXELS = 64_000_000  # as labeling.images.prepare: a bigger image keeps its header facts, no pixel ones
# Bits per channel by Pillow mode; every mode not listed is 8 bits a channel.
_BIT_DEPTH = {"1": 1, "I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16, "I": 32, "F": 32}


def file_facts(image_id: int, facts_version: str, data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> FactRow:
    """Every `image_facts` column of one file's bytes.

    A file that is no readable image gets a row with its size, hash and `error`; one whose pixels cannot be
    decoded (truncated, too large) keeps its header facts and says why in `details["pixels"]`. A C2PA
    manifest that cannot be read keeps `c2pa` True and says why in `details["c2pa_error"]`.
    """
    digest = hashlib.sha256(data).hexdigest()
    try:
        return _facts(image_id, facts_version, data, digest, max_pixels)
    except ImageError as error:
        return FactRow(image_id, facts_version, size_bytes=len(data), sha256=digest, error=str(error))


def _facts(image_id: int, facts_version: str, data: bytes, digest: str, max_pixels: int) -> FactRow:
    details: dict[str, Any] = {}
    with open_for_facts(data) as img:
        stored_size = img.size  # before decoding: draft() shrinks it
        header = header_facts(img, len(data), exif_of(img, header_only=True))
        jpeg = _jpeg_facts(img)
        try:
            small = small_decode(img, STATS_SIZE, max_pixels=max_pixels)
        except ImageError as error:
            small = None
            details["pixels"] = str(error)
        # After decoding, what a PNG keeps after its pixel data (text, eXIf) is read too.
        exif = small.exif if small is not None else exif_of(img, header_only=True)
        orientation = small.orientation if small is not None else header.orientation
        text = text_metadata(img, exif) if small is not None else dict(header.text)
        meta = metadata_facts(img.info, exif)
    stats: PixelStats | None = pixel_stats(small.image) if small is not None else None
    c2pa = has_c2pa(data)
    c2pa_generator = None
    if c2pa:
        credentials = read_credentials(data, header.format)
        c2pa_generator = credentials.generator
        details.update(credentials.details)
    width, height = oriented_size(stored_size, orientation)
    return FactRow(
        image_id,
        facts_version,
        format=header.format,
        size_bytes=len(data),
        width=width,
        height=height,
        aspect=width / height if height else None,
        bytes_per_pixel=len(data) / (width * height) if width * height else None,
        mode=header.mode,
        bit_depth=_BIT_DEPTH.get(header.mode, 8),
        frames=header.frames,
        orientation=orientation,
        jpeg_quality=jpeg.quality,
        jpeg_table=jpeg.table,
        jpeg_subsampling=jpeg.subsampling,
        jpeg_progressive=jpeg.progressive,
        jpeg_tables=jpeg.tables,
        exif=meta.exif,
        exif_make=meta.exif_make,
        exif_model=meta.exif_model,
        exif_software=meta.exif_software,
        exif_datetime_original=meta.exif_datetime_original,
        exif_gps=meta.exif_gps,
        icc=meta.icc,
        icc_description=meta.icc_description,
        xmp=meta.xmp,
        text_keys=sorted(text),
        generator=meta.generator,
        c2pa=c2pa,
        c2pa_generator=c2pa_generator,
        luma_mean=stats.luma_mean if stats else None,
        luma_std=stats.luma_std if stats else None,
        clip_high=stats.clip_high if stats else None,
        clip_low=stats.clip_low if stats else None,
        saturation_mean=stats.saturation_mean if stats else None,
        sharpness=stats.sharpness if stats else None,
        high_freq=stats.high_freq if stats else None,
        sha256=digest,
        phash=stats.phash if stats else None,
        dhash=stats.dhash if stats else None,
        details=details,
    )


@dataclass(frozen=True)
class _JpegFacts:
    quality: int | None = None
    table: str | None = None  # standard | custom
    subsampling: str | None = None
    progressive: bool | None = None
    tables: int | None = None


def _jpeg_facts(img: ImageFile.ImageFile) -> _JpegFacts:
    """The JPEG columns of a JPEG (MPO: its first image); all None for other formats."""
    if img.format not in ("JPEG", "MPO"):
        return _JpegFacts()
    tables = getattr(img, "quantization", None) or {}
    quality = estimate_quality(tables[0]) if 0 in tables else None
    return _JpegFacts(
        quality=quality.quality if quality else None,
        table=quality.table if quality else None,
        subsampling=subsampling(img),
        progressive=bool(img.info.get("progressive") or img.info.get("progression")),
        tables=len(tables),
    )
