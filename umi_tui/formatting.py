"""Text for people, shared by every pane and dialog: clock readings, and durations read the
way a person writes them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_DURATION_UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "min": 60_000, "h": 3_600_000,
                      "d": 86_400_000}
_DURATION_PART = re.compile(r"(\d+)\s*(ms|min|[dhms])?", re.IGNORECASE)


def format_ms(at_ms: int) -> str:
    """A store clock reading (ms since the epoch) as UTC 'YYYY-MM-DD HH:MM:SS'."""
    return datetime.fromtimestamp(at_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def parse_duration(text: str, *, ms_max: int | None = None) -> int:
    """Milliseconds from '90s', '5m', '1h30m', '3d', '250ms' or bare seconds ('45'): more
    than zero and, given `ms_max`, at most that. Raises ValueError fit to show the user."""
    compact = text.strip()
    total_ms, position = 0, 0
    for match in _DURATION_PART.finditer(compact):
        if compact[position:match.start()].strip():
            break
        total_ms += int(match[1]) * _DURATION_UNITS_MS[(match[2] or "s").lower()]
        position = match.end()
    if not compact or position == 0 or compact[position:].strip():
        raise ValueError(f"cannot read {compact!r} as a duration; write e.g. 30s, 5m, 2h, "
                         "1d or 1h30m")
    if total_ms <= 0:
        raise ValueError("a duration must be longer than zero")
    if ms_max is not None and total_ms > ms_max:
        raise ValueError(f"{compact} is longer than the most allowed here, "
                         f"{ms_max // 86_400_000}d")
    return total_ms
