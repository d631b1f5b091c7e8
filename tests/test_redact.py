"""Credentials inside URLs never reach the database, a log line, an error message or the check report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from labeling.errors import LabelingError
from labeling.fake_gemini import FakeGemini
from labeling.redact import redact, without_userinfo
from labeling.s3 import S3Source
from labeling.settings import Settings
from labeling.store import Store
from tests.caption_support import make_folder
from tests.conftest import ROOT

SECRET = "hunter2-secret"


def test_userinfo_is_redacted_wherever_it_hides() -> None:
    assert redact(f"calling http://bob:{SECRET}@host:8/v1beta now") == "calling http://***@host:8/v1beta now"
    assert redact(f"https://{SECRET}@example.com and s3://b/k") == "https://***@example.com and s3://b/k"
    assert redact("user@example.com wrote") == "user@example.com wrote"  # not a URL: left alone
    assert without_userinfo(f"http://u:{SECRET}@minio:9000/") == "http://minio:9000/"
    assert SECRET not in str(LabelingError(f"Cannot reach http://u:{SECRET}@host/: check it."))
    assert SECRET not in json.dumps(Settings(gemini_base_url=f"http://u:{SECRET}@h").public_dict())


def test_a_stored_s3_endpoint_keeps_no_credentials() -> None:
    source = S3Source("bucket", "p/", endpoint_url=f"http://key:{SECRET}@127.0.0.1:9000")
    assert source.options == {"endpoint_url": "http://127.0.0.1:9000"}


def test_a_run_with_credentials_in_the_base_url_stores_and_prints_none(fake: FakeGemini, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "REAL", 2)
    db = tmp_path / "labeling.duckdb"
    base = fake.base_url.replace("http://", f"http://bob:{SECRET}@")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "GOOGLE_GEMINI_BASE_URL": base,
        "GEMINI_API_KEY": "redact-key",
        "LABELING_CACHE_DIR": str(tmp_path / "cache"),
    }
    outputs = []
    for args in (
        ["import", "--dataset", "REAL", "--images-dir", str(folder)],
        ["-v", "describe", "--dataset", "REAL", "--yes"],
        ["check"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "labeling", "--db", str(db), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    assert "HTTP Request: POST http://***@127.0.0.1" in outputs[1]  # -v shows the request, without the secret
    assert "Key accepted: ok" in outputs[2]
    assert all(SECRET not in output for output in outputs)
    with Store(db) as store:
        stored = json.dumps(store.fetch_all("SELECT settings::VARCHAR, message FROM runs"))
    assert "***@127.0.0.1" in stored and SECRET not in stored
    assert SECRET not in (db.parent / "logs" / "labeling.log").read_text()


@pytest.mark.parametrize(
    "cell", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x", "\r=x", "\uff1d1+1", "\uff0b1", "\uff0d1", "\uff20x"]
)
def test_every_csv_the_product_writes_is_formula_safe_and_reads_back(cell: str) -> None:
    import pandas as pd

    from labeling.categories import Category
    from labeling.spreadsheet import frame_csv, neutralise_cell, restore_cell
    from labeling.taxonomy import category_csv, parse_category_csv

    assert neutralise_cell(cell) == "'" + cell and restore_cell(neutralise_cell(cell)) == cell
    assert frame_csv(pd.DataFrame({"name": [cell]})).decode().splitlines()[1].lstrip('"').startswith("'")
    written = category_csv([Category("plain"), Category("defined", cell)], definitions=True)
    assert "'" + cell in written.decode()
    assert [c.definition for c in parse_category_csv(written)] == ["", cell]  # the quote comes off again


def test_a_huge_name_is_rejected_with_its_length(store: Store, tmp_path: Path) -> None:
    from labeling.datasets import import_dataset

    listed = "a.jpg\n" + "x" * 50_000 + ".jpg\nb.jpg\n"
    report = import_dataset(store, "REAL", csv_data=listed.encode(), csv_name="l.csv")
    assert (report.listed, report.rejected) == (3, 1)
    name, detail = store.fetch_all("SELECT name, detail FROM images WHERE status = 'rejected'")[0]
    assert detail == "is longer than 1,024 characters (50,004)" and len(name) < 300


def test_a_seed_csv_holds_real_descriptions_and_refuses_a_runaway_field(tmp_path: Path) -> None:
    from labeling.errors import InputError
    from labeling.seed_format import read_seed_rows

    long = "word " * 40_000  # 200,000 characters: over csv's default field limit, as a long description can be
    rows = read_seed_rows(f'image_name,description\na.jpg,"{long}"\n'.encode(), "seed.csv")
    assert rows[0].description is not None
    runaway = 'image_name,description\na.jpg,"never closed\n' + "b.jpg,x\n" * 700_000
    with pytest.raises(InputError, match="a field is longer than 4,194,304 characters"):
        read_seed_rows(runaway.encode(), "seed.csv")


def test_a_damaged_database_is_one_line_in_the_cli_and_the_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from tests.conftest import as_shown

    db = tmp_path / "half.duckdb"
    with Store(db):
        pass
    with db.open("r+b") as handle:
        handle.truncate(db.stat().st_size // 2)
    done = subprocess.run(
        [sys.executable, "-m", "labeling", "--db", str(db), "datasets"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"error: {db} is damaged and cannot be read") and "restore a backup" in done.stderr
    monkeypatch.setenv("LABELING_DB", str(db))
    monkeypatch.chdir(ROOT)
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=30).run()
        assert not at.exception
        assert any("is damaged and cannot be read" in as_shown(e.value) for e in at.error)
    finally:
        st.cache_resource.clear()


def test_an_export_onto_the_database_itself_is_refused(store: Store, tmp_path: Path) -> None:
    from labeling.datasets import import_dataset
    from labeling.errors import InputError
    from labeling.exporting import export_dataset

    import_dataset(store, "REAL", csv_data=b"a.jpg\n", csv_name="l.csv")
    before = store.path.read_bytes()
    for target in (store.path, Path(str(store.path) + ".wal")):
        with pytest.raises(InputError, match="is the database itself"):
            export_dataset(store, "REAL", target, fmt="csv")
    assert store.path.read_bytes() == before and store.dataset_names() == ["REAL"]
