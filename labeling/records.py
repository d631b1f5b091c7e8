"""Typed rows the store hands out: named fields instead of dicts read by key in every caller.

Built from DuckDB rows by `from_row` (column names in `fields` order); JSON columns come back parsed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self


def _json(value: Any, empty: Any) -> Any:
    return json.loads(value) if isinstance(value, str) and value else (value or empty)


class _Record:
    @classmethod
    def columns(cls) -> str:
        """The SELECT list that `from_row` reads, in order."""
        return ", ".join(field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Self:
        return cls(*row)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


@dataclass(frozen=True)
class Dataset(_Record):
    """A named list of images with one source (a local folder, an S3 prefix, or none)."""

    id: int
    name: str
    label: str
    source_kind: str  # local | s3 | none
    source_uri: str
    source_options: dict[str, Any]  # profile, region, endpoint_url: never credentials
    list_file: str | None
    duplicates: int
    created_at: dt.datetime
    updated_at: dt.datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "source_options", _json(self.source_options, {}))


@dataclass(frozen=True)
class DatasetSummary(_Record):
    """A dataset with its counts, as the Datasets page and `labeling datasets` show it."""

    id: int
    name: str
    label: str
    source_kind: str
    source_uri: str
    list_file: str | None
    listed: int
    found: int
    missing: int
    ambiguous: int
    rejected: int
    unlinked: int
    duplicates: int
    described: int
    categorized: int
    reviewed: int
    failed: int
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True)
class Run(_Record):
    """One captioning, categorizing, mirror or import run and its counters."""

    id: int
    kind: str
    dataset_ids: list[int]
    settings: dict[str, Any]  # public settings only, never secrets
    status: str
    message: str | None
    simulated: bool
    total: int
    done: int
    failed: int
    requests: int
    tokens_in: int
    tokens_out: int
    tokens_thinking: int
    cost_usd: float
    started_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", _json(self.settings, {}))
        object.__setattr__(self, "dataset_ids", [int(i) for i in self.dataset_ids or []])


@dataclass(frozen=True)
class ModelLabel:
    """An image's latest model annotation, categories read through the category aliases."""

    annotation_id: int
    kind: str
    model: str
    prompt_version: str
    description: Any  # the structured description (a dict), or text from an old import
    summary: str | None
    categories: list[str] | None
    created_at: dt.datetime
    run_id: int | None


@dataclass(frozen=True)
class HumanLabel:
    """What a reviewer set for an image: only the fields they set are not None."""

    description: Any
    summary: str | None
    categories: list[str] | None
    reviewed: bool
    reviewer: str | None
    version: int
    updated_at: dt.datetime


@dataclass(frozen=True)
class Failure:
    """An attempt on the image that failed and has not been retried successfully."""

    stage: str
    kind: str
    message: str
    created_at: dt.datetime


@dataclass(frozen=True)
class ReviewRecord:
    """Everything the focus view reads about one image: the image, its model and human labels, the effective
    values (the human's where set, else the model's) and its open failures."""

    image_id: int
    dataset_id: int
    dataset: str
    dataset_label: str
    name: str
    status: str
    location: str | None
    detail: str | None
    size_bytes: int | None
    width: int | None
    height: int | None
    model: ModelLabel | None
    human: HumanLabel | None
    failures: list[Failure]

    @property
    def version(self) -> int:
        """The human label's version (0: none yet), the base of optimistic concurrency."""
        return self.human.version if self.human is not None else 0

    @property
    def reviewed(self) -> bool:
        return self.human.reviewed if self.human is not None else False

    def _effective(self, field: str) -> Any:
        mine = getattr(self.human, field) if self.human is not None else None
        return mine if mine is not None else (getattr(self.model, field) if self.model is not None else None)

    @property
    def description(self) -> Any:
        return self._effective("description")

    @property
    def summary(self) -> str | None:
        value = self._effective("summary")
        return None if value is None else str(value)

    @property
    def categories(self) -> list[str] | None:
        value = self._effective("categories")
        return None if value is None else list(value)
