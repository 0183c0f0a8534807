"""Fitting a pane's table columns to its width, from the moment that width is known."""

from __future__ import annotations

from collections.abc import Callable

from textual.widget import Widget

COLUMN_PADDING_WIDTH = 2  # a DataTable's cell padding, one each side
SCROLLBAR_WIDTH = 2


def fit_when_sized(widget: Widget, fit: Callable[[], None]) -> None:
    """Call `fit` now, and again after each refresh until `widget` has been given a width.

    A pane lays out its columns on Resize, but Textual does not always send one to a widget
    just mounted: if the compositor had already placed it (say, while focus scrolled to it),
    the next layout finds its size unchanged. Asking after each refresh covers that case.
    """
    fit()
    if widget.size.width == 0 and widget.is_attached:
        widget.call_after_refresh(fit_when_sized, widget, fit)
