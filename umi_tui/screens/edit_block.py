"""Edit one core block: its content in a multi-line editor, its label and importance.

Saving writes with `if_version`, so a block changed meanwhile (by the agent, another
process) is a conflict shown here, not a silent overwrite. On any error the screen stays
open with everything typed still in it.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from umi_store import BlockType, ConflictError, MemoryBlock, UmiError
from umi_store.constants import CORE_MEMORY_BLOCK_SIZE_BYTES_MAX

from ..session import Session
from ..widgets.byte_gauge import ByteGauge


class EditBlockScreen(ModalScreen[MemoryBlock | None]):
    """Dismisses with the saved block, or None when cancelled."""

    BINDINGS = [Binding("ctrl+s", "save", "Save", priority=True),
                Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    EditBlockScreen { align: center middle; }
    EditBlockScreen > Vertical { width: 90%; max-width: 110; height: 90%; max-height: 34;
                                 border: thick $primary; background: $surface; padding: 0 1; }
    EditBlockScreen .fields { height: auto; }
    EditBlockScreen .fields Label { padding: 1 1 0 0; }
    EditBlockScreen #label { width: 1fr; }
    EditBlockScreen #importance { width: 12; }
    EditBlockScreen TextArea { height: 1fr; }
    EditBlockScreen #error { color: $error; height: auto; }
    EditBlockScreen #error.-empty { display: none; }
    EditBlockScreen .buttons { height: auto; align-horizontal: right; }
    EditBlockScreen Button { margin-left: 2; }
    """

    def __init__(self, session: Session, block_type: BlockType,
                 block: MemoryBlock | None) -> None:
        super().__init__()
        self.session = session
        self.block_type = block_type
        self.block = block
        self.expected_version = block.version if block else 0

    def compose(self) -> ComposeResult:
        block = self.block
        with Vertical() as frame:
            frame.border_title = f"Edit {self.block_type} block"
            frame.border_subtitle = "ctrl+s save · esc cancel"
            with Horizontal(classes="fields"):
                yield Label("Label")
                yield Input((block.label or "") if block else "", placeholder="(none)", id="label")
                yield Label("Importance")
                yield Input(f"{block.importance:.2f}" if block else "0.50", id="importance")
            yield TextArea(block.content if block else "", id="content", soft_wrap=True,
                           show_line_numbers=False)
            yield ByteGauge(0, CORE_MEMORY_BLOCK_SIZE_BYTES_MAX, id="size")
            yield Static("", id="error", classes="-empty")
            with Horizontal(classes="buttons"):
                yield Button("Save", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        editor = self.query_one(TextArea)
        editor.move_cursor(editor.document.end)  # ready to append, the usual edit
        editor.focus()
        self._show_size()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self._show_size()

    def _show_size(self) -> None:
        self.query_one("#size", ByteGauge).used = len(self.query_one(TextArea).text.encode())

    def show_error(self, message: str) -> None:
        error = self.query_one("#error", Static)
        error.update(message)
        error.set_class(not message, "-empty")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:
        try:
            importance = float(self.query_one("#importance", Input).value)
        except ValueError:
            self.show_error("Importance must be a number between 0.00 and 1.00.")
            return
        self.save(self.query_one(TextArea).text, self.query_one("#label", Input).value.strip(),
                  importance)

    @work(exclusive=True, group="edit-block-save")
    async def save(self, content: str, label: str, importance: float) -> None:
        core = self.session.store.core
        try:
            saved = await core.set_block(self.block_type, content, label=label,
                                         importance=importance,
                                         if_version=self.expected_version)
        except ConflictError:
            await self._conflict()
            return
        except UmiError as error:
            self.show_error(f"Not saved: {error}")
            return
        self.dismiss(saved)

    async def _conflict(self) -> None:
        try:
            current = await self.session.store.core.get_block(self.block_type)
        except UmiError as error:
            self.show_error(f"Not saved: the block changed since you opened it, and reading "
                            f"it again failed: {error}")
            return
        self.expected_version = current.version if current else 0
        state = f"version {current.version}" if current else "deleted"
        self.show_error(f"Not saved: someone else changed this block since you opened it "
                        f"(now {state}). Your text is still here: ctrl+s again overwrites "
                        f"their change, esc keeps it.")
