"""Where image bytes come from. Every source lists relative keys and reads bytes by key.

The local folder lives here; S3 sources implement the same protocol. A key read from a CSV or a bucket is
always resolved inside the source's root: nothing outside it is ever read or written.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from labeling.errors import SourceError
from labeling.matching import is_image_path
from labeling.names import rejection_reason

MAX_READ_BYTES = 512 * 2**20  # no image worth sending is larger; a bigger file is refused, not read into memory

if TYPE_CHECKING:
    pass


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
        self.refused: dict[str, str] = {}  # key -> why, for entries named like images that are not files

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
        """Regular files (and links to them); anything else named like an image lands in `refused`."""
        self.check()
        self.refused = {}
        yield from self._walk(str(self.root), "")

    def _walk(self, folder: str, relative: str) -> Iterator[str]:
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as exc:
            raise SourceError(f"Cannot list {folder} ({exc.strerror}): check its permissions.") from None
        for entry in entries:
            if entry.name.startswith("."):
                continue
            key = f"{relative}/{entry.name}" if relative else entry.name
            try:
                if entry.is_dir(follow_symlinks=False):
                    yield from self._walk(entry.path, key)
                elif entry.is_file():  # d_type from the listing: no extra system call for a plain file
                    yield key
                elif is_image_path(key):
                    self.refused[key] = special_file_reason(entry.path)
            except OSError:  # a link to nothing, or a file gone since the listing
                continue

    def read(self, key: str) -> bytes:
        path = safe_join(self.root, key)
        try:
            # Only regular files are opened: a named pipe called x.jpg would block the read for ever.
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                raise SourceError(f"{path} {special_file_reason(path)}: only regular image files are read.")
            if info.st_size > MAX_READ_BYTES:
                raise SourceError(
                    f"{path} is {info.st_size / 2**20:,.0f} MiB, over the limit of "
                    f"{MAX_READ_BYTES / 2**20:,.0f} MiB for one image: downscale it."
                )
            return path.read_bytes()
        except FileNotFoundError:
            raise SourceError(f"{path} is gone from the folder: re-import the dataset to refresh it.") from None
        except OSError as exc:
            raise SourceError(f"Cannot read {path} ({exc.strerror}).") from None


def special_file_reason(path: str | os.PathLike[str]) -> str:
    """Why a path that is not a regular file is refused, in words ("is a named pipe (FIFO)")."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "cannot be read (a broken link?)"
    kinds = (
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISDIR, "a folder"),
    )
    return "is " + next((what for test, what in kinds if test(mode)), "not a regular file")
