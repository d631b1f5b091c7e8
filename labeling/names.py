"""Reading a CSV list of image names: headerless or with a header, and deciding which names are safe."""

from __future__ import annotations

import contextlib
import csv
import io
import re
from dataclasses import dataclass, field

from labeling.errors import InputError

# Header cells (lower-cased) that name the column holding image names.
NAME_HEADERS = ("image_name", "imagename", "image name", "filename", "file_name", "file name", "file",
                "name", "key", "s3_key", "object_key", "image", "image_path", "path", "filepath", "file_path")
_SEPARATORS = ",;\t"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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
    if _CONTROL.search(name):
        return "contains a NUL or control character"
    normalized = name.replace("\\", "/")
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return "is an absolute path"
    if ".." in normalized and ".." in normalized.split("/"):  # the substring test keeps the common case cheap
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


def _table(text: str) -> list[list[str]] | None:
    """The rows of a multi-column (or quoted) CSV; None for a plain one-name-a-line list."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not any(sep in first for sep in _SEPARATORS) and not first.lstrip().startswith('"'):
        return None
    dialect: type[csv.Dialect] | csv.Dialect = csv.excel
    with contextlib.suppress(csv.Error):  # the sniffer gives up on one-cell lines; excel's dialect fits those
        dialect = csv.Sniffer().sniff(first, delimiters=_SEPARATORS)
    return [row for row in csv.reader(io.StringIO(text, newline=""), dialect) if any(c.strip() for c in row)]


def _name_column(header: list[str]) -> int | None:
    cells = [cell.strip().strip('"').lower() for cell in header]
    for wanted in NAME_HEADERS:
        if wanted in cells:
            return cells.index(wanted)
    return None


def _cells(text: str, source: str) -> tuple[list[str], str | None]:
    """The stripped, non-blank cells of the name column, and the header if the list has one."""
    try:
        table = _table(text)
    except csv.Error as exc:
        raise InputError(f"{source} is not a readable CSV ({exc}): keep one image name per line.") from None
    if table is None:
        cells = [cell for cell in (line.strip() for line in text.splitlines()) if cell]
        if cells and _name_column([cells[0]]) is not None:
            return cells[1:], cells[0]
        return cells, None
    column, header = 0, None
    if table and (found := _name_column(table[0])) is not None:
        column, header = found, table[0][found].strip()
        table = table[1:]
    cells = [row[column].strip() if column < len(row) else "" for row in table]
    return [cell for cell in cells if cell], header


def _may_be_unsafe(name: str) -> bool:
    """A cheap first look; `rejection_reason` decides. Most million-name lists never get past this."""
    return ".." in name or name[:1] in "/\\" or name[1:2] == ":" or _CONTROL.search(name) is not None


def parse_name_list(data: bytes, source: str = "the CSV list") -> NameList:
    """Parse a list of names: BOM, CRLF, blank lines, spaces and an optional header are all handled."""
    cells, header = _cells(_decode(data, source), source)
    unique = list(dict.fromkeys(cells))  # first-seen order, each name once
    result = NameList(names=unique, duplicates=len(cells) - len(unique), header=header)
    suspects = [name for name in unique if _may_be_unsafe(name)]
    if suspects:
        rejected = {name: reason for name in suspects if (reason := rejection_reason(name))}
        result.rejected = [(printable(name), reason) for name, reason in rejected.items()]
        result.names = [name for name in unique if name not in rejected]
    if not result.names and not result.rejected:
        raise InputError(f"{source} holds no image names: put one name per line (an `image_name` header "
                         "is optional).")
    return result
