"""Matching listed names to the files or keys a source holds, as the seed did: exact name, then same stem.

A listed name matches a file with exactly that name in any subfolder; failing that, an image with the same
stem (`x.jpg` finds `x.png`). One candidate is found; several are ambiguous (never guessed); none is missing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif",
                              ".heic", ".heif", ".jfif"})


def _split(path: str) -> tuple[str, str, str]:
    """(basename, stem, lower-case extension) of a `/`-separated relative path."""
    base = path.rsplit("/", 1)[-1]
    dot = base.rfind(".")
    if dot <= 0:
        return base, base, ""
    return base, base[:dot], base[dot:].lower()


def is_image_path(path: str) -> bool:
    return _split(path)[2] in IMAGE_EXTENSIONS


@dataclass
class MatchResult:
    """Where each listed name was found: `found[name] = location`, `ambiguous[name] = candidates`."""

    found: dict[str, str] = field(default_factory=dict)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)


class KeyIndex:
    """An index of the relative paths (or S3 keys) a source holds, built once and matched against many names."""

    def __init__(self, paths: Iterable[str]) -> None:
        self._by_name: dict[str, list[str]] = defaultdict(list)
        self._by_stem: dict[str, list[str]] = defaultdict(list)
        self.count = 0
        for path in paths:
            self.count += 1
            base, stem, extension = _split(path)
            self._by_name[base].append(path)
            if extension in IMAGE_EXTENSIONS:
                self._by_stem[stem].append(path)

    def candidates(self, name: str) -> list[str]:
        """Every location `name` could mean: exact-name matches if any, else same-stem images."""
        base, stem, _ = _split(name)
        exact = self._by_name.get(base, [])
        if "/" in name:
            # A listed name with folders must match those folders too.
            suffix = "/" + name
            exact = [path for path in exact if path == name or path.endswith(suffix)]
        if exact:
            return exact
        by_stem = self._by_stem.get(stem, [])
        if "/" in name:
            folder = name.rsplit("/", 1)[0]
            by_stem = [path for path in by_stem if path.rsplit("/", 1)[0].endswith(folder)]
        return by_stem

    def match(self, names: Iterable[str]) -> MatchResult:
        result = MatchResult()
        by_name = self._by_name
        for name in names:
            # Fast path for the common case: a bare file name that exists under exactly that name.
            candidates = by_name.get(name, []) if "/" not in name else []
            if not candidates:
                candidates = self.candidates(name)
            if len(candidates) == 1:
                result.found[name] = candidates[0]
            elif candidates:
                result.ambiguous[name] = sorted(candidates)
            else:
                result.missing.append(name)
        return result
