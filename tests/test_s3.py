"""S3 sources, analysis, S3 datasets and error messages, against a real moto server through real boto3."""

from __future__ import annotations

import datetime
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import UnauthorizedSSOTokenError

from labeling.dataset_sources import source_for_dataset
from labeling.errors import InputError, SourceError
from labeling.fake_s3 import LocalS3Server, object_body
from labeling.names import parse_name_list
from labeling.s3 import S3Error, S3Source, normalize_prefix, parse_s3_uri
from labeling.s3_analysis import analyze, import_s3_dataset
from labeling.settings import load_settings
from labeling.store import Store
from tests import s3_fixtures
from tests.conftest import image_bytes
from tests.s3_fixtures import BIG_BUCKET, BIG_COUNT, BIG_PREFIX, big_keys, error_response

# The S3 fixtures, used by name below.
aws_env, bucket, s3_server = s3_fixtures.aws_env, s3_fixtures.bucket, s3_fixtures.s3_server


def put(server: LocalS3Server, bucket: str, objects: dict[str, bytes]) -> None:
    client = server.client()
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)


def source(server: LocalS3Server, bucket: str, prefix: str = "", **options: Any) -> S3Source:
    return S3Source(bucket, prefix, endpoint_url=server.endpoint, **options)


def names(*listed: str) -> Any:
    return parse_name_list("\n".join(listed).encode())


def test_uri_and_prefix_parsing() -> None:
    assert parse_s3_uri("s3://bkt/datalake_training/REAL/") == ("bkt", "datalake_training/REAL/")
    assert parse_s3_uri("s3://bkt") == ("bkt", "")
    assert normalize_prefix("/datalake_training/REAL") == "datalake_training/REAL/"
    assert normalize_prefix("") == ""
    with pytest.raises(InputError, match="not an S3 URI"):
        parse_s3_uri("bkt/prefix")


def test_lists_nested_keys_relative_to_the_prefix(aws_env: LocalS3Server, bucket: str) -> None:
    put(
        aws_env,
        bucket,
        {
            "data/REAL/a.jpg": b"1",
            "data/REAL/sub/b.PNG": b"22",
            "data/REAL/sub/deeper/c.webp": b"333",
            "data/REAL/café/日本 photo.jpg": b"4444",
            "data/REAL/notes.txt": b"n",
            "data/REAL/folder/": b"",
            "data/REAL_old/x.jpg": b"x",
            "other/y.jpg": b"y",
        },
    )
    s3 = source(aws_env, bucket, "data/REAL")  # no trailing slash: still only the folder, never REAL_old/
    assert s3.uri == f"s3://{bucket}/data/REAL/"
    assert sorted(s3.list_keys()) == ["a.jpg", "café/日本 photo.jpg", "notes.txt", "sub/b.PNG", "sub/deeper/c.webp"]
    sizes = {item.key: item.size for item in s3.list_objects()}
    assert sizes["café/日本 photo.jpg"] == 4
    assert s3.read("café/日本 photo.jpg") == b"4444"


def test_lists_every_page_of_2600_keys(aws_env: LocalS3Server) -> None:
    s3 = source(aws_env, BIG_BUCKET, BIG_PREFIX)
    keys = list(s3.list_keys())
    assert len(keys) == BIG_COUNT == len(set(keys))
    assert sorted(BIG_PREFIX + key for key in keys) == sorted(big_keys())
    # Listed with one extension, stored with another: matched by stem, as the seed did.
    wanted = [f"img_{i:05d}.jpg" for i in range(0, BIG_COUNT, 2)] + ["img_99999.jpg"]
    analysis = analyze(s3, names(*wanted))
    assert analysis.listed_objects == BIG_COUNT
    assert len(analysis.available) == BIG_COUNT // 2
    assert analysis.missing == ["img_99999.jpg"]
    assert analysis.bytes_available == 16 * (BIG_COUNT // 2)


def test_analysis_counts_every_case(aws_env: LocalS3Server, bucket: str, tmp_path: Path) -> None:
    put(
        aws_env,
        bucket,
        {
            "p/exact.jpg": b"e" * 10,
            "p/nested/stem.png": b"s" * 20,
            "p/a/twin.jpg": b"t" * 5,
            "p/b/twin.png": b"t" * 6,  # listed as twin.gif: two stems, ambiguous
            "p/local_ok.jpg": b"l" * 7,
            "p/local_wrong_size.jpg": b"w" * 8,
            "p/../escape.jpg": b"x",
            "p//rooted.jpg": b"r",
        },
    )
    out = tmp_path / "REAL"
    (out / "local_ok.jpg").parent.mkdir(parents=True)
    (out / "local_ok.jpg").write_bytes(b"l" * 7)
    (out / "local_wrong_size.jpg").write_bytes(b"w" * 3)  # a half file from another tool: fetched again
    listed = names(
        "exact.jpg",
        "stem.jpg",
        "twin.gif",
        "local_ok.jpg",
        "local_wrong_size.jpg",
        "absent.jpg",
        "escape.jpg",
        "../up.jpg",
        "/etc/passwd",
        "exact.jpg",
    )
    analysis = analyze(source(aws_env, bucket, "p/"), listed, output_dir=out)
    counts = analysis.counts()
    assert counts["listed_objects"] == 8
    assert counts["names_listed"] == 9 and counts["duplicates"] == 1
    assert {item.name: item.key for item in analysis.available} == {
        "exact.jpg": "exact.jpg",
        "stem.jpg": "nested/stem.png",
        "local_ok.jpg": "local_ok.jpg",
        "local_wrong_size.jpg": "local_wrong_size.jpg",
    }
    assert analysis.missing == ["absent.jpg"]
    assert analysis.ambiguous == {"twin.gif": ["a/twin.jpg", "b/twin.png"]}
    rejected = dict(analysis.rejected)
    assert set(rejected) == {"../up.jpg", "/etc/passwd", "escape.jpg"}
    assert "../escape.jpg" in rejected["escape.jpg"]
    assert sorted(key for key, _ in analysis.refused_keys) == ["../escape.jpg", "/rooted.jpg"]
    assert [item.key for item in analysis.already_local] == ["local_ok.jpg"]
    assert sorted(item.key for item in analysis.to_fetch) == ["exact.jpg", "local_wrong_size.jpg", "nested/stem.png"]
    assert analysis.bytes_to_fetch == 10 + 20 + 8
    problems = analysis.problems_frame()
    assert sorted(problems["status"].unique()) == ["ambiguous", "missing", "refused key", "rejected"]
    assert any("ambiguous: twin.gif" in line for line in analysis.summary_lines())


def test_no_list_means_every_image_under_the_prefix(aws_env: LocalS3Server, bucket: str) -> None:
    put(aws_env, bucket, {"p/a.jpg": b"a", "p/s/b.png": b"b", "p/readme.txt": b"r", "p/../c.jpg": b"c"})
    analysis = analyze(source(aws_env, bucket, "p"), None)
    assert sorted(item.key for item in analysis.available) == ["a.jpg", "s/b.png"]
    assert [key for key, _ in analysis.refused_keys] == ["../c.jpg"]


def test_s3_dataset_reads_through_the_cache(
    aws_env: LocalS3Server, bucket: str, tmp_path: Path, run_cli: Any, db_path: Path
) -> None:
    jpeg = image_bytes((40, 30), (10, 200, 10))
    put(
        aws_env,
        bucket,
        {"imgs/REAL/one.jpg": jpeg, "imgs/REAL/sub/two.png": image_bytes(fmt="PNG"), "imgs/REAL/../evil.jpg": b"x"},
    )
    csv_file = tmp_path / "real.csv"
    csv_file.write_text("image_name\none.jpg\ntwo.jpg\nthree.jpg\nevil.jpg\n")
    result = run_cli(
        "import",
        "--dataset",
        "REAL_S3",
        "--label",
        "REAL",
        "--csv-file",
        str(csv_file),
        "--s3-uri",
        f"s3://{bucket}/imgs/REAL/",
        "--endpoint-url",
        aws_env.endpoint,
        "--json",
    )
    assert result.code == 0, result.err
    report = json.loads(result.out)
    # evil.jpg's only key leaves the prefix: an S3 dataset never records it as found.
    assert (report["found"], report["missing"]) == (2, 2)

    listing = run_cli("datasets", "--json")
    row = next(item for item in json.loads(listing.out) if item["name"] == "REAL_S3")
    assert (row["source_kind"], row["source_uri"]) == ("s3", f"s3://{bucket}/imgs/REAL/")

    with Store(db_path) as store:
        dataset = store.dataset("REAL_S3")
        locations = dict(store.images_with_status(int(dataset.id), "found")[["name", "location"]].values)
    assert dataset.source_options["endpoint_url"] == aws_env.endpoint
    assert set(dataset.source_options) <= {"profile", "region", "endpoint_url"}  # never credentials
    assert "testing" not in json.dumps(dataset.source_options)
    assert locations == {"one.jpg": "one.jpg", "two.jpg": "sub/two.png"}

    settings = load_settings()  # cache_dir is the test's temp dir (conftest)
    start = aws_env.log_size()
    first = source_for_dataset(dataset, settings)
    assert first is not None and first.read("one.jpg") == jpeg
    again = source_for_dataset(dataset, settings)  # a new source, as a re-run or the review page would make
    assert again is not None and again.read("one.jpg") == jpeg
    assert aws_env.object_gets(bucket, start) == ["imgs/REAL/one.jpg"]  # fetched once, then from the cache
    cached = list(Path(settings.cache_dir, "s3").rglob("one.jpg"))
    assert len(cached) == 1 and cached[0].read_bytes() == jpeg


def test_import_after_analysis_does_not_list_again(aws_env: LocalS3Server, bucket: str, store: Store) -> None:
    put(aws_env, bucket, {"p/a.jpg": b"a", "p/b.jpg": b"b"})
    s3 = source(aws_env, bucket, "p/", profile=None, region="us-east-1")
    objects = list(s3.list_objects())
    start = aws_env.log_size()
    report = import_s3_dataset(store, "S", s3, csv_data=b"a.jpg\nb.jpg\nc.jpg\n", objects=objects)
    assert (report.found, report.missing) == (2, 1)
    assert aws_env.requests(start) == []
    assert store.dataset("S").source_options == {"region": "us-east-1", "endpoint_url": aws_env.endpoint}


# ---- errors: each one clear line -------------------------------------------------------------------------------


def _expired_sso_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, profile: str) -> None:
    """A real SSO profile whose cached login expired yesterday: botocore itself raises the error."""
    start_url = "https://example.awsapps.com/start"
    config = tmp_path / "aws_config_sso"
    config.write_text(
        f"[profile {profile}]\nsso_start_url = {start_url}\nsso_region = us-east-1\n"
        "sso_account_id = 123456789012\nsso_role_name = Reader\nregion = us-east-1\n"
    )
    home = tmp_path / "home"
    cache = home / ".aws" / "sso" / "cache"
    cache.mkdir(parents=True)
    expired = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    token = {"startUrl": start_url, "region": "us-east-1", "accessToken": "old", "expiresAt": expired}
    (cache / f"{hashlib.sha1(start_url.encode()).hexdigest()}.json").write_text(json.dumps(token))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("HOME", str(home))
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable)


def test_expired_sso_session_says_to_log_in(
    aws_env: LocalS3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    _expired_sso_profile(monkeypatch, tmp_path, "research")
    with pytest.raises(S3Error) as raised:
        source(aws_env, bucket, "p/", profile="research").check()
    assert str(raised.value).startswith(
        "The AWS SSO session for profile research expired: run `aws sso login --profile research`"
    )
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("a.jpg\n")
    result = run_cli(
        "download",
        "--csv-file",
        str(csv_file),
        "--output-dir",
        str(tmp_path / "out"),
        "--s3-prefix",
        "p/",
        "--bucket",
        bucket,
        "--profile",
        "research",
        "--endpoint-url",
        aws_env.endpoint,
        "--auto-confirm",
    )
    assert result.code == 1
    assert result.err.count("\n") == 1 and "aws sso login --profile research" in result.err
    assert "Traceback" not in result.err


def test_sso_error_raised_mid_call_is_explained(aws_env: LocalS3Server, bucket: str) -> None:
    s3 = source(aws_env, bucket, "p/", profile=None)

    def expire(**_: Any) -> None:
        raise UnauthorizedSSOTokenError()

    s3.client.meta.events.register("before-call.s3.GetObject", expire)
    with pytest.raises(S3Error, match=r"SSO session .* expired: run `aws sso login`") as raised:
        s3.read("a.jpg")
    assert raised.value.fatal


def test_no_credentials(aws_env: LocalS3Server, bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(S3Error, match="No AWS credentials found for profile default: run `aws sso login`"):
        list(source(aws_env, bucket, "p/").list_keys())


def test_unknown_profile(aws_env: LocalS3Server, bucket: str) -> None:
    with pytest.raises(S3Error, match="The AWS profile 'nobody' is not in your AWS config"):
        source(aws_env, bucket, profile="nobody").check()


def test_no_such_bucket(aws_env: LocalS3Server) -> None:
    with pytest.raises(S3Error, match="The bucket 'no-such-bucket-here' does not exist"):
        list(source(aws_env, "no-such-bucket-here").list_keys())


@pytest.mark.parametrize(
    ("code", "status", "fields", "expected"),
    [
        ("AccessDenied", 403, {}, "Access to s3://{bucket} is denied for profile default: ask for s3:ListBucket"),
        (
            "AuthorizationHeaderMalformed",
            400,
            {"Region": "eu-west-1"},
            "is in another region .* pass --region eu-west-1",
        ),
        ("PermanentRedirect", 301, {"Endpoint": "x.s3.eu-west-1.amazonaws.com"}, "is in another region"),
        ("InvalidAccessKeyId", 403, {}, "AWS rejected the credentials of profile default \\(InvalidAccessKeyId\\)"),
        ("SignatureDoesNotMatch", 403, {}, "AWS rejected the credentials"),
        ("ExpiredToken", 400, {}, "The AWS session token for profile default expired: run `aws sso login`"),
    ],
)
def test_injected_errors_become_one_clear_line(
    aws_env: LocalS3Server, bucket: str, code: str, status: int, fields: dict[str, str], expected: str
) -> None:
    s3 = source(aws_env, bucket, "p/")
    s3.client.meta.events.register("before-send.s3.ListObjectsV2", lambda **_: error_response(code, status, **fields))
    with pytest.raises(S3Error, match=expected.format(bucket=bucket)) as raised:
        list(s3.list_keys())
    assert raised.value.fatal and "\n" not in str(raised.value)


def test_slowdown_is_retried_with_backoff(aws_env: LocalS3Server, bucket: str) -> None:
    put(aws_env, bucket, {"p/a.jpg": b"bytes"})
    s3 = source(aws_env, bucket, "p/")
    attempts: list[int] = []

    def throttle_twice(**_: Any) -> Any:
        attempts.append(1)
        return error_response("SlowDown", 503, "Please reduce your request rate.") if len(attempts) <= 2 else None

    s3.client.meta.events.register("before-send.s3.GetObject", throttle_twice)
    assert s3.read("a.jpg") == b"bytes"
    assert len(attempts) == 3


def test_endless_slowdown_gives_up_with_advice(aws_env: LocalS3Server, bucket: str) -> None:
    s3 = source(aws_env, bucket, "p/", max_attempts=2)
    s3.client.meta.events.register("before-send.s3.GetObject", lambda **_: error_response("SlowDown", 503))
    with pytest.raises(S3Error, match=r"kept throttling .* lower --num-workers") as raised:
        s3.read("a.jpg")
    assert raised.value.transient and not raised.value.fatal


def test_missing_object_and_unsafe_cache_key(aws_env: LocalS3Server, bucket: str, tmp_path: Path) -> None:
    s3 = source(aws_env, bucket, "p/", cache_dir=tmp_path / "cache")
    with pytest.raises(S3Error, match="does not exist") as raised:
        s3.read("nothing.jpg")
    assert not raised.value.fatal
    with pytest.raises(SourceError, match="Refused"):
        s3.read("../../outside.jpg")
    assert not (tmp_path / "outside.jpg").exists()


def test_seeded_bytes_are_served(aws_env: LocalS3Server) -> None:
    key = big_keys()[7]
    s3 = source(aws_env, BIG_BUCKET, BIG_PREFIX)
    assert s3.read(key[len(BIG_PREFIX) :]) == object_body(key, 16)


def test_aws_endpoint_url_is_honoured_as_boto3_does(
    aws_env: LocalS3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run_cli: Any
) -> None:
    put(aws_env, bucket, {"p/a.jpg": b"a"})
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env.endpoint)
    assert list(S3Source(bucket, "p/").list_keys()) == ["a.jpg"]
    result = run_cli("analyze-s3", "--s3-prefix", f"s3://{bucket}/p/", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["available"] == 1
    # AWS_ENDPOINT_URL_S3 outranks AWS_ENDPOINT_URL in boto3: the settings' copy of the latter must not win.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", aws_env.endpoint)
    assert run_cli("analyze-s3", "--s3-prefix", f"s3://{bucket}/p/", "--json").code == 0


def test_analyze_s3_cli_writes_the_full_problem_list(
    aws_env: LocalS3Server, bucket: str, tmp_path: Path, run_cli: Any
) -> None:
    put(aws_env, bucket, {"p/a.jpg": b"a"})
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("a.jpg\n" + "".join(f"gone_{i}.jpg\n" for i in range(30)))
    problems = tmp_path / "problems.csv"
    result = run_cli(
        "analyze-s3",
        "--s3-prefix",
        "p/",
        "--bucket",
        bucket,
        "--csv-file",
        str(csv_file),
        "--endpoint-url",
        aws_env.endpoint,
        "--problems-csv",
        str(problems),
    )
    assert result.code == 0, result.err
    assert "missing                       30" in result.out and "and 20 more" in result.out
    assert len(problems.read_text().splitlines()) == 31


def test_an_object_over_the_size_cap_is_refused_before_it_is_read(
    aws_env: LocalS3Server, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import labeling.s3
    import labeling.sources
    from labeling.sources import LocalFolderSource

    monkeypatch.setattr(labeling.s3, "MAX_READ_BYTES", 1000)  # the cap, scaled down: the real one is 512 MiB
    monkeypatch.setattr(labeling.sources, "MAX_READ_BYTES", 1000)
    put(aws_env, bucket, {"p/small.jpg": b"x" * 10, "p/huge.jpg": b"x" * 5000})
    s3 = source(aws_env, bucket, "p/")
    assert s3.read("small.jpg") == b"x" * 10
    with pytest.raises(SourceError, match="over the limit of 0 MiB for one image") as caught:
        s3.read("huge.jpg")
    assert not getattr(caught.value, "fatal", True)  # one object, not the run
    (tmp_path / "huge.jpg").write_bytes(b"x" * 5000)
    with pytest.raises(SourceError, match="over the limit"):
        LocalFolderSource(tmp_path).read("huge.jpg")
