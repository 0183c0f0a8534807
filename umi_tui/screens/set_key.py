"""SetKeyScreen: set a new working-memory key, or edit an existing key's value and TTL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static

from umi_store import WorkingEntry

from ..formatting import parse_duration
from ..widgets.ttl import spelled_ttl
from ..widgets.value_text import escaped, is_plain_text, unescaped
from .dialog import DialogScreen

# save(key, value, ttl_ms): ttl_ms is None when an edit left the TTL field as shown, meaning
# "keep the key's deadline".
SaveKey = Callable[[str, bytes, int | None], Awaitable[WorkingEntry]]

VALUE_TEXT_LABEL = "Value  (UTF-8 text)"
VALUE_ESCAPED_LABEL = r"Value  (escaped bytes: \xNN is a byte, \\ a backslash, \n a newline)"
TTL_LABEL = "TTL  (30s, 5m, 2h, 1d, 1h30m; at most 7d)"
TTL_KEPT_LABEL = "TTL  (left as shown, the key keeps its deadline; at most 7d)"


class SetKeyScreen(DialogScreen[WorkingEntry | None]):
    """Key, value and TTL ('90s', '5m', '1h30m'); dismisses with the stored entry.

    Editing (`entry` given) changes the value and TTL only: the key is shown, not editable.
    A value that is not plain text is edited in escaped form, losslessly; a save that
    changes nothing writes nothing and dismisses with None.
    """

    BINDINGS = [("ctrl+s", "save", "Save")]

    def __init__(self, save: SaveKey, *, entry: WorkingEntry | None = None,
                 remaining_ms: int = 0) -> None:
        super().__init__()
        self._save = save
        self._entry = entry
        self._escaped = entry is not None and not is_plain_text(entry.value)
        self._ttl_shown = spelled_ttl(remaining_ms) if entry is not None else "1h"

    def compose(self) -> ComposeResult:
        entry = self._entry
        value = "" if entry is None else \
            escaped(entry.value) if self._escaped else entry.value.decode()
        with Vertical(id="dialog"):
            yield Static("Set key" if entry is None else "Edit key", classes="dialog--title")
            if entry is None:
                yield Static("Key", classes="dialog--field")
                yield Input(placeholder="session:topic", id="key", compact=True)
            else:
                yield Static("Key  (to rename: set a new key, delete this one)",
                             classes="dialog--field")
                yield Static(entry.key, id="key", markup=False)
            yield Static(VALUE_ESCAPED_LABEL if self._escaped else VALUE_TEXT_LABEL,
                         classes="dialog--field", markup=False)
            yield Input(value, placeholder="text", id="value", compact=True)
            yield Static(TTL_LABEL if entry is None else TTL_KEPT_LABEL, classes="dialog--field")
            yield Input(self._ttl_shown, id="ttl", compact=True)
            yield from self.save_controls()

    def on_mount(self) -> None:
        self.query_one("#key" if self._entry is None else "#value", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_save(self) -> None:
        value_text = self.query_one("#value", Input).value
        ttl_text = self.query_one("#ttl", Input).value
        try:
            value = unescaped(value_text) if self._escaped else value_text.encode()
            keep_ttl = self._entry is not None and ttl_text == self._ttl_shown
            ttl_ms = None if keep_ttl else parse_duration(ttl_text)
        except ValueError as error:
            self.show_error(str(error))
            return
        entry = self._entry
        if entry is None:
            key = self.query_one("#key", Input).value
        elif value == entry.value and ttl_ms is None:
            self.notify(f"{entry.key} unchanged: nothing written", timeout=2)
            self.dismiss(None)
            return
        else:
            key = entry.key
        self.submit("set key", lambda: self._save(key, value, ttl_ms))
