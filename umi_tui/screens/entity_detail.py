"""EntityDetailScreen: every field of an archival entity, read-only, with edit and forget."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Static

from umi_store import Entity

from .dialog import DialogScreen


def timestamp(ms: int) -> str:
    """A store timestamp (ms since the epoch) as UTC text."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def entity_fields(entity: Entity) -> Table:
    """The entity's fields and metadata as a two-column grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    embedding = ("none" if entity.embedding is None
                 else f"yes, {len(entity.embedding)} dimensions")
    for label, value in (("name", entity.name), ("type", entity.entity_type.value),
                         ("id", entity.id), ("created", timestamp(entity.created_at)),
                         ("updated", timestamp(entity.updated_at)), ("embedding", embedding)):
        grid.add_row(label, Text(value))
    if entity.metadata:
        grid.add_row("metadata", Text(f"{len(entity.metadata)} fields"))
        for key, value in sorted(entity.metadata.items()):
            grid.add_row(Text(f"  {key}", style="italic"), Text(value))
    else:
        grid.add_row("metadata", Text("none"))
    return grid


class EntityDetailScreen(DialogScreen[str | None]):
    """Shows `entity`; dismisses with "edit", "forget", "history" or None (closed)."""

    DEFAULT_CSS = """
    EntityDetailScreen #dialog { width: 90; height: auto; max-height: 90%; }
    EntityDetailScreen #entity-content {
        height: auto; max-height: 16; border: round $primary-muted; padding: 0 1;
    }
    """
    BINDINGS = [("e", "choose('edit')", "Edit"), ("d", "choose('forget')", "Forget"),
                ("h", "choose('history')", "History")]

    def __init__(self, entity: Entity) -> None:
        super().__init__()
        self.entity = entity

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.entity.name, classes="dialog--title", markup=False)
            yield Static(entity_fields(self.entity), id="entity-fields")
            with VerticalScroll(id="entity-content"):
                yield Static(self.entity.content, markup=False)
            with Horizontal(classes="dialog--buttons"):
                yield Button("Forget", id="forget", variant="error", compact=True)
                yield Button("Edit", id="edit", compact=True)
                yield Button("History", id="history", compact=True)
                yield Button("Close", id="close", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#entity-content").border_title = "content"
        self.query_one("#close", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        event.prevent_default()  # the dialog's own handler would dismiss a second time
        self.dismiss(None if event.button.id == "close" else event.button.id)

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
