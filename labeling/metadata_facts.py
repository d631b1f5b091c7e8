"""Metadata facts of an opened image: EXIF camera fields, ICC profile name, XMP, and which generator wrote it.

Everything here reads what Pillow already parsed (`img.info`, the `Image.Exif`) or small byte structures (the
ICC profile's `desc` tag); nothing decodes pixels. `generator` comes from one table of rules, `GENERATOR_RULES`.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from PIL import ExifTags, Image

from labeling.images import decode_user_comment

_TEXT_LIMIT = 300  # characters kept of a camera field or an ICC description
_XMP_KEYS = ("xmp", "XML:com.adobe.xmp")  # JPEG APP1 and WebP `XMP ` chunk as Pillow names them; PNG iTXt
_XMP_TIFF_TAG = 0x02BC  # XMLPacket, for TIFFs
_EXIF_ERRORS = (SyntaxError, ValueError, EOFError, struct.error, IndexError, KeyError, TypeError)


@dataclass(frozen=True)
class MetadataFacts:
    """The `image_facts` metadata columns (text keys excepted: labeling.images reads those)."""

    exif: bool
    exif_make: str | None
    exif_model: str | None
    exif_software: str | None
    exif_datetime_original: str | None
    exif_gps: bool
    icc: bool
    icc_description: str | None
    xmp: bool
    generator: str | None


def metadata_facts(info: Mapping[str | tuple[int, int], object], exif: Image.Exif | None) -> MetadataFacts:
    """Metadata facts from Pillow's `info` of an opened image and its parsed EXIF (None when absent or broken)."""
    icc = info.get("icc_profile")
    sub_ifd = _ifd(exif, ExifTags.IFD.Exif)
    software = _text(exif.get(ExifTags.Base.Software)) if exif is not None else None
    return MetadataFacts(
        # An EXIF block as such (JPEG APP1, PNG eXIf, WebP EXIF), or a TIFF whose IFD points at EXIF or GPS data.
        exif=bool(info.get("exif"))
        or (exif is not None and (ExifTags.Base.ExifOffset in exif or ExifTags.Base.GPSInfo in exif)),
        exif_make=_text(exif.get(ExifTags.Base.Make)) if exif is not None else None,
        exif_model=_text(exif.get(ExifTags.Base.Model)) if exif is not None else None,
        exif_software=software,
        exif_datetime_original=_text(sub_ifd.get(ExifTags.Base.DateTimeOriginal)),
        exif_gps=bool(_ifd(exif, ExifTags.IFD.GPSInfo)),
        icc=isinstance(icc, bytes) and len(icc) > 0,
        icc_description=icc_description(icc) if isinstance(icc, bytes) else None,
        xmp=any(info.get(key) for key in _XMP_KEYS) or bool(exif is not None and exif.get(_XMP_TIFF_TAG)),
        generator=generator(info, _user_comment(sub_ifd), software),
    )


# --- generators --------------------------------------------------------------------------------------------

_STEPS_AND_SAMPLER = re.compile(r"Steps: .*Sampler: ", re.DOTALL)


def _is_json_object(value: object) -> bool:
    if not isinstance(value, str | bytes) or value.lstrip()[:1] not in ("{", b"{"):
        return False
    try:
        return isinstance(json.loads(value), dict)
    except ValueError:
        return False


def _a1111(value: object) -> bool:
    return isinstance(value, str) and _STEPS_AND_SAMPLER.search(value) is not None


def _named(name: str) -> Callable[[object], bool]:
    return lambda value: isinstance(value, str) and value.strip().lower().startswith(name.lower())


# (generator, text key, test of its value): the first rule that holds names the generator. "UserComment" is
# EXIF's (where A1111 writes for JPEG and WebP); the other keys are PNG text chunks as Pillow names them.
GENERATOR_RULES: tuple[tuple[str, str, Callable[[object], bool]], ...] = (
    ("Stable Diffusion WebUI", "parameters", _a1111),
    ("Stable Diffusion WebUI", "UserComment", _a1111),
    ("ComfyUI", "prompt", _is_json_object),
    ("ComfyUI", "workflow", _is_json_object),
    ("InvokeAI", "invokeai_metadata", lambda value: bool(value)),
    ("InvokeAI", "sd-metadata", _is_json_object),  # InvokeAI 2.x
    ("NovelAI", "Software", _named("NovelAI")),
    ("NovelAI", "Comment", _is_json_object),
)
# A Software field (EXIF or PNG text) naming a generator: lower-case substring -> the generator's name.
KNOWN_SOFTWARE: tuple[tuple[str, str], ...] = (
    ("midjourney", "Midjourney"),
    ("dall-e", "DALL-E"),
    ("dall·e", "DALL-E"),
    ("firefly", "Adobe Firefly"),
    ("imagen", "Google Imagen"),
    ("stable diffusion", "Stable Diffusion"),
    ("comfyui", "ComfyUI"),
    ("invokeai", "InvokeAI"),
    ("novelai", "NovelAI"),
    ("fooocus", "Fooocus"),
    ("leonardo", "Leonardo.Ai"),
    ("draw things", "Draw Things"),
    ("diffusionbee", "DiffusionBee"),
)


def generator(
    info: Mapping[str | tuple[int, int], object], user_comment: str | None, exif_software: str | None
) -> str | None:
    """Who the text metadata says made the image (GENERATOR_RULES, then KNOWN_SOFTWARE), None when nobody."""
    values: dict[str | tuple[int, int], object] = {**info, "UserComment": user_comment}
    for name, key, holds in GENERATOR_RULES:
        if values.get(key) is not None and holds(values[key]):
            return name
    for software in (exif_software, info.get("Software")):
        if isinstance(software, str):
            lowered = software.lower()
            for needle, name in KNOWN_SOFTWARE:
                if needle in lowered:
                    return name
    return None


# --- ICC ---------------------------------------------------------------------------------------------------


def icc_description(profile: bytes) -> str | None:
    """The profile's `desc` tag: ICC v2 textDescriptionType ASCII, or ICC v4 multiLocalizedUnicode (en first)."""
    try:
        (count,) = struct.unpack_from(">I", profile, 128)
        for index in range(min(count, 200)):  # the tag table follows the 128-byte header
            signature, offset, size = struct.unpack_from(">4sII", profile, 132 + 12 * index)
            if signature == b"desc":
                return _text(_description(profile[offset : offset + size]))
    except struct.error:  # a table or tag running past the end
        return None
    return None


def _description(tag: bytes) -> str | None:
    kind = tag[:4]
    if kind == b"desc":  # v2: type, reserved, ASCII count (with its NUL), ASCII
        (length,) = struct.unpack_from(">I", tag, 8)
        return tag[12 : 12 + length].split(b"\x00", 1)[0].decode("latin-1")
    if kind == b"mluc":  # v4: type, reserved, record count, record size, records (lang, country, length, offset)
        count, record_size = struct.unpack_from(">II", tag, 8)
        records = [struct.unpack_from(">2s2sII", tag, 16 + record_size * i) for i in range(min(count, 100))]
        if not records:
            return None
        _, _, length, offset = next((r for r in records if r[0] == b"en"), records[0])
        return tag[offset : offset + length].decode("utf-16-be", errors="replace")
    return None


# --- EXIF --------------------------------------------------------------------------------------------------


def _ifd(exif: Image.Exif | None, ifd: int) -> dict[int, object]:
    """A sub-IFD (Exif, GPS) as a dict; empty when absent or unreadable."""
    if exif is None:
        return {}
    try:
        return dict(exif.get_ifd(ifd))
    except _EXIF_ERRORS:
        return {}


def _user_comment(sub_ifd: Mapping[int, object]) -> str | None:
    return decode_user_comment(sub_ifd.get(ExifTags.Base.UserComment))


def _text(value: object) -> str | None:
    """A metadata value as clean text: NULs and padding gone, cut to a few hundred characters; None if empty."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    value = value.replace("\x00", "").strip()
    return value[:_TEXT_LIMIT] or None
