"""PaneInput: a pane's search, filter or steps box that Esc leaves for the pane's keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Literal

from textual.binding import Binding, BindingType
from textual.widget import Widget
from textual.widgets import Input


class PaneInput(Input):
    """A compact Input whose Esc gives focus to `leave_to()`: the widget where the pane's
    keys act (its table), so typing never traps them."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "leave", "Back to the pane", show=False)]

    def __init__(self, value: str | None = None, *, leave_to: Callable[[], Widget],
                 placeholder: str = "", id: str | None = None,
                 type: Literal["text", "integer", "number"] = "text") -> None:
        super().__init__(value, placeholder=placeholder, id=id, type=type, compact=True)
        self._leave_to = leave_to

    def action_leave(self) -> None:
        self._leave_to().focus()
