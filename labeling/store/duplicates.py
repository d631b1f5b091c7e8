"""Store verbs for duplicates: exact (same sha256) and near (pHash and dHash close) pairs, and the saved groups.

Near pairs are found with multi-index hashing, never by comparing all pairs. Each 64-bit hash is cut into
`distance + 1` bands; two hashes within `distance` bits of each other agree exactly on at least one band
(pigeonhole: `distance` differing bits touch at most `distance` bands). A pair within the distance on both
hashes therefore agrees on some pHash band *and* some dHash band, so joining on every (pHash band, dHash band)
combination finds every such pair; `bit_count(xor(a, b))` then checks the true distances. Recall is exact for
the configured distance; only the candidates that share a band by chance are extra work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labeling.store.base import StoreBase, registered

if TYPE_CHECKING:
    import pandas as pd

HASH_BITS = 64


@dataclass(frozen=True)
class Band:
    """Bits [shift, shift + width) of a 64-bit hash."""

    shift: int
    width: int

    @property
    def mask(self) -> int:
        return (1 << self.width) - 1


def hash_bands(distance: int) -> tuple[Band, ...]:
    """`distance + 1` contiguous bands covering the 64 bits, as even as possible (pigeonhole needs d + 1)."""
    count = distance + 1
    if not 1 <= count <= HASH_BITS:
        raise ValueError(f"distance must be 0..{HASH_BITS - 1}")
    base, extra = divmod(HASH_BITS, count)
    bands, shift = [], 0
    for index in range(count):
        width = base + (1 if index < extra else 0)
        bands.append(Band(shift, width))
        shift += width
    return tuple(bands)


# One temp table per cursor (DuckDB temp tables are per connection): the hashed images of this search.
_HASHES = "duplicate_hashes"

# One (pHash band, dHash band) combination; the two bands packed into one UBIGINT key when they fit (a
# one-column join is faster), else joined as two columns (distance 0: both bands are the whole hash).
_NEAR_SQL = f"""
WITH k AS (
    SELECT image_id, phash, dhash, {{key}} FROM {_HASHES}
)
SELECT a.image_id, b.image_id, bit_count(xor(a.phash, b.phash)) AS pd, bit_count(xor(a.dhash, b.dhash)) AS dd
FROM k a JOIN k b ON {{on}}
WHERE a.image_id < b.image_id
  AND bit_count(xor(a.phash, b.phash)) <= $d AND bit_count(xor(a.dhash, b.dhash)) <= $d
"""
_PACKED = _NEAR_SQL.format(
    key="(((phash >> $ps) & $pm::UBIGINT) << $dw) | ((dhash >> $ds) & $dm::UBIGINT) AS key", on="a.key = b.key"
)
_UNPACKED = _NEAR_SQL.format(
    key="(phash >> $ps) & $pm::UBIGINT AS pk, (dhash >> $ds) & $dm::UBIGINT AS dk", on="a.pk = b.pk AND a.dk = b.dk"
)


class DuplicateQueries(StoreBase):
    """Duplicate search over `image_facts` (sha256, phash, dhash) and the `duplicate_groups` it saves."""

    def hash_coverage(self, dataset_ids: Sequence[int]) -> tuple[int, int, int]:
        """(found images, of which hashed, of which scanned but unreadable) in these datasets: how much of them
        a duplicate search can see, and why not the rest."""
        row = self.fetch_one(
            "SELECT count(*), count(f.sha256) FILTER (WHERE f.phash IS NOT NULL AND f.dhash IS NOT NULL), "
            "count(f.error) FROM images i LEFT JOIN image_facts f ON f.image_id = i.id "
            "WHERE list_contains(?, i.dataset_id) AND i.status = 'found'",
            [[int(i) for i in dataset_ids]],
        )
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    def duplicate_pairs(
        self, dataset_ids: Sequence[int], distance: int
    ) -> tuple[list[tuple[int, int]], list[tuple[int, int, int, int]]]:
        """Exact pairs (image, first image with its sha256) and near pairs (a, b, pHash and dHash distance).

        Near pairs have a < b and both distances <= `distance`; exact copies are near pairs at 0 as well.
        """
        bands = hash_bands(distance)
        wanted = [[int(i) for i in dataset_ids]]
        exact = [
            (int(a), int(b))
            for a, b in self.fetch_all(
                "SELECT image_id, first_id FROM (SELECT f.image_id, "
                "min(f.image_id) OVER (PARTITION BY f.sha256) AS first_id FROM image_facts f "
                "JOIN images i ON i.id = f.image_id WHERE list_contains(?, i.dataset_id) AND f.sha256 IS NOT NULL) "
                "WHERE image_id <> first_id",
                wanted,
            )
        ]
        cur = self.cursor()
        cur.execute(
            f"CREATE OR REPLACE TEMP TABLE {_HASHES} AS SELECT f.image_id, f.phash, f.dhash "
            "FROM image_facts f JOIN images i ON i.id = f.image_id "
            "WHERE list_contains(?, i.dataset_id) AND f.phash IS NOT NULL AND f.dhash IS NOT NULL",
            wanted,
        )
        try:
            near: dict[tuple[int, int], tuple[int, int]] = {}
            # One self-join per band combination: a 1/(d+1)^2 slice each, so memory stays at one table's size.
            for pband in bands:
                for dband in bands:
                    params: dict[str, Any] = {
                        "ps": pband.shift,
                        "pm": pband.mask,
                        "ds": dband.shift,
                        "dm": dband.mask,
                        "d": distance,
                    }
                    packed = pband.width + dband.width <= HASH_BITS
                    sql = _PACKED if packed else _UNPACKED
                    if packed:
                        params["dw"] = dband.width
                    for a, b, pd_, dd in cur.execute(sql, params).fetchall():
                        near[(int(a), int(b))] = (int(pd_), int(dd))  # a close pair shares several bands: once
            return exact, [(a, b, pd_, dd) for (a, b), (pd_, dd) in sorted(near.items())]
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {_HASHES}")

    def duplicate_members(self, image_ids: Sequence[int]) -> list[tuple[int, str, str, str, str | None]]:
        """(image id, dataset name, dataset label, image name, sha256) of these images, by image id."""
        if not image_ids:
            return []
        return [
            (int(row[0]), str(row[1]), str(row[2]), str(row[3]), row[4])
            for row in self.fetch_all(
                "SELECT i.id, d.name, d.label, i.name, f.sha256 FROM (SELECT unnest(?::BIGINT[]) AS id) w "
                "JOIN images i ON i.id = w.id JOIN datasets d ON d.id = i.dataset_id "
                "LEFT JOIN image_facts f ON f.image_id = i.id ORDER BY i.id",
                [[int(i) for i in image_ids]],
            )
        ]

    def replace_duplicate_groups(self, dataset_ids: Sequence[int], groups: pd.DataFrame) -> None:
        """Save a search's groups (image_id, group_id, kind, leakage, distance) in place of the groups it redid.

        Every saved group holding an image of these datasets goes, whole, so no group is left half stale.
        """
        frame = groups[["image_id", "group_id", "kind", "leakage", "distance"]]
        with self.transaction() as cur, registered(cur, "incoming_groups", frame):
            cur.execute(
                "DELETE FROM duplicate_groups WHERE group_id IN (SELECT g.group_id FROM duplicate_groups g "
                "JOIN images i ON i.id = g.image_id WHERE list_contains(?, i.dataset_id))",
                [[int(i) for i in dataset_ids]],
            )
            cur.execute(
                "INSERT INTO duplicate_groups (image_id, group_id, kind, leakage, distance) "
                "SELECT image_id, group_id, kind, leakage, distance FROM incoming_groups"
            )

    def duplicate_groups(self, dataset_ids: Sequence[int]) -> pd.DataFrame:
        """The saved groups' rows (group_id, kind, leakage, dataset, name, image_id) of these datasets' images."""
        return self.fetch_df(
            "SELECT g.group_id, g.kind, g.leakage, d.name AS dataset, i.name, g.image_id FROM duplicate_groups g "
            "JOIN images i ON i.id = g.image_id JOIN datasets d ON d.id = i.dataset_id "
            "WHERE list_contains(?, i.dataset_id) ORDER BY g.group_id, g.image_id",
            [[int(i) for i in dataset_ids]],
        )

    def duplicate_copies(self, image_id: int) -> list[tuple[str, str, str, bool]]:
        """The other images of this image's saved duplicate group: (dataset, name, kind, leakage), by dataset."""
        return [
            (str(r[0]), str(r[1]), str(r[2]), bool(r[3]))
            for r in self.fetch_all(
                "SELECT d.name, i.name, g.kind, g.leakage FROM duplicate_groups g JOIN images i ON i.id = g.image_id "
                "JOIN datasets d ON d.id = i.dataset_id "
                "WHERE g.group_id = (SELECT group_id FROM duplicate_groups WHERE image_id = ?) AND g.image_id <> ? "
                "ORDER BY d.name, i.name",
                [int(image_id), int(image_id)],
            )
        ]
