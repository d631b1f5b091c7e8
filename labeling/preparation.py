"""Reading and preparing one image for the model: the same step for every executor (threads or Batch Mode)."""

from __future__ import annotations

from labeling import images
from labeling.errors import AnnotatorError, ImageError, SourceError
from labeling.planning import WorkItem
from labeling.settings import Settings
from labeling.sources import ImageSource
from labeling.thumbnails import THUMB_SIZE, write_thumbnail

Failure = tuple[str, str, str]  # stage, kind, message: what the recorder stores for an image that went no further
NO_SOURCE: Failure = (
    "read",
    "no_source",
    "The dataset has no image source for this name: import it again with a folder or an S3 prefix.",
)


def prepare_item(item: WorkItem, source: ImageSource | None, settings: Settings) -> images.PreparedImage | Failure:
    """The image as the model should see it (its gallery thumbnail cached on the way), or why not.

    Raises AnnotatorError when the source itself is unusable (S3 credentials, permissions, bucket): a person
    must act, and every other image would fail the same way.
    """
    if source is None or not item.location:
        return NO_SOURCE
    try:
        data = source.read(item.location)
    except SourceError as exc:
        if getattr(exc, "fatal", False):
            raise AnnotatorError(str(exc)) from exc
        return ("read", "transient" if getattr(exc, "transient", False) else "unreadable", str(exc))
    try:
        prepared = images.prepare(data, max_size=settings.image_max_size, thumb_size=THUMB_SIZE)
    except ImageError as exc:
        return ("prepare", exc.kind, str(exc))
    write_thumbnail(settings.cache_dir, item.image_id, prepared.thumbnail)
    return prepared
