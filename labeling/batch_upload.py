"""The Files API's resumable upload, spoken directly over HTTP so an upload survives the process that began it.

The SDK's `files.upload` keeps its session URL in memory: after a crash it starts over. This module keeps the
session in the caller's hands (the `batch_shards` row): `start` opens it (`X-Goog-Upload-Command: start`, the
answer's `x-goog-upload-url`), `query` asks how many bytes the server holds, and `send` continues from there
in chunks (`upload`, then `upload, finalize` on the last), reporting each confirmed offset so it can be stored.
Same endpoint, key and API version as the SDK's client.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2

from labeling.annotators.base import RetryableError
from labeling.errors import AnnotatorError
from labeling.settings import Settings

GOOGLE_BASE_URL = "https://generativelanguage.googleapis.com"
CHUNK_BYTES = 32 * 256 * 1024  # 8 MiB: the protocol wants chunks in multiples of 256 KiB
JSONL_MIME = "application/jsonl"


class UploadGone(Exception):
    """The server no longer knows the upload session (expired or cancelled): start a new one."""


@dataclass(frozen=True)
class UploadStatus:
    """What the server holds of one upload: `active` with `received` bytes, or `final` with the file."""

    status: str
    received: int
    file: dict[str, Any] | None


class ResumableUploader:
    """Resumable uploads to the Files API of the configured endpoint; one instance a run, on one thread."""

    def __init__(self, settings: Settings, *, chunk_bytes: int = CHUNK_BYTES) -> None:
        if chunk_bytes % (256 * 1024):
            raise ValueError("chunk_bytes must be a multiple of 256 KiB")
        self._base = (settings.gemini_base_url or GOOGLE_BASE_URL).rstrip("/")
        self._version = settings.gemini_api_version
        self._chunk = chunk_bytes
        timeout = max(settings.request_timeout_seconds, 60.0) or None
        # The key goes in a header, as the SDK sends it; it is never logged (httpx2 logs no headers).
        self._http = httpx2.Client(headers={"x-goog-api-key": settings.gemini_api_key}, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def start(self, size: int, display_name: str) -> str:
        """Open an upload session for `size` bytes of JSONL; returns its URL (keep it: it resumes the upload)."""
        response = self._post(
            f"{self._base}/upload/{self._version}/files",
            {
                "X-Goog-Upload-Protocol": "resumable",
                "X-Goog-Upload-Command": "start",
                "X-Goog-Upload-Header-Content-Length": str(size),
                "X-Goog-Upload-Header-Content-Type": JSONL_MIME,
                "Content-Type": "application/json",
            },
            json.dumps({"file": {"displayName": display_name}}).encode(),
        )
        url = response.headers.get("x-goog-upload-url")
        if not url:
            raise AnnotatorError("The Files API answered without an upload URL: check gemini_base_url.")
        return self._on_our_endpoint(url)

    def query(self, url: str) -> UploadStatus:
        """How far an upload got, asked of the server (`X-Goog-Upload-Command: query`)."""
        response = self._post(url, {"X-Goog-Upload-Command": "query"}, b"", session=True)
        return self._status(response)

    def send(
        self,
        url: str,
        path: Path,
        offset: int,
        *,
        confirmed: Callable[[int], None],
        stop: threading.Event,
    ) -> dict[str, Any] | None:
        """Upload `path` from `offset` to its end; `confirmed(offset)` hears each offset the server took. Returns the
        file resource once final, or None when `stop` was set first (resume from the last confirmed offset)."""
        size = path.stat().st_size
        with path.open("rb") as handle:
            handle.seek(offset)
            while True:
                if stop.is_set():
                    return None
                chunk = handle.read(self._chunk)
                last = offset + len(chunk) >= size
                headers = {
                    "X-Goog-Upload-Command": "upload, finalize" if last else "upload",
                    "X-Goog-Upload-Offset": str(offset),
                }
                response = self._post(url, headers, chunk, session=True)
                status = self._status(response)
                if status.status == "final":
                    confirmed(size)
                    return status.file or {}
                offset += len(chunk)
                confirmed(offset)
                if last:
                    raise RetryableError("The upload did not become final after its last chunk.", "server_error")

    # -- plumbing ------------------------------------------------------------------------------------

    def _on_our_endpoint(self, url: str) -> str:
        """The session URL on the configured host, as the SDK does (a proxy or the fake may name another)."""
        base, target = urlsplit(self._base), urlsplit(url)
        return urlunsplit(target._replace(scheme=base.scheme, netloc=base.netloc))

    def _post(self, url: str, headers: dict[str, str], body: bytes, *, session: bool = False) -> httpx2.Response:
        try:
            response = self._http.post(url, headers=headers, content=body)
        except httpx2.TimeoutException as exc:
            raise RetryableError(f"The upload timed out ({type(exc).__name__}).", "timeout") from exc
        except httpx2.TransportError as exc:
            raise RetryableError(f"The upload connection failed ({type(exc).__name__}: {exc}).", "transport") from exc
        if session and response.status_code in (404, 410):
            raise UploadGone(f"the upload session is gone ({response.status_code})")
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(f"The Files API answered {response.status_code}: {_message(response)}", "server_error")
        if response.status_code >= 400:
            raise AnnotatorError(
                f"The Files API refused the upload ({response.status_code}: {_message(response)}): check the key, "
                "gemini_base_url and the project's file storage (20 GB)."
            )
        return response

    @staticmethod
    def _status(response: httpx2.Response) -> UploadStatus:
        status = (response.headers.get("x-goog-upload-status") or "").lower()
        received = int(response.headers.get("x-goog-upload-size-received") or 0)
        file: dict[str, Any] | None = None
        if status == "final" and response.content:
            try:
                body = response.json()
            except ValueError:
                body = {}
            file = body.get("file", body) if isinstance(body, dict) else None
        return UploadStatus(status or "active", received, file)


def _message(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("message") if isinstance(error, dict) else body)[:300]
