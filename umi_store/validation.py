"""Argument type checks for the public API: a wrong type is an InvalidInputError naming
the argument, raised before anything is read or written (never an AttributeError or a
TypeError from deep inside a backend).

Each helper returns the value it checked, so a method starts with
`key = text_argument(key, "key")`. `bool` is refused where a number is wanted (Python
counts True as 1), and `str` subclasses (the StrEnums) count as text.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import InvalidInputError
from .models import Entity


def _described(value: object) -> str:
    return "None" if value is None else f"{type(value).__name__} {value!r:.40}"


def _refused(name: str, wanted: str, value: object) -> InvalidInputError:
    return InvalidInputError(f"{name} must be {wanted}, got {_described(value)}")


def text_argument(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise _refused(name, "text (str)", value)
    return value


def optional_text_argument(value: object, name: str) -> str | None:
    return None if value is None else text_argument(value, name)


def whole_number_argument(value: object, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _refused(name, "a whole number (int)", value)
    return value


def optional_whole_number_argument(value: object, name: str) -> int | None:
    return None if value is None else whole_number_argument(value, name)


def number_argument(value: object, name: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _refused(name, "a number", value)
    return float(value)


def bytes_argument(value: object, name: str) -> bytes:
    """Bytes (or a bytes-like object); text is taken as its UTF-8 encoding."""
    if isinstance(value, str):
        return value.encode()
    if not isinstance(value, (bytes, bytearray, memoryview)):
        raise _refused(name, "bytes or text", value)
    return bytes(value)


def entity_argument(value: object, name: str) -> Entity:
    if not isinstance(value, Entity):
        raise _refused(name, "an Entity", value)
    return value


def metadata_argument(value: object, name: str) -> Mapping[str, str] | None:
    """None, or a mapping of text to text."""
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _refused(name, "a mapping of text to text", value)
    return value
