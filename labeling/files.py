"""Writing files atomically: a temp file in the same folder, then a rename, so no reader sees half a file.

The one writer for every output (CSVs, thumbnails, previews, mirrored images, category lists). The file gets
the process's normal permissions (0644 under umask 022), not a temp file's 0600: colleagues on a shared server
read what a run wrote.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

TEMP_SUFFIX = ".part"


def is_temp_file(name: str) -> bool:
    """A temp file `write_atomically` leaves behind only when the process was killed mid-write."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` (folders created) through a temp file and a rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}"
    try:
        with open(temp, "wb") as handle:  # open() honours the umask, unlike mkstemp's 0600
            handle.write(data)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
