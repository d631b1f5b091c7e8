"""S3 as an image source: listing a prefix, reading objects through a local cache, errors a user can act on.

Credentials come only from boto3's standard chain (profile, SSO, environment, instance role): nothing here asks
for keys or stores them. One client is created per source and shared by every thread (boto3 clients are
thread-safe; sessions are not), with a connection pool sized to the workers and botocore's `standard` retries,
which retry SlowDown, throttling, 5xx and dropped connections with exponential backoff.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
    SSOError,
    TokenRetrievalError,
)

from labeling.errors import InputError, SourceError
from labeling.files import write_atomically
from labeling.names import rejection_reason
from labeling.redact import without_userinfo
from labeling.sources import MAX_READ_BYTES, safe_join

if TYPE_CHECKING:
    from labeling.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_POOL = 10
MAX_ATTEMPTS = 8  # botocore standard mode: exponential backoff with jitter, capped at 20 s between attempts
_URI = re.compile(r"^s3://(?P<bucket>[^/]+)/?(?P<prefix>.*)$")

_EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired", "RequestExpired"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "AllAccessDisabled", "AccountProblem"})
_REGION_CODES = frozenset(
    {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301", "InvalidRegion"}
)
_BAD_KEY_CODES = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "InvalidClientTokenId"})
_THROTTLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "ServiceUnavailable",
        "503",
    }
)
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_TRANSPORT_ERRORS = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
    ResponseStreamingError,
)


class S3Error(SourceError):
    """An S3 failure explained in one line.

    `fatal` errors concern the whole run (credentials, permissions, bucket, region) and need a person;
    the others concern one object (`transient` ones may succeed when tried again later).
    """

    def __init__(self, message: str, *, code: str = "", fatal: bool = True, transient: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.fatal = fatal
        self.transient = transient


class S3Object(NamedTuple):
    """One object under the prefix: its key relative to the prefix, size in bytes and ETag.

    A NamedTuple: 100,000 of them are made per listing, at a fraction of a frozen dataclass' cost."""

    key: str
    size: int
    etag: str = ""


@dataclass(frozen=True)
class S3Blob:
    """The bytes of one object and the ETag they were read at."""

    data: bytes
    etag: str


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/prefix` as (bucket, prefix); InputError for anything else."""
    found = _URI.match(uri.strip())
    if not found or not found["bucket"]:
        raise InputError(
            f"{uri!r} is not an S3 URI: write it as s3://bucket/prefix/ (for example "
            "s3://my-bucket/datalake_training/REAL/)."
        )
    return found["bucket"], found["prefix"]


def normalize_prefix(prefix: str) -> str:
    """A prefix as a folder: no leading `/`, one trailing `/` (so `REAL` never also lists `REAL_old/`)."""
    prefix = prefix.strip().lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def key_problem(key: str) -> str | None:
    """Why a key relative to the prefix must never become a local path, or None when it is safe."""
    if not key:
        return "is empty"
    # Fast path for the common key (100,000 a listing): only `..`, a leading `/`, `\\`, a drive or a control
    # character can make a key unsafe; anything that has one gets the full check.
    if ".." not in key and key[0] != "/" and "\\" not in key and ":" not in key[:2] and key.isprintable():
        return None
    return rejection_reason(key)


def s3_source(
    bucket: str,
    prefix: str,
    settings: Settings,
    *,
    profile: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    workers: int | None = None,
) -> S3Source:
    """The one way an S3Source is made from what a user chose (a flag, a form, a stored dataset): each option
    left empty falls back to settings (config.yaml, environment); the pool fits `workers` threads."""
    return S3Source(
        bucket,
        prefix,
        profile=profile or settings.aws_profile or None,
        region=region or settings.aws_region or None,
        endpoint_url=configured_endpoint(
            endpoint_url if endpoint_url != settings.s3_endpoint_url else None, settings.s3_endpoint_url
        ),
        cache_dir=settings.cache_dir,
        max_pool_connections=max(10, workers or settings.num_workers),
    )


def configured_endpoint(explicit: str | None, configured: str | None) -> str | None:
    """The endpoint to pass to boto3: a flag or config value, but None when the value only came from
    AWS_ENDPOINT_URL, so boto3 resolves it itself (AWS_ENDPOINT_URL_S3 and profile `endpoint_url` keep their
    precedence, as with the AWS CLI)."""
    if explicit:
        return explicit
    if configured and configured != os.environ.get("AWS_ENDPOINT_URL"):
        return configured
    return None


def _profile_label(profile: str | None) -> str:
    return profile or os.environ.get("AWS_PROFILE") or "default"


def _login_hint(profile: str | None) -> str:
    name = profile or os.environ.get("AWS_PROFILE")
    return f"aws sso login --profile {name}" if name else "aws sso login"


def describe_error(
    exc: BaseException,
    *,
    bucket: str,
    key: str | None = None,
    profile: str | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
) -> S3Error:
    """Turn a boto3/botocore exception into one line that says what to do. Unknown errors keep their text."""
    where = f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}"
    who = _profile_label(profile)
    if isinstance(exc, S3Error):
        return exc
    if isinstance(exc, SSOError | TokenRetrievalError):
        return S3Error(
            f"The AWS SSO session for profile {who} expired: run `{_login_hint(profile)}`, then run the "
            "same command again (finished files are kept).",
            code="SSOExpired",
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return S3Error(
            f"No AWS credentials found for profile {who}: run `{_login_hint(profile)}` or "
            "`aws configure`, or pass --profile / set AWS_PROFILE.",
            code="NoCredentials",
        )
    if isinstance(exc, ProfileNotFound):
        return S3Error(
            f"The AWS profile {who!r} is not in your AWS config (~/.aws/config): check --profile / "
            "AWS_PROFILE, or create it with `aws configure sso`.",
            code="ProfileNotFound",
        )
    if isinstance(exc, CredentialRetrievalError):
        return S3Error(
            f"AWS credentials for profile {who} could not be loaded ({exc}): log in again "
            f"(`{_login_hint(profile)}`) and retry.",
            code="CredentialRetrieval",
        )
    if isinstance(exc, _TRANSPORT_ERRORS):
        target = endpoint_url or "S3"
        return S3Error(
            f"Cannot reach {target} for {where} ({exc.__class__.__name__}): check the network and "
            "--endpoint-url, then run again.",
            code=exc.__class__.__name__,
            fatal=False,
            transient=True,
        )
    if isinstance(exc, ClientError):
        return _describe_client_error(exc, where=where, bucket=bucket, who=who, profile=profile, region=region)
    if isinstance(exc, BotoCoreError):
        return S3Error(f"S3 request for {where} failed: {exc}", code=exc.__class__.__name__)
    return S3Error(
        f"S3 request for {where} failed: {exc.__class__.__name__}: {exc}",
        code=exc.__class__.__name__,
        fatal=False,
        transient=True,
    )


def _describe_client_error(
    exc: ClientError, *, where: str, bucket: str, who: str, profile: str | None, region: str | None
) -> S3Error:
    error: dict[str, Any] = dict(exc.response.get("Error", {}))
    code = str(error.get("Code", ""))
    metadata = exc.response.get("ResponseMetadata", {})
    status = int(metadata.get("HTTPStatusCode", 0) or 0)
    if code in _EXPIRED_CODES:
        return S3Error(
            f"The AWS session token for profile {who} expired: run `{_login_hint(profile)}` (or refresh "
            "your credentials), then run the same command again.",
            code=code,
        )
    if code in _BAD_KEY_CODES:
        return S3Error(
            f"AWS rejected the credentials of profile {who} ({code}): they are wrong, revoked or for "
            f"another endpoint; log in again (`{_login_hint(profile)}`) or fix the profile.",
            code=code,
        )
    if code in _DENIED_CODES:
        return S3Error(
            f"Access to {where} is denied for profile {who}: ask for s3:ListBucket and s3:GetObject on "
            f"bucket {bucket}, or use a profile that has them (--profile).",
            code=code,
        )
    if code == "NoSuchBucket":
        return S3Error(
            f"The bucket {bucket!r} does not exist (at this endpoint): check --bucket or the S3 URI.", code=code
        )
    if code in _REGION_CODES:
        headers = metadata.get("HTTPHeaders", {})
        actual = error.get("Region") or headers.get("x-amz-bucket-region") or ""
        hint = f"pass --region {actual}" if actual else "pass the bucket's --region"
        return S3Error(
            f"The bucket {bucket!r} is in another region than {region or 'the default region'}: {hint}.", code=code
        )
    if code in _THROTTLE_CODES:
        return S3Error(
            f"S3 kept throttling requests for {where} ({code}) even after retries with backoff: "
            "lower --num-workers and run again.",
            code=code,
            fatal=False,
            transient=True,
        )
    if code in _MISSING_KEY_CODES:
        return S3Error(f"{where} does not exist (any more): analyze again to refresh the list.", code=code, fatal=False)
    if status >= 500 or code in {"InternalError", "RequestTimeout"}:
        return S3Error(
            f"S3 failed on {where} ({code or status}) even after retries: run again later.",
            code=code,
            fatal=False,
            transient=True,
        )
    message = error.get("Message") or str(exc)
    return S3Error(f"S3 refused the request for {where} ({code}: {message}).", code=code, fatal=False)


class S3Source:
    """Images under `s3://bucket/prefix`, read with boto3; keys are relative to the prefix.

    With `cache_dir`, `read()` is read-through: an object fetched once is kept at
    `cache_dir/s3/[endpoint/]bucket/key` (written atomically) and never fetched again.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        max_pool_connections: int = DEFAULT_POOL,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        if not bucket.strip():
            raise InputError("Give the S3 bucket (--bucket, the S3 URI, or `s3.bucket` in config.yaml).")
        self.bucket = bucket.strip()
        self.prefix = normalize_prefix(prefix)
        self.profile = profile or None
        self.region = region or None
        self.endpoint_url = endpoint_url or None
        self.max_pool_connections = max(1, max_pool_connections)
        self.max_attempts = max_attempts
        self.cache_root = self._cache_root(Path(cache_dir)) if cache_dir else None
        self._client: Any = None
        self._lock = threading.Lock()

    @classmethod
    def from_uri(cls, uri: str, **options: Any) -> S3Source:
        bucket, prefix = parse_s3_uri(uri)
        return cls(bucket, prefix, **options)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def options(self) -> dict[str, str]:
        """Profile, region and endpoint as stored with a dataset: never credentials."""
        endpoint = without_userinfo(self.endpoint_url) if self.endpoint_url else None
        values = {"profile": self.profile, "region": self.region, "endpoint_url": endpoint}
        return {name: value for name, value in values.items() if value}

    def _cache_root(self, cache_dir: Path) -> Path:
        root = cache_dir / "s3"
        if self.endpoint_url:
            # Two stores may hold buckets of the same name: keep their caches apart.
            host = urlsplit(without_userinfo(self.endpoint_url)).netloc or self.endpoint_url
            root = root / re.sub(r"[^A-Za-z0-9._-]", "_", host)
        return root / self.bucket

    @property
    def client(self) -> Any:
        """The one boto3 S3 client of this source, created on first use and shared by every thread."""
        if self._client is not None:
            return self._client
        with self._lock:
            if self._client is None:
                try:
                    session = boto3.session.Session(profile_name=self.profile, region_name=self.region)
                    self._client = session.client(
                        "s3",
                        endpoint_url=self.endpoint_url,
                        config=Config(
                            max_pool_connections=self.max_pool_connections,
                            retries={"mode": "standard", "max_attempts": self.max_attempts},
                            connect_timeout=10,
                            read_timeout=60,
                        ),
                    )
                except Exception as exc:
                    raise self.error(exc) from None
            return self._client

    def error(self, exc: BaseException, key: str | None = None) -> S3Error:
        """`exc` explained for this source (`key` relative to the prefix)."""
        return describe_error(
            exc,
            bucket=self.bucket,
            key=None if key is None else self.prefix + key,
            profile=self.profile,
            region=self.region,
            endpoint_url=self.endpoint_url,
        )

    def list_objects(self) -> Iterator[S3Object]:
        """Every object under the prefix, recursively, 1,000 a page; folder markers are skipped."""
        client = self.client
        start = len(self.prefix)
        try:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                for item in page.get("Contents", ()):
                    key = item["Key"][start:]
                    if key and not key.endswith("/"):
                        yield S3Object(key, int(item.get("Size", 0)), str(item.get("ETag", "")).strip('"'))
        except Exception as exc:
            raise self.error(exc) from None

    def list_keys(self) -> Iterator[str]:
        """Keys relative to the prefix. Keys that could not become a local path (`..`, absolute) are skipped."""
        for item in self.list_objects():
            problem = key_problem(item.key)
            if problem:
                log.warning("Skipped the S3 key %r under %s: it %s.", item.key, self.uri, problem)
                continue
            yield item.key

    def get(self, key: str) -> S3Blob:
        """Fetch one object (no cache)."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            size = int(response.get("ContentLength") or 0)
            if size > MAX_READ_BYTES:  # never read a file that size into memory
                response["Body"].close()
                raise S3Error(
                    f"s3://{self.bucket}/{self.prefix}{key} is {size / 2**20:,.0f} MiB, over the limit of "
                    f"{MAX_READ_BYTES / 2**20:,.0f} MiB for one image: downscale it.",
                    fatal=False,
                )
            data = response["Body"].read()
        except S3Error:
            raise
        except Exception as exc:
            raise self.error(exc, key) from None
        return S3Blob(data, str(response.get("ETag", "")).strip('"'))

    def cache_path(self, key: str) -> Path | None:
        """Where `key` is kept in the local cache (None without a cache); refuses keys that would escape it."""
        if self.cache_root is None:
            return None
        return safe_join(self.cache_root, self.prefix + key)

    def read(self, key: str) -> bytes:
        """The object's bytes: from the local cache when present, else fetched once and cached."""
        path = self.cache_path(key)
        if path is not None:
            try:
                return path.read_bytes()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("Cannot read the cached copy %s (%s): fetching it again.", path, exc.strerror)
        data = self.get(key).data
        if path is not None:
            try:
                write_atomically(path, data)
            except OSError as exc:  # a full or read-only cache must not fail the read
                log.warning("Cannot cache %s at %s (%s).", key, path, exc.strerror)
        return data

    def check(self) -> None:
        """One cheap request that fails with the same clear errors as a listing would."""
        try:
            self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        except S3Error:
            raise
        except Exception as exc:
            raise self.error(exc) from None
