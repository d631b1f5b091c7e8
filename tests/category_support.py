"""Helpers for the category tests: a dataset of described images with model annotations and human labels."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from labeling.datasets import import_dataset
from labeling.store import Store
from labeling.taxonomy import ensure_categories


def description(
    summary: str, objects: Sequence[str] = (), environment: str = "", genre: str = "photo", setting: str = "outdoor"
) -> dict[str, Any]:
    """A structured description with the seed's fields."""
    return {
        "summary": summary,
        "objects": [{"name": name, "attributes": []} for name in objects],
        "scene": {"indoor_outdoor": setting, "environment": environment},
        "style": {"genre": genre, "lighting": "daylight", "colors": ["grey"]},
        "camera": {"shot": "wide", "fov": "normal", "lens": "50mm"},
        "text": "none",
        "quality": {"aesthetic": "fine", "issues": []},
    }


def add_described(
    store: Store,
    dataset: str,
    rows: Sequence[tuple[str, dict[str, Any], list[str] | None]],
    *,
    list_version: int | None = None,
    kind: str = "fused",
) -> dict[str, int]:
    """A dataset (names only) whose images have one model annotation each; returns name -> image id."""
    ensure_categories(store)
    names = "\n".join(["image_name", *[name for name, _, _ in rows]]).encode()
    try:
        store.dataset_id(dataset)
    except Exception:
        import_dataset(store, dataset, label=dataset, csv_data=names, csv_name=f"{dataset}.csv")
    ids = store.image_ids_by_name(store.dataset_id(dataset)).set_index("name")["image_id"].to_dict()
    version = store.category_list_version() if list_version is None else list_version
    frame = pd.DataFrame(
        [
            {
                "image_id": int(ids[name]),
                "run_id": None,
                "kind": kind,
                "model": "gemini-test",
                "prompt_version": "t",
                "category_list_version": version if categories is not None else None,
                "description": json.dumps(desc),
                "summary": desc.get("summary"),
                "categories": categories,
                "tokens_in": 100,
                "tokens_out": 10,
            }
            for name, desc, categories in rows
        ]
    )
    frame["categories"] = frame["categories"].astype("object")
    store.insert_annotations(frame)
    return {name: int(ids[name]) for name, _, _ in rows}


def set_human(store: Store, image_id: int, categories: list[str] | None, reviewer: str = "ann") -> None:
    """A human label as the review page saves it (new version, edit log)."""
    record = store.review_record(image_id)
    store.save_label(image_id, expected_version=record.version, reviewer=reviewer, categories=categories)


def model_categories(store: Store, image_id: int) -> list[str] | None:
    row = store.fetch_one("SELECT categories FROM current_annotations WHERE image_id = ?", [image_id])
    return None if row is None or row[0] is None else list(row[0])


def effective_categories(store: Store, image_id: int) -> list[str] | None:
    row = store.fetch_one("SELECT categories FROM effective_labels WHERE image_id = ?", [image_id])
    return None if row is None or row[0] is None else list(row[0])
