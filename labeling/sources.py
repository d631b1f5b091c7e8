"""Where image bytes come from. Every source lists relative keys and reads bytes by key.

The local folder lives here; S3 sources implement the same protocol. A key read from a CSV or a bucket is
always resolved inside the source's root: nothing outside it is ever read or written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from labeling.errors import SourceError
from labeling.names import rejection_reason

if TYPE_CHECKING:
    from labeling.settings import Settings


class ImageSource(Protocol):
    """A place holding images under relative, `/`-separated keys."""

    @property
    def uri(self) -> str: ...

    def list_keys(self) -> Iterator[str]:
        """Every file key under the root, recursively."""
        ...

    def read(self, key: str) -> bytes:
        """The bytes stored under `key`; SourceError when they cannot be read."""
        ...


def safe_join(root: Path, key: str) -> Path:
    """`root / key`, refusing any key that would resolve outside `root`."""
    reason = rejection_reason(key)
    if reason:
        raise SourceError(f"Refused the name {key!r}: it {reason}, so it could point outside {root}.")
    target = (root / key).resolve()
    if not target.is_relative_to(root.resolve()):
        raise SourceError(f"Refused the name {key!r}: it resolves outside {root} (through a link?).")
    return target


class LocalFolderSource:
    """Images in a local folder and its subfolders. Hidden files and folders are skipped."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()

    @property
    def uri(self) -> str:
        return str(self.root.resolve())

    def check(self) -> None:
        """Raise a SourceError a user can act on if the folder cannot be listed."""
        if not self.root.exists():
            raise SourceError(f"The image folder {self.root} does not exist: check the path.")
        if not self.root.is_dir():
            raise SourceError(f"{self.root} is a file, not a folder: give the folder that holds the images.")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise SourceError(f"The image folder {self.root} cannot be read: check its permissions.")

    def list_keys(self) -> Iterator[str]:
        self.check()
        root = str(self.root)
        prefix_length = len(root.rstrip(os.sep)) + 1
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
            relative = folder[prefix_length:].replace(os.sep, "/")
            for filename in sorted(files):
                if not filename.startswith("."):
                    yield f"{relative}/{filename}" if relative else filename

    def read(self, key: str) -> bytes:
        path = safe_join(self.root, key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise SourceError(f"{path} is gone from the folder: re-import the dataset to refresh it.") from None
        except OSError as exc:
            raise SourceError(f"Cannot read {path} ({exc.strerror}).") from None


def source_for_dataset(dataset: Mapping[str, Any], settings: Settings) -> ImageSource | None:
    """The source a stored dataset reads from: its folder, its S3 prefix (read through the local cache), or None.

    `dataset` is a row of `Store.dataset(name)`: source_kind 'local' | 's3' | 'none', source_uri, and
    source_options {profile, region, endpoint_url} (settings fill what the dataset left empty).
    """
    kind = dataset.get("source_kind")
    uri = str(dataset.get("source_uri") or "")
    if kind == "local" and uri:
        return LocalFolderSource(uri)
    if kind == "s3" and uri:
        from labeling.s3 import S3Source, configured_endpoint  # boto3 loads only for S3 datasets

        options = dict(dataset.get("source_options") or {})
        return S3Source.from_uri(
            uri, profile=options.get("profile") or settings.aws_profile or None,
            region=options.get("region") or settings.aws_region or None,
            endpoint_url=configured_endpoint(options.get("endpoint_url"), settings.s3_endpoint_url),
            cache_dir=settings.cache_dir, max_pool_connections=max(10, settings.num_workers))
    return None
