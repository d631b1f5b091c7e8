"""What an S3 prefix holds for a list of names, before anything is fetched; and S3 datasets.

`analyze` lists the prefix once (paginated, recursive), matches the names with the Foundation rules (exact name
anywhere under the prefix, then the same stem; several candidates are ambiguous, never guessed) and, given an
output folder, tells which files are already there. Everything after the listing is dictionary work: 100,000
keys match in well under a second.
"""

from __future__ import annotations

import csv
import gc
import io
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd

from labeling.datasets import ImportReport, import_names, import_seed_output
from labeling.errors import InputError
from labeling.files import is_temp_file
from labeling.matching import KeyIndex, is_image_path
from labeling.names import NameList, parse_name_list
from labeling.s3 import S3Object, S3Source, key_problem
from labeling.seed_format import is_seed_output
from labeling.store import Store


class PlannedFile(NamedTuple):
    """One object to mirror: the name as listed, its key relative to the prefix (= its path in the output folder),
    size and ETag."""

    name: str
    key: str
    size: int
    etag: str = ""


@dataclass
class S3Analysis:
    """The numbers shown before a mirror or an import is confirmed. Lists are complete; show the first few."""

    uri: str
    listed_objects: int
    names_listed: int
    available: list[PlannedFile] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    refused_keys: list[tuple[str, str]] = field(default_factory=list)  # (key, reason): could not become a path
    duplicates: int = 0
    output_dir: str | None = None
    already_local: list[PlannedFile] = field(default_factory=list)
    to_fetch: list[PlannedFile] = field(default_factory=list)
    unrecorded_local: list[PlannedFile] = field(default_factory=list)  # local and complete, not yet in the DB
    list_seconds: float = 0.0
    match_seconds: float = 0.0

    @property
    def bytes_available(self) -> int:
        return sum(item.size for item in self.available)

    @property
    def bytes_to_fetch(self) -> int:
        return sum(item.size for item in self.to_fetch)

    def counts(self) -> dict[str, Any]:
        """The summary as plain numbers (for JSON and the page's metrics)."""
        return {
            "uri": self.uri,
            "listed_objects": self.listed_objects,
            "names_listed": self.names_listed,
            "available": len(self.available),
            "missing": len(self.missing),
            "ambiguous": len(self.ambiguous),
            "rejected": len(self.rejected),
            "refused_keys": len(self.refused_keys),
            "duplicates": self.duplicates,
            "output_dir": self.output_dir,
            "already_local": len(self.already_local),
            "to_fetch": len(self.to_fetch),
            "bytes_available": self.bytes_available,
            "bytes_to_fetch": self.bytes_to_fetch,
            "list_seconds": round(self.list_seconds, 3),
            "match_seconds": round(self.match_seconds, 3),
        }

    def problems_frame(self) -> pd.DataFrame:
        """Every missing, ambiguous and rejected name and refused key, with why: the full downloadable list."""
        rows = [("missing", name, "not under the prefix (neither the name nor the same stem)") for name in self.missing]
        rows += [("ambiguous", name, "; ".join(candidates)) for name, candidates in self.ambiguous.items()]
        rows += [("rejected", name, reason) for name, reason in self.rejected]
        rows += [("refused key", key, reason) for key, reason in self.refused_keys]
        return pd.DataFrame(rows, columns=["status", "name", "detail"])

    def summary_lines(self, first: int = 10) -> list[str]:
        """The analysis as the CLI prints it and the run log records it."""
        lines = [
            f"S3 analysis of {self.uri}: {self.listed_objects:,} objects listed in {self.list_seconds:.1f} s "
            f"(matching {self.match_seconds:.2f} s)",
            f"  names in the list     {self.names_listed:>10,}"
            + (f"  ({self.duplicates:,} duplicates ignored)" if self.duplicates else ""),
            f"  available in S3       {len(self.available):>10,}  ({_size(self.bytes_available)})",
            f"  missing               {len(self.missing):>10,}",
            f"  ambiguous             {len(self.ambiguous):>10,}",
            f"  rejected names        {len(self.rejected):>10,}",
            f"  refused keys          {len(self.refused_keys):>10,}",
        ]
        if self.output_dir is not None:
            lines += [
                f"  already in the folder {len(self.already_local):>10,}  ({self.output_dir})",
                f"  to fetch              {len(self.to_fetch):>10,}  ({_size(self.bytes_to_fetch)})",
            ]
        if self.missing:
            shown = ", ".join(self.missing[:first])
            more = f" and {len(self.missing) - first:,} more" if len(self.missing) > first else ""
            lines.append(f"  missing: {shown}{more}")
        for name, candidates in list(self.ambiguous.items())[:first]:
            lines.append(f"  ambiguous: {name} -> {', '.join(candidates)}")
        for name, reason in self.rejected[:first]:
            lines.append(f"  rejected: {name!r} ({reason})")
        for key, reason in self.refused_keys[:first]:
            lines.append(f"  refused key: {key!r} ({reason})")
        return lines


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} TB"  # pragma: no cover


def local_files(output_dir: Path) -> dict[str, int]:
    """{relative `/` path: size} of every complete file under `output_dir` (temp files of a killed run excluded)."""
    found: dict[str, int] = {}
    if not output_dir.is_dir():
        return found
    stack = [(output_dir, "")]
    while stack:
        folder, relative = stack.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                path = f"{relative}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), path + "/"))
                elif entry.is_file(follow_symlinks=False) and not is_temp_file(entry.name):
                    found[path] = entry.stat(follow_symlinks=False).st_size
    return found


def analyze(
    source: S3Source,
    names: NameList | None,
    *,
    output_dir: str | os.PathLike[str] | None = None,
    store: Store | None = None,
    objects: list[S3Object] | None = None,
) -> S3Analysis:
    """List the prefix (unless `objects` are given) and match `names`; with no names, every image under the prefix.

    With `output_dir`, a file counts as already there when it exists with the listed size and the store does
    not remember it at another ETag (the object changed since it was mirrored).
    """
    started = time.perf_counter()
    if objects is None:
        objects = list(source.list_objects())
    listed = time.perf_counter()
    with _no_gc():
        analysis = _match(source, names, objects, output_dir, store)
    analysis.list_seconds = listed - started
    analysis.match_seconds = time.perf_counter() - listed
    return analysis


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic GC while 100,000s of acyclic tuples are made: its passes would double the matching time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _match(
    source: S3Source,
    names: NameList | None,
    objects: list[S3Object],
    output_dir: str | os.PathLike[str] | None,
    store: Store | None,
) -> S3Analysis:

    by_key = {item.key: item for item in objects}
    refused = [(key, problem) for key in by_key if (problem := key_problem(key))]
    if names is None:
        refused_keys = {key for key, _ in refused}
        names = NameList(names=sorted(key for key in by_key if key not in refused_keys and is_image_path(key)))
    analysis = S3Analysis(
        uri=source.uri,
        listed_objects=len(objects),
        names_listed=names.listed,
        rejected=list(names.rejected),
        refused_keys=refused,
        duplicates=names.duplicates,
    )

    # Unsafe keys stay in the index so that a name matching only such a key is reported as rejected, not missing.
    match = KeyIndex(by_key).match(names.names)
    analysis.missing = match.missing
    analysis.ambiguous = match.ambiguous
    refused_reasons = dict(refused)
    available = analysis.available
    for name, key in match.found.items():
        if refused_reasons and key in refused_reasons:
            analysis.rejected.append((name, f"its S3 key {key!r} {refused_reasons[key]}"))
            continue
        item = by_key[key]
        available.append(PlannedFile(name, key, item.size, item.etag))

    if output_dir is not None:
        folder = Path(output_dir).expanduser().resolve()
        analysis.output_dir = str(folder)
        present = local_files(folder)
        recorded = store.mirror_done(str(folder)) if store is not None else {}
        planned: set[str] = set()
        for planned_file in analysis.available:
            if planned_file.key in planned:
                continue  # two names (x.jpg, x.png) matching the same key are fetched once
            planned.add(planned_file.key)
            size = present.get(planned_file.key)
            known = recorded.get(planned_file.key)
            changed = known is not None and bool(known[1]) and bool(planned_file.etag) and known[1] != planned_file.etag
            if size == planned_file.size and not changed:
                analysis.already_local.append(planned_file)
                if known is None:
                    analysis.unrecorded_local.append(planned_file)
            else:
                analysis.to_fetch.append(planned_file)
    return analysis


class _ListedSource:
    """An S3 source whose listing is already known: importing after an analysis does not list twice."""

    def __init__(self, source: S3Source, objects: list[S3Object]) -> None:
        self._source = source
        self._objects = objects

    @property
    def uri(self) -> str:
        return self._source.uri

    def list_keys(self) -> Iterator[str]:
        return (item.key for item in self._objects if not key_problem(item.key))

    def read(self, key: str) -> bytes:
        return self._source.read(key)


def _first_row(data: bytes) -> list[str]:
    text = data[:65536].decode("utf-8-sig", errors="replace")
    line = next((line for line in text.splitlines() if line.strip()), "")
    return next(csv.reader(io.StringIO(line)), [])


def import_s3_dataset(
    store: Store,
    dataset: str,
    source: S3Source,
    *,
    csv_data: bytes | None = None,
    csv_name: str | None = None,
    label: str = "",
    objects: list[S3Object] | None = None,
) -> ImportReport:
    """Create or refresh a dataset whose images stay in S3 (read through the local cache when captioned).

    The dataset row keeps `s3://bucket/prefix` and the profile, region and endpoint (never credentials).
    A seed output CSV (image_name,description[,categories]) brings its results along, as for local datasets.
    """
    dataset = dataset.strip()
    if not dataset:
        raise InputError("Give the dataset a name (for example REAL or GEN).")
    listed: Any = _ListedSource(source, objects) if objects is not None else source
    if csv_data is not None and is_seed_output(_first_row(csv_data)):
        report = import_seed_output(store, dataset, csv_data, listed, label=label, list_file=csv_name)
        # import_seed_output records the source but not its options: store them as import_names would.
        store.save_dataset(
            dataset,
            label=label,
            source_kind="s3",
            source_uri=source.uri,
            source_options=source.options,
            list_file=csv_name,
        )
        return report
    names = parse_name_list(csv_data, csv_name or "the CSV list") if csv_data is not None else None
    return import_names(store, dataset, names, listed, label=label, list_file=csv_name, source_options=source.options)
