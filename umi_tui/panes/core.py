"""The Core pane: the six blocks always in the LLM's prompt, their sizes against the limits,
and editing, labelling, weighting and deleting them."""

from __future__ import annotations

from textual import events, on, work
from textual.message import Message
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widget import Widget
from textual.widgets import Label, Static

from umi_store import BlockType, MemoryBlock, Tier, UmiError
from umi_store.constants import CORE_MEMORY_BLOCK_SIZE_BYTES_MAX

from ..feedback import refused_as_of, report_error
from ..formatting import format_ms
from ..messages import ClockMoved, StoreChanged, ViewChanged
from ..screens.confirm import ConfirmScreen
from ..screens.edit_block import EditBlockScreen
from ..screens.history import HistoryScreen
from ..screens.preview import PreviewScreen
from ..screens.prompt import PromptScreen
from ..session import Session
from ..widgets.byte_gauge import ByteGauge


def parse_importance(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"importance must be a number between 0.00 and 1.00, got {text!r}") \
            from None


class BlockRow(Widget, can_focus=True):
    """One block on one line: type, label, importance, size against the block limit."""

    DEFAULT_CSS = """
    BlockRow { layout: horizontal; height: 1; }
    BlockRow > .type { width: 8; text-style: bold; }
    BlockRow > .label { width: 1fr; color: $text-muted; text-wrap: nowrap;
                        text-overflow: ellipsis; }
    BlockRow > .importance { width: 6; padding-left: 1; }
    BlockRow > ByteGauge { width: 3fr; min-width: 12; max-width: 48; }
    BlockRow.-empty > .type { text-style: none; color: $text-muted; }
    BlockRow.-selected { background: $boost; }
    BlockRow:focus { background: $primary 40%; }
    BlockRow:focus > .label { color: $text; }
    """

    def __init__(self, block_type: BlockType) -> None:
        super().__init__(id=f"block-{block_type}", classes="-empty")
        self.block_type = block_type
        self.block: MemoryBlock | None = None

    def compose(self) -> ComposeResult:
        yield Label(str(self.block_type), classes="type")
        yield Label("", classes="label")
        yield Label("", classes="importance")
        yield ByteGauge(0, CORE_MEMORY_BLOCK_SIZE_BYTES_MAX)

    def show(self, block: MemoryBlock | None) -> None:
        self.block = block
        self.set_class(block is None, "-empty")
        self.query_one(".label", Label).update(
            "(empty)" if block is None else (block.label or ""))
        self.query_one(".importance", Label).update(
            "" if block is None else f"{block.importance:.2f}")
        self.query_one(ByteGauge).used = 0 if block is None else block.size_bytes

    def on_focus(self) -> None:
        self.post_message(BlockSelected(self.block_type))

    def on_click(self, event: events.Click) -> None:
        if event.chain == 2:
            self.post_message(BlockSelected(self.block_type, edit=True))


class BlockSelected(Message):
    """A block row got focus (`edit`: it was double-clicked)."""

    def __init__(self, block_type: BlockType, edit: bool = False) -> None:
        super().__init__()
        self.block_type = block_type
        self.edit = edit


class CorePane(Widget):
    """Core memory: the six blocks, per-block and total byte gauges, and their editing."""

    BINDINGS = [
        Binding("up,k", "select(-1)", "Previous block", show=False),
        Binding("down,j", "select(1)", "Next block", show=False),
        Binding("e,enter", "edit", "Edit"),
        Binding("d,delete", "delete", "Delete"),
        Binding("i", "set_importance", "Importance"),
        Binding("l", "set_label", "Label"),
        Binding("p", "preview('xml')", "XML preview"),
        Binding("w", "preview('markdown')", "Markdown preview"),
        Binding("r", "reload", "Reload"),
        Binding("h", "history", "History"),
    ]
    DEFAULT_CSS = """
    CorePane { layout: vertical; }
    CorePane #core-total { border-top: solid $panel; height: 2; }
    CorePane #core-total > Label { width: 14; text-style: bold; }
    CorePane #core-total > ByteGauge { width: 1fr; }
    CorePane #core-detail { height: 1fr; border-top: solid $panel; }
    CorePane #core-detail-title { color: $text-muted; }
    """

    def __init__(self, session: Session, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.session = session
        self.selected = BlockType.SYSTEM
        self.core_limit = 1

    def compose(self) -> ComposeResult:
        for block_type in BlockType:
            yield BlockRow(block_type)
        with Horizontal(id="core-total"):
            yield Label("total")
            yield ByteGauge(0, 1, id="core-total-gauge")
        with VerticalScroll(id="core-detail"):
            yield Static("loading…", id="core-detail-title")
            yield Static("", id="core-detail-content", markup=False)

    def on_mount(self) -> None:
        self.query_one(f"#block-{self.selected}").add_class("-selected")
        self.load()

    def row(self, block_type: BlockType | str) -> BlockRow:
        return self.query_one(f"#block-{block_type}", BlockRow)

    def focus(self, scroll_visible: bool = True) -> CorePane:
        """Focusing the pane focuses its selected block, where its bindings act."""
        self.row(self.selected).focus(scroll_visible)
        return self

    # Loading and following the store

    @work(exclusive=True, group="core-load")
    async def load(self) -> None:
        """Read every block and the core limit (once the store is ready, and on reload)."""
        core = (await self.session.ready()).core
        try:
            blocks = {block.block_type: block for block in await core.blocks()}
            available = await core.available_bytes()
        except UmiError as error:
            report_error(self, "load core blocks", error)
            return
        self.core_limit = available + sum(block.size_bytes for block in blocks.values())
        self.query_one("#core-total-gauge", ByteGauge).limit = self.core_limit
        for block_type in BlockType:
            self.row(block_type).show(blocks.get(block_type))
        self._show_totals()

    @work(group="core-reload-block")
    async def reload_block(self, block_type: BlockType) -> None:
        """Read one block again, after it changed."""
        try:
            block = await (await self.session.ready()).core.get_block(block_type)
        except UmiError as error:
            report_error(self, f"reload {block_type} block", error)
            return
        self.row(block_type).show(block)
        self._show_totals()

    def on_store_changed(self, message: StoreChanged) -> None:
        if message.event.tier == Tier.CORE:
            self.reload_block(BlockType(message.event.key))

    def on_view_changed(self, message: ViewChanged) -> None:
        self.load()

    def on_clock_moved(self, message: ClockMoved) -> None:
        """Core blocks do not expire: nothing to do per tick."""

    def _show_totals(self) -> None:
        self.query_one("#core-total-gauge", ByteGauge).used = sum(
            row.block.size_bytes for row in self.query(BlockRow) if row.block)
        self._show_detail()

    def _show_detail(self) -> None:
        block = self.row(self.selected).block
        title = self.query_one("#core-detail-title", Static)
        content = self.query_one("#core-detail-content", Static)
        if block is None:
            title.update(f"{self.selected}: no block yet; press e to write one")
            content.update("")
            return
        title.update(f"{block.block_type} · version {block.version} · updated "
                     f"{format_ms(block.updated_at)} UTC")
        content.update(block.content)

    # Selection

    @on(BlockSelected)
    def _on_block_selected(self, message: BlockSelected) -> None:
        self.select(message.block_type)
        if message.edit:
            self.action_edit()

    def select(self, block_type: BlockType) -> None:
        self.row(self.selected).remove_class("-selected")
        self.selected = block_type
        self.row(block_type).add_class("-selected")
        self._show_detail()

    def action_select(self, step: int) -> None:
        order = list(BlockType)
        block_type = order[(order.index(self.selected) + step) % len(order)]
        self.select(block_type)
        self.row(block_type).focus()

    # Actions

    def action_reload(self) -> None:
        self.load()

    def action_edit(self) -> None:
        if refused_as_of(self, self.session):
            return
        block_type = self.selected
        self.app.push_screen(EditBlockScreen(self.session, block_type, self.row(block_type).block),
                             lambda saved: self._reload_if(saved, block_type))

    def action_delete(self) -> None:
        if refused_as_of(self, self.session):
            return
        block_type = self.selected
        if self.row(block_type).block is None:
            self.notify(f"There is no {block_type} block to delete.", severity="warning")
            return
        self.app.push_screen(ConfirmScreen(f"Delete the {block_type} block? The agent "
                                           "loses it from its prompt."),
                             lambda yes: self._delete_if(yes, block_type))

    def _reload_if(self, changed: object, block_type: BlockType) -> None:
        if changed:
            self.reload_block(block_type)

    def _delete_if(self, confirmed: bool | None, block_type: BlockType) -> None:
        if confirmed:
            self.delete_block(block_type)

    @work(group="core-delete")
    async def delete_block(self, block_type: BlockType) -> None:
        try:
            await (await self.session.ready()).core.delete_block(block_type)
        except UmiError as error:
            report_error(self, f"delete {block_type} block", error)
            return
        self.notify(f"Deleted the {block_type} block.")
        self.reload_block(block_type)

    def action_set_importance(self) -> None:
        if refused_as_of(self, self.session):
            return
        block_type = self.selected
        block = self.row(block_type).block
        if block is None:
            self.notify(f"Write the {block_type} block first (e).", severity="warning")
            return

        async def apply(text: str) -> None:
            core = (await self.session.ready()).core
            await core.set_importance(block_type, parse_importance(text))

        self.app.push_screen(
            PromptScreen(f"Importance of {block_type}", "A weight from 0.00 to 1.00:",
                         f"{block.importance:.2f}", apply),
            lambda applied: self._reload_if(applied, block_type))

    def action_set_label(self) -> None:
        if refused_as_of(self, self.session):
            return
        block_type = self.selected
        block = self.row(block_type).block

        async def apply(text: str) -> None:
            await (await self.session.ready()).core.set_block(
                block_type, block.content if block else "", label=text.strip(),
                if_version=block.version if block else 0)

        self.app.push_screen(
            PromptScreen(f"Label of {block_type}", "A short label (empty: none):",
                         (block.label or "") if block else "", apply),
            lambda applied: self._reload_if(applied, block_type))

    def action_history(self) -> None:
        block_type = self.selected
        self.app.push_screen(HistoryScreen(self.session, Tier.CORE, block_type.value,
                                           f"the {block_type} block"),
                             lambda restored: self._reload_if(restored, block_type))

    def action_preview(self, initial: str) -> None:
        self.open_preview(initial)

    @work(group="core-preview")
    async def open_preview(self, initial: str) -> None:
        try:
            core = (await self.session.ready()).core
            xml = await core.render()
            markdown = await core.render_markdown()
        except UmiError as error:
            report_error(self, "render core memory", error)
            return
        self.app.push_screen(PreviewScreen(xml, markdown, initial))
