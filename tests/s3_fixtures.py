"""Fixtures for the S3 tests: one moto server subprocess per test process (pytest-xdist worker), dummy credentials.

Import the fixtures into a test module with `from tests.s3_fixtures import *  # noqa: F403`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from labeling.fake_s3 import DUMMY_KEY_ID, DUMMY_SECRET, LocalS3Server

BIG_BUCKET = "big-listing"
BIG_PREFIX = "datalake_training/REAL/"
BIG_COUNT = 2600
_EXTENSIONS = (".jpg", ".png", ".webp", ".JPG")
MIRROR_BUCKET = "mirror-seeded"
MIRROR_PREFIX = "mirror/REAL/"
MIRROR_COUNT = 400
MIRROR_SIZE = 20_000


def big_keys() -> list[str]:
    """2,600 keys under BIG_PREFIX in nested folders with mixed extensions (3 pages of 1,000)."""
    return [f"{BIG_PREFIX}part{i % 7}/{i % 13:02d}/img_{i:05d}{_EXTENSIONS[i % 4]}" for i in range(BIG_COUNT)]


def mirror_keys() -> list[str]:
    """400 keys of 20 kB under MIRROR_PREFIX, nested, some with non-ASCII names: enough to kill a mirror midway."""
    return [f"{MIRROR_PREFIX}{i % 5}/photo_{i:04d}{'_é' if i % 50 == 0 else ''}.jpg" for i in range(MIRROR_COUNT)]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3Server]:
    """A real moto S3 server on 127.0.0.1 and a free port, pre-seeded with the 2,600-key bucket."""
    log_file = tmp_path_factory.mktemp("moto") / "moto.log"
    seed = {BIG_BUCKET: [(key, 16) for key in big_keys()], MIRROR_BUCKET: [(key, MIRROR_SIZE) for key in mirror_keys()]}
    with LocalS3Server(log_file, seed=seed) as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_server: LocalS3Server) -> LocalS3Server:
    """Dummy credentials in the environment (boto3's chain), no developer AWS config, no instance metadata."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws_config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws_credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for variable in (
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "LABELING_S3_BUCKET",
    ):
        monkeypatch.delenv(variable, raising=False)
    return s3_server


@pytest.fixture
def bucket(aws_env: LocalS3Server) -> str:
    """A new empty bucket on the local server."""
    name = f"t-{uuid.uuid4().hex[:16]}"
    aws_env.client().create_bucket(Bucket=name)
    return name


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def error_response(code: str, status: int, message: str = "injected", **fields: str) -> AWSResponse:
    """An S3 XML error response, as a `before-send` handler returns it to botocore instead of sending."""
    extra = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items())
    body = (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>{message}</Message>"
        f"{extra}<RequestId>injected</RequestId></Error>"
    ).encode()
    return AWSResponse("http://injected", status, {"Content-Type": "application/xml"}, _Raw(body))
