"""Errors a user can act on: every message says what went wrong and what to do next."""

from __future__ import annotations

from collections.abc import Sequence

from labeling.redact import redact


class LabelingError(Exception):
    """Base of every error the core raises on purpose; its message is shown to the user as is, except for
    credentials inside URLs (a server message may quote the URL it was called with)."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(arg) if isinstance(arg, str) else arg for arg in args))


class ConfigError(LabelingError):
    """A setting, flag or config file is invalid."""


class InputError(LabelingError):
    """A file the user gave us (CSV list, folder, seed CSV) cannot be used as it is."""


class StoreError(LabelingError):
    """The DuckDB file cannot be opened or written."""


class StoreLockedError(StoreError):
    """Another process holds the DuckDB file."""


class NotFoundError(LabelingError):
    """A dataset, image, run or category the user named does not exist."""


class ConflictError(LabelingError):
    """A save was based on a stale version: somebody else changed the same thing first.

    `changes` lists what they changed as (field, value when the reviewer opened it, value now), for a table;
    empty when that is not known."""

    def __init__(self, *args: object, changes: Sequence[tuple[str, str, str]] = ()) -> None:
        super().__init__(*args)
        self.changes: list[tuple[str, str, str]] = [(f, redact(then), redact(now)) for f, then, now in changes]


class WriteConflict(ConflictError):
    """Two writers changed the same rows at once; the later one's transaction was rolled back: try it again."""


class ImageError(LabelingError):
    """One image cannot be decoded or prepared; a per-image failure, never fatal for a run."""

    def __init__(self, message: str, kind: str = "corrupt") -> None:
        super().__init__(message)
        # A short machine-readable reason (empty, not_an_image, corrupt, too_large, ...) used to group failures.
        self.kind = kind


class SourceError(LabelingError):
    """Image bytes cannot be listed or read from a folder or an S3 bucket."""


class AnnotatorError(LabelingError):
    """The model service failed in a way that concerns the whole run (bad key, unknown model, bad request)."""
