"""Styles for table cells from a widget's component classes, resolved the way the theme
paints them."""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget


def cell_style(widget: Widget, component: str) -> Style:
    """The colour and text style of `component` over `widget`'s background, without a
    background of its own, so a row's cursor shows through.

    (A partial component style would keep the colour unresolved: `$text-muted` is 'auto 60%',
    contrast-picked against the background, and without one it comes out white.)
    """
    full = widget.get_component_rich_style(component)
    return Style(color=full.color, bold=full.bold, italic=full.italic, dim=full.dim,
                 underline=full.underline)
