"""Duplicates and leakage across datasets: exact copies (same sha256) and near copies (pHash and dHash close).

The store finds the pairs (`DuplicateQueries.duplicate_pairs`, a band search in DuckDB); this module joins them
into groups (connected components, union-find), says which are exact or near and which span datasets, and
flags leakage: a group holding images of datasets whose labels differ, such as a REAL photo also in GEN, which
lets a real-vs-generated detector be tested on what it was trained on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from labeling.errors import InputError
from labeling.settings import MAX_NEAR_DUPLICATE_DISTANCE

if TYPE_CHECKING:
    import pandas as pd

    from labeling.store import Store

Kind = Literal["exact", "near"]
REAL_LABEL = "REAL"
FRAME_COLUMNS = (
    "group_id",
    "kind",
    "leakage",
    "across_datasets",
    "group_size",
    "dataset",
    "label",
    "image_name",
    "image_id",
    "sha256",
    "max_phash_distance",
    "max_dhash_distance",
)


@dataclass(frozen=True)
class DuplicateImage:
    """One image of a duplicate group."""

    image_id: int
    dataset: str
    label: str  # the dataset's label as stored (REAL, GEN, any, or empty)
    name: str
    sha256: str | None

    @property
    def role(self) -> str:
        """The label compared for leakage: trimmed and upper-cased, empty when the dataset has none."""
        return self.label.strip().upper()


@dataclass(frozen=True)
class DuplicateGroup:
    """Images joined by exact or near pairs (transitively). `group_id` is the smallest image id."""

    group_id: int
    kind: Kind  # exact: every image has the same bytes; near: at least one pair only looks alike
    images: tuple[DuplicateImage, ...]
    max_phash_distance: int  # the largest distance of a pair that joined the group (0 for exact)
    max_dhash_distance: int

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(sorted({image.dataset for image in self.images}))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted({image.role for image in self.images if image.role}))

    @property
    def across_datasets(self) -> bool:
        return len(self.datasets) > 1

    @property
    def leakage(self) -> bool:
        """The same picture under two labels (a REAL image that is also in GEN)."""
        return len(self.labels) > 1

    @property
    def leaked_real(self) -> tuple[DuplicateImage, ...]:
        """The REAL images of a leaking group: each has a copy under another label."""
        return tuple(image for image in self.images if image.role == REAL_LABEL) if self.leakage else ()


@dataclass(frozen=True)
class DuplicateReport:
    """What one duplicate search over some datasets found."""

    datasets: tuple[str, ...]
    distance: int
    found_images: int  # found images of the datasets
    hashed_images: int  # of which the scan hashed (the only ones the search sees)
    unreadable_images: int  # of which the scan could not read: no hashes, ever
    groups: tuple[DuplicateGroup, ...]  # leakage first, then across datasets, then larger groups
    unlabelled: tuple[str, ...]  # datasets without a label: leakage cannot involve them

    def _within(self, kind: Kind) -> list[DuplicateGroup]:
        return [g for g in self.groups if g.kind == kind and not g.across_datasets]

    @property
    def exact_within(self) -> int:
        return len(self._within("exact"))

    @property
    def near_within(self) -> int:
        return len(self._within("near"))

    @property
    def across(self) -> int:
        return sum(1 for g in self.groups if g.across_datasets)

    @property
    def leakage_groups(self) -> int:
        return sum(1 for g in self.groups if g.leakage)

    @property
    def leaked_real_images(self) -> int:
        return sum(len(g.leaked_real) for g in self.groups)

    @property
    def extra_copies(self) -> int:
        """Images that could go while keeping one of each group."""
        return sum(len(g.images) - 1 for g in self.groups)

    def summary_lines(self) -> list[str]:
        """The summary a person reads, leakage first."""
        leaking = [g for g in self.groups if g.leakage]
        if leaking:
            labels = ", ".join(sorted({label for g in leaking for label in g.labels}))
            real = self.leaked_real_images
            lines = [
                f"LEAKAGE: {_count(len(leaking), 'group')} {'holds' if len(leaking) == 1 else 'hold'} the same "
                f"picture under different labels ({labels}); "
                f"{_count(real, 'REAL image')} {'has' if real == 1 else 'have'} a copy under another label."
            ]
        else:
            lines = ["No leakage: no picture appears under two labels."]
        for title, groups in (
            ("Exact duplicates within a dataset", self._within("exact")),
            ("Near duplicates within a dataset", self._within("near")),
            ("Duplicates across datasets", [g for g in self.groups if g.across_datasets]),
        ):
            lines.append(
                f"{title}: {_count(len(groups), 'group')} ({_count(sum(len(g.images) for g in groups), 'image')})"
            )
        lines.append(f"{_count(self.extra_copies, 'image')} could go while keeping one of each group.")
        unscanned = self.found_images - self.hashed_images - self.unreadable_images
        names = ", ".join(self.datasets)
        searched = f"Searched {self.hashed_images:,} of {self.found_images:,} found images of {names}"
        left = [f"{self.unreadable_images:,} unreadable"] if self.unreadable_images else []
        if unscanned > 0:
            left.append(f"{unscanned:,} not scanned yet: scan them first")
        if left:
            searched += f" ({'; '.join(left)})"
        lines.append(f"{searched}; near means pHash and dHash both within {self.distance} bits.")
        if self.unlabelled:
            lines.append(f"Datasets without a label (leakage cannot be judged): {', '.join(self.unlabelled)}.")
        return lines

    def group_lines(self, limit: int = 10) -> list[str]:
        """The first `limit` groups (leakage first), one line each: what a person looks at next."""
        lines = []
        for group in self.groups[:limit]:
            flag = "LEAKAGE " if group.leakage else ""
            distance = "" if group.kind == "exact" else f", pHash <= {group.max_phash_distance}"
            distance += "" if group.kind == "exact" else f", dHash <= {group.max_dhash_distance}"
            members = ", ".join(f"{image.dataset}/{image.name}" for image in group.images[:6])
            more = f" and {len(group.images) - 6:,} more" if len(group.images) > 6 else ""
            lines.append(f"  {flag}group {group.group_id} ({group.kind}{distance}): {members}{more}")
        if len(self.groups) > limit:
            lines.append(f"  ... and {_count(len(self.groups) - limit, 'more group')} (--csv FILE lists them all)")
        return lines

    def to_frame(self) -> pd.DataFrame:
        """One row per image of every group, in group order (FRAME_COLUMNS)."""
        import pandas as pd

        rows = [
            (
                g.group_id,
                g.kind,
                g.leakage,
                g.across_datasets,
                len(g.images),
                image.dataset,
                image.label,
                image.name,
                image.image_id,
                image.sha256,
                g.max_phash_distance,
                g.max_dhash_distance,
            )
            for g in self.groups
            for image in g.images
        ]
        return pd.DataFrame(rows, columns=list(FRAME_COLUMNS))

    def left_out(self) -> set[int]:
        """Image ids a debiased export leaves out: every image of a leaking group, and all but one of any other."""
        out: set[int] = set()
        for group in self.groups:
            ids = sorted(image.image_id for image in group.images)
            out.update(ids if group.leakage else ids[1:])
        return out

    def csv_bytes(self) -> bytes:
        """The groups as formula-safe CSV: image names come from outside and may start with `=`."""
        from labeling.spreadsheet import frame_csv

        return frame_csv(self.to_frame())


class _UnionFind:
    """Disjoint sets of image ids; a set's root is its smallest id, which becomes the group id."""

    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, item: int) -> int:
        parent = self.parent.setdefault(item, item)
        while parent != item:
            grand = self.parent[parent]
            self.parent[item] = grand  # path halving keeps later finds short
            item, parent = grand, self.parent[grand]
        return item

    def union(self, a: int, b: int) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            low, high = sorted((root_a, root_b))
            self.parent[high] = low


def group_pairs(
    exact: Iterable[tuple[int, int]], near: Iterable[tuple[int, int, int, int]]
) -> tuple[dict[int, list[int]], dict[int, tuple[int, int]]]:
    """Connected components of the pairs: {group id: sorted image ids} and {group id: (max pHash, max dHash)}."""
    sets = _UnionFind()
    near = list(near)
    for a, b in exact:
        sets.union(a, b)
    for a, b, _, _ in near:
        sets.union(a, b)
    members: dict[int, list[int]] = {}
    for item in list(sets.parent):
        members.setdefault(sets.find(item), []).append(item)
    distances = dict.fromkeys(members, (0, 0))
    for a, _, phash, dhash in near:
        root = sets.find(a)
        distances[root] = (max(distances[root][0], phash), max(distances[root][1], dhash))
    return {root: sorted(ids) for root, ids in members.items()}, distances


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _order(group: DuplicateGroup) -> tuple[bool, bool, int, int]:
    return (not group.leakage, not group.across_datasets, -len(group.images), group.group_id)


def check_distance(distance: int) -> int:
    if not 0 <= distance <= MAX_NEAR_DUPLICATE_DISTANCE:
        raise InputError(
            f"The near-duplicate distance must be 0..{MAX_NEAR_DUPLICATE_DISTANCE} bits (got {distance}); "
            "6 catches re-encodes, resizes and light edits."
        )
    return distance


def find_duplicates(store: Store, dataset_names: Sequence[str], distance: int, *, save: bool = True) -> DuplicateReport:
    """Group the exact and near duplicates of these datasets, within and across them; save the groups.

    Only images the scan hashed take part (`image_facts`); the report says how many had no hashes yet.
    """
    names = tuple(dict.fromkeys(name.strip() for name in dataset_names if name.strip()))
    if not names:
        raise InputError("Name at least one dataset to search for duplicates (for example REAL GEN).")
    check_distance(distance)
    datasets = [store.dataset(name) for name in names]  # NotFoundError names the known ones
    ids = [dataset.id for dataset in datasets]
    found, hashed, unreadable = store.hash_coverage(ids)
    if hashed == 0:
        raise InputError(
            f"None of the {found:,} found images of {', '.join(names)} has hashes yet: run "
            f"`labeling scan --dataset {names[0]}` for each dataset first."
        )
    exact, near = store.duplicate_pairs(ids, distance)
    components, distances = group_pairs(exact, near)
    grouped = [image_id for image_ids in components.values() for image_id in image_ids]
    members = {row[0]: DuplicateImage(*row) for row in store.duplicate_members(grouped)}
    groups = []
    for root, image_ids in components.items():
        images = tuple(members[i] for i in image_ids)
        shas = {image.sha256 for image in images}
        kind: Kind = "exact" if len(shas) == 1 and None not in shas else "near"
        groups.append(DuplicateGroup(root, kind, images, *distances[root]))
    groups.sort(key=_order)
    report = DuplicateReport(
        datasets=names,
        distance=distance,
        found_images=found,
        hashed_images=hashed,
        unreadable_images=unreadable,
        groups=tuple(groups),
        unlabelled=tuple(d.name for d in datasets if not d.label.strip()),
    )
    if save:
        store.replace_duplicate_groups(ids, _saved_rows(report))
    return report


def _saved_rows(report: DuplicateReport) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(
        [
            (image.image_id, group.group_id, group.kind, group.leakage, report.distance)
            for group in report.groups
            for image in group.images
        ],
        columns=["image_id", "group_id", "kind", "leakage", "distance"],
    )
