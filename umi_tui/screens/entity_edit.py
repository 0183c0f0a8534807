"""EntityEditScreen: create an archival entity, or edit one (type, name, content, metadata)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Select, Static, TextArea

from umi_store import Entity, EntityType

from .dialog import DialogScreen

SaveEntity = Callable[[EntityType, str, str, dict[str, str]], Awaitable[Entity]]


def parse_metadata(text: str) -> dict[str, str]:
    """`key: value` lines into a dict; blank lines are skipped. ValueError names a bad line."""
    metadata = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, colon, value = line.partition(":")
        if not colon or not key.strip():
            raise ValueError(f"metadata line {number} needs the form key: value")
        metadata[key.strip()] = value.strip()
    return metadata


def format_metadata(metadata: Mapping[str, str]) -> str:
    return "\n".join(f"{key}: {value}" for key, value in sorted(metadata.items()))


class EntityEditScreen(DialogScreen[Entity | None]):
    """Edit `entity`, or a new one when None; dismisses with the stored entity."""

    DEFAULT_CSS = """
    EntityEditScreen #dialog { width: 90; height: 90%; max-height: 32; }
    EntityEditScreen .dialog--field { margin-top: 0; }
    EntityEditScreen TextArea { background: $boost; }
    EntityEditScreen #entity-content-editor { height: 1fr; min-height: 2; }
    EntityEditScreen #entity-metadata-editor { height: 4; }
    EntityEditScreen #entity-head { height: auto; }
    EntityEditScreen #entity-type { width: 20; }
    EntityEditScreen #entity-name { width: 1fr; margin-left: 1; }
    """
    BINDINGS = [("ctrl+s", "save", "Save")]

    def __init__(self, save: SaveEntity, entity: Entity | None = None) -> None:
        super().__init__()
        self._save = save
        self.entity = entity

    def compose(self) -> ComposeResult:
        entity = self.entity
        with Vertical(id="dialog"):
            yield Static("New entity" if entity is None else "Edit entity",
                         classes="dialog--title")
            yield Static("Type and name  (no name: the first line of the content)",
                         classes="dialog--field")
            with Horizontal(id="entity-head"):
                yield Select([(t.value, t) for t in EntityType], allow_blank=False,
                             value=entity.entity_type if entity else EntityType.NOTE,
                             id="entity-type", compact=True)
                yield Input(entity.name if entity else "", placeholder="name",
                            id="entity-name", compact=True)
            yield Static("Content", classes="dialog--field")
            yield TextArea(entity.content if entity else "", id="entity-content-editor",
                           compact=True)
            yield Static("Metadata  (key: value, one per line)", classes="dialog--field")
            yield TextArea(format_metadata(entity.metadata) if entity else "",
                           id="entity-metadata-editor", compact=True)
            yield from self.save_controls(hint="ctrl+s saves · escape cancels")

    def on_mount(self) -> None:
        self.query_one("#entity-content-editor" if self.entity else "#entity-name").focus()

    def action_save(self) -> None:
        entity_type = self.query_one("#entity-type", Select).value
        assert isinstance(entity_type, EntityType), "the type select allows no blank"
        name = self.query_one("#entity-name", Input).value
        content = self.query_one("#entity-content-editor", TextArea).text
        try:
            metadata = parse_metadata(self.query_one("#entity-metadata-editor", TextArea).text)
        except ValueError as error:
            self.show_error(str(error))
            return
        action = "create entity" if self.entity is None else "edit entity"
        self.submit(action, lambda: self._save(entity_type, name, content, metadata))
