"""What the app process owns on its database: the store, the job manager and the control interface.

The app serves one database. serve.py's lifespan opens it when the server starts, so a `labeling` command finds
the app (and runs through it) before any browser has opened a page; pages reach the same host through
pages/common.py. While a command holds the file, the host says which (its `<db>.command` file) and tries again
every second, opening the database by itself when the command ends.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from labeling import presence
from labeling.errors import StoreLockedError
from labeling.vocabulary import RUN_KINDS

if TYPE_CHECKING:
    from labeling.control_server import ControlServer
    from labeling.jobs import JobManager
    from labeling.settings import Settings
    from labeling.store import Store

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0


class AppHost:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db_path = str(Path(settings.db_path).expanduser().resolve())
        self._lock = threading.RLock()
        self._store: Store | None = None
        self._manager: JobManager | None = None
        self._server: ControlServer | None = None
        self._closed = threading.Event()
        self._waiting = False

    def store(self) -> Store:
        """The open store; StoreLockedError (saying who holds the file) while a command holds it."""
        with self._lock:
            if self._store is None:
                self._open()
            assert self._store is not None
            return self._store

    def _open(self) -> None:
        from labeling.control_server import ControlServer
        from labeling.store import Store

        if self._closed.is_set():
            raise StoreLockedError(f"The app is stopping: {self.db_path} is closed.")
        try:
            store = Store(self.settings.db_path)
        except StoreLockedError:
            self._wait_in_background()
            raise
        store.interrupt_stale_runs(RUN_KINDS)  # before a command through the app can start one
        self._store = store
        try:
            self._server = ControlServer(self.db_path, store, self.job_manager).start()
        except OSError as exc:  # no loopback socket or a read-only folder: the app works, commands cannot join it
            log.warning("commands cannot run through this app: %s", exc)

    def job_manager(self) -> JobManager:
        with self._lock:
            if self._manager is None:
                from labeling.jobs import JobManager  # the SDK loads only when something needs jobs

                self._manager = JobManager(self.store(), self.settings, interrupt_stale=False)
            return self._manager

    def use_settings(self, settings: Settings) -> None:
        """Settings re-read by the app (tests change them between runs): new jobs start with them."""
        with self._lock:
            self.settings = settings
            if self._manager is not None:
                self._manager.settings = settings

    def holder(self) -> presence.CommandStatus | None:
        """The command holding the database, as it describes itself (None if no command does)."""
        return presence.find_command(self.db_path)

    def _wait_in_background(self) -> None:  # under self._lock
        if self._waiting:
            return
        self._waiting = True
        threading.Thread(target=self._retry, name="open-when-free", daemon=True).start()

    def _retry(self) -> None:
        while not self._closed.wait(RETRY_SECONDS):
            try:
                self.store()
            except StoreLockedError:
                continue
            except Exception:  # a damaged file: the page that asks next says so
                log.exception("opening %s failed", self.db_path)
            break
        self._waiting = False

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            if self._server is not None:
                self._server.stop()
            if self._manager is not None:
                self._manager.shutdown()
            if self._store is not None:
                self._store.close()
            self._server = self._manager = self._store = None


_current: AppHost | None = None
_current_lock = threading.Lock()


def host(settings: Settings) -> AppHost:
    """The process's host for the database of `settings`; a host of another database is closed first."""
    global _current
    wanted = str(Path(settings.db_path).expanduser().resolve())
    with _current_lock:
        if _current is not None and _current.db_path != wanted:
            _current.close()
            _current = None
        if _current is None:
            _current = AppHost(settings)
        else:
            _current.use_settings(settings)
        return _current
