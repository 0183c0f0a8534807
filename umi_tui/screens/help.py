"""Every key binding of the app and of each pane, in one place (F1 or ?)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

Sections = list[tuple[str, list[tuple[list[Binding], str]]]]


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,f1,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 72; max-width: 95%; height: 90%;
                                  border: thick $primary; background: $surface; padding: 0 1; }
    HelpScreen .section { color: $accent; text-style: bold; margin-top: 1; }
    """

    def __init__(self, sections: Sections) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with VerticalScroll() as frame:
            frame.border_title = "Keys"
            frame.border_subtitle = "esc close · ctrl+p runs any of these by name"
            for title, rows in self.sections:
                yield Static(title, classes="section")
                table = Table.grid(padding=(0, 2))
                table.add_column(min_width=18)
                table.add_column()
                for bindings, description in rows:
                    keys = ", ".join(self.app.get_key_display(b) for b in bindings)
                    table.add_row(Text(keys, style="bold"), description)
                yield Static(table)
