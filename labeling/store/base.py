"""The DuckDB connection: opening, locking errors, migrations, one cursor per thread, transactions."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import duckdb

if TYPE_CHECKING:
    import pandas as pd

from labeling.errors import StoreError, StoreLockedError, WriteConflict
from labeling.store.migrations import MIGRATIONS, Migration

log = logging.getLogger(__name__)

_DERIVED_LOCK = threading.Lock()  # one sync of the derived tables at a time in this process
_DERIVED_ATTEMPTS = 5

_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def _holder(program: str, pid: int) -> tuple[str, str]:
    """Who holds the file, in the product's words, and what to do about it; read from the holder's command
    line where the system shows it (Linux /proc), else DuckDB's program name."""
    try:
        argv = [part.decode(errors="replace") for part in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    except OSError:
        argv = []
    if any(part.endswith(("serve.py", "streamlit_app.py")) for part in argv):
        return f"the labeling app (PID {pid})", "stop it (Ctrl+C where it runs) first"
    for i, part in enumerate(argv):
        if part.endswith("/labeling") or part == "labeling" or (part == "-m" and argv[i + 1 : i + 2] == ["labeling"]):
            rest = [arg for arg in argv[i + (2 if part == "-m" else 1) :] if not arg.startswith("-")]
            command = f" ({rest[0]} ...)" if rest else ""
            return f"a labeling command{command} (PID {pid})", "let it finish or stop it first"
    return f"{program} (PID {pid})", "stop that app or command first"


def _locked_message(path: Path, error: Exception) -> str:
    found = _LOCK_HOLDER.search(str(error))
    holder, remedy = _holder(found["program"], int(found["pid"])) if found else ("another process", "stop it first")
    return f"The database {path} is in use by {holder}: {remedy}, or use another file with --db / LABELING_DB."


@contextmanager
def registered(cur: duckdb.DuckDBPyConnection, name: str, frame: pd.DataFrame) -> Iterator[None]:
    """`frame` visible to SQL on `cur` as the view `name` for the block: the way every batch reaches DuckDB."""
    cur.register(name, frame)
    try:
        yield
    finally:
        cur.unregister(name)


class StoreBase:
    """Owns the DuckDB connection. Query verbs live in mixins (one per noun) that build on `cursor()`."""

    def __init__(self, path: str | Path, migrations: Sequence[Migration] = MIGRATIONS) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._con = self._connect(self.path)
        try:
            self._migrate(migrations)
        except duckdb.Error as exc:  # a damaged file (say, truncated) opens, then fails on its first read
            self._con.close()
            raise StoreError(
                f"{self.path} is damaged and cannot be read ({type(exc).__name__}: {exc}): restore a "
                "backup, or point --db / LABELING_DB at a new file."
            ) from None
        except BaseException:
            self._con.close()
            raise

    @staticmethod
    def _connect(path: Path) -> duckdb.DuckDBPyConnection:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        # Extensions such as fts/httpfs download at run time: never let a query try that offline.
        config: dict[str, str | bool | int | float | list[str]] = {
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        }
        try:
            return duckdb.connect(str(path), config=config)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLockedError(_locked_message(path, exc)) from None
            raise StoreError(f"Cannot open the database {path} ({exc}): check the path and its permissions.") from None
        except duckdb.Error as exc:
            raise StoreError(
                f"{path} is not a usable DuckDB file ({exc}): point --db / LABELING_DB at "
                "a new file or restore a backup."
            ) from None

    def close(self) -> None:
        """Close the connection (cursors of other threads become unusable)."""
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's cursor: a DuckDB connection must not be used by two threads at once."""
        cursor = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._con.cursor()
            self._local.cursor = cursor
        return cursor

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A transaction on this thread's cursor, rolled back if the block raises."""
        cur = self.cursor()
        cur.execute("BEGIN TRANSACTION")
        try:
            yield cur
            cur.execute("COMMIT")
        except duckdb.TransactionException as exc:
            _roll_back(cur)
            if "conflict" not in str(exc).lower():
                raise
            raise WriteConflict("Another writer changed the same rows at the same moment: try again.") from exc
        except BaseException:
            _roll_back(cur)
            raise

    def sync_derived(self) -> None:
        """Bring every derived table (label tally, review search text) in step before a read: the one owner.

        A sync that collides with a writer of this process (a run committing a batch) is tried again; if the
        collisions go on, the read uses the tables as they are, a moment behind, rather than failing.
        """
        for attempt in range(1, _DERIVED_ATTEMPTS + 1):
            try:
                with _DERIVED_LOCK:
                    for sync in self._derived_syncs():
                        sync()
                return
            except WriteConflict:
                time.sleep(0.02 * attempt)
        log.info("derived tables are busy: this read uses them as they are")

    def _derived_syncs(self) -> list[Callable[[], object]]:
        """The syncs of the derived tables, in order (the Store lists them)."""
        return []

    def fetch_df(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        return self.cursor().execute(sql, params).df()

    def fetch_all(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.cursor().execute(sql, params).fetchall()

    def fetch_one(self, sql: str, params: Sequence[Any] | dict[str, Any] | None = None) -> tuple[Any, ...] | None:
        cur = self.cursor()
        row = cur.execute(sql, params).fetchone()
        cur.complete()  # DuckDB 2.0 refuses register() while a result is unfinished
        return row

    def schema_version(self) -> int:
        row = self.fetch_one("SELECT coalesce(max(version), 0) FROM schema_migrations")
        return int(row[0]) if row else 0

    def _migrate(self, migrations: Sequence[Migration]) -> None:
        cur = self.cursor()
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)"
        )
        applied = {row[0] for row in cur.execute("SELECT version FROM schema_migrations").fetchall()}
        known = {migration.version for migration in migrations}
        if applied - known:
            raise StoreError(
                f"The database {self.path} was written by a newer version of labeling "
                f"(schema {max(applied)}): upgrade labeling to open it."
            )
        for migration in sorted(migrations, key=lambda m: m.version):
            if migration.version in applied:
                continue
            log.info("Migrating %s to schema %d (%s)", self.path, migration.version, migration.name)
            with self.transaction() as tx:
                tx.execute(migration.sql)
                tx.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [migration.version, migration.name]
                )


def _roll_back(cur: duckdb.DuckDBPyConnection) -> None:
    """End a failed transaction; one DuckDB already aborted (a conflict at COMMIT) needs no rollback."""
    with suppress(duckdb.TransactionException):
        cur.execute("ROLLBACK")
