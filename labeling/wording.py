"""Counts in words: "1 image", "2 images", "1,234 images" (every message that counts things says it right)."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """`n` with the noun in its right number; `plural` for nouns that do not take an "s"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
