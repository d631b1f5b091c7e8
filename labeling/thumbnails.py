"""Thumbnails, previews and originals for the review pages, with a clear placeholder instead of an exception.

Thumbnails are cached at `<cache_dir>/thumbs/<image_id>.jpg` (the captioning runner writes the same files as it
goes); a missing one is made from the dataset's source and cached. The focus view's large preview is cached at
`<cache_dir>/previews/<image_id>.jpg`. An image that is missing, gone from its folder or bucket, or undecodable
comes back as a placeholder with the reason, so a page never fails on one bad image.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from labeling.dataset_sources import source_for_dataset
from labeling.errors import LabelingError
from labeling.files import write_atomically
from labeling.images import check_decodes, make_thumbnail, read_facts
from labeling.settings import Settings
from labeling.sources import ImageSource

log = logging.getLogger(__name__)

THUMB_SIZE = 320
PREVIEW_SIZE = 1280
_PLACEHOLDER_MAX = 480  # a placeholder need not be as large as the preview it stands for
_ORIGINAL_MAX = 8192  # longest side of the JPEG made for a file a browser cannot show as it is
_BROWSER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}

_STATUS_REASONS = {
    "missing": "not found in the dataset's folder or bucket when it was imported",
    "ambiguous": "several files match this name, so none was picked",
    "rejected": "the listed name was refused as unsafe",
    "unlinked": "the dataset has no image folder or bucket",
}


@dataclass(frozen=True)
class Picture:
    """Image bytes ready for `st.image`, or a placeholder (`placeholder=True`) with the reason in `reason`."""

    data: bytes
    mime_type: str
    placeholder: bool = False
    reason: str = ""


@lru_cache(maxsize=64)
def placeholder_bytes(size: int = THUMB_SIZE, reason: str = "") -> bytes:
    """A grey square saying the image is unavailable, and why (PNG); pictures served by URL carry no other text."""
    img = Image.new("RGB", (size, size), (228, 228, 228))
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, size - 1, size - 1), outline=(170, 170, 170), width=2)
    draw.line((0, 0, size - 1, size - 1), fill=(200, 200, 200), width=2)
    draw.line((0, size - 1, size - 1, 0), fill=(200, 200, 200), width=2)
    font = ImageFont.load_default(size=max(10, size // 14))
    small = ImageFont.load_default(size=max(9, size // 22))
    lines = [("image unavailable", font)] + [(line, small) for line in _wrapped(reason, draw, small, size - 32)]
    heights = [draw.textbbox((0, 0), text, font=face)[3] + 6 for text, face in lines]
    top = (size - sum(heights)) // 2
    widest = max(draw.textbbox((0, 0), text, font=face)[2] for text, face in lines)
    draw.rectangle(
        ((size - widest) // 2 - 8, top - 8, (size + widest) // 2 + 8, top + sum(heights) + 4), fill=(228,) * 3
    )
    for (text, face), height in zip(lines, heights, strict=True):
        box = draw.textbbox((0, 0), text, font=face)
        draw.text(((size - (box[2] - box[0])) // 2 - box[0], top), text, fill=(90, 90, 90), font=face)
        top += height
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def _wrapped(text: str, draw: ImageDraw.ImageDraw, font: Any, width: int, most: int = 4) -> list[str]:
    """The reason in lines that fit `width`, at most `most` of them (the last one cut with an ellipsis)."""
    lines: list[str] = []
    for word in " ".join(text.split()).split(" ") if text.strip() else []:
        candidate = f"{lines[-1]} {word}" if lines else word
        if lines and draw.textlength(candidate, font=font) <= width:
            lines[-1] = candidate
        else:
            lines.append(word)
    if len(lines) > most:
        lines = [*lines[: most - 1], lines[most - 1] + " …"]
    return lines


def placeholder(reason: str, size: int = THUMB_SIZE) -> Picture:
    return Picture(placeholder_bytes(size, reason[:300]), "image/png", placeholder=True, reason=reason)


def thumbnail_path(cache_dir: str | os.PathLike[str], image_id: int) -> Path:
    """Where the thumbnail of an image is cached (shared with the captioning runner)."""
    return Path(cache_dir) / "thumbs" / f"{int(image_id)}.jpg"


def write_thumbnail(cache_dir: str | os.PathLike[str], image_id: int, data: bytes) -> None:
    """Cache the thumbnail the runner made while preparing the image; a failure is logged, never raised."""
    target = thumbnail_path(cache_dir, image_id)
    try:
        write_atomically(target, data)  # the gallery never shows half a file
    except OSError as exc:
        log.warning("could not write the thumbnail %s: %s", target, exc)


class Pictures:
    """Reads thumbnails, previews and originals of stored images. One per process: it keeps each dataset's
    source (an S3 client is costly to make). Safe to share between threads."""

    def __init__(self, store: Any, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._sources: dict[tuple[str, str], ImageSource | None] = {}
        self._lock = threading.Lock()

    @property
    def store(self) -> Any:
        return self._store

    def source(self, dataset: str) -> ImageSource | None:
        """The source of a dataset by name (None when it has none); SourceError/NotFoundError if unusable."""
        record = self._store.dataset(dataset)
        key = (dataset, f"{record.source_kind}:{record.source_uri}:{record.source_options}")
        with self._lock:
            if key not in self._sources:
                self._sources[key] = source_for_dataset(record, self._settings)
            return self._sources[key]

    def _resolve(self, dataset: str) -> ImageSource | Picture:
        """The dataset's source, or a placeholder saying why there is none."""
        try:
            source = self.source(dataset)
        except LabelingError as exc:
            return placeholder(str(exc))
        except Exception as exc:  # a broken source must not break the page; the log keeps the detail
            log.warning("Opening the source of %s failed", dataset, exc_info=True)
            return placeholder(f"the dataset's images cannot be reached ({type(exc).__name__})")
        return placeholder(_STATUS_REASONS["unlinked"]) if source is None else source

    def _read(self, image: Mapping[Any, Any], source: ImageSource | Picture | None = None) -> bytes | Picture:
        """The original bytes, or a placeholder saying why there are none. `source`: already resolved."""
        status = str(image.get("status") or "")
        location = image.get("location")
        if status != "found" or not location or not isinstance(location, str):
            return placeholder(_STATUS_REASONS.get(status, f"no file for this image ({status or 'unknown'})"))
        if source is None:
            source = self._resolve(str(image["dataset"]))
        if isinstance(source, Picture):
            return source
        try:
            return source.read(location)
        except LabelingError as exc:
            return placeholder(str(exc))
        except Exception as exc:  # a broken source must not break the page; the log keeps the detail
            log.warning("Reading %s of %s failed", location, image.get("dataset"), exc_info=True)
            return placeholder(f"cannot be read ({type(exc).__name__})")

    @staticmethod
    def _cached(path: Path) -> Picture | None:
        try:
            return Picture(path.read_bytes(), "image/jpeg")
        except OSError:  # absent (or unreadable: make it again)
            return None

    def _shrunk(
        self, image: Mapping[Any, Any], path: Path, size: int, source: ImageSource | Picture | None = None
    ) -> Picture:
        cached = self._cached(path)
        if cached is not None:
            return cached
        data = self._read(image, source)
        if isinstance(data, Picture):
            return placeholder(data.reason, min(size, _PLACEHOLDER_MAX))
        try:
            small, mime = make_thumbnail(data, size=size)
        except LabelingError as exc:
            return placeholder(f"cannot be decoded: {exc}", min(size, _PLACEHOLDER_MAX))
        try:
            write_atomically(path, small)
        except OSError:
            log.warning("Cannot cache %s", path, exc_info=True)
        return Picture(small, mime)

    def thumbnail(self, image: Mapping[Any, Any], size: int = THUMB_SIZE) -> Picture:
        """The image's cached thumbnail, made and cached if absent. `image` needs image_id, dataset, status,
        location (a gallery row)."""
        return self._shrunk(image, thumbnail_path(self._settings.cache_dir, int(image["image_id"])), size)

    def thumbnails(self, images: Sequence[Mapping[Any, Any]], workers: int = 4) -> list[Picture]:
        """Thumbnails of a gallery page in order. Cached ones are read as they are; the others are made on a few
        threads (decoding releases the GIL) from sources resolved here once per dataset."""
        paths = [thumbnail_path(self._settings.cache_dir, int(image["image_id"])) for image in images]
        found: list[Picture | None] = [self._cached(path) for path in paths]
        todo = [i for i, picture in enumerate(found) if picture is None]
        if todo:
            sources = {
                str(images[i]["dataset"]): self._resolve(str(images[i]["dataset"]))
                for i in todo
                if images[i].get("status") == "found"
            }

            def make(i: int) -> Picture:
                return self._shrunk(images[i], paths[i], THUMB_SIZE, sources.get(str(images[i]["dataset"])))

            with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo))), thread_name_prefix="thumbs") as pool:
                for i, picture in zip(todo, pool.map(make, todo), strict=True):
                    found[i] = picture
        return [picture for picture in found if picture is not None]

    def preview(self, image: Mapping[Any, Any], size: int = PREVIEW_SIZE) -> Picture:
        """A large view for the focus page (longest side `size`), cached beside the thumbnails."""
        path = Path(self._settings.cache_dir) / "previews" / f"{int(image['image_id'])}_{size}.jpg"
        return self._shrunk(image, path, size)

    def original(self, image: Mapping[Any, Any]) -> Picture:
        """The original file's bytes (full resolution, shown only on request), or a placeholder.

        A file a browser cannot show (TIFF, HEIF) or would show sideways (an EXIF rotation) comes as a
        full-size JPEG of it; a file that does not decode to the end is a placeholder saying why.
        """
        data = self._read(image)
        if isinstance(data, Picture):
            return placeholder(data.reason, _PLACEHOLDER_MAX)
        try:
            facts = read_facts(data)
            mime = _BROWSER_FORMATS.get(facts.format)
            if mime is not None and facts.orientation == 1:
                check_decodes(data)
                return Picture(data, mime)
            full, mime = make_thumbnail(data, size=min(max(facts.width, facts.height), _ORIGINAL_MAX))
        except LabelingError as exc:
            return placeholder(f"cannot be decoded: {exc}", _PLACEHOLDER_MAX)
        return Picture(full, mime)
