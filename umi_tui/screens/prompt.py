"""Ask for one value and apply it; an error shows inline and keeps what was typed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from umi_store import UmiError


class PromptScreen(ModalScreen[bool]):
    """Calls `apply(text)` on enter; dismisses True once it succeeds, False on escape.

    `apply` raises UmiError (or ValueError for text it cannot parse) to refuse the value.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PromptScreen { align: center middle; }
    PromptScreen > Vertical { width: 64; height: auto; border: thick $primary;
                              background: $surface; padding: 0 1; }
    PromptScreen #error { color: $error; height: auto; }
    PromptScreen #error.-empty { display: none; }
    """

    def __init__(self, title: str, question: str, value: str,
                 apply: Callable[[str], Awaitable[object]]) -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.value = value
        self.apply = apply

    def compose(self) -> ComposeResult:
        with Vertical() as frame:
            frame.border_title = self.title_text
            frame.border_subtitle = "enter apply · esc cancel"
            yield Label(self.question)
            yield Input(self.value, select_on_focus=True)
            yield Static("", id="error", classes="-empty")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.submit(event.value)

    def action_cancel(self) -> None:
        self.dismiss(False)

    @work(exclusive=True, group="prompt-apply")
    async def submit(self, text: str) -> None:
        try:
            await self.apply(text)
        except (UmiError, ValueError) as error:
            message = self.query_one("#error", Static)
            message.update(f"Not applied: {error}")
            message.remove_class("-empty")
            return
        self.dismiss(True)
