"""The `labeling` command line: thin adapters over the core, one module per group of commands.

Errors the core raises on purpose print as one line and exit with status 1; Ctrl+C exits with 130.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from labeling.cli import (
    audit_commands,
    caption_commands,
    category_commands,
    compare_commands,
    context,
    dataset_commands,
    delegate,
    duplicate_commands,
    s3_commands,
)
from labeling.errors import LabelingError

log = logging.getLogger("labeling")

# Each module adds its subcommands with `register(subparsers)`; order is the order of `labeling --help`.
COMMAND_MODULES = [
    dataset_commands,
    s3_commands,
    caption_commands,
    compare_commands,
    audit_commands,
    duplicate_commands,
    category_commands,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="labeling", description="Caption, categorize, review and compare image datasets (REAL vs GEN) with Gemini."
    )
    context.add_global_flags(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        context.configure_logging(args)  # reads the settings: a bad config file is a one-line error too
        through_app = delegate.through_app(args, argv)  # the app holds this database: it runs the command
    except LabelingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if through_app is not None:
        return through_app
    return run(args, argv)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Run a parsed command here: in this process, or in the app for a command line (labeling.hosted)."""
    args._argv = list(argv)
    try:
        return int(args.handler(args) or 0)
    except LabelingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted: progress is saved in the database; run the same command again to resume.", file=sys.stderr)
        return 130
    finally:
        context.close(args)


__all__ = ["build_parser", "main", "run"]
