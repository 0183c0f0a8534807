"""ExpireKeyScreen: give a working-memory key a new TTL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from ..formatting import parse_duration
from .dialog import DialogScreen

ExpireKey = Callable[[int], Awaitable[bool]]


class ExpireKeyScreen(DialogScreen[bool | None]):
    """A new TTL for `key`; dismisses with whether the key was still live."""

    DEFAULT_CSS = """
    ExpireKeyScreen #dialog { width: 56; }
    """

    def __init__(self, key: str, expire: ExpireKey, *, ttl: str = "") -> None:
        super().__init__()
        self._key = key
        self._expire = expire
        self._ttl = ttl

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(f"New TTL for {self._key}", classes="dialog--title", markup=False)
            yield Static("TTL  (30s, 5m, 2h, 1d, 1h30m; at most 7d)", classes="dialog--field")
            yield Input(self._ttl, id="ttl", compact=True)
            yield from self.save_controls("Expire")

    def on_mount(self) -> None:
        self.query_one("#ttl", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        try:
            ttl_ms = parse_duration(self.query_one("#ttl", Input).value)
        except ValueError as error:
            self.show_error(str(error))
            return
        self.submit("expire key", lambda: self._expire(ttl_ms))
