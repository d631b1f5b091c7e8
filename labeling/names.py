"""Reading a CSV list of image names: headerless or with a header, and deciding which names are safe."""

from __future__ import annotations

import contextlib
import csv
import io
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from labeling.errors import InputError

# Header cells (lower-cased) that name the column holding image names.
NAME_HEADERS = ("image_name", "imagename", "image name", "filename", "file_name", "file name", "file",
                "name", "key", "s3_key", "object_key", "image", "image_path", "path", "filepath", "file_path")
_SEPARATORS = ",;\t"


@dataclass
class NameList:
    """The distinct names of a list in their first-seen order, plus what was wrong with the rest."""

    names: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (printable name, reason)
    duplicates: int = 0
    header: str | None = None

    @property
    def listed(self) -> int:
        return len(self.names) + len(self.rejected)


def rejection_reason(name: str) -> str | None:
    """Why `name` must never become a path (absolute, `..`, NUL or control characters), or None if it is safe."""
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        return "contains a NUL or control character"
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return "is an absolute path"
    if ".." in PurePosixPath(normalized).parts:
        return "contains a `..` path component"
    return None


def printable(name: str) -> str:
    """A rejected name as it can be stored and shown: control characters escaped."""
    return name.encode("unicode_escape").decode("ascii") if rejection_reason(name) else name


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")  # utf-8-sig drops a BOM that Excel likes to write
    except UnicodeDecodeError:
        raise InputError(f"{source} is not UTF-8 text: save the list as a UTF-8 CSV and import again.") from None


def _rows(text: str) -> list[list[str]]:
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not any(sep in first for sep in _SEPARATORS):
        return [[line] for line in text.splitlines()]
    dialect: type[csv.Dialect] | csv.Dialect = csv.excel
    with contextlib.suppress(csv.Error):  # the sniffer gives up on one-cell lines; excel's dialect fits those
        dialect = csv.Sniffer().sniff(first, delimiters=_SEPARATORS)
    return list(csv.reader(io.StringIO(text, newline=""), dialect))


def _name_column(header: list[str]) -> int | None:
    cells = [cell.strip().strip('"').lower() for cell in header]
    for wanted in NAME_HEADERS:
        if wanted in cells:
            return cells.index(wanted)
    return None


def parse_name_list(data: bytes, source: str = "the CSV list") -> NameList:
    """Parse a list of names: BOM, CRLF, blank lines, spaces and an optional header are all handled."""
    text = _decode(data, source)
    try:
        rows = _rows(text)
    except csv.Error as exc:
        raise InputError(f"{source} is not a readable CSV ({exc}): keep one image name per line.") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    result = NameList()
    column = 0
    if rows:
        found = _name_column(rows[0])
        if found is not None:
            result.header = rows[0][found].strip()
            column = found
            rows = rows[1:]
    seen: set[str] = set()
    for row in rows:
        name = row[column].strip() if column < len(row) else ""
        if not name:
            continue
        if name in seen:
            result.duplicates += 1
            continue
        seen.add(name)
        reason = rejection_reason(name)
        if reason:
            result.rejected.append((printable(name), reason))
        else:
            result.names.append(name)
    if not result.names and not result.rejected:
        raise InputError(f"{source} holds no image names: put one name per line (an `image_name` header "
                         "is optional).")
    return result

