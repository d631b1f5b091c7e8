"""The captioning commands, run in-process against the fake Gemini server over HTTP."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labeling.fake_gemini import FakeGemini
from labeling.store import Store
from labeling.taxonomy import ensure_categories
from tests.caption_support import make_folder

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeGemini]:
    with FakeGemini() as server:
        for name, value in server.env("cli-key").items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("LABELING_RETRY_BACKOFF", "0.01")
        yield server


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _count(db_path: Path, sql: str) -> int:
    with Store(db_path) as store:
        row = store.fetch_one(sql)
    return int(row[0]) if row else 0


def test_describe_prints_the_estimate_then_describes_every_image(
    run_cli, fake: FakeGemini, tmp_path: Path, db_path: Path
) -> None:
    folder = make_folder(tmp_path / "REAL", 5)
    assert run_cli("import", "--dataset", "REAL", "--images-dir", str(folder)).code == 0
    result = run_cli("describe", "--dataset", "REAL", "--num-workers", "3", "--yes")
    assert result.code == 0, result.err
    assert result.out.startswith("Estimate: 5 images, 5 requests")
    assert "Run #1 completed: 5 done, 0 failed, 5 requests" in result.out
    assert fake.request_count == 5
    listing = json.loads(run_cli("datasets", "--json").out)
    assert {k: listing[0][k] for k in ("described", "categorized", "failed")} == {
        "described": 5,
        "categorized": 5,
        "failed": 0,
    }
    again = run_cli("describe", "--dataset", "REAL")
    assert again.code == 0 and "Nothing to do" in again.out and fake.request_count == 5


def test_two_pass_mode_sends_two_requests_per_image(run_cli, fake: FakeGemini, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "REAL", 3)
    run_cli("import", "--dataset", "REAL", "--images-dir", str(folder))
    result = run_cli("describe", "--dataset", "REAL", "--mode", "two-pass")
    assert result.code == 0 and "Estimate: 3 images, 6 requests" in result.out
    assert fake.request_count == 6 and sum(r.has_image for r in fake.records) == 3


def test_a_rejected_key_stops_with_one_line_that_says_what_to_do(run_cli, fake: FakeGemini, tmp_path: Path) -> None:
    fake.valid_keys = {"another-key"}
    folder = make_folder(tmp_path / "REAL", 20)
    run_cli("import", "--dataset", "REAL", "--images-dir", str(folder))
    result = run_cli("describe", "--dataset", "REAL", "--num-workers", "2")
    assert result.code == 1
    assert "error: The Gemini API key was rejected (400 API_KEY_INVALID): set GEMINI_API_KEY" in result.err
    assert "Traceback" not in result.err
    assert fake.request_count == 1  # one worker asks first: a bad key costs one request, not one per worker


def test_no_key_says_how_to_set_one(run_cli, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "REAL", 1)
    run_cli("import", "--dataset", "REAL", "--images-dir", str(folder))
    result = run_cli("describe", "--dataset", "REAL")
    assert result.code == 1 and "No Gemini API key is set" in result.err


def test_categorize_sends_descriptions_only(run_cli, fake: FakeGemini, tmp_path: Path, db_path: Path) -> None:
    folder = make_folder(tmp_path / "REAL", 4)
    run_cli("import", "--dataset", "REAL", "--images-dir", str(folder))
    assert "4 images have no description yet" in run_cli("categorize", "--dataset", "REAL").out
    run_cli("describe", "--dataset", "REAL", "--mode", "two-pass")
    categories = tmp_path / "categories.csv"
    categories.write_text("Category,Definition\nsky,Skies\nsea,Oceans\n", encoding="utf-8")
    with Store(db_path) as store:
        from labeling.taxonomy import parse_category_csv

        store.save_category_list(parse_category_csv(categories.read_bytes()), note="new list")
    fake.reset()
    result = run_cli("categorize", "--dataset", "REAL")
    assert result.code == 0, result.err
    assert fake.request_count == 4 and not any(r.has_image for r in fake.records)
    assert (
        _count(
            db_path,
            "SELECT count(*) FROM current_annotations WHERE list_has_all(['sky', 'sea', 'unknown'], categories)",
        )
        == 4
    )


def test_generate_descriptions_writes_the_seed_csv_and_resumes_through_the_db(
    run_cli, fake: FakeGemini, tmp_path: Path, db_path: Path
) -> None:
    folder = make_folder(tmp_path / "REAL", 6)
    output = tmp_path / "data" / "real_descriptions.csv"
    fake.inject("safety")
    result = run_cli(
        "generate-descriptions", "--images-dir", str(folder), "--output-csv", str(output), "--num-workers", "1"
    )
    assert result.code == 0, result.err
    rows = _csv(output)
    assert list(rows[0]) == ["image_name", "description"] and len(rows) == 5
    assert all(
        set(json.loads(r["description"])) >= {"summary", "objects", "scene", "style", "camera", "text", "quality"}
        for r in rows
    )
    assert "ERROR" not in output.read_text(encoding="utf-8")
    assert "1 failed at model (safety)" in result.out
    # the folder became a dataset named after it
    assert json.loads(run_cli("datasets", "--json").out)[0]["name"] == "REAL"

    again = run_cli("generate-descriptions", "--images-dir", str(folder), "--output-csv", str(output))
    assert again.code == 0 and fake.request_count == 7  # only the failed image was sent again
    assert len(_csv(output)) == 6


def test_categorize_descriptions_reuses_fused_results_without_requests(
    run_cli, fake: FakeGemini, tmp_path: Path, db_path: Path
) -> None:
    folder = make_folder(tmp_path / "REAL", 4)
    described = tmp_path / "data" / "real_descriptions.csv"
    categorized = tmp_path / "reports" / "real_descriptions_categorized.csv"
    run_cli("generate-descriptions", "--images-dir", str(folder), "--output-csv", str(described))
    sent = fake.request_count
    result = run_cli("categorize-descriptions", "--input-csv", str(described), "--output-csv", str(categorized))
    assert result.code == 0, result.err
    assert fake.request_count == sent  # the fused requests already categorized every image
    rows = _csv(categorized)
    assert list(rows[0]) == ["image_name", "description", "categories"] and len(rows) == 4
    with Store(db_path) as store:
        allowed = {c.name for c in ensure_categories(store)} | {"unknown"}
    for row in rows:
        assert set(row["categories"].split(", ")) <= allowed
        assert json.loads(row["description"])["summary"]


def test_categorize_descriptions_of_a_seed_csv_categorizes_the_text_and_skips_errors(
    run_cli, fake: FakeGemini, tmp_path: Path, db_path: Path
) -> None:
    seed = tmp_path / "gen_descriptions.csv"
    seed.write_text(
        "image_name,description\n"
        'a.jpg,"A bowl of ramen with egg and chopsticks"\n'
        'b.png,"{""summary"": ""A snowy mountain at dawn""}"\n'
        'c.jpg,"ERROR: 429 quota exceeded"\n',
        encoding="utf-8",
    )
    categories = tmp_path / "unique_categories.csv"
    categories.write_text("Category\nfood\nmountains\n", encoding="utf-8")
    output = tmp_path / "reports" / "gen_categorized.csv"
    result = run_cli(
        "categorize-descriptions",
        "--input-csv",
        str(seed),
        "--output-csv",
        str(output),
        "--categories-csv",
        str(categories),
    )
    assert result.code == 0, result.err
    assert "is now the active list" in result.out
    assert fake.request_count == 2 and not any(r.has_image for r in fake.records)
    rows = {r["image_name"]: r for r in _csv(output)}
    assert set(rows) == {"a.jpg", "b.png"}  # the seed's ERROR row is not a description
    assert rows["a.jpg"]["description"] == "A bowl of ramen with egg and chopsticks"
    assert all(set(r["categories"].split(", ")) <= {"food", "mountains", "unknown"} for r in rows.values())
    assert _count(db_path, "SELECT count(*) FROM annotations WHERE description::VARCHAR LIKE '%ERROR%'") == 0
    # run again: nothing left to send
    assert run_cli("categorize-descriptions", "--input-csv", str(seed), "--output-csv", str(output)).code == 0
    assert fake.request_count == 2


def test_retry_failed_sends_only_failed_images(run_cli, fake: FakeGemini, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "REAL", 4)
    run_cli("import", "--dataset", "REAL", "--images-dir", str(folder))
    fake.inject("max_tokens")
    first = run_cli("describe", "--dataset", "REAL", "--num-workers", "1")
    assert "1 failed at model (max_tokens)" in first.out and "--retry-failed" in first.out
    result = run_cli("describe", "--dataset", "REAL", "--retry-failed")
    assert "Estimate: 1 image, 1 request," in result.out and fake.request_count == 5


def test_unknown_dataset_is_one_line(run_cli) -> None:
    result = run_cli("describe", "--dataset", "NOPE")
    assert result.code == 1 and "There is no dataset named 'NOPE'" in result.err


def test_fake_gemini_command_serves_until_stopped(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "labeling", "fake-gemini", "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Fake Gemini listening on http://127.0.0.1:")
    finally:
        process.terminate()
        process.wait(10)


def test_a_quota_hold_is_printed_with_its_end_time(run_cli, fake: FakeGemini, tmp_path: Path) -> None:
    fake.retry_delay_s = 1.2
    fake.inject("http_429")
    folder = make_folder(tmp_path / "REAL", 3)
    run_cli("import", "--dataset", "REAL", "--images-dir", str(folder))
    result = run_cli("describe", "--dataset", "REAL", "--num-workers", "2", "--yes")
    assert result.code == 0
    assert re.search(r"the per-minute quota is used up until \d\d:\d\d:\d\d", result.err), result.err


def test_a_model_without_a_price_says_so_instead_of_a_cost(run_cli, fake: FakeGemini, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "REAL", 2)
    run_cli("import", "--dataset", "REAL", "--images-dir", str(folder))
    result = run_cli("describe", "--dataset", "REAL", "--model", "gemini-3.9-flash-lite", "--yes")
    assert result.code == 0
    assert "price unknown: set prices.gemini-3.9-flash-lite in config.yaml" in result.out
    assert "Price unknown: set prices.gemini-3.9-flash-lite" in result.err
