"""The Files API: resumable uploads, get, list, delete and download, with the real limits and 48 h expiry.

Protocol as the google-genai SDK speaks it (`files.upload`, `_api_client.upload_file`): a start request
`POST /upload/v1beta/files` (`X-Goog-Upload-Protocol: resumable`, `X-Goog-Upload-Command: start`, the
size and type in `X-Goog-Upload-Header-Content-Length/-Type`, body `{"file": {"displayName"}}`) answered
with an `x-goog-upload-url` header; chunks to that URL with `X-Goog-Upload-Command: upload` (`upload,
finalize` on the last) and `X-Goog-Upload-Offset`; every chunk answer carries `x-goog-upload-status`
(`active`, or `final` with the `{"file": {...}}` body) — without it the SDK retries the chunk.
`X-Goog-Upload-Command: query` answers the bytes received so far (`x-goog-upload-size-received`).
A file that is missing, deleted or expired answers 403 PERMISSION_DENIED "You do not have permission to
access the File ... or it may not exist." (python-genai#1218, deprecated-generative-ai-js#236).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import string
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from labeling.fake_gemini.clock import FakeClock, rfc3339
from labeling.fake_gemini.replies import Reply, error_reply
from labeling.fake_gemini.wire import WireError, pick

FILE_TTL_S = 48 * 3600  # "Files are stored for 48 hours" (Files API docs)
MAX_FILE_BYTES = 2 * 1024**3  # 2 GB per file
MAX_STORAGE_BYTES = 20 * 1024**3  # 20 GB per project
_ID_ALPHABET = string.ascii_lowercase + string.digits
_FILE_ID_LENGTH = 12  # real ids look like files/s0pa54alni6w
_DEFAULT_PAGE_SIZE = 10
_FINAL = {"x-goog-upload-status": "final"}  # without a status header the SDK retries the chunk
_MAX_PAGE_SIZE = 100


def new_id(length: int) -> str:
    """A lowercase alphanumeric id, the alphabet real file and batch ids use."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


def no_file(file_id: str) -> WireError:
    """What Google answers for a file that does not exist, was deleted or expired."""
    return WireError(403, f"You do not have permission to access the File {file_id} or it may not exist.")


@dataclass
class StoredFile:
    """One file resource and its bytes."""

    file_id: str
    display_name: str | None
    mime_type: str
    data: bytes
    created: float
    source: str  # UPLOADED or GENERATED (batch results)

    @property
    def name(self) -> str:
        return f"files/{self.file_id}"

    @property
    def expires(self) -> float:
        return self.created + FILE_TTL_S

    def resource(self, base_url: str, api_version: str) -> dict[str, Any]:
        """The File as the API sends it (sizeBytes as a string: int64 in proto JSON)."""
        body: dict[str, Any] = {"name": self.name}
        if self.display_name:
            body["displayName"] = self.display_name
        body |= {
            "mimeType": self.mime_type,
            "sizeBytes": str(len(self.data)),
            "createTime": rfc3339(self.created),
            "updateTime": rfc3339(self.created),
            "expirationTime": rfc3339(self.expires),
            "sha256Hash": base64.b64encode(hashlib.sha256(self.data).hexdigest().encode("ascii")).decode("ascii"),
            "uri": f"{base_url}/{api_version}/{self.name}",
        }
        if self.source == "GENERATED":
            body["downloadUri"] = f"{base_url}/download/{api_version}/{self.name}:download?alt=media"
        body |= {"state": "ACTIVE", "source": self.source}
        return body


@dataclass
class UploadSession:
    """A resumable upload between its start and its finalize."""

    upload_id: str
    display_name: str | None
    mime_type: str
    declared_size: int
    requested_id: str | None
    received: bytearray = field(default_factory=bytearray)
    file_id: str | None = None  # set once finalized


class FileStore:
    """Every file of the fake project; thread-safe. Limits are attributes a test may lower."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.max_file_bytes = MAX_FILE_BYTES
        self.max_storage_bytes = MAX_STORAGE_BYTES
        self.interrupt_after_bytes: int | None = None  # set by the upload_interrupted fault
        self._files: dict[str, StoredFile] = {}
        self._uploads: dict[str, UploadSession] = {}
        self._lock = threading.Lock()

    # -- reading -------------------------------------------------------------------------------------

    def live(self, file_id: str) -> StoredFile | None:
        """The file if it exists and has not expired (expired files are forgotten, as Google deletes them)."""
        with self._lock:
            self._purge()
            return self._files.get(file_id)

    def used_bytes(self) -> int:
        """Bytes stored by live files (uploads in progress not counted)."""
        with self._lock:
            self._purge()
            return sum(len(f.data) for f in self._files.values())

    def _purge(self) -> None:
        now = self.clock.now()
        for file_id in [i for i, f in self._files.items() if f.expires <= now]:
            del self._files[file_id]

    def add_generated(self, file_id: str, data: bytes, mime_type: str) -> StoredFile:
        """Store a file the service wrote itself (a batch's results)."""
        stored = StoredFile(file_id, None, mime_type, data, self.clock.now(), "GENERATED")
        with self._lock:
            self._files[file_id] = stored
        return stored

    def clear(self) -> None:
        """Forget every file and upload."""
        with self._lock:
            self._files.clear()
            self._uploads.clear()

    # -- the REST surface ----------------------------------------------------------------------------

    def start_upload(self, headers: Mapping[str, str], body: bytes, base_url: str, api_version: str) -> Reply:
        """`POST /upload/{v}/files` with `X-Goog-Upload-Command: start`: open a session."""
        if headers.get("x-goog-upload-protocol", "").lower() != "resumable":
            return error_reply(WireError(400, "Only the resumable upload protocol is supported by this fake."))
        if headers.get("x-goog-upload-command", "").lower() != "start":
            return error_reply(WireError(400, "Upload command must be 'start' for a new upload."))
        try:
            size = int(headers.get("x-goog-upload-header-content-length", ""))
        except ValueError:
            return error_reply(WireError(400, "X-Goog-Upload-Header-Content-Length is required."))
        try:
            metadata = json.loads(body.decode("utf-8") or "{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return error_reply(WireError(400, f"Invalid JSON payload received. {exc}"))
        file = pick(metadata, "file") if isinstance(metadata, dict) else None
        file = file if isinstance(file, dict) else {}
        mime = headers.get("x-goog-upload-header-content-type") or str(pick(file, "mimeType") or "")
        refusal = self._size_refusal(size)
        if refusal is not None:
            return error_reply(refusal)
        requested = str(pick(file, "name") or "").removeprefix("files/") or None
        session = UploadSession(new_id(32), pick(file, "displayName"), mime, size, requested)
        with self._lock:
            self._uploads[session.upload_id] = session
        url = f"{base_url}/upload/{api_version}/files?upload_id={session.upload_id}&upload_protocol=resumable"
        return Reply(200, None, headers={"x-goog-upload-url": url, "x-goog-upload-status": "active"}, content=b"")

    def _size_refusal(self, size: int) -> WireError | None:
        # Wording approximated: no public source quotes the over-size answers.
        if size > self.max_file_bytes:
            return WireError(400, f"File size {size} bytes exceeds the maximum of {self.max_file_bytes} bytes.")
        if self.used_bytes() + size > self.max_storage_bytes:
            return WireError(429, f"Project storage quota of {self.max_storage_bytes} bytes exceeded.")
        return None

    def upload_chunk(
        self, query: str, headers: Mapping[str, str], body: bytes, base_url: str, api_version: str
    ) -> Reply:
        """A chunk, a finalize or a query sent to an `x-goog-upload-url`."""
        upload_id = (parse_qs(query).get("upload_id") or [""])[0]
        with self._lock:
            session = self._uploads.get(upload_id)
        if session is None:
            return error_reply(WireError(404, "Upload session not found or expired."), headers=_FINAL)
        command = {c.strip() for c in headers.get("x-goog-upload-command", "").lower().split(",")}
        if "query" in command:
            return self._status(session, base_url, api_version)
        if session.file_id is not None:
            return self._status(session, base_url, api_version)  # already final: say so again
        if "upload" not in command and "finalize" not in command:
            return error_reply(WireError(400, "Unknown X-Goog-Upload-Command."), headers=self._active(session))
        offset = headers.get("x-goog-upload-offset")
        if offset is None or not offset.isdigit() or int(offset) != len(session.received):
            # The session stays open at its real size, so the client can query and resume from there.
            message = f"Invalid upload offset {offset}: {len(session.received)} bytes have been received."
            return error_reply(WireError(400, message), headers=self._active(session))
        cut = self.interrupt_after_bytes
        if cut is not None:
            self.interrupt_after_bytes = None  # one interruption per injected fault
            session.received += body[: max(cut - len(session.received), 0)]
            return Reply(0, None, fault="upload_interrupted")  # the connection drops mid-upload
        if len(session.received) + len(body) > session.declared_size:
            return error_reply(WireError(400, "Upload exceeds the declared size."), headers=self._active(session))
        session.received += body
        if "finalize" not in command:
            return Reply(200, None, headers=self._active(session), content=b"")
        if len(session.received) != session.declared_size:
            message = f"Upload finalized with {len(session.received)} of {session.declared_size} declared bytes."
            return error_reply(WireError(400, message), headers=self._active(session))
        return self._finalize(session, base_url, api_version)

    def _finalize(self, session: UploadSession, base_url: str, api_version: str) -> Reply:
        with self._lock:
            file_id = session.requested_id or new_id(_FILE_ID_LENGTH)
            if file_id in self._files:
                conflict = WireError(409, f"File files/{file_id} already exists.", status="ALREADY_EXISTS")
                return error_reply(conflict, headers=_FINAL)
            stored = StoredFile(
                file_id, session.display_name, session.mime_type, bytes(session.received), self.clock.now(), "UPLOADED"
            )
            self._files[file_id] = stored
            session.file_id = file_id
        return self._final(stored, base_url, api_version)

    def _status(self, session: UploadSession, base_url: str, api_version: str) -> Reply:
        stored = self.live(session.file_id) if session.file_id else None
        if stored is not None:
            return self._final(stored, base_url, api_version)
        return Reply(200, None, headers=self._active(session), content=b"")

    @staticmethod
    def _active(session: UploadSession) -> dict[str, str]:
        return {"x-goog-upload-status": "active", "x-goog-upload-size-received": str(len(session.received))}

    @staticmethod
    def _final(stored: StoredFile, base_url: str, api_version: str) -> Reply:
        headers = {"x-goog-upload-status": "final", "x-goog-upload-size-received": str(len(stored.data))}
        return Reply(200, {"file": stored.resource(base_url, api_version)}, headers=headers)

    def get(self, file_id: str, base_url: str, api_version: str) -> Reply:
        """`GET /{v}/files/{id}`."""
        stored = self.live(file_id)
        if stored is None:
            return error_reply(no_file(file_id))
        return Reply(200, stored.resource(base_url, api_version))

    def delete(self, file_id: str) -> Reply:
        """`DELETE /{v}/files/{id}`: answers `{}` (google.protobuf.Empty)."""
        with self._lock:
            self._purge()
            found = self._files.pop(file_id, None)
        return Reply(200, {}) if found is not None else error_reply(no_file(file_id))

    def download(self, file_id: str) -> Reply:
        """`GET /{v}/files/{id}:download?alt=media`: the bytes; only generated files can be downloaded."""
        stored = self.live(file_id)
        if stored is None:
            return error_reply(no_file(file_id))
        if stored.source != "GENERATED":
            # The SDK refuses this itself ("uploaded files can't be downloaded"); wording approximated.
            return error_reply(WireError(400, f"File files/{file_id} is not downloadable: only generated files are."))
        return Reply(200, None, content=stored.data, content_type=stored.mime_type)

    def list(self, query: str, base_url: str, api_version: str) -> Reply:
        """`GET /{v}/files?pageSize&pageToken`: newest first, `nextPageToken` while more remain."""
        params = parse_qs(query)
        try:
            size = int((params.get("pageSize") or [str(_DEFAULT_PAGE_SIZE)])[0])
            start = int(base64.urlsafe_b64decode((params.get("pageToken") or [""])[0] or "MA==").decode() or "0")
        except ValueError:
            return error_reply(WireError(400, "Invalid page token or page size."))
        size = min(max(size, 1), _MAX_PAGE_SIZE)
        with self._lock:
            self._purge()
            ordered = sorted(self._files.values(), key=lambda f: f.created, reverse=True)
        page = ordered[start : start + size]
        body: dict[str, Any] = {"files": [f.resource(base_url, api_version) for f in page]} if page else {}
        if start + size < len(ordered):
            body["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return Reply(200, body)
