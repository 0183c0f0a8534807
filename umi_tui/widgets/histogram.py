"""A one-line histogram: a label, a bar scaled to the largest bucket, and a count."""

from __future__ import annotations

from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text
from textual.widget import Widget

BAR_EIGHTHS = " ▏▎▍▌▋▊▉█"
HISTOGRAM_GAP_WIDTH = 2  # between one bucket's count and the next label


def bar(value: int, largest: int, width: int) -> str:
    """`value` as a bar of at most `width` cells, in eighths of a cell."""
    if largest <= 0 or value <= 0:
        return " " * width
    eighths = max(1, round(value * width * 8 / largest))
    full, part = divmod(eighths, 8)
    text = "█" * full + (BAR_EIGHTHS[part] if part else "")
    return text.ljust(width)


class Histogram(Widget):
    """Counts per labelled bucket on one line: `<1m ▍   3  <1h ██  12 …`."""

    DEFAULT_CSS = """
    Histogram { height: 1; width: 1fr; }
    Histogram > .histogram--bar { color: $accent; }
    Histogram > .histogram--label { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"histogram--bar", "histogram--label"}

    def __init__(self, labels: Sequence[str], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._labels = tuple(labels)
        self._counts = [0] * len(self._labels)

    @property
    def counts(self) -> tuple[int, ...]:
        return tuple(self._counts)

    def set_counts(self, counts: Sequence[int]) -> None:
        assert len(counts) == len(self._labels), "one count per bucket"
        if list(counts) != self._counts:
            self._counts = list(counts)
            self.refresh()

    def render(self) -> Text:
        """Every bucket's label and count always; bars in the room left, none if there is none."""
        largest = max(self._counts, default=0)
        count_width = max(len(str(count)) for count in self._counts) if self._counts else 1
        label_style = self.get_component_rich_style("histogram--label")
        bar_style = self.get_component_rich_style("histogram--bar")
        buckets = max(1, len(self._labels))
        label_width = max(map(cell_len, self._labels), default=0)
        words_width = buckets * (label_width + 1 + count_width) + \
            HISTOGRAM_GAP_WIDTH * (buckets - 1)
        bar_width = max(0, (self.size.width - words_width) // buckets - 1)
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, (label, count) in enumerate(zip(self._labels, self._counts)):
            if index:
                text.append(" " * HISTOGRAM_GAP_WIDTH)
            text.append(f"{label} ", label_style)
            if bar_width:
                text.append(bar(count, largest, bar_width) + " ", bar_style)
            text.append(f"{count:>{count_width}}")
        return text
