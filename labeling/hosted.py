"""A `labeling` command run inside the app, for a command line on the database the app holds.

The command's own code runs in a thread of the app, so its output and exit codes are the ones it has alone:
its prints and progress bar go back to the caller, relative paths mean the caller's folder, its settings come
from the caller's environment, and its jobs run in the app's job manager (they show on the Run page). Ctrl+C in
the caller raises KeyboardInterrupt in that thread, as the terminal's Ctrl+C does in a command run alone (at a
prompt, where a blocked thread cannot receive it, the prompt's read loop raises it).
"""

from __future__ import annotations

import argparse
import contextlib
import contextvars
import ctypes
import io
import itertools
import logging
import os
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from labeling import logs

if TYPE_CHECKING:
    from labeling.jobs import JobManager
    from labeling.store import Store

log = logging.getLogger(__name__)

# Options whose value is a file or folder end in one of these words (--output-csv, --images-dir, --db, ...).
_PATH_WORDS = frozenset({"csv", "dir", "path", "root", "file", "json", "html", "log", "db", "config", "output"})
# What of the caller's environment a command may read: our settings and the model keys (never all of it).
_ENV_PREFIXES = ("LABELING_", "GEMINI_", "GOOGLE_")


def caller_env(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k.startswith(_ENV_PREFIXES)}


@dataclass(frozen=True)
class Caller:
    """The command line that asked: its arguments, folder, environment and terminal."""

    argv: list[str]
    cwd: str
    env: dict[str, str]
    stdin_tty: bool = False
    stdout_tty: bool = False
    stderr_tty: bool = False

    @staticmethod
    def from_json(body: dict[str, Any]) -> Caller:
        argv, cwd, env = body.get("argv"), body.get("cwd"), body.get("env")
        if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv)):
            raise ValueError("argv must be a list of strings")
        if not (isinstance(cwd, str) and os.path.isabs(cwd)):
            raise ValueError("cwd must be an absolute path")
        if not (isinstance(env, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
            raise ValueError("env must map strings to strings")
        flags = {name: bool(body.get(name)) for name in ("stdin_tty", "stdout_tty", "stderr_tty")}
        return Caller(argv, cwd, caller_env(env), **flags)


class Session:
    """One command running in the app for one caller; `events` is what goes back to it."""

    _ids = itertools.count(1)

    def __init__(self, caller: Caller, store: Store, manager: Callable[[], JobManager]) -> None:
        self.id = next(self._ids)
        self.caller = caller
        self.store = store
        self.job_manager = manager
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lines: queue.Queue[str | None] = queue.Queue()  # None: the caller's input ended
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._running = False
        self._reading = False  # waiting for a typed line: no asynchronous exception reaches a blocked get()
        self._interrupted = threading.Event()

    # --- what the command's thread does --------------------------------------------------------------------

    def write(self, stream: str, text: str) -> None:
        if text:
            self.events.put({"stream": stream, "text": text})

    def readline(self) -> str:
        """A line typed at the caller's terminal (input() of a confirmation prompt); "" at its end, as a file."""
        with self._lock:  # before the caller hears of the read: from then on a Ctrl+C is this loop's flag
            self._reading = True
        self.events.put({"read": True})
        try:
            while not self._interrupted.is_set():
                with contextlib.suppress(queue.Empty):
                    line = self._lines.get(timeout=0.1)
                    if not self._interrupted.is_set():  # the caller sends its end of input right after a Ctrl+C
                        return "" if line is None else line
            _drop_pending_interrupt()  # one Ctrl+C, one KeyboardInterrupt (see interrupt())
            raise KeyboardInterrupt
        finally:
            with self._lock:
                self._reading = False

    def start(self) -> Session:
        self._running = True
        self._thread = threading.Thread(target=self._main, name=f"hosted-command-{self.id}", daemon=True)
        self._thread.start()
        return self

    def _main(self) -> None:
        code = 1
        try:
            try:
                code = _run(self)
            finally:
                with self._lock:
                    self._running = False
        except KeyboardInterrupt:  # an interrupt that arrived as the command ended: it had nothing left to stop
            code = 130
        except SystemExit as exit_:  # argparse and sys.exit() end a command alone too: same code
            code = exit_.code if isinstance(exit_.code, int) else 1
        except Exception as exc:  # a bug: its traceback goes to the log file, the caller gets one line
            log.exception("command run through the app failed: %s", self.caller.argv[:1])
            self.write("err", f"error: unexpected {type(exc).__name__} in the labeling app: see {_log_file()}\n")
        finally:
            self.events.put({"exit": code})

    # --- what the caller asks for --------------------------------------------------------------------------

    def interrupt(self) -> None:
        """Ctrl+C at the caller: KeyboardInterrupt in the command's thread, as SIGINT raises it in a process."""
        self._interrupted.set()
        with self._lock:
            if self._reading:
                return  # readline() sees the flag within 0.1 s
            if self._running and self._thread is not None and self._thread.ident is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(self._thread.ident), ctypes.py_object(KeyboardInterrupt)
                )

    def answer(self, line: str | None) -> None:
        """A line the caller typed; None when its input ended (or nobody is left to type)."""
        self._lines.put(line if line is None or line.endswith("\n") else line + "\n")


def _drop_pending_interrupt() -> None:
    """Cancel a KeyboardInterrupt that interrupt() queued for this thread before it started reading."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(threading.get_ident()), None)


_current: contextvars.ContextVar[Session | None] = contextvars.ContextVar("hosted_session", default=None)


def current() -> Session | None:
    """The hosted command this thread runs, if any (the CLI's context asks, to use the app's store)."""
    return _current.get()


def _run(session: Session) -> int:
    from labeling import cli

    _current.set(session)
    install_streams()
    args = cli.build_parser().parse_args(session.caller.argv)  # the caller parsed them already: they are valid
    absolutize_paths(args, session.caller.cwd)
    return cli.run(args, session.caller.argv)


def _log_file() -> str:
    session = _current.get()
    return str(logs.log_path(str(session.store.path))) if session is not None else "the app's log file"


def absolutize_paths(args: argparse.Namespace, cwd: str) -> None:
    """Relative file and folder options mean the caller's folder, not the app's."""
    for dest, value in vars(args).items():
        if not isinstance(value, str) or dest.rsplit("_", 1)[-1] not in _PATH_WORDS:
            continue
        if value and value != "-" and "://" not in value and not os.path.isabs(os.path.expanduser(value)):
            setattr(args, dest, os.path.join(cwd, value))


# --- the app process's standard streams -----------------------------------------------------------------------


class _Routed(io.TextIOBase):
    """sys.stdout / sys.stderr / sys.stdin of the app: a hosted command's thread reaches its caller, every other
    thread the app's own terminal."""

    def __init__(self, name: str, original: Any) -> None:
        self.name = name
        self.original = original

    def _tty(self, session: Session) -> bool:
        return bool(getattr(session.caller, f"std{self.name}_tty"))

    def write(self, text: str) -> int:
        session = _current.get()
        if session is None:
            return int(self.original.write(text) or 0)
        session.write(self.name, text)
        return len(text)

    def readline(self, size: int | None = -1) -> str:  # type: ignore[override]
        session = _current.get()
        return self.original.readline() if session is None else session.readline()

    def flush(self) -> None:
        if _current.get() is None:
            self.original.flush()

    def isatty(self) -> bool:
        session = _current.get()
        return self.original.isatty() if session is None else self._tty(session)

    def fileno(self) -> int:
        if _current.get() is not None:  # no descriptor of the caller's terminal exists here
            raise io.UnsupportedOperation("fileno")
        return int(self.original.fileno())

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8" if _current.get() is not None else str(getattr(self.original, "encoding", "utf-8"))


_installed = threading.Lock()


def install_streams() -> None:
    """Route this process's standard streams (once). Call it before logs.configure, so that the terminal's log
    handler writes to the routed stderr: a command's warnings then reach its caller, the app's its terminal."""
    with _installed:
        if not isinstance(sys.stdout, _Routed):
            sys.stdout = _Routed("out", sys.stdout)
            sys.stderr = _Routed("err", sys.stderr)
            sys.stdin = _Routed("in", sys.stdin)
