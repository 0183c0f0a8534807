"""Every shipped theme is legible: text reads at WCAG 2 contrast 4.5:1 or more over what it
sits on, and pane borders at 3:1, measured cell by cell on the rendered screen of every pane
(focused and not), a search with highlights, the console after a run, a dialog and help."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from rich.console import Console
from rich.segment import Segment
from textual.app import App

from umi_tui.app import PaneFrame
from umi_tui.theming import SHIPPED_THEMES_DIR, load_themes

from .tui_support import fixed_query_timer, isolated_user_dirs, make_app, settle  # noqa: F401

pytestmark = pytest.mark.usefixtures("fixed_query_timer")

CONTRAST_TEXT_RATIO_MIN = 4.5  # WCAG 2 AA, normal text (1.4.3)
CONTRAST_BORDER_RATIO_MIN = 3.0  # WCAG 2 AA, the edges of user-interface components (1.4.11)
GRAPHICS = range(0x2500, 0x25A0)  # box drawing and block elements: borders, bars, gauges
SHIPPED_THEMES = sorted(theme.name for theme in load_themes(SHIPPED_THEMES_DIR)[0])

# What a person looks at, in order: (keys pressed, what the screen then shows).
STATES = [([], "at rest, Core focused"),
          (["2"], "Working focused"),
          (["3", "slash", *"lisbon"], "an Archival search with highlighted matches"),
          (["escape"], "the Archival results focused"),
          (["4", "r"], "the console after a run, with its log"),
          (["F"], "the fault catalogue"),
          (["2", "e"], "the edit-key dialog"),
          (["escape", "f1"], "help")]


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{channel:02x}" for channel in rgb)


def relative_luminance(rgb: tuple[int, int, int]) -> float:
    """WCAG 2 relative luminance of an sRGB colour, 0 (black) to 1 (white)."""
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    red, green, blue = (linear(channel) for channel in rgb)
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


def contrast_ratio(one: tuple[int, int, int], other: tuple[int, int, int]) -> float:
    """WCAG 2 contrast ratio, 1 (none) to 21 (black on white)."""
    lighter, darker = sorted((relative_luminance(one), relative_luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def test_the_contrast_ratio_is_wcags():
    assert contrast_ratio((0, 0, 0), (255, 255, 255)) == pytest.approx(21)
    assert contrast_ratio((255, 255, 255), (255, 255, 255)) == 1
    assert contrast_ratio((0x76, 0x76, 0x76), (255, 255, 255)) == pytest.approx(4.54, abs=0.01)


def screen_cells(app: App) -> Iterator[tuple[int, int, str, tuple, tuple]]:
    """(x, y, character, foreground, background) of every painted cell, as the terminal gets it."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True,
                      color_system="truecolor", record=True, legacy_windows=False)
    console.print(app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens))
    x = y = 0
    for segment in console._record_buffer:
        if segment.text == "\n":
            x, y = 0, y + 1
            continue
        if segment.control:
            continue
        style = segment.style
        for char in segment.text:
            if style is not None and style.color is not None and style.bgcolor is not None:
                fg, bg = style.color.get_truecolor(), style.bgcolor.get_truecolor()
                if style.reverse:
                    fg, bg = bg, fg
                yield x, y, char, tuple(fg), tuple(bg)
            x += Segment(char).cell_length


def illegible_cells(app: App) -> dict[str, str]:
    """What reads below its minimum, by widget, colours and ratio: the characters found."""
    found: dict[str, str] = {}
    for x, y, char, fg, bg in screen_cells(app):
        if not char.strip():
            continue
        widget, _ = app.screen.get_widget_at(x, y)
        if widget is app.screen:
            continue  # the screens under a modal, dimmed: read again once it closes
        if widget.disabled:
            continue  # WCAG exempts inactive controls (a Cancel with nothing to cancel)
        if ord(char) in GRAPHICS:
            if not isinstance(widget, PaneFrame):
                continue  # bars, gauges and sparklines draw with colour, not letters
            minimum = CONTRAST_BORDER_RATIO_MIN
        else:
            minimum = CONTRAST_TEXT_RATIO_MIN
        ratio = contrast_ratio(fg, bg)
        if ratio < minimum:
            where = f"{type(widget).__name__}#{widget.id} {_hex(fg)} on {_hex(bg)} = " \
                    f"{ratio:.2f}"
            found[where] = found.get(where, "") + char
    return found


@pytest.mark.parametrize("theme", SHIPPED_THEMES)
async def test_every_shipped_theme_reads_at_wcag_contrast(theme):
    app = make_app(theme=theme)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.theme == theme
        problems = {}
        for keys, state in STATES:
            await pilot.press(*keys)
            await settle(pilot)
            for where, chars in illegible_cells(app).items():
                problems[f"{state}: {where}"] = chars[:40]
        assert not problems, "\n".join(f"{where}: {chars!r}" for where, chars in problems.items())
