"""Server paths typed into a page: any on loopback, only `allowed_paths` once the app is shared, never the
database's own files, and no existing file replaced without the user ticking "Replace"."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from labeling.errors import InputError
from labeling.path_policy import is_loopback, path_policy
from labeling.settings import load_settings
from labeling.store import Store
from tests.category_support import add_described, description
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("", False),
        (None, False),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("lab.example.com", False),
    ],
)
def test_loopback_addresses(address: str | None, loopback: bool) -> None:
    assert is_loopback(address) is loopback


def test_on_loopback_any_path_but_the_database(tmp_path: Path) -> None:
    database = tmp_path / "labeling.duckdb"
    policy = path_policy("127.0.0.1", [], database)
    assert policy.check("/etc/passwd", "a CSV list") == Path("/etc/passwd")
    for own in (database, tmp_path / "labeling.duckdb.wal"):
        with pytest.raises(InputError, match="database's own files"):
            policy.check(own, "the export")


def test_shared_app_confines_paths_to_allowed_roots(tmp_path: Path) -> None:
    root = tmp_path / "shared"
    (root / "lists").mkdir(parents=True)
    (root / "escape").symlink_to("/etc")
    policy = path_policy("0.0.0.0", [str(root)], tmp_path / "db.duckdb")
    assert policy.check(root / "lists" / "real.csv", "a CSV list") == root / "lists" / "real.csv"
    assert policy.check(root, "an images folder") == root
    for outside in ("/etc/passwd", root / ".." / "other.csv", root / "escape" / "passwd", tmp_path / "sharedx"):
        with pytest.raises(InputError, match="outside the folders this shared app may use") as caught:
            policy.check(outside, "a CSV list")
        assert str(root) in str(caught.value)


def test_shared_app_without_allowed_paths_takes_no_server_path(tmp_path: Path) -> None:
    policy = path_policy("", [], tmp_path / "db.duckdb")
    assert policy.shared and not policy.allows_paths
    with pytest.raises(InputError, match=r"upload or download instead.*allowed_paths"):
        policy.check(tmp_path / "list.csv", "a CSV list")


def test_allowed_paths_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELING_ALLOWED_PATHS", f"/data/lists:{tmp_path}")
    assert load_settings().allowed_paths == ("/data/lists", str(tmp_path))
    monkeypatch.delenv("LABELING_ALLOWED_PATHS")
    config = tmp_path / "config.yaml"
    config.write_text("allowed_paths:\n  - /srv/datasets\n  - /srv/reports\n", encoding="utf-8")
    assert load_settings(config_file=str(config)).allowed_paths == ("/srv/datasets", "/srv/reports")


@pytest.fixture
def shared_app(db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AppTest, Path]]:
    """The app as if started with STREAMLIT_SERVER_ADDRESS=0.0.0.0 and allowed_paths = [tmp/allowed]."""
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("LABELING_ALLOWED_PATHS", str(allowed))
    address = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    st.cache_resource.clear()
    try:
        yield AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=30), allowed
    finally:
        st_config.set_option("server.address", address)
        st.cache_resource.clear()


def _errors(at: AppTest) -> str:
    return "\n".join(str(e.value) for e in at.error).replace("\\", "")


def test_shared_datasets_page_refuses_a_path_outside_and_takes_one_inside(
    shared_app: tuple[AppTest, Path], tmp_path: Path, db_path: Path, make_image: Callable[..., Path]
) -> None:
    at, allowed = shared_app
    outside = tmp_path / "secret.csv"
    outside.write_text("image_name\nsecret-line\n", encoding="utf-8")
    make_image(allowed / "imgs" / "a.jpg")
    (allowed / "list.csv").write_text("image_name\na.jpg\n", encoding="utf-8")
    at.run()
    for csv_path, folder in ((str(outside), ""), ("/etc/passwd", ""), (str(allowed / "list.csv"), "/etc")):
        at.text_input(key="import_name").input("LEAK")
        at.text_input(key="import_csv_path").input(csv_path)
        at.text_input(key="import_images_dir").input(folder)
        at.button(key="import_button").click()
        at.run()
        assert not at.exception, at.exception
        assert "outside the folders this shared app may use" in _errors(at)
    at.text_input(key="import_name").input("REAL")
    at.text_input(key="import_csv_path").input(str(allowed / "list.csv"))
    at.text_input(key="import_images_dir").input(str(allowed / "imgs"))
    at.button(key="import_button").click()
    at.run()
    assert not at.error, _errors(at)
    st.cache_resource.clear()
    with Store(db_path) as store:
        assert store.dataset_names() == ["REAL"]
        assert store.dataset_summary("REAL").found == 1


def _exportable(db_path: Path) -> None:
    with Store(db_path) as store:
        add_described(store, "GEN", [("a.png", description("a cat"), ["animals"])])


def _write(at: AppTest, path: Path, replace: bool = False) -> None:
    field = next(t for t in at.text_input if t.label == "Write to a path on this machine")
    field.input(str(path))
    if replace:
        at.checkbox(key="export_replace").check()
    next(b for b in at.button if b.label == "Write file").click()
    at.run()
    assert not at.exception, at.exception


def test_shared_export_writes_only_inside_allowed_paths(
    shared_app: tuple[AppTest, Path], tmp_path: Path, db_path: Path
) -> None:
    at, allowed = shared_app
    _exportable(db_path)
    at.run()
    at.switch_page("pages/export.py")
    at.run()
    field = next(t for t in at.text_input if t.label == "Write to a path on this machine")
    assert field.value == str(allowed / "reports" / "GEN_effective_categorized.csv")
    _write(at, tmp_path / "elsewhere" / "out.csv")
    assert "outside the folders this shared app may use" in _errors(at)
    assert not (tmp_path / "elsewhere").exists()
    _write(at, allowed / "reports" / "out.csv")
    assert (allowed / "reports" / "out.csv").read_text(encoding="utf-8").startswith("image_name")


def test_export_never_replaces_a_file_without_the_tick(app: AppTest, tmp_path: Path, db_path: Path) -> None:
    at = app
    _exportable(db_path)
    precious = tmp_path / "notes.csv"
    precious.write_text("my own notes\n", encoding="utf-8")
    at.run()
    at.switch_page("pages/export.py")
    at.run()
    _write(at, precious)
    assert "already exists" in "\n".join(str(w.value) for w in at.warning)
    assert precious.read_text(encoding="utf-8") == "my own notes\n"
    _write(at, precious, replace=True)
    assert precious.read_text(encoding="utf-8").startswith("image_name")
    _write(at, db_path, replace=True)
    assert "database's own files" in _errors(at)


def test_shared_app_with_no_allowed_paths_turns_the_path_fields_off(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("LABELING_ALLOWED_PATHS", raising=False)
    address = st_config.get_option("server.address")
    st_config.set_option("server.address", "0.0.0.0")
    st.cache_resource.clear()
    try:
        at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=30).run()
        path_fields = [t for t in at.text_input if "path" in t.label or "folder" in t.label.lower()]
        assert len(path_fields) == 4 and all(field.disabled for field in path_fields)  # local and S3 imports
        _exportable(db_path)
        at.switch_page("pages/export.py")
        at.run()
        assert not [t for t in at.text_input if t.label == "Write to a path on this machine"]
        assert "Writing to a path on the server is off" in "\n".join(str(c.value) for c in at.caption)
    finally:
        st_config.set_option("server.address", address)
        st.cache_resource.clear()
