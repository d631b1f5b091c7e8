"""Secrets that hide in text: `user:password@` inside a URL never reaches the database, a log or a page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# scheme://user:password@host or scheme://token@host: everything between // and @ (no /, space or @ in it).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@]+)@")


def redact(text: str) -> str:
    """`text` with the user information of every URL in it replaced by `***`."""
    return _USERINFO.sub(r"\g<scheme>***@", text) if "@" in text else text


def redact_values(values: dict[str, Any]) -> dict[str, Any]:
    """A copy with every string value redacted (settings stored with a run)."""
    return {key: redact(value) if isinstance(value, str) else value for key, value in values.items()}


def without_userinfo(url: str) -> str:
    """The URL with its user information dropped (an S3 endpoint authenticates by keys, never by the URL)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
