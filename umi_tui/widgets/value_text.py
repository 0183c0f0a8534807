"""Working-memory values as editable text, losslessly: plain UTF-8 text as it stands, any
other bytes escaped (`\\xNN` a byte, `\\\\` a backslash, `\\n` `\\t` `\\r`)."""

from __future__ import annotations

import re
import unicodedata

_NAMED_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r"}
_UNESCAPES = {"\\": b"\\", "n": b"\n", "t": b"\t", "r": b"\r"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.?)", re.DOTALL)
_SURROGATE_ESCAPED_BYTES = range(0xDC80, 0xDD00)  # how surrogateescape spells a stray byte


def is_plain_text(value: bytes) -> bool:
    """Whether `value` is UTF-8 text without control characters, fit to edit as it stands."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(unicodedata.category(char) == "Cc" for char in text)


def holds_stray_bytes(text: str) -> bool:
    """Whether `text`, decoded with errors="surrogateescape", met bytes that are not UTF-8."""
    return not text.isascii() and any(ord(char) in _SURROGATE_ESCAPED_BYTES for char in text)


def escaped(value: bytes) -> str:
    """`value` as text that `unescaped` turns back into the same bytes: valid UTF-8 characters
    as they are, control characters and bytes that are not UTF-8 as escapes."""
    parts = []
    for char in value.decode("utf-8", "surrogateescape"):
        if ord(char) in _SURROGATE_ESCAPED_BYTES:
            parts.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif char in _NAMED_ESCAPES:
            parts.append(_NAMED_ESCAPES[char])
        elif unicodedata.category(char) == "Cc":
            parts.append("".join(f"\\x{byte:02x}" for byte in char.encode()))
        else:
            parts.append(char)
    return "".join(parts)


def unescaped(text: str) -> bytes:
    """The bytes `text` spells in the escaped form; ValueError naming a bad escape."""
    parts, position = [], 0
    for match in _ESCAPE.finditer(text):
        parts.append(text[position:match.start()].encode())
        escape = match.group(1)
        if escape.startswith("x") and len(escape) == 3:
            parts.append(bytes([int(escape[1:], 16)]))
        elif escape in _UNESCAPES:
            parts.append(_UNESCAPES[escape])
        else:
            raise ValueError(f"unknown escape '{match.group(0)}' at character "
                             f"{match.start() + 1}; write \\\\ for a backslash, \\xNN for a byte")
        position = match.end()
    parts.append(text[position:].encode())
    return b"".join(parts)
