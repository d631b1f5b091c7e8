"""C2PA content credentials: is a manifest store embedded (a cheap walk over the file's bytes), and who made it.

Where a manifest store lives (contentauth/c2pa-rs asset handlers): a PNG `caBX` chunk, JPEG APP11 segments
carrying a JUMBF superbox labelled `c2pa`, a WebP RIFF chunk `C2PA`. Only a file where one is found is handed to
c2pa-python (a Rust library behind ctypes, loaded on first use) to read the active manifest's claim generator.
No trust list is configured: a signer is reported untrusted, which is fine for "who says they made it".
"""

from __future__ import annotations

import functools
import io
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_MIME_TYPES = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
# JUMBF description box: type UUID (16 bytes), toggles (1 byte), then the label when toggles has bit 0x02.
_JUMD_LABEL_AT = 16 + 1
_DETAIL_LIMIT = 300  # characters of a c2pa error kept in `details`


@dataclass(frozen=True)
class Credentials:
    """What the active C2PA manifest says, or why it could not be read (c2pa errors never fail the image)."""

    generator: str | None = None  # the claim generator, e.g. "Adobe Firefly/1.0"
    details: dict[str, Any] = field(default_factory=dict)  # validation state, digital source type, error


def has_c2pa(data: bytes) -> bool:
    """True when a PNG, JPEG or WebP file embeds a C2PA manifest store (other formats: False)."""
    try:
        if data.startswith(_PNG_SIGNATURE):
            return any(kind == b"caBX" for kind, _, _ in _png_chunks(data))
        if data.startswith(b"\xff\xd8"):
            return any(_is_c2pa_app11(data[start:end]) for marker, start, end in _jpeg_segments(data) if marker == 0xEB)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return any(kind == b"C2PA" for kind in _riff_chunks(data))
    except struct.error:  # a length running past the end: what was walked had no manifest
        return False
    return False


def read_credentials(data: bytes, image_format: str) -> Credentials:
    """Read the active manifest's claim generator with c2pa-python; any failure lands in `details`."""
    mime_type = _MIME_TYPES.get(image_format)
    if mime_type is None:
        return Credentials(details={"c2pa_error": f"no C2PA reader for {image_format}"})
    try:
        import c2pa

        with c2pa.Reader(mime_type, io.BytesIO(data), context=_context()) as reader:
            store = json.loads(reader.json())
    except Exception as error:  # the native library raises its own error types, and ctypes may raise others
        return Credentials(details={"c2pa_error": f"{type(error).__name__}: {error}"[:_DETAIL_LIMIT]})
    return _credentials(store)


@functools.cache
def _context() -> Any:
    """One reading context for the process: no network (no remote manifests, no OCSP), no trust list."""
    import c2pa

    return c2pa.Context.from_dict({"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}})


def _credentials(store: dict[str, Any]) -> Credentials:
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest")) if isinstance(manifests, dict) else None
    details: dict[str, Any] = {}
    if store.get("validation_state"):
        details["c2pa_validation_state"] = store["validation_state"]
    if not isinstance(active, dict):
        details["c2pa_error"] = "the manifest store has no active manifest"
        return Credentials(details=details)
    source_type = _digital_source_type(active)
    if source_type:
        details["c2pa_source_type"] = source_type  # e.g. trainedAlgorithmicMedia: the signer says "AI"
    return Credentials(_claim_generator(active), details)


def _claim_generator(manifest: dict[str, Any]) -> str | None:
    """A v1 claim's `claim_generator` string, else the first `claim_generator_info` entry as name/version."""
    generator = manifest.get("claim_generator")
    if isinstance(generator, str) and generator.strip():
        return generator.strip()
    info = manifest.get("claim_generator_info")
    first = info[0] if isinstance(info, list) and info else None
    if not isinstance(first, dict) or not isinstance(first.get("name"), str):
        return None
    version = first.get("version")
    return f"{first['name']}/{version}" if isinstance(version, str) and version else str(first["name"])


def _digital_source_type(manifest: dict[str, Any]) -> str | None:
    """The IPTC digital source type of the first action that names one (the URL's last part)."""
    for assertion in manifest.get("assertions") or []:
        if not isinstance(assertion, dict) or not str(assertion.get("label", "")).startswith("c2pa.actions"):
            continue
        data = assertion.get("data")
        for action in data.get("actions", []) if isinstance(data, dict) else []:
            source = action.get("digitalSourceType") if isinstance(action, dict) else None
            if isinstance(source, str) and source:
                return source.rstrip("/").rsplit("/", 1)[-1]
    return None


# --- byte-level walks ------------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, data start, data end) of each PNG chunk, stopping at IEND or the end of the bytes."""
    at = len(_PNG_SIGNATURE)
    while at + 8 <= len(data):
        (length,) = struct.unpack_from(">I", data, at)
        kind = data[at + 4 : at + 8]
        yield kind, at + 8, at + 8 + length
        if kind == b"IEND":
            return
        at += 12 + length  # length, type, data, CRC


def _jpeg_segments(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, payload start, payload end) of each JPEG segment before the first scan (where APPn live)."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            return  # not a marker: a damaged header, nothing more to trust
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte before a marker
            at += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            at += 2
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: no APP segment follows in practice
            return
        (length,) = struct.unpack_from(">H", data, at + 2)
        yield marker, at + 4, at + 2 + length
        at += 2 + length


def _is_c2pa_app11(payload: bytes) -> bool:
    """An APP11 JPEG XT segment ("JP", box instance, sequence) whose JUMBF superbox is labelled c2pa."""
    if not payload.startswith(b"JP") or len(payload) < 8 + 8 + 8 + _JUMD_LABEL_AT:
        return False
    box = payload[8:]  # LBox, TBox "jumb", then the description box: LBox, TBox "jumd", UUID, toggles, label
    if box[4:8] != b"jumb" or box[12:16] != b"jumd":
        return False
    label = box[16 + _JUMD_LABEL_AT :].split(b"\x00", 1)[0]
    return label == b"c2pa"


def _riff_chunks(data: bytes) -> Iterator[bytes]:
    """The FourCC of each top-level chunk of a RIFF/WebP file."""
    at = 12
    while at + 8 <= len(data):
        kind = data[at : at + 4]
        (length,) = struct.unpack_from("<I", data, at + 4)
        yield kind
        at += 8 + length + (length & 1)  # chunks are padded to an even size
