"""The Archival pane: search as you type, a type filter, highlighted results, paging,
and the entity detail, create, edit and forget flows.

Every query runs at once in one exclusive worker group (no debounce), so typing cancels
the query before it; each query also carries a sequence number, and a result
whose number is not the latest is dropped, so a stale answer never replaces a newer one.
The result table keeps its rows (keyed by position) and rewrites only the cells that
differ, so a new answer redraws in place instead of rebuilding the table.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

from rich.cells import cell_len
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import DataTable, Input, Select, Static

from umi_store import Entity, EntityType, HistoryRecord, Tier, UmiError
from umi_store.constants import ENTITY_LIST_COUNT_MAX, SEARCH_RESULTS_COUNT_MAX

from ..feedback import refused_as_of, report_error
from ..formatting import format_ms
from ..messages import StoreChanged, ViewChanged
from ..screens.confirm import ConfirmScreen
from ..screens.entity_detail import EntityDetailScreen
from ..screens.entity_edit import EntityEditScreen
from ..screens.history import HistoryScreen
from ..session import Session
from ..widgets.cell_style import cell_style
from ..widgets.counts import counted
from ..widgets.fitting import (COLUMN_PADDING_WIDTH, SCROLLBAR_WIDTH, fit_when_sized,
                               label_first_widths, middle_truncated)
from ..widgets.highlight import highlighted, snippet
from ..widgets.pane_input import PaneInput

ARCHIVAL_PANE_PAGE_ROWS = 50
ARCHIVAL_CHANGES_DEBOUNCE_SECS = 0.25
COLUMN_TYPE_WIDTH = 12
COLUMNS_TEXT_WIDTH_MIN = 24  # name + content; narrower than this with a type column, it goes
FORGOTTEN = "forgotten"  # the type filter's last choice: entities forgotten, to restore


def forgotten_row(record: HistoryRecord) -> Entity:
    """A forgotten entity's row: its name and type then, and when and by whom it went."""
    meta = record.metadata
    kind = str(meta.get("entity_type", ""))
    return Entity(EntityType(kind) if kind in set(EntityType) else EntityType.NOTE,
                  str(meta.get("name") or record.key),
                  f"forgotten {format_ms(record.at_ms)} UTC by {record.actor} · u restores",
                  id=record.key, updated_at=record.at_ms)


class ArchivalPane(Widget):
    """Archival memory: search, browse and edit the app's store's entities."""

    DEFAULT_CSS = """
    ArchivalPane { layout: vertical; height: 1fr; }
    ArchivalPane #archival-bar { height: 1; }
    ArchivalPane #archival-query { width: 1fr; }
    ArchivalPane #archival-type { width: 18; margin-left: 1; }
    ArchivalPane #archival-table { height: 1fr; }
    ArchivalPane #archival-status { height: 1; color: $text-muted; }
    ArchivalPane > .archival-pane--match { background: $accent 35%; text-style: bold; }
    ArchivalPane > .archival-pane--muted { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"archival-pane--match", "archival-pane--muted"}
    BINDINGS = [
        Binding("slash", "focus_search", "Search"),
        Binding("o", "open_entity", "Open entity"),
        Binding("c", "create_entity", "Create entity"),
        Binding("e", "edit_entity", "Edit entity"),
        Binding("d", "forget_entity", "Forget entity"),
        Binding("h", "entity_history", "Entity history"),
        Binding("u", "restore_entity", "Restore forgotten entity"),
        Binding("n", "page(1)", "Next page"),
        Binding("p", "page(-1)", "Previous page"),
    ]

    perf_counter = staticmethod(time.perf_counter)  # tests swap in a fixed clock

    def __init__(self, session: Session, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.session = session
        self._sequence = 0
        self._query = ""
        self._entity_type: EntityType | None = None
        self._forgotten: dict[str, HistoryRecord] | None = None  # the Forgotten filter's rows
        self._page = 0
        self._results: list[Entity] = []  # search: every hit; browsing: the current page
        self._total = 0
        self._elapsed_ms = 0.0
        self._shown: list[Entity] = []
        self._shown_query = ""
        self._counted: tuple[EntityType | None, int] | None = None  # (type, count) listed
        self._changes_pending = False
        self._widths = (0, 0, 0)
        self._name_width_wanted = 0

    def compose(self) -> ComposeResult:
        with Horizontal(id="archival-bar"):
            yield PaneInput(placeholder="search names and content  ( / )", id="archival-query",
                            leave_to=lambda: self.table)
            yield Select([*((t.value, t) for t in EntityType), ("forgotten", FORGOTTEN)],
                         prompt="all types", id="archival-type", compact=True)
        yield DataTable(id="archival-table", cursor_type="row",
                        cursor_background_priority="css")  # the cursor row: matches in bold
        yield Static("loading…", id="archival-status", markup=False)

    @property
    def table(self) -> DataTable:
        return self.query_one("#archival-table", DataTable)

    def focus(self, scroll_visible: bool = True) -> ArchivalPane:
        """Focusing the pane focuses its table, where its bindings act."""
        self.table.focus(scroll_visible)
        return self

    def on_mount(self) -> None:
        fit_when_sized(self, self._layout_columns)
        self.app.theme_changed_signal.subscribe(self, lambda _: self._show_page(force=True))
        self._ask()

    def on_resize(self) -> None:
        self._layout_columns()

    # ---- asking the store ---------------------------------------------------------------

    @on(Input.Changed, "#archival-query")
    def _query_changed(self, event: Input.Changed) -> None:
        self._query, self._page = event.value, 0
        self._ask()

    @on(Input.Submitted, "#archival-query")
    def _query_done(self) -> None:
        self.table.focus()

    @on(Select.Changed, "#archival-type")
    def _type_changed(self, event: Select.Changed) -> None:
        self._entity_type = event.value if isinstance(event.value, EntityType) else None
        self._forgotten = {} if event.value == FORGOTTEN else None
        self._page = 0
        self._counted = None
        self._ask()

    def _ask(self) -> None:
        """Ask for the current query, type and page; only the newest answer is shown."""
        self._sequence += 1
        if self._forgotten is not None:
            self._fetch_forgotten(self._sequence, self._query)
        else:
            self._fetch(self._sequence, self._query, self._entity_type, self._page)

    @work(exclusive=True, group="archival-search")
    async def _fetch(self, sequence: int, query: str, entity_type: EntityType | None,
                     page: int) -> None:
        archival = (await self.session.ready()).archival
        started = self.perf_counter()
        try:
            if query:
                results = await archival.search(query, entity_type=entity_type,
                                                limit=SEARCH_RESULTS_COUNT_MAX)
                total = len(results)
            else:
                results = await archival.list(entity_type, limit=ARCHIVAL_PANE_PAGE_ROWS,
                                              offset=page * ARCHIVAL_PANE_PAGE_ROWS)
                if self._counted is None or self._counted[0] != entity_type:
                    self._counted = (entity_type, await archival.count(entity_type))
                total = self._counted[1]  # paging does not count again; a change does
        except UmiError as error:
            if sequence == self._sequence:
                report_error(self, "search", error)
                self._set_status(f"search failed: {error}")
            return
        if sequence != self._sequence:
            return  # a newer query was asked for while this one ran
        self._results, self._total = results, total
        self._elapsed_ms = (self.perf_counter() - started) * 1000
        self._show_page()

    @work(exclusive=True, group="archival-search")
    async def _fetch_forgotten(self, sequence: int, query: str) -> None:
        """Forgotten entities (as of now: only the live store can restore), names matching
        `query`; shown like a search's results."""
        started = self.perf_counter()
        try:
            store = await self.session.ready_live()
            records = await store.archival.forgotten(limit=ENTITY_LIST_COUNT_MAX)
        except UmiError as error:
            report_error(self, "list forgotten entities", error)
            return
        if sequence != self._sequence or self._forgotten is None:
            return
        wanted = query.casefold()
        rows = [forgotten_row(r) for r in records]
        self._forgotten = {r.key: r for r in records}
        self._results = [row for row in rows if wanted in row.name.casefold()]
        self._total = len(self._results)
        self._elapsed_ms = (self.perf_counter() - started) * 1000
        self._show_page()

    def on_view_changed(self, message: ViewChanged) -> None:
        self._after_change()

    def on_store_changed(self, message: StoreChanged) -> None:
        if message.event.tier != Tier.ARCHIVAL:
            return
        self._counted = None
        if not self._changes_pending:
            self._changes_pending = True
            self._ask_after_changes()

    @work(group="archival-changes")
    async def _ask_after_changes(self) -> None:
        """Show changes from the feed: one query for a burst of events, never starved."""
        await asyncio.sleep(ARCHIVAL_CHANGES_DEBOUNCE_SECS)
        self._changes_pending = False
        self._ask()

    # ---- drawing -------------------------------------------------------------------------

    def _layout_columns(self) -> bool:
        """Give the name the width of the longest name shown (up to half the pane) and the
        content the rest; when narrow, drop the type column (the type filter still shows it)
        to keep both readable. Re-add the columns when that changes (and say so)."""
        room = self.size.width - 2 * COLUMN_PADDING_WIDTH - SCROLLBAR_WIDTH
        type_width = COLUMN_TYPE_WIDTH
        if room - COLUMN_TYPE_WIDTH - COLUMN_PADDING_WIDTH >= COLUMNS_TEXT_WIDTH_MIN:
            room -= COLUMN_TYPE_WIDTH + COLUMN_PADDING_WIDTH
        else:
            type_width = 0
        room = max(room, COLUMNS_TEXT_WIDTH_MIN // 2)
        widths = (type_width, *label_first_widths(room, self._name_width_wanted,
                                                  self.size.width))
        if widths == self._widths:
            return False
        self._widths = widths
        table, selected = self.table, self.selected_entity
        table.clear(columns=True)
        if type_width:
            table.add_column("type", key="type", width=type_width)
        table.add_column("name", key="name", width=widths[1])
        table.add_column("content", key="content", width=widths[2])
        self._show_page(force=True, selected=selected)
        return True

    def _page_entities(self) -> list[Entity]:
        if not self._query and self._forgotten is None:
            return self._results
        start = self._page * ARCHIVAL_PANE_PAGE_ROWS
        return self._results[start:start + ARCHIVAL_PANE_PAGE_ROWS]

    def _show_page(self, *, force: bool = False, selected: Entity | None = None) -> None:
        """Show the current page in place: row i shows the page's i-th entity; only rows
        whose entity (or highlight) changed are rewritten (`force`: every row). The cursor
        stays on the `selected` entity, by default the one under it."""
        if not self.is_mounted:
            return
        table, selected = self.table, selected or self.selected_entity
        page = self._page_entities()
        wanted = max((cell_len(entity.name) for entity in page), default=0)
        if wanted != self._name_width_wanted:
            self._name_width_wanted = wanted
            if self._layout_columns():
                return  # the columns were re-added, and the page drawn with them
        rewrite_all = force or self._shown_query != self._query
        for index, entity in enumerate(page):
            if index >= table.row_count:
                table.add_row(*self._row(entity).values(), key=f"row-{index}")
            elif rewrite_all or index >= len(self._shown) or self._shown[index] != entity:
                for column, cell in self._row(entity).items():
                    table.update_cell(f"row-{index}", column, cell)
        for index in reversed(range(len(page), table.row_count)):
            table.remove_row(f"row-{index}")
        ids = [entity.id for entity in page]
        if selected is not None and selected.id in ids:
            table.move_cursor(row=ids.index(selected.id), animate=False)
        self._shown, self._shown_query = page, self._query
        self._set_status(self._status_line())

    def _row(self, entity: Entity) -> dict[str, Text]:
        """The cells of `entity`'s row, by column key, for the columns shown."""
        match = self.get_component_rich_style("archival-pane--match")
        muted = cell_style(self, "archival-pane--muted")
        cells = {"type": Text(entity.entity_type.value, style=muted)} if self._widths[0] else {}
        cells["name"] = highlighted(middle_truncated(entity.name, self._widths[1]), self._query,
                                    match)
        cells["content"] = highlighted(snippet(entity.content, self._query, name=entity.name,
                                               lead=self._widths[2] // 3),
                                       self._query, match, base=muted)
        return cells

    def _status_line(self) -> str:
        if self._forgotten is not None:
            return self._forgotten_status()
        if self._query and not self._results:
            return f"no matches for {self._query!r} · {self._elapsed_ms:.1f} ms"
        if not self._results:
            kind = f"{self._entity_type.value} " if self._entity_type else ""
            return f"no {kind}entities yet; c creates one · {self._elapsed_ms:.1f} ms"
        start = self._page * ARCHIVAL_PANE_PAGE_ROWS
        shown = (f"{start + 1:,}–{start + len(self._shown):,}" if self._shown else "none")
        if self._query:
            found = counted(self._total, "match", "matches")
            if self._total >= SEARCH_RESULTS_COUNT_MAX:
                found = (f"{SEARCH_RESULTS_COUNT_MAX}+ matches "
                         f"(newest {SEARCH_RESULTS_COUNT_MAX} shown)")
        else:
            found = f"{self._total:,} entities, newest first"
        pages = " (n/p)" if self._total > ARCHIVAL_PANE_PAGE_ROWS else ""
        return f"{found} · {shown}{pages} · {self._elapsed_ms:.1f} ms"

    def _forgotten_status(self) -> str:
        if not self._results:
            return (f"no forgotten entity named like {self._query!r}" if self._query else
                    "no forgotten entities: d forgets one, u here brings it back")
        start = self._page * ARCHIVAL_PANE_PAGE_ROWS
        pages = " (n/p)" if self._total > ARCHIVAL_PANE_PAGE_ROWS else ""
        return (f"{counted(self._total, 'forgotten entity', 'forgotten entities')}, latest "
                f"first · {start + 1:,}–{start + len(self._shown):,}{pages} · u restores · "
                "h history")

    def _set_status(self, line: str) -> None:
        # One line of fixed height and full width: no layout pass (a reflow of every pane)
        self.query_one("#archival-status", Static).update(line, layout=False)

    # ---- actions -------------------------------------------------------------------------

    @property
    def selected_entity(self) -> Entity | None:
        table = self.table
        if not table.row_count or not table.is_valid_coordinate(table.cursor_coordinate):
            return None
        return self._shown[table.cursor_row] if table.cursor_row < len(self._shown) else None

    def action_focus_search(self) -> None:
        self.query_one("#archival-query", Input).focus()

    def action_page(self, step: int) -> None:
        pages = max(1, -(-self._total // ARCHIVAL_PANE_PAGE_ROWS))
        page = min(max(0, self._page + step), pages - 1)
        if page == self._page:
            return
        self._page = page
        if self._query or self._forgotten is not None:
            self._show_page()
        else:
            self._ask()
        self.table.move_cursor(row=0, animate=False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_entity()

    def action_open_entity(self) -> None:
        entity = self.selected_entity
        if entity is None:
            return
        if self._forgotten is not None:  # gone: what is left of it is its history
            self.action_entity_history()
        else:
            self._open(entity.id)

    def action_entity_history(self) -> None:
        entity = self.selected_entity
        if entity is None:
            self.notify("Select an entity first.", severity="warning")
            return
        self._show_history(entity)

    def _show_history(self, entity: Entity) -> None:
        self.app.push_screen(HistoryScreen(self.session, Tier.ARCHIVAL, entity.id,
                                           f"entity {entity.name!r}"), self._after_change)

    def action_restore_entity(self) -> None:
        entity = self.selected_entity
        if self._forgotten is None or entity is None:
            self.notify("u restores a forgotten entity: choose 'forgotten' in the type filter. "
                        "h shows this entity's versions (u there restores one).",
                        severity="warning", timeout=6)
            return
        if refused_as_of(self, self.session):
            return
        record = self._forgotten[entity.id]

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._restore(record)
        self.app.push_screen(ConfirmScreen(f"Restore {entity.name}, as it was before it was "
                                           "forgotten?"), confirmed)

    @work(group="archival-action")
    async def _restore(self, forgotten: HistoryRecord) -> None:
        """Store the version before the delete again, unless it changed meanwhile."""
        try:
            await (await self.session.ready()).archival.restore(
                forgotten.key, forgotten.version - 1, if_version=forgotten.version)
        except UmiError as error:
            report_error(self, "restore entity", error)
        else:
            self.notify(f"Restored {forgotten.metadata.get('name') or forgotten.key}.")
        self._after_change()

    @work(group="archival-action")
    async def _open(self, entity_id: str) -> None:
        try:
            entity = await (await self.session.ready()).archival.get(entity_id)
        except UmiError as error:
            report_error(self, "open entity", error)
            return
        if entity is None:
            self.notify("that entity is gone", severity="warning")
            self._after_change()
            return
        def chosen(choice: str | None) -> None:
            if choice == "edit":
                self._edit(entity)
            elif choice == "forget":
                self._confirm_forget(entity)
            elif choice == "history":
                self._show_history(entity)
        self.app.push_screen(EntityDetailScreen(entity), chosen)

    def action_create_entity(self) -> None:
        if refused_as_of(self, self.session):
            return
        async def save(entity_type: EntityType, name: str, content: str,
                       metadata: dict[str, str]) -> Entity:
            return await (await self.session.ready()).archival.remember(content, entity_type,
                                                         name=name or None, metadata=metadata)
        self.app.push_screen(EntityEditScreen(save), self._after_change)

    def _refused_forgotten(self) -> bool:
        """True, after saying so, when the rows are forgotten entities (nothing to edit)."""
        if self._forgotten is not None and self.selected_entity is not None:
            self.notify("This entity is forgotten: u restores it first.", severity="warning")
            return True
        return False

    def action_edit_entity(self) -> None:
        entity = self.selected_entity
        if entity is not None and not self._refused_forgotten():
            self._edit(entity)

    def _edit(self, entity: Entity) -> None:
        if refused_as_of(self, self.session):
            return
        async def save(entity_type: EntityType, name: str, content: str,
                       metadata: dict[str, str]) -> Entity:
            return await (await self.session.ready()).archival.update(
                replace(entity, entity_type=entity_type, name=name, content=content,
                        metadata=metadata))
        self.app.push_screen(EntityEditScreen(save, entity), self._after_change)

    def action_forget_entity(self) -> None:
        entity = self.selected_entity
        if entity is not None and not self._refused_forgotten():
            self._confirm_forget(entity)

    def _confirm_forget(self, entity: Entity) -> None:
        if refused_as_of(self, self.session):
            return
        def confirmed(yes: bool | None) -> None:
            if yes:
                self._forget(entity.id)
        self.app.push_screen(ConfirmScreen(f"Forget {entity.name}?"), confirmed)

    @work(group="archival-action")
    async def _forget(self, entity_id: str) -> None:
        try:
            await (await self.session.ready()).archival.forget(entity_id)
        except UmiError as error:
            report_error(self, "forget entity", error)
        self._after_change()

    def _after_change(self, _: object = None) -> None:
        self._counted = None
        self._ask()
