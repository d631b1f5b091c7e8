"""Who has the database: the two small files the app and a `labeling` command leave beside it.

DuckDB lets one process open a file, so whoever holds it says so beside it:
- the app writes `<db>.app` (its PID, the port of its control interface and a random token), readable by this
  user only: a command finds it there and runs through the app instead of failing on the lock;
- a command writes `<db>.command` (its PID, its command line, when it started and how far it is), so an app
  started meanwhile can say what holds the file and open it by itself when the command ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def _beside(db_path: str | Path, suffix: str) -> Path:
    path = Path(db_path).expanduser().resolve()
    return path.with_name(path.name + suffix)


def app_file(db_path: str | Path) -> Path:
    return _beside(db_path, ".app")


def command_file(db_path: str | Path) -> Path:
    return _beside(db_path, ".command")


def _write_private(path: Path, payload: dict[str, Any]) -> None:
    """Write JSON readable by this user only, atomically: a reader sees the old file or the new one. The temp
    file is new and ours (mkstemp: O_EXCL, mode 0600), so nobody can have prepared it."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(payload, out)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _read(path: Path) -> dict[str, Any] | None:
    """The file's JSON if this user wrote it for itself alone: a file planted by someone else (a shared folder)
    could point a command, with its API key, at their port."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:  # absent, a symlink, or unreadable (another user's)
        return None
    with os.fdopen(fd, encoding="utf-8") as file:
        facts = os.fstat(file.fileno())
        if hasattr(os, "getuid") and (facts.st_uid != os.getuid() or facts.st_mode & 0o077):
            return None
        try:
            loaded = json.loads(file.read())
        except ValueError:  # half-written by an old version
            return None
    return loaded if isinstance(loaded, dict) else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def _remove_if_mine(path: Path) -> None:
    found = _read(path)
    if found is not None and found.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


@dataclass(frozen=True)
class AppLink:
    """How a command reaches the app that holds the database."""

    pid: int
    port: int
    token: str
    db: str

    @staticmethod
    def publish(db_path: str | Path, port: int) -> AppLink:
        link = AppLink(os.getpid(), port, secrets.token_urlsafe(32), str(Path(db_path).expanduser().resolve()))
        _write_private(app_file(db_path), asdict(link))
        return link

    def withdraw(self) -> None:
        _remove_if_mine(app_file(self.db))


def find_app(db_path: str | Path) -> AppLink | None:
    """The live app on this database, if it left its link (an older app or another user's leaves none we can read)."""
    found = _read(app_file(db_path))
    try:
        link = AppLink(int(found["pid"]), int(found["port"]), str(found["token"]), str(found["db"])) if found else None
    except (KeyError, TypeError, ValueError):
        return None
    return link if link is not None and alive(link.pid) else None


@dataclass
class CommandStatus:
    """What a command holding the database publishes about itself, for an app that opens meanwhile."""

    pid: int
    command: str
    started: float
    done: int = 0
    total: int = 0
    failed: int = 0
    run_id: int | None = None
    updated: float = field(default_factory=time.time)

    def line(self) -> str:
        """'labeling describe --dataset REAL, PID 4242, started 10:42' and, once known, how far it is."""
        started = time.strftime("%H:%M", time.localtime(self.started))
        text = f"{self.command}, PID {self.pid}, started {started}"
        if self.total:
            run = f"run #{self.run_id}: " if self.run_id is not None else ""
            failed = f", {self.failed:,} failed" if self.failed else ""
            text += f"; {run}{self.done + self.failed:,} of {self.total:,} images{failed}"
        return text


class CommandPresence:
    """The `<db>.command` file of this process: written when a command opens the database, gone when it closes."""

    def __init__(self, db_path: str | Path, command: str) -> None:
        self.path = command_file(db_path)
        self.status = CommandStatus(os.getpid(), command, time.time())
        self._last = 0.0
        self._write()

    def _write(self) -> None:
        self.status.updated = time.time()
        with contextlib.suppress(OSError):  # a read-only folder: the app just cannot say how far the command is
            _write_private(self.path, asdict(self.status))

    def progress(self, *, done: int, total: int, failed: int, run_id: int | None) -> None:
        """Publish how far the command is, at most once a second."""
        self.status.done, self.status.total, self.status.failed, self.status.run_id = done, total, failed, run_id
        if time.monotonic() - self._last >= 1.0:
            self._last = time.monotonic()
            self._write()

    def withdraw(self) -> None:
        _remove_if_mine(self.path)


def find_command(db_path: str | Path) -> CommandStatus | None:
    """The live command holding this database, as it described itself."""
    found = _read(command_file(db_path))
    if not found:
        return None
    try:
        status = CommandStatus(**found)
    except TypeError:
        return None
    return status if alive(status.pid) else None
