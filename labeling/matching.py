"""Matching listed names to the files or keys a source holds, as the seed did: exact name, then same stem.

A listed name matches a file with exactly that name in any subfolder; failing that, the same name ignoring
case, then an image with the same stem (`x.jpg` finds `x.png`). One candidate is found; several are ambiguous
(never guessed: the user picks one, and `apply_choices` keeps that pick on the next import); none is missing.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

# Every file ending the pipeline reads (Pillow's formats it can convert, HEIC/HEIF through pillow-heif): the one
# list that folder import, S3 matching and listed-name checks share.
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".png",
        ".apng",
        ".webp",
        ".gif",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".avif",
        ".heic",
        ".heif",
        ".mpo",
        ".tga",
        ".jp2",
        ".j2k",
        ".jpx",
        ".jpf",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
        ".ico",
        ".psd",
        ".qoi",
        ".pcx",
        ".sgi",
        ".dds",
        ".im",
        ".xbm",
    }
)


def _split(path: str) -> tuple[str, str, str]:
    """(basename, stem, lower-case extension) of a `/`-separated relative path."""
    base = path.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    if dot <= 0:
        return base, base, ""
    return base, base[:dot], base[dot:].lower()


def is_image_path(path: str) -> bool:
    return _split(path)[2] in IMAGE_EXTENSIONS


_NONE: list[str] = []  # what a lookup finds when nothing matches (shared, never changed)


def _nfc(text: str) -> str:
    """One spelling of a name: macOS writes NFD file names, most lists are NFC."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


@dataclass
class MatchResult:
    """Where each listed name was found: `found[name] = location`, `ambiguous[name] = candidates`;
    `how[name]` says when a found name matched only by stem or only ignoring case (never silently)."""

    found: dict[str, str] = field(default_factory=dict)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    how: dict[str, str] = field(default_factory=dict)  # name -> "stem" | "case" | "chosen"


def apply_choices(match: MatchResult, choices: dict[str, str]) -> MatchResult:
    """Ambiguous names whose picked file (`choices[name]`) is still a candidate become found there, as "chosen".

    A pick whose file is gone leaves the name ambiguous again: it is never applied to files it was not made for.
    """
    picked = {
        name: choices[name]
        for name, candidates in match.ambiguous.items()
        if name in choices and choices[name] in candidates
    }
    if not picked:
        return match
    return MatchResult(
        found=match.found | picked,
        ambiguous={name: found for name, found in match.ambiguous.items() if name not in picked},
        missing=match.missing,
        how=match.how | dict.fromkeys(picked, "chosen"),
    )


class KeyIndex:
    """An index of the relative paths (or S3 keys) a source holds, built once and matched against many names.

    Names and keys are compared in Unicode NFC; a listed name is found by, in order: its exact file name, the
    same name ignoring case (`IMG.JPG` ~ `img.jpg`, reported as a `case` match), an image with the same stem
    (`x.jpg` finds `x.png`, reported as a `stem` match), the same stem ignoring case (`case`).
    """

    def __init__(self, paths: Iterable[str]) -> None:
        self._by_name: dict[str, list[str]] = defaultdict(list)
        self._by_stem: dict[str, list[str]] = defaultdict(list)
        self._by_lower: dict[str, list[str]] = defaultdict(list)
        self._by_lower_stem: dict[str, list[str]] = defaultdict(list)
        self._loose: set[str] = set()  # every lower-cased stem: a name whose stem is not here matches nothing
        self.count = 0
        for path in paths:
            self.count += 1
            base, stem, extension = _split(_nfc(path))
            self._by_name[base].append(path)
            self._by_lower[base.lower()].append(path)
            self._loose.add(stem.lower())
            if extension in IMAGE_EXTENSIONS:
                self._by_stem[stem].append(path)
                self._by_lower_stem[stem.lower()].append(path)

    def candidates(self, name: str) -> list[str]:
        """Every location `name` could mean (see the class docstring for the order)."""
        return self._lookup(_nfc(name))[0]

    def _lookup(self, name: str) -> tuple[list[str], str | None]:
        base, stem, _ = _split(name)
        folder = name.rsplit("/", 1)[0] if "/" in name else None
        ways = (
            (self._by_name, base, None, False),
            (self._by_lower, base.lower(), "case", False),
            (self._by_stem, stem, "stem", True),
            (self._by_lower_stem, stem.lower(), "case", True),
        )
        for index, key, how, by_stem in ways:
            found = index.get(key, [])
            if found and folder is not None:
                found = [path for path in found if _in_folder(_nfc(path), name, folder, by_stem, how == "case")]
            if found:
                return found, how
        return [], None

    def match(self, names: Iterable[str]) -> MatchResult:
        result = MatchResult()
        by_name, by_lower, by_stem, by_lower_stem = self._by_name, self._by_lower, self._by_stem, self._by_lower_stem
        loose = self._loose
        for name in names:
            if "/" in name or not name.isascii():
                candidates, how = self._lookup(_nfc(name))
            else:  # the common case, a bare ASCII file name, inlined: a million names go through here
                candidates, how = by_name.get(name, _NONE), None
                if not candidates:
                    dot = name.rfind(".")
                    stem = name[:dot] if dot > 0 else name
                    if stem.lower() not in loose:  # most missing names stop here, after two lookups
                        result.missing.append(name)
                        continue
                    candidates, how = by_lower.get(name.lower(), _NONE), "case"
                    if not candidates:
                        candidates, how = by_stem.get(stem, _NONE), "stem"
                    if not candidates:
                        candidates, how = by_lower_stem.get(stem.lower(), _NONE), "case"
            if len(candidates) == 1:
                result.found[name] = candidates[0]
                if how:
                    result.how[name] = how
            elif candidates:
                result.ambiguous[name] = sorted(candidates)
            else:
                result.missing.append(name)
        return result


def _in_folder(path: str, name: str, folder: str, by_stem: bool, ignore_case: bool) -> bool:
    """A listed name with folders must match those folders too."""
    if ignore_case:
        path, name, folder = path.lower(), name.lower(), folder.lower()
    if by_stem:
        return path.rsplit("/", 1)[0].endswith(folder) if "/" in path else False
    return path == name or path.endswith("/" + name)
