"""Store verbs for per-image technical facts (`image_facts`): what still needs scanning, and the results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from labeling.store.base import StoreBase, registered

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FactRow:
    """One image's facts as the scan found them (or why it found none); fields are image_facts' columns."""

    image_id: int
    facts_version: str
    # file
    format: str | None = None
    size_bytes: int | None = None
    width: int | None = None
    height: int | None = None
    aspect: float | None = None
    bytes_per_pixel: float | None = None
    mode: str | None = None
    bit_depth: int | None = None
    frames: int | None = None
    orientation: int | None = None
    # JPEG
    jpeg_quality: int | None = None
    jpeg_table: str | None = None
    jpeg_subsampling: str | None = None
    jpeg_progressive: bool | None = None
    jpeg_tables: int | None = None
    # metadata
    exif: bool | None = None
    exif_make: str | None = None
    exif_model: str | None = None
    exif_software: str | None = None
    exif_datetime_original: str | None = None
    exif_gps: bool | None = None
    icc: bool | None = None
    icc_description: str | None = None
    xmp: bool | None = None
    text_keys: list[str] = field(default_factory=list)
    generator: str | None = None
    # provenance
    c2pa: bool | None = None
    c2pa_generator: str | None = None
    # pixels
    luma_mean: float | None = None
    luma_std: float | None = None
    clip_high: float | None = None
    clip_low: float | None = None
    saturation_mean: float | None = None
    sharpness: float | None = None
    high_freq: float | None = None
    # hashes
    sha256: str | None = None
    phash: int | None = None
    dhash: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def values(self) -> list[Any]:
        return [
            json.dumps(value, ensure_ascii=False) if name == "details" else value
            for name, value in ((f.name, getattr(self, f.name)) for f in fields(self))
        ]


FACT_COLUMNS = tuple(f.name for f in fields(FactRow))
_HASHES = {"phash", "dhash"}


class FactsQueries(StoreBase):
    """The `image_facts` table: filled by the scan pass, read by the technical-bias audit."""

    _fact_column_types: dict[str, str] | None = None

    def facts_to_scan(self, dataset_id: int, facts_version: str) -> list[tuple[int, str]]:
        """(image_id, location) of the dataset's found images without facts of this version, in import order."""
        return [
            (int(row[0]), str(row[1]))
            for row in self.fetch_all(
                "SELECT i.id, i.location FROM images i LEFT JOIN image_facts f ON f.image_id = i.id "
                "WHERE i.dataset_id = ? AND i.status = 'found' AND i.location IS NOT NULL "
                "AND (f.image_id IS NULL OR f.facts_version <> ?) ORDER BY i.id",
                [dataset_id, facts_version],
            )
        ]

    def record_facts(self, rows: Sequence[FactRow]) -> None:
        """Write a batch of facts in one transaction; an image scanned again replaces its row.

        The batch goes in as one registered frame (a row-by-row executemany costs ~8 ms a row), every column
        cast to the table's type; the 64-bit hashes travel as decimal text, which no pandas dtype holds with NULLs.
        """
        import pandas as pd

        if not rows:
            return
        columns: dict[str, list[Any]] = {name: [] for name in FACT_COLUMNS}
        for row in rows:
            for name, value in zip(FACT_COLUMNS, row.values(), strict=True):
                columns[name].append(str(value) if name in _HASHES and value is not None else value)
        frame = pd.DataFrame({name: pd.Series(values, dtype="object") for name, values in columns.items()})
        names = ", ".join(FACT_COLUMNS)
        casts = ", ".join(f"CAST({name} AS {kind}) AS {name}" for name, kind in self._fact_types().items())
        with self.transaction() as cur, registered(cur, "fact_batch", frame):
            cur.execute(f"INSERT OR REPLACE INTO image_facts ({names}) SELECT {casts} FROM fact_batch")

    def _fact_types(self) -> dict[str, str]:
        """image_facts' column types, by FactRow field (read once per store)."""
        if self._fact_column_types is None:
            found = dict(
                self.fetch_all("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'image_facts'")
            )
            self._fact_column_types = {name: found[name] for name in FACT_COLUMNS}
        return self._fact_column_types

    def image_facts(self, dataset_ids: Sequence[int]) -> pd.DataFrame:
        """The facts of these datasets' images, with the dataset and image names."""
        return self.fetch_df(
            "SELECT d.name AS dataset, i.name, f.* FROM image_facts f JOIN images i ON i.id = f.image_id "
            "JOIN datasets d ON d.id = i.dataset_id WHERE list_contains(?, i.dataset_id) ORDER BY d.name, i.id",
            [[int(i) for i in dataset_ids]],
        )

    def scan_status(self, dataset_ids: Sequence[int], facts_version: str) -> pd.DataFrame:
        """Per dataset: found images, how many have facts of this version, and how many of those have none (error).

        Columns dataset_id, dataset, found, scanned, failed, in the order of `dataset_ids`.
        """
        return self.fetch_df(
            "SELECT d.id AS dataset_id, d.name AS dataset, count(i.id) AS found, "
            "count(f.image_id) AS scanned, count(f.error) AS failed "
            "FROM datasets d LEFT JOIN images i ON i.dataset_id = d.id AND i.status = 'found' "
            "LEFT JOIN image_facts f ON f.image_id = i.id AND f.facts_version = ? "
            "WHERE list_contains(?, d.id) GROUP BY d.id, d.name ORDER BY list_position(?, d.id)",
            [facts_version, [int(i) for i in dataset_ids], [int(i) for i in dataset_ids]],
        )

    def facts_of_image(self, image_id: int) -> dict[str, Any] | None:
        """One image's facts row as a dict (None when it has not been scanned)."""
        cur = self.cursor()
        row = cur.execute("SELECT * FROM image_facts WHERE image_id = ?", [int(image_id)]).fetchone()
        names = [d[0] for d in cur.description or ()]
        cur.complete()
        return dict(zip(names, row, strict=True)) if row else None

    def facts_mark(self, dataset_ids: Sequence[int]) -> str:
        """A value that changes whenever these datasets' facts change (rows added, rescanned or deleted)."""
        row = self.fetch_one(
            "SELECT count(*), max(f.computed_at) FROM image_facts f JOIN images i ON i.id = f.image_id "
            "WHERE list_contains(?, i.dataset_id)",
            [[int(i) for i in dataset_ids]],
        )
        return f"{row[0]}:{row[1]}" if row else "0:"
