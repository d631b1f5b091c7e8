"""Reading a CSV list of image names: headerless or with a header, and deciding which names are safe."""

from __future__ import annotations

import csv
import itertools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from labeling.errors import InputError
from labeling.matching import IMAGE_EXTENSIONS

# Header cells (lower-cased) that name the column holding image names.
NAME_HEADERS = (
    "image_name",
    "imagename",
    "image name",
    "filename",
    "file_name",
    "file name",
    "file",
    "name",
    "key",
    "s3_key",
    "object_key",
    "image",
    "image_path",
    "path",
    "filepath",
    "file_path",
)
_SEPARATORS = ",;\t|"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEP_LINE = re.compile(r"sep=(.)")  # Excel's first line naming the delimiter
_CONTROL_IN_LIST = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")  # names joined by newlines: any other control
_SAMPLE = 2000  # lines that decide the shape of a list
MAX_NAME_LENGTH = 1024  # default of the max_name_length setting


@dataclass
class NameList:
    """The distinct names of a list in their first-seen order, plus what was wrong with the rest."""

    names: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (printable name, reason)
    duplicates: int = 0
    header: str | None = None
    notes: list[str] = field(default_factory=list)  # what the reader decided or repaired, for the report

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


def _shown(name: str, max_length: int) -> str:
    """A rejected name as it is stored and shown: escaped, and cut when it is too long to be a name."""
    shown = printable(name)
    return shown if len(shown) <= max_length else shown[:200] + f"... ({len(name):,} characters)"


def printable(name: str) -> str:
    """A rejected name as it can be stored and shown: control characters escaped."""
    return name.encode("unicode_escape").decode("ascii") if rejection_reason(name) else name


def _decode(data: bytes, source: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{source} is not UTF-8 text: line {line:,} has the byte 0x{data[exc.start]:02X} "
            "(Latin-1 or Windows-1252?): save the list as a UTF-8 CSV and import again."
        ) from None
    return text.replace("\ufeff", "")  # a BOM anywhere (Excel writes one; concatenated files carry several)


def _lines(text: str) -> list[str]:
    """Lines ended by CR, LF or CRLF only: U+2028, U+0085 and friends are characters of a name, not breaks."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _fields(line: str, delimiter: str) -> list[str]:
    """One line's cells; quotes never run on into the next line, so a stray one costs one line, not the file."""
    if '"' not in line:
        return line.split(delimiter)
    return next(csv.reader([line], delimiter=delimiter), [""])


def _delimiter(sample: list[str]) -> str | None:
    """The delimiter that cuts nearly every sampled line into the same number (2+) of cells, else None."""
    if len(sample) < 2:
        return None  # one line cannot tell a table from a name with a comma
    best: tuple[int, str] | None = None
    for delimiter in _SEPARATORS:
        if not any(delimiter in line for line in sample):
            continue
        counts = Counter(len(_fields(line, delimiter)) for line in sample)
        width, lines = counts.most_common(1)[0]
        if width >= 2 and lines >= 0.9 * len(sample) and (best is None or lines > best[0]):
            best = (lines, delimiter)
    return best[1] if best else None


def _looks_like_image(cell: str) -> bool:
    dot = cell.rfind(".")
    return dot > 0 and cell[dot:].lower() in IMAGE_EXTENSIONS


def _name_column(header: list[str]) -> int | None:
    cells = [cell.strip().strip('"').lower() for cell in header]
    for wanted in NAME_HEADERS:
        if wanted in cells:
            return cells.index(wanted)
    return None


def _unquote(cell: str, number: int, notes: list[str]) -> str:
    """A one-column cell without its CSV quotes; a stray quote is reported with its line number."""
    cell = cell.strip()
    if '"' not in cell:
        return cell
    if cell.count('"') % 2:
        notes.append(f"line {number:,} has an unmatched quote: read as {cell.strip(chr(34))!r}")
        return cell.strip('"').strip()
    if len(cell) >= 2 and cell[0] == cell[-1] == '"':
        return cell[1:-1].replace('""', '"').strip()
    return cell


def _cells(text: str, source: str) -> tuple[list[str], str | None, list[str]]:
    """The non-blank cells of the name column, the header if there is one, and notes on what was decided."""
    lines = _lines(text)
    notes: list[str] = []
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    delimiter: str | None = None
    if start < len(lines) and (sep := _SEP_LINE.fullmatch(lines[start].strip())):
        delimiter = sep.group(1)
        notes.append(f"the first line {lines[start].strip()!r} set the delimiter")
        start += 1
    sample = list(itertools.islice((line for line in itertools.islice(lines, start, None) if line.strip()), _SAMPLE))
    delimiter = delimiter or _delimiter(sample)
    if delimiter is None:
        return _one_column(lines, start, '"' in text, notes)
    rows = []
    for number in range(start, len(lines)):
        line = lines[number]
        if not line.strip():
            continue
        if line.count('"') % 2:
            notes.append(f"line {number + 1:,} has an unmatched quote: read on its own")
        rows.append([cell.strip() for cell in _fields(line, delimiter)])
    if not rows:
        return [], None, notes
    column = _name_column(rows[0])
    header: str | None = None
    if column is not None:
        header = rows[0][column].strip()
        rows = rows[1:]
    else:
        column = _image_column(rows[:_SAMPLE])
        column_cells = [row[column] if column < len(row) else "" for row in rows]
        if _unknown_header(column_cells):
            header = column_cells[0]
            notes.append(
                f"first row {delimiter.join(rows[0])!r} taken as a header (it names no image; the rows after it do)"
            )
            rows = rows[1:]
    cells = [row[column] if column < len(row) else "" for row in rows]
    return [cell for cell in cells if cell], header, notes


def _one_column(
    lines: list[str], start: int, quoted: bool, notes: list[str]
) -> tuple[list[str], str | None, list[str]]:
    """One name a line, the common million-line case: plain strips, quote handling only where there are quotes."""
    if quoted:
        stripped = [
            _unquote(lines[i], i + 1, notes) if '"' in lines[i] else lines[i].strip() for i in range(start, len(lines))
        ]
    else:
        stripped = [line.strip() for line in itertools.islice(lines, start, None)]
    cells = [cell for cell in stripped if cell]
    if not cells:
        return [], None, notes
    if _name_column([cells[0]]) is not None:
        return cells[1:], cells[0], notes
    if _unknown_header(cells):
        notes.append(f"first row {cells[0]!r} taken as a header (it names no image; the rows after it do)")
        return cells[1:], cells[0], notes
    return cells, None, notes


def _unknown_header(column: list[str]) -> bool:
    """A first cell that names no image, above a sample of cells that nearly all do."""
    rest = column[1:_SAMPLE]
    return bool(rest) and not _looks_like_image(column[0]) and sum(map(_looks_like_image, rest)) >= 0.8 * len(rest)


def _image_column(rows: list[list[str]]) -> int:
    """Without a known header: the column whose cells most often end like image files."""
    width = max(len(row) for row in rows)
    scores = [sum(1 for row in rows if i < len(row) and _looks_like_image(row[i])) for i in range(width)]
    return scores.index(max(scores))


def _normalized(name: str) -> str:
    """One spelling for one name: NFC (macOS writes NFD) and `/` for folders (Windows lists use `\\`)."""
    if not name.isascii():
        name = unicodedata.normalize("NFC", name)
    return name.replace("\\", "/") if "\\" in name else name


def _may_be_unsafe(name: str) -> bool:
    """A cheap first look; `rejection_reason` decides. Most million-name lists never get past this."""
    return ".." in name or name[:1] in "/\\" or name[1:2] == ":" or _CONTROL.search(name) is not None


def parse_name_list(data: bytes, source: str = "the CSV list", *, max_length: int = MAX_NAME_LENGTH) -> NameList:
    """Parse a list of names: its shape (one column or a table, delimiter, quoting, header) is decided from a
    sample of its lines, not the first one; what was decided or repaired is in `notes`. Names longer than
    `max_length` characters are rejected (a 50 MB "name" froze the Review page)."""
    cells, header, notes = _cells(_decode(data, source), source)
    unique = list(dict.fromkeys(cells))  # first-seen order, each name once
    result = NameList(duplicates=len(cells) - len(unique), header=header, notes=notes)
    rejected: dict[str, str] = {}
    if max(map(len, unique), default=0) > max_length:
        rejected = {
            name: f"is longer than {max_length:,} characters ({len(name):,})"
            for name in unique
            if len(name) > max_length
        }
    plain = "\n".join(unique)  # whole-list checks first: most million-name lists need no per-name work
    suspect = (
        ".." in plain
        or ":" in plain
        or "\n/" in plain
        or "\\" in plain
        or plain[:1] == "/"
        or _CONTROL_IN_LIST.search(plain) is not None
    )
    if suspect and any(_may_be_unsafe(name) for name in unique):
        rejected |= {
            name: reason
            for name in unique
            if name not in rejected and _may_be_unsafe(name) and (reason := rejection_reason(name))
        }
    result.rejected = [(_shown(name, max_length), reason) for name, reason in rejected.items()]
    names = [name for name in unique if name not in rejected] if rejected else unique
    if not plain.isascii() or "\\" in plain:
        normalized = [_normalized(name) for name in names]
        names = list(dict.fromkeys(normalized))  # two spellings of one name are one name
        result.duplicates += len(normalized) - len(names)
    result.names = names
    if not result.names and not result.rejected:
        raise InputError(f"{source} holds no image names: put one name per line (an `image_name` header is optional).")
    return result
