"""The Datasets page's S3 form through AppTest, against the local moto server: analyze, create, mirror."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from labeling.fake_s3 import LocalS3Server
from labeling.store import Store
from tests import s3_fixtures
from tests.conftest import as_shown
from tests.s3_fixtures import MIRROR_BUCKET, MIRROR_PREFIX

# The S3 fixtures, used by name below.
aws_env, s3_server = s3_fixtures.aws_env, s3_fixtures.s3_server


@pytest.fixture
def app(app: AppTest, aws_env: LocalS3Server) -> AppTest:
    return app  # the app, with the local S3 server's credentials in the environment


def _click(at: AppTest, label: str) -> None:
    next(button for button in at.button if as_shown(button.label) == label).click()
    at.run()
    assert not at.exception, at.exception


def _analyze(at: AppTest, endpoint: str, csv_file: Path, output_dir: Path | None) -> None:
    at.run()
    at.text_input(key="s3_bucket").input(MIRROR_BUCKET)
    at.text_input(key="s3_prefix").input(MIRROR_PREFIX)
    at.text_input(key="s3_csv_path").input(str(csv_file))
    at.text_input(key="s3_endpoint").input(endpoint)
    if output_dir is not None:
        at.text_input(key="s3_output_dir").input(str(output_dir))
    _click(at, "Analyze")


def test_analyze_create_and_mirror(app: AppTest, aws_env: LocalS3Server, tmp_path: Path, db_path: Path) -> None:
    csv_file = tmp_path / "real.csv"
    csv_file.write_text("photo_0001.jpg\nphoto_0002.png\nphoto_0003.jpg\nabsent.jpg\n../up.jpg\n")
    out = tmp_path / "REAL"
    _analyze(app, aws_env.endpoint, csv_file, out)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics == {
        "Names listed": "5",
        "Available": "3",
        "Missing": "1",
        "Ambiguous": "0",
        "Rejected": "1",
        "Refused keys": "0",
        "Already local": "0",
        "To fetch": "3",
    }
    problems = next(frame.value for frame in app.dataframe if "detail" in frame.value.columns)
    assert sorted(problems["name"]) == ["../up.jpg", "absent.jpg"]
    assert out.exists() is False  # nothing fetched or created before the user confirms

    app.text_input(key="s3_dataset").input("REAL_S3")
    _click(app, "Create dataset")
    assert any("Dataset REAL_S3: 5 listed, 3 found in S3" in as_shown(element.value) for element in app.success)
    assert app.selectbox(key="inspect_choice").value == "REAL_S3"  # the table and Inspect show it at once

    _click(app, "Mirror 3 files to " + str(out.resolve()))
    assert any("Fetched 3 files" in element.value for element in app.success)
    assert sorted(path.name for path in out.rglob("*.jpg")) == ["photo_0001.jpg", "photo_0002.jpg", "photo_0003.jpg"]
    st.cache_resource.clear()
    with Store(db_path) as store:
        dataset = store.dataset("REAL_S3")
        assert (dataset.source_kind, dataset.source_uri) == ("s3", f"s3://{MIRROR_BUCKET}/{MIRROR_PREFIX}")
        assert len(store.mirror_done(str(out.resolve()))) == 3


def test_errors_show_as_one_line(app: AppTest, aws_env: LocalS3Server, tmp_path: Path) -> None:
    csv_file = tmp_path / "real.csv"
    csv_file.write_text("a.jpg\n")
    app.run()
    app.text_input(key="s3_bucket").input("no-such-bucket-here")
    app.text_input(key="s3_endpoint").input(aws_env.endpoint)
    app.text_input(key="s3_csv_path").input(str(csv_file))
    _click(app, "Analyze")
    assert [as_shown(element.value) for element in app.error] == [
        "The bucket 'no-such-bucket-here' does not exist (at this endpoint): check --bucket or the S3 URI."
    ]
