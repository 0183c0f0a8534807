"""The frame every modal shares: a centred box with a title, an error line and buttons,
and `submit`, which runs a store call in a worker and keeps the dialog (and everything
typed in it) open when the store refuses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from textual import work
from textual.screen import ModalScreen
from textual.widgets import Static

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
    DialogScreen .dialog--error { color: $error; text-style: bold; height: auto; }
    DialogScreen .dialog--buttons { height: auto; align-horizontal: right; margin-top: 1; }
    DialogScreen .dialog--buttons Button { margin-left: 2; width: auto; min-width: 8; }
    """
    BINDINGS = [("escape", "cancel", "Cancel")]

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
