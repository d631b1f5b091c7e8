"""What every command shares: global flags, settings, the store, the job manager, logging.

A command runs either alone (it opens the database and says so beside it, labeling.presence) or inside the app
for a command line (labeling.hosted): then the store and the job manager are the app's, and the settings come
from the caller's environment and folder.
"""

from __future__ import annotations

import argparse
import os
import shlex
from typing import TYPE_CHECKING, Any

from labeling import hosted, logs
from labeling.redact import redact
from labeling.settings import Settings, load_settings

if TYPE_CHECKING:
    from labeling.jobs import JobManager, Progress
    from labeling.presence import CommandPresence
    from labeling.store import Store


def add_global_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="PATH", help="DuckDB file (default data/labeling.duckdb; env LABELING_DB)")
    parser.add_argument("--config", metavar="FILE", help="config file (default config.yaml if present)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")


def configure_logging(args: argparse.Namespace) -> None:
    """Everything to logs/labeling.log beside the database; the terminal gets only what a person must see."""
    logs.configure(settings(args).db_path, verbose=args.verbose)


def settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Settings with this command's flags applied on top (flags left at None do not override)."""
    cached: Settings | None = getattr(args, "_settings", None)
    if cached is None or overrides:
        session = hosted.current()
        if session is None:
            cached = load_settings(args.config, overrides={"db_path": args.db, **overrides})
        else:  # the caller's environment and folder; the database is the app's, which the caller asked for
            cached = load_settings(
                args.config,
                overrides={**overrides, "db_path": session.store.path},
                env=session.caller.env,
                cwd=session.caller.cwd,
            )
            cached = cached.replace(cache_dir=os.path.join(session.caller.cwd, os.path.expanduser(cached.cache_dir)))
        args._settings = cached
    return cached


def store(args: argparse.Namespace) -> Store:
    """The store for this command, opened once and closed when the command ends."""
    session = hosted.current()
    if session is not None:
        return session.store
    opened: Store | None = getattr(args, "_store", None)
    if opened is None:
        from labeling.presence import CommandPresence
        from labeling.store import Store  # DuckDB and pandas load only for commands that open the database

        opened = Store(settings(args).db_path)
        args._store = opened
        args._presence = CommandPresence(opened.path, _command_line(args))
    return opened


def job_manager(args: argparse.Namespace) -> JobManager:
    """The app's job manager for a command run through the app (its jobs show on the Run page), else this one's."""
    session = hosted.current()
    if session is not None:
        return session.job_manager()
    from labeling.jobs import JobManager

    return JobManager(store(args), settings(args))


def publish(args: argparse.Namespace, progress: Progress) -> None:
    """How far this command is, for an app started meanwhile (labeling.presence)."""
    presence: CommandPresence | None = getattr(args, "_presence", None)
    if presence is not None:
        presence.progress(done=progress.done, total=progress.total, failed=progress.failed, run_id=progress.run_id)


def caller_path(path: str) -> str:
    """A path the command makes up (a default output file) means the caller's folder, as a given one does."""
    session = hosted.current()
    return path if session is None or os.path.isabs(path) else os.path.join(session.caller.cwd, path)


def _command_line(args: argparse.Namespace) -> str:
    argv: list[str] = getattr(args, "_argv", None) or [str(args.command)]
    return redact("labeling " + " ".join(shlex.quote(part) for part in argv))  # no user:password@ of a URL


def close(args: argparse.Namespace) -> None:
    opened: Store | None = getattr(args, "_store", None)
    if opened is not None:
        opened.close()
        args._presence.withdraw()
        args._store = None
