"""TTL countdowns: humanised to the first unit and classed by time left.

Every displayed label is constant over a range of remaining time, so a countdown needs
redrawing only when that range ends: `next_change_ms` says when, and a pane with 10 000
keys redraws only the cells whose label actually changed.
"""

from __future__ import annotations

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

# (unit size in ms, suffix), largest first; a countdown shows the first unit that fits.
_UNITS: tuple[tuple[int, str], ...] = ((DAY_MS, "d"), (HOUR_MS, "h"), (MINUTE_MS, "m"),
                                       (SECOND_MS, "s"))

# Histogram buckets by time left: upper bounds in ms (the last is open).
TTL_BUCKET_LABELS: tuple[str, ...] = ("<1m", "<1h", "<1d", "≥1d")
_BUCKET_BOUNDS_MS: tuple[int, ...] = (MINUTE_MS, HOUR_MS, DAY_MS)

# Urgency classes by time left, matching the buckets: seconds, minutes, hours or more.
TTL_URGENCIES: tuple[str, ...] = ("soon", "minutes", "later")

def _whole_seconds(remaining_ms: int) -> int:
    """Remaining time in seconds, rounded up: 1 ms left still shows as 1s."""
    return -(-remaining_ms // SECOND_MS)


def humanize_ttl(remaining_ms: int) -> str:
    """'42s', '3m', '5h', '2d': the remaining time in its first unit, rounded down."""
    seconds_ms = _whole_seconds(remaining_ms) * SECOND_MS
    for size, suffix in _UNITS:
        if seconds_ms >= size:
            return f"{seconds_ms // size}{suffix}"
    return "0s"


def spelled_ttl(remaining_ms: int) -> str:
    """'2d22h3m20s': the remaining time in every unit, to the second (rounded up), in the
    form parse_ttl reads back."""
    seconds_ms = _whole_seconds(remaining_ms) * SECOND_MS
    parts = []
    for size, suffix in _UNITS:
        count, seconds_ms = divmod(seconds_ms, size)
        if count:
            parts.append(f"{count}{suffix}")
    return "".join(parts) or "0s"


def ttl_bucket(remaining_ms: int) -> int:
    """Index into TTL_BUCKET_LABELS for a key with `remaining_ms` left."""
    seconds_ms = _whole_seconds(remaining_ms) * SECOND_MS
    return sum(1 for bound in _BUCKET_BOUNDS_MS if seconds_ms >= bound)


def ttl_urgency(remaining_ms: int) -> str:
    """'soon' under a minute, 'minutes' under an hour, else 'later'."""
    return TTL_URGENCIES[min(ttl_bucket(remaining_ms), len(TTL_URGENCIES) - 1)]


def next_change_ms(expires_at_ms: int, now_ms: int) -> int:
    """The first clock reading after `now_ms` at which the label (or bucket) changes.

    At `expires_at_ms` itself the key is gone, so that is the last change.
    """
    seconds = _whole_seconds(expires_at_ms - now_ms)
    if seconds <= 0:
        return now_ms
    floor_seconds = seconds
    for size, _ in _UNITS:
        if seconds * SECOND_MS >= size:
            floor_seconds = seconds - seconds % (size // SECOND_MS)
            break
    changes_at = expires_at_ms - (floor_seconds - 1) * SECOND_MS
    assert changes_at > now_ms, "a label changes in the future"
    return changes_at
