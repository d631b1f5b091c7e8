"""What every command shares: global flags, settings, the store, logging."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from labeling import logs
from labeling.settings import Settings, load_settings

if TYPE_CHECKING:
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
        cached = load_settings(args.config, overrides={"db_path": args.db, **overrides})
        args._settings = cached
    return cached


def store(args: argparse.Namespace) -> Store:
    """The store for this command, opened once and closed when the command ends."""
    opened: Store | None = getattr(args, "_store", None)
    if opened is None:
        from labeling.store import Store  # DuckDB and pandas load only for commands that open the database

        opened = Store(settings(args).db_path)
        args._store = opened
    return opened


def close(args: argparse.Namespace) -> None:
    opened: Store | None = getattr(args, "_store", None)
    if opened is not None:
        opened.close()
