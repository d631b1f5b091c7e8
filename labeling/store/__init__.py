"""The DuckDB store: it owns every SQL statement. Verbs are grouped by noun in mixins over `StoreBase`."""

from __future__ import annotations

from collections.abc import Callable

from labeling.categories import Category
from labeling.store.analytics import AnalyticsQueries
from labeling.store.annotations import AnnotationQueries
from labeling.store.base import StoreBase
from labeling.store.batches import BatchQueries
from labeling.store.categories import CategoryQueries
from labeling.store.datasets import DatasetQueries
from labeling.store.duplicates import DuplicateQueries
from labeling.store.facts import FactsQueries
from labeling.store.mirror import MirrorQueries
from labeling.store.review import ReviewQueries
from labeling.store.runs import RunQueries


class Store(
    DatasetQueries,
    AnnotationQueries,
    RunQueries,
    CategoryQueries,
    MirrorQueries,
    AnalyticsQueries,
    ReviewQueries,
    FactsQueries,
    DuplicateQueries,
    BatchQueries,
):
    """One DuckDB file with every dataset, annotation, human label and run. Safe to share between threads."""

    def _derived_syncs(self) -> list[Callable[[], object]]:
        return [self.sync_label_tally, self.sync_review_text]


__all__ = ["Category", "Store", "StoreBase"]
