"""Counts in words: '1 match', '4 matches', '1,204 entities'."""

from __future__ import annotations


def counted(count: int, singular: str, plural: str | None = None) -> str:
    """`count` with its noun, singular for exactly one (plural: `singular` + 's' unless given)."""
    noun = singular if count == 1 else plural or f"{singular}s"
    return f"{count:,} {noun}"
