"""SetKeyScreen: set a working-memory key's value and TTL (also used to edit one)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from umi_store import WorkingEntry

from ..formatting import parse_duration
from .dialog import DialogScreen

SaveKey = Callable[[str, str, int], Awaitable[WorkingEntry]]


class SetKeyScreen(DialogScreen[WorkingEntry | None]):
    """Key, value and TTL ('90s', '5m', '1h30m'); dismisses with the stored entry."""

    BINDINGS = [("ctrl+s", "save", "Save")]

    def __init__(self, save: SaveKey, *, key: str = "", value: str = "",
                 ttl: str = "1h") -> None:
        super().__init__()
        self._save = save
        self._initial = (key, value, ttl)

    def compose(self) -> ComposeResult:
        key, value, ttl = self._initial
        with Vertical(id="dialog"):
            yield Static("Set key" if not key else "Edit key", classes="dialog--title")
            yield Static("Key", classes="dialog--field")
            yield Input(key, placeholder="session:topic", id="key", compact=True)
            yield Static("Value", classes="dialog--field")
            yield Input(value, placeholder="text", id="value", compact=True)
            yield Static("TTL  (30s, 5m, 2h, 1d, 1h30m; at most 7d)", classes="dialog--field")
            yield Input(ttl, id="ttl", compact=True)
            yield from self.save_controls()

    def on_mount(self) -> None:
        self.query_one("#value" if self._initial[0] else "#key", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        key = self.query_one("#key", Input).value
        value = self.query_one("#value", Input).value
        try:
            ttl_ms = parse_duration(self.query_one("#ttl", Input).value)
        except ValueError as error:
            self.show_error(str(error))
            return
        self.submit("set key", lambda: self._save(key, value, ttl_ms))
