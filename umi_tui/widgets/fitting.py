"""Fitting a pane's table columns to its width, from the moment that width is known."""

from __future__ import annotations

from collections.abc import Callable

from rich.cells import cell_len, set_cell_size
from textual.widget import Widget

COLUMN_PADDING_WIDTH = 2  # a DataTable's cell padding, one each side
SCROLLBAR_WIDTH = 2
COLUMN_LABEL_WIDTH_MIN = 8  # a key or name column is never narrower
COLUMN_REST_WIDTH_MIN = 8  # nor the value or content column beside it


def label_first_widths(room: int, wanted: int, pane_width: int) -> tuple[int, int]:
    """Widths of a label column (a key, a name) and the text column beside it (a value,
    content) sharing `room` cells: the label gets the `wanted` width of its longest entry, up
    to half the pane, and the text what is left, so labels are cut only when they must be."""
    cap = max(COLUMN_LABEL_WIDTH_MIN, min(pane_width // 2 - COLUMN_PADDING_WIDTH,
                                          room - COLUMN_REST_WIDTH_MIN))
    label = min(max(wanted, COLUMN_LABEL_WIDTH_MIN), cap)
    return label, max(0, room - label)


def middle_truncated(text: str, width: int) -> str:
    """`text` in at most `width` cells, cut in the middle: keys sharing a prefix stay apart."""
    if cell_len(text) <= width:
        return text
    tail, tail_cells = [], 0
    for char in reversed(text):
        if tail_cells + cell_len(char) > (width - 1) // 2:
            break
        tail.append(char)
        tail_cells += cell_len(char)
    head = set_cell_size(text, width - 1 - tail_cells).rstrip()
    return head + "…" + "".join(reversed(tail))


def fit_when_sized(widget: Widget, fit: Callable[[], object]) -> None:
    """Call `fit` now, and again after each refresh until `widget` has been given a width.

    A pane lays out its columns on Resize, but Textual does not always send one to a widget
    just mounted: if the compositor had already placed it (say, while focus scrolled to it),
    the next layout finds its size unchanged. Asking after each refresh covers that case.
    """
    fit()
    if widget.size.width == 0 and widget.is_attached:
        widget.call_after_refresh(fit_when_sized, widget, fit)
