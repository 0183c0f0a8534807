"""PLACEHOLDER on branch tui: the real ArchivalPane comes from branch panes at the merge."""

from textual.app import ComposeResult
from textual.widget import Widget
from textual.widgets import Static


class ArchivalPane(Widget, can_focus=True):

    def compose(self) -> ComposeResult:
        yield Static("Archival pane: placeholder until the panes branch merges.")
