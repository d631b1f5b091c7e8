"""The DuckDB store: migrations, the lock held by another process, a cursor per thread."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from labeling.errors import NotFoundError, StoreError, StoreLockedError
from labeling.store import Store
from labeling.store.migrations import MIGRATIONS, Migration


def test_new_file_gets_every_migration(db_path: Path) -> None:
    with Store(db_path) as store:
        assert store.schema_version() == max(m.version for m in MIGRATIONS)
        tables = {row[0] for row in store.fetch_all("SELECT table_name FROM information_schema.tables")}
    assert {
        "datasets",
        "images",
        "annotations",
        "human_labels",
        "edit_log",
        "categories",
        "runs",
        "failures",
        "category_versions",
        "current_annotations",
        "effective_labels",
    } <= tables


def test_file_from_an_older_version_upgrades_and_keeps_its_data(db_path: Path) -> None:
    with Store(db_path, migrations=MIGRATIONS[:1]) as old:
        old.save_dataset("REAL", label="REAL", source_kind="none")
    newer = (*MIGRATIONS, Migration(999, "add a note column", "ALTER TABLE datasets ADD COLUMN note VARCHAR"))
    with Store(db_path, migrations=newer) as upgraded:
        assert upgraded.schema_version() == 999
        assert upgraded.dataset_names() == ["REAL"]
        assert upgraded.fetch_one("SELECT note FROM datasets") == (None,)
    with Store(db_path, migrations=newer) as reopened:  # applied once only
        assert reopened.fetch_one("SELECT count(*) FROM schema_migrations WHERE version = 999") == (1,)


def test_file_from_a_newer_version_is_refused_with_advice(db_path: Path) -> None:
    newer = (*MIGRATIONS, Migration(999, "future", "SELECT 1"))
    Store(db_path, migrations=newer).close()
    with pytest.raises(StoreError, match="newer version of labeling"):
        Store(db_path)


def test_not_a_duckdb_file_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.duckdb"
    bogus.write_text("this is not a database\n" * 100)
    with pytest.raises(StoreError, match=r"not a usable DuckDB file|Cannot open"):
        Store(bogus)


def test_another_process_holding_the_file_is_named(db_path: Path) -> None:
    Store(db_path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()",
            str(db_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError) as caught:
            Store(db_path)
        message = str(caught.value)
        assert f"PID {holder.pid}" in message
        assert "--db" in message and "\n" not in message
    finally:
        holder.communicate("")


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads the holder's command line from /proc")
@pytest.mark.parametrize(
    ("argv", "named", "remedy"),
    [
        (["streamlit", "run", "serve.py"], "the labeling app (PID", "stop it (Ctrl+C where it runs) first"),
        (["-m", "labeling", "describe", "--dataset", "REAL"], "a labeling command (describe ...) (PID", "let it"),
    ],
)
def test_the_holder_is_named_in_the_products_words(db_path: Path, argv: list[str], named: str, remedy: str) -> None:
    """The app or a CLI command holding the file is called that, not "python3 (PID 123)"."""
    Store(db_path).close()
    code = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); sys.stdin.read()"
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(db_path), *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreLockedError) as caught:
            Store(db_path)
        message = str(caught.value)
        assert f"{named} {holder.pid})" in message and remedy in message and "--db" in message
    finally:
        holder.communicate("")


def test_each_thread_gets_its_own_cursor(store: Store) -> None:
    store.save_dataset("D", label="", source_kind="none")
    errors: list[Exception] = []

    def work() -> None:
        try:
            for _ in range(10):
                store.dataset_summaries()
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_failed_transaction_rolls_back(store: Store) -> None:
    with pytest.raises(duckdb.Error), store.transaction() as cur:
        cur.execute("INSERT INTO datasets (name, source_kind) VALUES ('A', 'none')")
        cur.execute("INSERT INTO datasets (name, source_kind) VALUES ('A', 'none')")
    assert store.dataset_names() == []


def test_unknown_dataset_lists_the_known_ones(store: Store) -> None:
    store.save_dataset("REAL", label="REAL", source_kind="none")
    with pytest.raises(NotFoundError, match="REAL"):
        store.dataset_id("GEN")


def test_a_read_never_fails_because_a_derived_table_is_being_written(db_path: Path) -> None:
    """A sync of the derived tables that collides with a writer is tried again; a read does not fail."""
    from labeling.errors import WriteConflict

    class Busy(Store):
        collisions = 0

        def _derived_syncs(self) -> list[Callable[[], object]]:
            def collide() -> None:
                if self.collisions < 3:
                    self.collisions += 1
                    raise WriteConflict("a run is committing a batch")

            return [collide, *super()._derived_syncs()]

    with Busy(db_path) as store:
        store.save_dataset("REAL", label="REAL", source_kind="none")
        assert store.category_distribution(["REAL"])["count"].sum() == 0  # the read went through
        assert store.collisions == 3
