"""Which Files API or Batch Mode method a request is, from its method and path (the paths the SDK builds).

`files.download` calls `GET {base}/{v}/files/{id}:download?alt=media` (google/genai/files.py); results files
are also fetched at `/download/{v}/files/{id}:download?alt=media` (their `downloadUri`), so both are served.
Only v1beta and v1alpha have these methods here: the fake's generateContent keeps v1 for itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_VERSION = r"(v1beta|v1alpha)"
_ROUTES: list[tuple[str, str, re.Pattern[str]]] = [
    ("POST", "files.upload", re.compile(rf"^/upload/{_VERSION}/files$")),
    ("GET", "files.list", re.compile(rf"^/{_VERSION}/files$")),
    ("GET", "files.download", re.compile(rf"^(?:/download)?/{_VERSION}/files/([a-z0-9-]+):download$")),
    ("GET", "files.get", re.compile(rf"^/{_VERSION}/files/([a-z0-9-]+)$")),
    ("DELETE", "files.delete", re.compile(rf"^/{_VERSION}/files/([a-z0-9-]+)$")),
    ("POST", "batches.create", re.compile(rf"^/{_VERSION}/models/([^/:]+):batchGenerateContent$")),
    ("GET", "batches.list", re.compile(rf"^/{_VERSION}/batches$")),
    ("GET", "batches.get", re.compile(rf"^/{_VERSION}/batches/([a-z0-9-]+)$")),
    ("POST", "batches.cancel", re.compile(rf"^/{_VERSION}/batches/([a-z0-9-]+):cancel$")),
    ("DELETE", "batches.delete", re.compile(rf"^/{_VERSION}/batches/([a-z0-9-]+)$")),
]


@dataclass(frozen=True)
class Route:
    """A matched method: its name (`files.get`, `batches.create`, ...), API version and resource id or model."""

    method: str
    api_version: str
    target: str | None


def match(method: str, path: str) -> Route | None:
    """The Files/Batches method for this request, or None (generateContent, or nothing at all)."""
    for verb, name, pattern in _ROUTES:
        found = pattern.match(path)
        if found is not None and verb == method:
            return Route(name, found.group(1), found.group(2) if found.lastindex and found.lastindex > 1 else None)
    return None
