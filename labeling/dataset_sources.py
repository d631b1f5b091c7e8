"""The image source of a stored dataset: its folder, its S3 prefix (through the local cache), or none.

Here, not in `sources` or `s3`, so those two stay independent: `s3` builds on `sources`, never the reverse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labeling.sources import ImageSource, LocalFolderSource

if TYPE_CHECKING:
    from labeling.records import Dataset
    from labeling.settings import Settings


def source_for_dataset(dataset: Dataset, settings: Settings) -> ImageSource | None:
    """The source a stored dataset reads from, or None; settings fill the S3 options the dataset left empty."""
    if dataset.source_kind == "local" and dataset.source_uri:
        return LocalFolderSource(dataset.source_uri)
    if dataset.source_kind == "s3" and dataset.source_uri:
        from labeling.s3 import parse_s3_uri, s3_source  # boto3 loads only for S3 datasets

        bucket, prefix = parse_s3_uri(dataset.source_uri)
        options = dataset.source_options
        return s3_source(
            bucket,
            prefix,
            settings,
            profile=options.get("profile"),
            region=options.get("region"),
            endpoint_url=options.get("endpoint_url"),
            workers=settings.num_workers,
        )
    return None
