"""The history of one core block, working key or entity: its versions (who, when, how
much it grew), a unified diff of the selected version against the one before, and, for
blocks and entities, `u` to restore the selected version after asking."""

from __future__ import annotations

import difflib
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from umi_store import ChangeKind, HistoryRecord, Tier, UmiError

from ..feedback import refused_as_of, report_error
from ..formatting import format_ms
from ..session import Session
from ..widgets.ttl import spelled_ttl
from .confirm import ConfirmScreen

HISTORY_VIEW_VERSIONS_COUNT_MAX = 200  # versions the view lists, newest first
HISTORY_DIFF_CONTEXT_LINES = 3


def state_lines(record: HistoryRecord) -> list[str]:
    """What a version held besides its content, one "· name: value" line each: a block's
    label and importance, a key's TTL and deadline, an entity's name, type and metadata."""
    meta = record.metadata
    if record.tier is Tier.CORE:
        state = {"label": meta.get("label") or "(none)",
                 "importance": f"{meta.get('importance', 0):.2f}"}
    elif record.tier is Tier.WORKING:
        state = {"ttl": spelled_ttl(int(meta.get("ttl_ms", 0))),
                 "expires": f"{format_ms(int(meta.get('expires_at_ms', 0)))} UTC"}
    else:
        state = {"name": str(meta.get("name", "")), "type": str(meta.get("entity_type", "")),
                 **{f"metadata {key}": str(value)
                    for key, value in sorted(dict(meta.get("metadata") or {}).items())}}
    return [f"· {name}: {value}" for name, value in state.items()]


def record_text(record: HistoryRecord | None) -> str:
    """What a version held, as text (a working value shown as text where it decodes), then
    the rest of its state (state_lines), so a diff shows a TTL or label change too."""
    if record is None or record.value is None:
        return ""
    content = record.value.decode("utf-8", "replace")
    return "\n".join([*content.splitlines(), "", *state_lines(record)])


def size_change(record: HistoryRecord, before: HistoryRecord | None) -> str:
    """What the version changed, in a few words: the size change, else the TTL or state."""
    if record.kind is not ChangeKind.SET:
        return str(record.kind)
    if before is None or before.kind is not ChangeKind.SET:
        return f"set, {len(record.value or b''):,} B"
    if record.value != before.value:
        return f"{len(record.value or b'') - len(before.value or b''):+d} B"
    if record.tier is Tier.WORKING:
        ttl_ms = int(record.metadata.get("ttl_ms", 0))
        if ttl_ms != before.metadata.get("ttl_ms"):
            return f"ttl → {spelled_ttl(ttl_ms)}"
        return "touched (ttl renewed)"
    return "same content"


def unified_diff(before: HistoryRecord | None, after: HistoryRecord) -> Text:
    """The diff of `after` against `before`, added lines green, removed lines red."""
    lines = difflib.unified_diff(
        record_text(before).splitlines(), record_text(after).splitlines(),
        f"v{before.version}" if before else "(nothing)", f"v{after.version}",
        n=HISTORY_DIFF_CONTEXT_LINES, lineterm="")
    text = Text()
    for line in lines:
        style = ("bold" if line.startswith(("---", "+++")) else
                 "green" if line.startswith("+") else "red" if line.startswith("-") else
                 "cyan" if line.startswith("@@") else "")
        text.append(line + "\n", style=style)
    return text if text.plain else Text("(no change to the content)", style="dim")


class HistoryScreen(ModalScreen[bool]):
    """Versions of `key` in `tier`; dismisses True when a version was restored."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "dismiss(False)", "Close"),
                Binding("u", "restore", "Restore this version")]
    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    HistoryScreen > Vertical { width: 92%; max-width: 130; height: 90%; border: thick $primary;
                               background: $surface; }
    HistoryScreen DataTable { height: 40%; }
    HistoryScreen #history-diff { height: 1fr; border-top: solid $panel; }
    """

    def __init__(self, session: Session, tier: Tier, key: str, title: str) -> None:
        super().__init__()
        self.session = session
        self.tier = tier
        self.key = key
        self.title_text = title
        self.records: list[HistoryRecord] = []

    @property
    def restorable(self) -> bool:
        return self.tier is not Tier.WORKING

    def compose(self) -> ComposeResult:
        with Vertical() as frame:
            frame.border_title = f"History of {self.title_text}"
            frame.border_subtitle = ("u restore · esc close" if self.restorable else "esc close")
            table: DataTable[str] = DataTable(id="history-versions", cursor_type="row")
            table.add_columns("version", "time (UTC)", "actor", "change")
            yield table
            with VerticalScroll(id="history-diff"):
                yield Static("loading…", id="history-diff-text")

    def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        self.load()

    @work(exclusive=True, group="history-load")
    async def load(self) -> None:
        try:
            store = await self.session.ready_live()  # all of it, in as-of mode too
            self.records = await store.history(self.tier, self.key,
                                                    limit=HISTORY_VIEW_VERSIONS_COUNT_MAX)
        except UmiError as error:
            report_error(self, "load history", error)
            return
        table = self.query_one(DataTable)
        table.clear()
        for i, record in enumerate(self.records):
            before = self.records[i + 1] if i + 1 < len(self.records) else None
            table.add_row(f"v{record.version}", format_ms(record.at_ms), record.actor,
                          size_change(record, before), key=str(record.version))
        if not self.records:
            self.query_one("#history-diff-text", Static).update("No history yet.")
        else:
            self._show_diff(0)

    def _before(self, index: int) -> HistoryRecord | None:
        return self.records[index + 1] if index + 1 < len(self.records) else None

    def _show_diff(self, index: int) -> None:
        record = self.records[index]
        self.query_one("#history-diff-text", Static).update(
            unified_diff(self._before(index), record))

    @on(DataTable.RowHighlighted)
    def _on_row(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self.records):
            self._show_diff(event.cursor_row)

    def action_restore(self) -> None:
        if not self.restorable:
            self.notify("A working key has no restore: set it again (s) to bring a value back.",
                        severity="warning")
            return
        if not self.records or refused_as_of(self, self.session):
            return
        record = self.records[self.query_one(DataTable).cursor_row]
        if record.kind is not ChangeKind.SET:
            self.notify(f"v{record.version} is a {record.kind}: choose a version with content.",
                        severity="warning")
            return
        newest = self.records[0].version

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.restore(record.version, newest)
        self.app.push_screen(
            ConfirmScreen(f"Restore v{record.version} of {self.title_text}? It becomes "
                          f"v{newest + 1}; nothing is lost."), confirmed)

    @work(group="history-restore")
    async def restore(self, version: int, newest: int) -> None:
        try:
            store = await self.session.ready()
            if self.tier is Tier.CORE:
                await store.core.restore(self.key, version, if_version=newest)
            else:
                await store.archival.restore(self.key, version, if_version=newest)
        except UmiError as error:
            report_error(self, f"restore v{version}", error)
            return
        self.notify(f"Restored v{version} of {self.title_text}.")
        self.dismiss(True)
