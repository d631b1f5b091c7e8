"""Exporting a dataset's labels: the seed's categorized CSV (`image_name,description,categories`) or Parquet.

The CSV is what the seed's `categorize_descriptions.py` wrote, so the seed's plot scripts, spreadsheets and our own
import read it: categories joined by ", ", the description as its JSON text (or as plain text when it was
imported from a plain-text description), minimal quoting, UTF-8, "\\n" line ends. Cells a spreadsheet would run as
formulas (starting with = + - @, tab or CR) get a leading single quote, which `labeling.datasets.import_dataset`
takes off again (see `labeling.spreadsheet`), so an export imports back losslessly.

Every export names its label source: in the default file name (`REAL_effective_categorized.csv`), in the
`label_source` column (always in Parquet, with --extra-columns in CSV), in Parquet's key-value metadata, and in
`ExportResult.summary()`. The writing happens in DuckDB (COPY), never in a Python row loop.

Several datasets export as one file each, into a folder (`export_datasets`) or a zip (`export_zip`), under the
names `export_file_names` gives: safe on any file system and distinct even where case does not count, so no
name can reach outside the folder or overwrite another dataset's file.
"""

from __future__ import annotations

import io
import re
import tempfile
import zipfile
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
    "export_datasets",
    "export_file_names",
    "export_format",
    "export_preview",
    "export_targets",
    "export_zip",
    "file_slug",
    "mime_type",
    "summaries",
    "zip_name",
]

_SUFFIXES = {"csv": ".csv", "parquet": ".parquet"}
_MIME = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet"}
SLUG_LENGTH = 80  # characters of a dataset name kept in a file name: far below any file system's 255
# Names Windows keeps for devices whatever their extension (`nul.x_effective_categorized.csv` cannot be made)
_DEVICES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"{port}{n}" for port in ("COM", "LPT") for n in range(1, 10))})


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


def summaries(results: Sequence[ExportResult]) -> str:
    """One summary a paragraph: what an export of several datasets wrote, file by file."""
    return "\n\n".join(result.summary() for result in results)


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
    """A dataset name as a safe part of a file name (`=cmd|x` -> `cmd_x`, `../x` -> `x`): ASCII letters, digits
    and `._-`, never starting with a dot or dash, at most SLUG_LENGTH characters, never a Windows device name."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset)[:SLUG_LENGTH].strip("._-") or "dataset"
    return "_" + slug if slug.split(".")[0].upper() in _DEVICES else slug


def default_export_name(dataset: str, source: str, fmt: str = "csv") -> str:
    """`REAL_effective_categorized.csv`: the dataset and the label source, safe as a file name."""
    return _file_name(file_slug(dataset), source, fmt)


def _file_name(slug: str, source: str, fmt: str) -> str:
    return f"{slug}_{checked_source(source)}_categorized{_SUFFIXES[export_format(None, fmt)]}"


def mime_type(fmt: str) -> str:
    return _MIME[export_format(None, fmt)]


def zip_name(source: str, fmt: str = "csv") -> str:
    """`datasets_effective_categorized_csv.zip`: the download of several datasets."""
    return f"datasets_{checked_source(source)}_categorized_{export_format(None, fmt)}.zip"


def export_file_names(datasets: Sequence[str], source: str, fmt: str = "csv") -> dict[str, str]:
    """Dataset -> its file in an export of several: `default_export_name`, numbered (`a_b_2_...`) when two
    datasets would share a name, ignoring case (a Mac or Windows folder would see one file)."""
    chosen = export_format(None, fmt)
    names: dict[str, str] = {}
    taken: set[str] = set()
    for dataset in dict.fromkeys(datasets):
        slug = file_slug(dataset)
        name, number = _file_name(slug, source, chosen), 2
        while name.casefold() in taken:
            name, number = _file_name(f"{slug}_{number}", source, chosen), number + 1
        taken.add(name.casefold())
        names[dataset] = name
    return names


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
    return ExportResult(dataset, label_source, chosen, target.resolve(), rows, extra_columns)


def export_targets(folder: str | Path, datasets: Sequence[str], source: str, fmt: str = "csv") -> dict[str, Path]:
    """Dataset -> the file an export of several into `folder` writes (see `export_file_names`)."""
    root = Path(folder).expanduser()
    return {dataset: root / name for dataset, name in export_file_names(datasets, source, fmt).items()}


def export_datasets(
    store: Store,
    datasets: Sequence[str],
    folder: str | Path,
    *,
    source: str = "effective",
    fmt: str = "csv",
    extra_columns: bool = False,
) -> list[ExportResult]:
    """Write each dataset as its own file into `folder` (`export_targets`), replacing files already there.

    Nothing is written unless every file can be: NotFoundError for an unknown dataset, InputError when `folder`
    is a file or a file would land outside it (a link inside the folder pointing elsewhere).
    """
    chosen = export_format(None, fmt)
    root = Path(folder).expanduser()
    if root.exists() and not root.is_dir():
        raise InputError(f"{root.resolve()} is a file: give the folder to write the exports into.")
    for dataset in dict.fromkeys(datasets):
        store.export_row_count(dataset, checked_source(source))  # an unknown name fails before any file is written
    targets = export_targets(root, datasets, source, chosen)
    _check_targets(root, list(targets.values()))
    return [
        export_dataset(store, dataset, target, source=source, fmt=chosen, extra_columns=extra_columns)
        for dataset, target in targets.items()
    ]


def _check_targets(root: Path, targets: list[Path]) -> None:
    """Every file lands in `root` itself and none is a folder: checked before the first one is written."""
    inside = root.resolve()
    for target in (inside / target.name for target in targets):
        if target.resolve().parent != inside:  # symlinks followed, as the write would follow them
            raise InputError(
                f"{target} links to {target.resolve()}, outside the folder: remove that link or write into "
                "another folder."
            )
        if target.is_dir():
            raise InputError(f"{target} is a folder: remove or rename it, or write into another folder.")


def export_zip(
    store: Store,
    datasets: Sequence[str],
    *,
    source: str = "effective",
    fmt: str = "csv",
    extra_columns: bool = False,
) -> bytes:
    """Several datasets as one zip (for a download button): one file each, named as in `export_datasets`."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="labeling-export-") as folder:
        results = export_datasets(store, datasets, folder, source=source, fmt=fmt, extra_columns=extra_columns)
        # Level 1: half the default's time on a CSV for ~15% more bytes (Parquet is compressed already).
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            for result in results:
                archive.write(result.path, result.path.name)
    return buffer.getvalue()


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
