"""Checksums kept beside stored values, so corrupted bytes are detected, never returned."""

import zlib

from .errors import CorruptionError


def checksum(data: bytes) -> int:
    """CRC-32 of the stored bytes."""
    return zlib.crc32(data)


def verified(data: bytes, stored_checksum: int, what: str) -> bytes:
    """Return `data` if it matches its checksum; raise CorruptionError otherwise."""
    if zlib.crc32(data) != stored_checksum:
        raise CorruptionError(f"{what}: stored bytes fail their checksum; refusing to return them")
    return data


def verified_text(text: str, stored_checksum: int, what: str) -> str:
    verified(text.encode(), stored_checksum, what)
    return text


def damaged_bytes(data: bytes) -> bytes:
    """`data` with its first bit flipped (an empty value gains a byte): fault injection."""
    if not data:
        return b"\x00"
    return bytes([data[0] ^ 0x01]) + data[1:]


def damaged_text(text: str) -> str:
    return damaged_bytes(text.encode()).decode("utf-8", errors="replace")
