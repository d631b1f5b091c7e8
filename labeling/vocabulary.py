"""The words core, pages, CLI and exports share: each defined once, with one meaning and one display label.

Imports nothing heavy: the CLI builds its argument choices from here before any command runs.
"""

from __future__ import annotations

from typing import Literal

from labeling.errors import InputError

MODES = ("fused", "two-pass", "categorize")  # how a captioning run asks the model
RUN_KINDS = (*MODES, "mirror")  # the runs a process works on: left running by a dead one, they are interrupted
IMAGE_STATUSES = ("found", "missing", "ambiguous", "rejected", "unlinked")
RUN_STATUSES = ("running", "paused", "cancelled", "completed", "failed", "interrupted")
EXPORT_FORMATS = ("csv", "parquet")

# Whose labels a view, chart or export counts. `human` is the same everywhere: images a reviewer marked
# reviewed, with the categories they accepted (theirs where set, else the model's they left standing).
LabelSource = Literal["effective", "model", "human"]
LABEL_SOURCES: tuple[LabelSource, ...] = ("effective", "model", "human")
SOURCE_TITLES: dict[str, str] = {
    "effective": "Effective (human over model)",
    "model": "Model",
    "human": "Human-reviewed only",
}  # widget options
SOURCE_TEXT: dict[str, str] = {
    "effective": "effective labels, human where set and model elsewhere",
    "model": "model labels",
    "human": "human labels, reviewed images only",
}  # inside a sentence


def checked_source(source: str) -> LabelSource:
    """`source` as a LabelSource; InputError naming the choices when it is none of them."""
    for known in LABEL_SOURCES:
        if source == known:
            return known
    raise InputError(f"Unknown label source {source!r}: use one of {', '.join(LABEL_SOURCES)}.")


# Defaults the CLI shows in --help before any command module loads.
CATEGORY_IMPORT_MODES = ("replace", "add")  # what importing a category list does to the list in force
MIRROR_WORKERS = 16  # parallel S3 downloads
DATALAKE_PREFIX_TEMPLATE = "datalake_training/{label}/"  # the seed's batch-download layout
SUGGEST_SAMPLE = 60  # descriptions sent when asking the model for categories
SUGGEST_PROPOSALS = 15
