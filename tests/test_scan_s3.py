"""The scan reads S3 datasets through the same source as captioning: a real boto3 client to a local moto server."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import duckdb

from labeling.fake_s3 import LocalS3Server
from tests.conftest import image_bytes
from tests.s3_fixtures import *  # noqa: F403
from tests.test_s3 import put


def test_an_s3_dataset_is_scanned_once_and_a_bad_object_fails_alone(
    aws_env: LocalS3Server, bucket: str, run_cli: Any, db_path: Path
) -> None:
    jpeg = image_bytes((64, 48), (10, 200, 10))
    put(aws_env, bucket, {"GEN/a.jpg": jpeg, "GEN/b.png": image_bytes(fmt="PNG"), "GEN/c.jpg": b"not an image"})
    imported = run_cli(
        "import", "--dataset", "GEN", "--s3-uri", f"s3://{bucket}/GEN/", "--endpoint-url", aws_env.endpoint
    )
    assert imported.code == 0, imported.err
    first = run_cli("scan", "--dataset", "GEN")
    assert first.code == 0, first.err
    assert "Scanned 3 of 3 images of GEN" in first.out and "(1 without facts" in first.out
    with duckdb.connect(str(db_path), read_only=True) as con:
        rows = dict(
            con.execute(
                "SELECT i.name, f.sha256 FROM image_facts f JOIN images i ON i.id = f.image_id WHERE f.error IS NULL"
            ).fetchall()
        )
    assert rows == {"a.jpg": hashlib.sha256(jpeg).hexdigest(), "b.png": rows["b.png"]}
    start = aws_env.log_size()
    again = run_cli("scan", "--dataset", "GEN")
    assert "Scanned 0 of 0 images of GEN" in again.out and "3 already scanned" in again.out
    assert aws_env.object_gets(bucket, start) == []  # nothing fetched again
