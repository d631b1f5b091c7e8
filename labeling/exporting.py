"""Exporting a dataset's labels: the seed's categorized CSV (`image_name,description,categories`) or Parquet.

The CSV is what the seed's `categorize_descriptions.py` wrote, so the seed's plot scripts, spreadsheets and our own
import read it: categories joined by ", ", the description as its JSON text (or as plain text when it was
imported from a plain-text description), minimal quoting, UTF-8, "\\n" line ends. Cells a spreadsheet would run as
formulas (starting with = + - @, tab or CR) get a leading single quote, which `labeling.datasets.import_dataset`
takes off again (see `labeling.spreadsheet`), so an export imports back losslessly.

Every export names its label source: in the default file name (`REAL_effective_categorized.csv`), in the
`label_source` column (always in Parquet, with --extra-columns in CSV), in Parquet's key-value metadata, and in
`ExportResult.summary()`. The writing happens in DuckDB (COPY), never in a Python row loop.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from labeling.errors import InputError
from labeling.store import Store
from labeling.store.analytics import EXPORT_COLUMNS, EXPORT_EXTRA_COLUMNS
from labeling.vocabulary import EXPORT_FORMATS, LABEL_SOURCES, SOURCE_TEXT, LabelSource, checked_source
from labeling.wording import count

__all__ = [
    "EXPORT_COLUMNS",
    "EXPORT_EXTRA_COLUMNS",
    "EXPORT_FORMATS",
    "LABEL_SOURCES",
    "ExportResult",
    "default_export_name",
    "export_bytes",
    "export_dataset",
    "export_format",
    "export_preview",
    "file_slug",
    "mime_type",
]

_SUFFIXES = {"csv": ".csv", "parquet": ".parquet"}
_MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote."""

    dataset: str
    source: LabelSource
    fmt: str
    path: Path
    rows: int
    extra_columns: bool

    def summary(self) -> str:
        """One line for the CLI and the page: rows, dataset, label source, format and file."""
        return (
            f"Exported {count(self.rows, 'image')} of {self.dataset} ({SOURCE_TEXT[self.source]}) "
            f"as {self.fmt.upper()} to {self.path}."
        )


def export_format(path: str | Path | None, fmt: str | None = None) -> str:
    """The format to write: `fmt` when given, else from the file suffix (.parquet), else CSV."""
    if fmt is not None:
        fmt = fmt.strip().lower()
        if fmt not in EXPORT_FORMATS:
            raise InputError(f"Unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}.")
        return fmt
    suffix = Path(path).suffix.lower() if path else ""
    return "parquet" if suffix in (".parquet", ".pq") else "csv"


def file_slug(dataset: str) -> str:
    """A dataset name as a safe part of a file name (`=cmd|x` -> `cmd_x`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", dataset).strip("._") or "dataset"


def default_export_name(dataset: str, source: str, fmt: str = "csv") -> str:
    """`REAL_effective_categorized.csv`: the dataset and the label source, safe as a file name."""
    return f"{file_slug(dataset)}_{checked_source(source)}_categorized{_SUFFIXES[export_format(None, fmt)]}"


def mime_type(fmt: str) -> str:
    return _MIME[export_format(None, fmt)]


def export_dataset(
    store: Store,
    dataset: str,
    path: str | Path,
    *,
    source: str = "effective",
    fmt: str | None = None,
    extra_columns: bool = False,
    names: Sequence[str] | None = None,
) -> ExportResult:
    """Write one dataset's labels under `source` to `path` (CSV in the seed's format, or Parquet).

    The format comes from `fmt`, else the suffix. Missing parent folders are created; an existing file is
    replaced. Raises InputError for an unknown source or format, or a path that cannot be written.
    """
    label_source = checked_source(source)
    chosen = export_format(path, fmt)
    target = Path(path).expanduser()
    database = store.path.expanduser().resolve()
    if target.resolve() in {database, database.with_name(database.name + ".wal")}:
        raise InputError(
            f"{target} is the database itself: give the export another file name, such as "
            f"{database.parent / default_export_name(dataset, label_source, chosen)}."
        )
    if target.is_dir():
        raise InputError(
            f"{target} is a folder: give a file name such as "
            f"{target / default_export_name(dataset, label_source, chosen)}."
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"Cannot create the folder {target.parent} ({exc.strerror}): pick another path.") from None
    rows = store.export_labels(
        dataset, target, source=label_source, fmt=chosen, extra_columns=extra_columns, names=names
    )
    return ExportResult(dataset, label_source, chosen, target, rows, extra_columns)


def export_bytes(
    store: Store,
    dataset: str,
    *,
    source: str = "effective",
    fmt: str = "csv",
    extra_columns: bool = False,
    names: Sequence[str] | None = None,
) -> bytes:
    """The export as bytes (for a download button): written by the same COPY to a temporary file."""
    chosen = export_format(None, fmt)
    with tempfile.TemporaryDirectory(prefix="labeling-export-") as folder:
        target = Path(folder) / default_export_name(dataset, source, chosen)
        export_dataset(store, dataset, target, source=source, fmt=chosen, extra_columns=extra_columns, names=names)
        return target.read_bytes()


def export_preview(
    store: Store, dataset: str, *, source: str = "effective", extra_columns: bool = False, limit: int = 20
) -> pd.DataFrame:
    """The first rows of a CSV export, cell for cell as the file will hold them (empty cells as "")."""
    frame = store.export_frame(dataset, source=checked_source(source), extra_columns=extra_columns, limit=limit)
    return frame.astype(object).where(frame.notna(), "")
