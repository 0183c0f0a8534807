"""The frame every modal shares: a centred box with a title, an error line and buttons,
and `submit`, which runs a store call in a worker and keeps the dialog (and everything
typed in it) open when the store refuses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from umi_store import UmiError

from ..feedback import report_error

ResultType = TypeVar("ResultType")


class DialogScreen(ModalScreen[ResultType]):
    """A modal dialog; subclasses compose inside `#dialog` and call `submit` to save."""

    DEFAULT_CSS = """
    DialogScreen { align: center middle; }
    DialogScreen #dialog {
        width: 72; max-width: 100%; height: auto; max-height: 100%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    DialogScreen .dialog--title { text-style: bold; color: $text; width: 1fr; }
    DialogScreen .dialog--hint { color: $text-muted; }
    DialogScreen .dialog--field { color: $text-muted; margin-top: 1; }
    DialogScreen .dialog--error { color: $error; text-style: bold; height: auto; display: none; }
    DialogScreen .dialog--buttons { height: auto; align-horizontal: right; margin-top: 1; }
    DialogScreen .dialog--buttons Button { margin-left: 2; width: auto; min-width: 8; }
    """
    BINDINGS = [("escape", "cancel", "Cancel")]

    def save_controls(self, save_label: str = "Save", hint: str = "") -> ComposeResult:
        """The end of a form: its error line, an optional hint, Cancel and Save buttons."""
        yield Static("", classes="dialog--error")
        if hint:
            yield Static(hint, classes="dialog--hint")
        with Horizontal(classes="dialog--buttons"):
            yield Button("Cancel", id="cancel", compact=True)
            yield Button(save_label, id="save", variant="primary", compact=True)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        """Read the form and `submit` it: every dialog with save_controls defines this."""
        raise NotImplementedError

    def action_cancel(self) -> None:
        self.dismiss(None)

    def show_error(self, message: str) -> None:
        """Show `message` on the dialog's error line (empty hides it)."""
        line = self.query_one(".dialog--error", Static)
        line.update(message)
        line.display = bool(message)

    def submit(self, action: str, save: Callable[[], Awaitable[ResultType]]) -> None:
        """Run `save` in a worker: dismiss with its result, or show the store's refusal."""
        self.show_error("")
        self._run_save(action, save)

    @work(exclusive=True, group="dialog-save")
    async def _run_save(self, action: str, save: Callable[[], Awaitable[ResultType]]) -> None:
        try:
            result = await save()
        except UmiError as error:
            self.show_error(f"{action}: {error}")
            report_error(self, action, error)
            return
        self.dismiss(result)
