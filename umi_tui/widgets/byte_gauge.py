"""A one-line gauge of bytes used against a limit, coloured by how full it is."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

GAUGE_WARNING_FRACTION = 0.75
GAUGE_ERROR_FRACTION = 0.95
GAUGE_BAR_CELLS_MIN = 6


def human_bytes(count: int) -> str:
    """Bytes in the largest unit that keeps the number ≥ 1: 512 B, 1.5 KiB, 16 KiB, 2 MiB."""
    if count < 1024:
        return f"{count} B"
    unit, scale = ("KiB", 1024) if count < 1024 * 1024 else ("MiB", 1024 * 1024)
    return f"{count // scale} {unit}" if count % scale == 0 else f"{count / scale:.1f} {unit}"


class ByteGauge(Widget):
    """`████░░░░ 1.2 KiB / 16.0 KiB`: used bytes against a limit."""

    COMPONENT_CLASSES = {"byte-gauge--ok", "byte-gauge--warning", "byte-gauge--error",
                         "byte-gauge--empty"}
    DEFAULT_CSS = """
    ByteGauge { height: 1; width: 1fr; }
    ByteGauge > .byte-gauge--ok { color: $success; }
    ByteGauge > .byte-gauge--warning { color: $warning; }
    ByteGauge > .byte-gauge--error { color: $error; }
    ByteGauge > .byte-gauge--empty { color: $text-muted; }
    """

    used: reactive[int] = reactive(0)
    limit: reactive[int] = reactive(1)

    def __init__(self, used: int = 0, limit: int = 1, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.set_reactive(ByteGauge.used, used)
        self.set_reactive(ByteGauge.limit, limit)

    @property
    def fraction(self) -> float:
        return self.used / self.limit if self.limit > 0 else 1.0

    def render(self) -> Text:
        caption = f" {human_bytes(self.used)} / {human_bytes(self.limit)}"
        if self.used > self.limit:  # exact, so the overshoot is not rounded away
            caption = f" {self.used:,} B: {self.used - self.limit:,} B over {self.limit:,}"
        if self.content_size.width - len(caption) < GAUGE_BAR_CELLS_MIN:
            caption = f" {self.fraction:4.0%}"  # narrow: the bar and a percentage
        width = max(0, self.content_size.width - len(caption))
        filled = min(width, round(self.fraction * width))
        if self.used > 0 and filled == 0 and width > 0:
            filled = 1  # anything stored shows
        level = ("error" if self.fraction >= GAUGE_ERROR_FRACTION else
                 "warning" if self.fraction >= GAUGE_WARNING_FRACTION else "ok")
        bar = Text()
        bar.append("█" * filled, self.get_component_rich_style(f"byte-gauge--{level}"))
        bar.append("░" * (width - filled), self.get_component_rich_style("byte-gauge--empty"))
        bar.append(caption)
        return bar
