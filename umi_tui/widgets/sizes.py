"""Byte counts for people: 812 B, 12.4 KiB, 1.0 MiB."""

from __future__ import annotations


def format_bytes(count: int) -> str:
    if count < 1024:
        return f"{count} B"
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1024 * 1024):.1f} MiB"
