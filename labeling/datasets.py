"""Creating datasets: a CSV list of names and/or a folder, or a seed output CSV with its results."""

from __future__ import annotations

import csv
import io
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from labeling.errors import InputError
from labeling.matching import KeyIndex, MatchResult, apply_choices, is_image_path
from labeling.names import MAX_NAME_LENGTH, NameList, parse_name_list
from labeling.seed_format import SeedRow, is_seed_output, read_seed_rows, summary_of
from labeling.sources import ImageSource, LocalFolderSource
from labeling.store import Store

SEED_IMPORT_MODEL = "seed-import"


@dataclass(frozen=True)
class ImportReport:
    """What one import found. Lists of names are in the store (`Store.images_with_status`)."""

    dataset: str
    listed: int
    found: int
    missing: int
    ambiguous: int
    rejected: int
    duplicates: int
    unlinked: int
    added: int
    annotations_imported: int = 0
    seed_errors: int = 0
    stem_matches: int = 0  # found only by the same stem with another extension
    case_matches: int = 0  # found only ignoring case
    chosen_matches: int = 0  # ambiguous, found where the user picked (labeling.datasets.choose_file)
    notes: list[str] = field(default_factory=list)  # what reading the list decided or repaired

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


UPSERT_ROWS = 100_000
# What a found image's detail says when it was matched by less than its exact name.
_HOW = {
    "stem": "matched by stem (another extension)",
    "case": "matched ignoring case",
    "chosen": "picked by hand among the files this name matches",
}


_Row = tuple[str, str | None, str, str | None]  # name, location, status, detail


def _image_rows(names: NameList, match: MatchResult | None) -> Iterator[_Row]:
    """One row per listed name, made as it is written: a million-name list never exists as a million rows."""
    if match is None:
        yield from ((name, None, "unlinked", None) for name in names.names)
    else:
        yield from (
            (name, location, "found", _HOW.get(match.how.get(name, ""))) for name, location in match.found.items()
        )
        yield from ((name, None, "ambiguous", json.dumps(found)) for name, found in match.ambiguous.items())
        yield from ((name, None, "missing", None) for name in match.missing)
    yield from ((name, None, "rejected", reason) for name, reason in names.rejected)


def _write_rows(store: Store, dataset_id: int, rows: Iterator[_Row]) -> tuple[int, Counter[str]]:
    """Upsert the rows in slices (memory stays flat for big lists); how many were new, and the statuses."""
    added, statuses = 0, Counter[str]()
    while chunk := list(itertools.islice(rows, UPSERT_ROWS)):
        frame = pd.DataFrame(chunk, columns=["name", "location", "status", "detail"], dtype="object")
        statuses.update(frame["status"])
        added += store.upsert_images(dataset_id, frame)
    return added, statuses


def _source_kind(source: ImageSource | None) -> str:
    if source is None:
        return "none"
    return "local" if isinstance(source, LocalFolderSource) else "s3"


def import_names(
    store: Store,
    dataset: str,
    names: NameList | None,
    source: ImageSource | None,
    *,
    label: str = "",
    list_file: str | None = None,
    source_options: dict[str, Any] | None = None,
) -> ImportReport:
    """Match a name list (or, with no list, every image the source holds) and store the dataset.

    Re-importing is idempotent: known names keep their ids and work; new names are added; nothing is deleted.
    """
    if names is None and source is None:
        raise InputError("Give a CSV list of image names, a folder of images, or both.")
    match: MatchResult | None = None
    if source is not None:
        keys = list(source.list_keys())
        refused = dict(getattr(source, "refused", {}))  # named like images, but pipes, sockets, devices
        if names is None:
            # Every image the source holds, named by its relative path: no matching needed.
            names = NameList(
                names=[key for key in keys if is_image_path(key)],
                rejected=[(key, f"{reason}, not an image file") for key, reason in refused.items()],
            )
            if not names.names and not refused:
                raise InputError(f"{source.uri} holds no images (jpg, png, webp, ...): check the folder.")
            match = MatchResult(found={key: key for key in names.names})
        else:
            match = KeyIndex(keys).match(names.names)
            if match.ambiguous:  # a file picked for an ambiguous name is kept while it is still a candidate
                match = apply_choices(match, store.name_choices(dataset))
            names, match = _refuse_special(names, match, refused)
            names, match = _unknown_header(names, match)
    assert names is not None
    dataset_id = store.save_dataset(
        dataset,
        label=label,
        source_kind=_source_kind(source),
        source_uri=source.uri if source else "",
        source_options=source_options,
        list_file=list_file,
    )
    added, counts = _write_rows(store, dataset_id, _image_rows(names, match))
    store.set_duplicates(dataset_id, names.duplicates)
    how = list(match.how.values()) if match is not None else []
    return ImportReport(
        dataset=dataset,
        listed=names.listed,
        found=int(counts.get("found", 0)),
        missing=int(counts.get("missing", 0)),
        ambiguous=int(counts.get("ambiguous", 0)),
        rejected=int(counts.get("rejected", 0)),
        duplicates=names.duplicates,
        unlinked=int(counts.get("unlinked", 0)),
        added=added,
        stem_matches=how.count("stem"),
        case_matches=how.count("case"),
        chosen_matches=how.count("chosen"),
        notes=list(names.notes),
    )


def ambiguous_names(store: Store, dataset: str) -> dict[str, list[str]]:
    """Each ambiguous name of `dataset` with the files it matches, in name order."""
    frame = store.images_with_status(store.dataset_id(dataset), "ambiguous")
    return {name: json.loads(detail or "[]") for name, detail in zip(frame["name"], frame["detail"], strict=True)}


def choose_file(store: Store, dataset: str, name: str, location: str, *, chosen_by: str = "") -> str:
    """Resolve an ambiguous name: `location`, one of the files it matches, is the one it means; returns it.

    The image is found there at once, and the pick is stored so that importing the list again keeps it.
    """
    dataset_id = store.dataset_id(dataset)
    state = store.image_status(dataset_id, name)
    if state is None or state[0] != "ambiguous":
        raise InputError(f"{name!r} is not an ambiguous name of {dataset}: reload the page to see its state.")
    candidates = json.loads(state[1] or "[]")
    if location not in candidates:
        raise InputError(f"{location!r} is not a file {name!r} matches: pick one of {', '.join(candidates)}.")
    store.choose_location(dataset_id, name, location, chosen_by, _HOW["chosen"])
    return location


def _unknown_header(names: NameList, match: MatchResult) -> tuple[NameList, MatchResult]:
    """A first row that matches nothing above rows that nearly all match is a header nobody named (`id`)."""
    if names.header is not None or len(names.names) < 5 or names.names[0] not in match.missing[:1]:
        return names, match
    sample = names.names[1:2001]
    if sum(name in match.found for name in sample) < 0.8 * len(sample):
        return names, match
    first = names.names[0]
    note = f"first row {first!r} taken as a header (it matches no file; the rows after it do)"
    return (
        replace(names, names=names.names[1:], header=first, notes=[*names.notes, note]),
        replace(match, missing=match.missing[1:]),
    )


def _refuse_special(names: NameList, match: MatchResult, refused: dict[str, str]) -> tuple[NameList, MatchResult]:
    """Listed names that are missing only because their file is a pipe, socket or device: rejected, saying so."""
    if not refused:
        return names, match
    by_name = {key.rsplit("/", 1)[-1]: reason for key, reason in refused.items()} | refused
    special = [name for name in match.missing if name in by_name]
    if not special:
        return names, match
    rejected = [*names.rejected, *((name, f"{by_name[name]}, not an image file") for name in special)]
    kept = set(special)
    return (
        replace(names, names=[n for n in names.names if n not in kept], rejected=rejected),
        replace(match, missing=[n for n in match.missing if n not in kept]),
    )


def _value(cell: Any) -> Any:
    """A frame cell with pandas' missing markers (None, NaN, NA) as None."""
    return None if cell is None or (pd.api.types.is_scalar(cell) and pd.isna(cell)) else cell


def _list(cell: Any) -> list[str] | None:
    value = _value(cell)
    return None if value is None else list(value)


def _seed_annotations(store: Store, dataset_id: int, rows: list[SeedRow]) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = store.image_ids_by_name(dataset_id).set_index("name")["image_id"]
    current = store.current_annotations(dataset_id).set_index("name")
    annotations, failures = [], []
    for row in rows:
        image_id = ids.get(row.image_name)
        if image_id is None:
            continue  # a rejected name never became an image
        if row.error:
            failures.append(
                {"image_id": image_id, "run_id": None, "stage": "seed", "kind": "seed_error", "message": row.error}
            )
            continue
        if row.description is None and row.categories is None:
            continue
        description = json.dumps(row.description, ensure_ascii=False) if row.description else None
        if row.image_name in current.index:
            known = current.loc[row.image_name]
            # Compare with the categories as stored: the view reads them through rename/merge aliases.
            if _value(known["description"]) == description and _list(known["stored_categories"]) == row.categories:
                continue  # unchanged since the last import: importing again adds no history
        annotations.append(
            {
                "image_id": image_id,
                "kind": "import",
                "model": SEED_IMPORT_MODEL,
                "prompt_version": "seed",
                "description": description,
                "summary": summary_of(row.description) if row.description else None,
                "categories": row.categories,
            }
        )
    return pd.DataFrame(annotations), pd.DataFrame(failures)


def import_seed_output(
    store: Store,
    dataset: str,
    data: bytes,
    source: ImageSource | None,
    *,
    label: str = "",
    list_file: str | None = None,
) -> ImportReport:
    """Import a seed `image_name,description[,categories]` CSV: its results become model annotations."""
    rows = read_seed_rows(data, list_file or "the CSV")
    if not rows:
        raise InputError(f"{list_file or 'The CSV'} has the seed's columns but no rows: nothing to import.")
    header = b"image_name\n"
    names = parse_name_list(header + "\n".join(row.image_name for row in rows).encode(), list_file or "the CSV")
    report = import_names(store, dataset, names, source, label=label, list_file=list_file)
    annotations, failures = _seed_annotations(store, store.dataset_id(dataset), rows)
    if not annotations.empty:
        annotations["categories"] = annotations["categories"].astype("object")
    store.insert_annotations(annotations)
    store.insert_failures(failures)
    return ImportReport(**{**report.as_dict(), "annotations_imported": len(annotations), "seed_errors": len(failures)})


def _first_row(data: bytes) -> list[str]:
    try:
        text = data[:65536].decode("utf-8-sig", errors="replace")
    except UnicodeDecodeError:
        return []
    line = next((line for line in text.splitlines() if line.strip()), "")
    return next(csv.reader(io.StringIO(line)), [])


def import_dataset(
    store: Store,
    dataset: str,
    *,
    label: str = "",
    csv_data: bytes | None = None,
    csv_name: str | None = None,
    images_dir: str | Path | None = None,
    max_name_length: int = MAX_NAME_LENGTH,
) -> ImportReport:
    """The one entry point of the app and CLI: a list, a folder, or both; seed output CSVs are recognised."""
    if not dataset.strip():
        raise InputError("Give the dataset a name (for example REAL or GEN).")
    source = LocalFolderSource(images_dir) if images_dir else None
    if source is not None:
        source.check()
    if csv_data is not None and is_seed_output(_first_row(csv_data)):
        return import_seed_output(store, dataset.strip(), csv_data, source, label=label, list_file=csv_name)
    names = (
        parse_name_list(csv_data, csv_name or "the CSV list", max_length=max_name_length)
        if csv_data is not None
        else None
    )
    del csv_data  # a big list's bytes are not needed for the matching and writing that follow
    return import_names(store, dataset.strip(), names, source, label=label, list_file=csv_name)


def read_csv_file(path: str | Path) -> bytes:
    """The bytes of a CSV the user named, with a clear error when it cannot be read."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"The CSV file {path} does not exist: check the path.") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder, not a CSV file.") from None
    except OSError as exc:
        raise InputError(f"Cannot read {path} ({exc.strerror}): check its permissions.") from None
