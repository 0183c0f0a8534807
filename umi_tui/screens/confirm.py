"""ConfirmScreen: a yes/no question; dismisses True only on an explicit yes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from .dialog import DialogScreen


class ConfirmScreen(DialogScreen[bool]):
    """Ask `question`; y/Enter on Yes confirms, n/Escape cancels."""

    DEFAULT_CSS = """
    ConfirmScreen #dialog { width: 56; }
    """
    BINDINGS = [("y", "confirm", "Yes"), ("n", "cancel", "No"), ("escape", "cancel", "No")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, classes="dialog--title", markup=False)
            with Horizontal(classes="dialog--buttons"):
                yield Button("No", id="no", compact=True)
                yield Button("Yes", id="yes", variant="error", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
