"""The seed's two-step commands as core calls: the dataset they run on and the CSVs they write.

`generate-descriptions` describes a folder and writes `image_name,description`; `categorize-descriptions`
reads such a CSV (edited or not), categorizes and writes `image_name,description,categories`. The CLI parses
flags and runs the job; what the job runs on and what the files hold is decided here, so the app (or a CLI
talking to the app) can do the same.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from labeling.datasets import SEED_IMPORT_MODEL, import_dataset, read_csv_file
from labeling.errors import InputError
from labeling.files import write_atomically
from labeling.seed_format import SeedRow, summary_of
from labeling.spreadsheet import safe_rows
from labeling.store import Store
from labeling.taxonomy import ensure_categories, parse_category_csv


def write_seed_csv(path: str | os.PathLike[str], header: list[str], rows: list[list[str]]) -> None:
    """Write atomically: a reader never sees half a file, and an interrupted write leaves the old one."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(safe_rows(rows))  # seed CSVs too: the importers take the added quote off again
    write_atomically(path, buffer.getvalue().encode("utf-8"))


def folder_dataset(store: Store, folder: Path, name: str | None) -> str:
    if not folder.is_dir():
        raise InputError(f"The image folder {folder} does not exist or is not a folder: check --images-dir.")
    dataset = name or folder.resolve().name
    known = store.dataset_names()
    label = dataset.upper() if dataset.upper() in ("REAL", "GEN") else ""
    if dataset in known:
        row = store.dataset(dataset)
        if row.source_kind != "local" or Path(row.source_uri).resolve() != folder.resolve():
            raise InputError(
                f"A dataset named {dataset!r} already reads from {row.source_uri or 'no folder'}: "
                "pass --dataset with another name for this folder."
            )
        label = row.label
    import_dataset(store, dataset, label=label, images_dir=folder)
    return dataset


def write_descriptions_csv(store: Store, dataset: str, path: str) -> int:
    current = store.current_annotations_of([store.dataset_id(dataset)])
    rows = [[str(r["name"]), str(r["description"])] for r in current.to_dict("records") if r["description"]]
    write_seed_csv(path, ["image_name", "description"], rows)
    return len(rows)


def _same_description(stored: Any, row: SeedRow) -> bool:
    if not stored or row.description is None:
        return False
    try:
        return bool(json.loads(str(stored)) == row.description)
    except json.JSONDecodeError:
        return False


def dataset_for_rows(store: Store, rows: list[SeedRow], csv_name: str, data: bytes) -> str:
    """The dataset these rows came from (every name in it, most descriptions equal), else a new one."""
    names = {row.image_name for row in rows}
    best: tuple[int, str] | None = None
    for dataset in store.dataset_names():
        current = store.current_annotations_of([store.dataset_id(dataset)])
        listed = set(store.image_ids_by_name(store.dataset_id(dataset))["name"])
        if not names <= listed:
            continue
        stored = {str(r["name"]): r["description"] for r in current.to_dict("records")}
        same = sum(_same_description(stored.get(row.image_name), row) for row in rows)
        if best is None or same > best[0]:
            best = (same, dataset)
    if best is not None:
        _import_changed_descriptions(store, best[1], rows)
        return best[1]
    name = Path(csv_name).stem
    if name in store.dataset_names() and store.dataset(name).source_kind != "none":
        raise InputError(
            f"A dataset named {name!r} already exists with its own images and not all of these "
            "names: rename the input CSV, or import it with `labeling import --dataset NEW`."
        )
    import_dataset(store, name, csv_data=data, csv_name=csv_name)
    return name


def _import_changed_descriptions(store: Store, dataset: str, rows: list[SeedRow]) -> None:
    """Descriptions edited in the CSV since they were stored become new (imported) annotations."""
    dataset_id = store.dataset_id(dataset)
    ids = {str(r["name"]): int(r["image_id"]) for r in store.image_ids_by_name(dataset_id).to_dict("records")}
    stored = {str(r["name"]): r["description"] for r in store.current_annotations_of([dataset_id]).to_dict("records")}
    changed = [
        row for row in rows if row.description is not None and not _same_description(stored.get(row.image_name), row)
    ]
    if not changed:
        return
    frame = pd.DataFrame(
        [
            {
                "image_id": ids[row.image_name],
                "kind": "import",
                "model": SEED_IMPORT_MODEL,
                "prompt_version": "seed",
                "description": json.dumps(row.description, ensure_ascii=False),
                "summary": summary_of(row.description or {}),
                "categories": None,
            }
            for row in changed
        ]
    )
    frame["categories"] = frame["categories"].astype("object")
    store.insert_annotations(frame)


def adopt_category_csv(store: Store, path: str) -> int | None:
    """Make the Category[,Definition] CSV at `path` the active list; the new version, or None if it already was."""
    wanted = parse_category_csv(read_csv_file(path), path)
    active = ensure_categories(store)
    if [(c.name, c.definition) for c in wanted] != [(c.name, c.definition) for c in active]:
        return store.save_category_list(wanted, note=f"from {path}")
    return None


def write_categorized_csv(store: Store, dataset: str, rows: list[SeedRow], path: str) -> tuple[int, int]:
    categories = store.current_categories(store.dataset_id(dataset), store.category_list_version())
    out: list[list[str]] = []
    for row in rows:
        names = categories.get(row.image_name)
        if row.description is None or not names:
            continue
        out.append([row.image_name, _description_text(row), ", ".join(names)])
    write_seed_csv(path, ["image_name", "description", "categories"], out)
    return len(out), len(rows) - len(out)


def _description_text(row: SeedRow) -> str:
    description = row.description or {}
    if set(description) == {"summary"}:
        return str(description["summary"])  # the seed's plain-text descriptions stay plain text
    return json.dumps(description, ensure_ascii=False)
