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
