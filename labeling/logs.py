"""Where log lines go: everything to a log file beside the database, only what a person must see to stderr.

Decoder warnings (Pillow's `warnings`, "Possibly corrupt EXIF data", palette notes ...) and unexpected errors'
tracebacks are for the log file, `logs/labeling.log` next to the DuckDB file; a normal run prints none of them.
The terminal gets this package's warnings and errors (and everything with --verbose).
"""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

from labeling.redact import redact

LOG_NAME = "labeling.log"
_FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"
_MAX_BYTES, _BACKUPS = 10 * 2**20, 3
_OURS = "labeling-logs"


class _Redacting(logging.Formatter):
    """Credentials inside URLs (an HTTP client logs the URL it calls) never reach a log line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _NotForTheTerminal(logging.Filter):
    """Library chatter (decoders, HTTP, Streamlit) and Python warnings stay in the file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name == "labeling" or record.name.startswith("labeling.")


def terminal_formatter() -> logging.Formatter:
    """How a log line looks on a terminal: level, logger, message, credentials redacted."""
    return _Redacting("%(levelname)s %(name)s: %(message)s")


def log_path(db_path: str) -> Path:
    return Path(db_path).expanduser().resolve().parent / "logs" / LOG_NAME


def configure(db_path: str, *, verbose: bool = False) -> None:
    """Route logging for this process: the log file beside the database, and the terminal."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == _OURS]:
        root.removeHandler(handler)
        handler.close()
    logging.captureWarnings(True)  # warnings.warn(...) become log records of "py.warnings"
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    path = log_path(db_path)
    to_file: logging.Handler
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.handlers.RotatingFileHandler(
            path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8"
        )
    except OSError:  # a read-only folder must not stop the command: the terminal still gets what matters
        to_file = logging.NullHandler()
    to_file.setFormatter(_Redacting(_FORMAT))
    to_terminal = logging.StreamHandler()
    to_terminal.setLevel(logging.INFO if verbose else logging.WARNING)
    to_terminal.setFormatter(terminal_formatter())
    if not verbose:
        to_terminal.addFilter(_NotForTheTerminal())
    for handler in (to_file, to_terminal):
        handler.set_name(_OURS)  # ours, to replace on the next configure (tests configure many times)
        root.addHandler(handler)
