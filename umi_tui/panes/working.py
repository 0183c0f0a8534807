"""The Working pane: live keys with a TTL countdown, totals, a TTL histogram and actions.

The pane keeps every live key that matches the filter, but shows a page of rows at a
time. Countdowns are computed from each key's deadline and the clock the app sends
(ClockMoved), never by asking the store per tick: a heap holds, per key, the moment its
label next changes, so a tick touches only the cells that change. Rows are refreshed
from the store on StoreChanged events and when a deadline passes.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
from collections.abc import Set

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import DataTable, Input, Static

from umi_store import InvalidInputError, Tier, UmiError, WorkingEntry
from umi_store.constants import WORKING_MEMORY_ENTRIES_COUNT_MAX, WORKING_MEMORY_SIZE_BYTES_MAX

from ..feedback import refused_as_of, report_error
from ..messages import ClockMoved, StoreChanged, ViewChanged
from ..screens.confirm import ConfirmScreen
from ..screens.expire_key import ExpireKeyScreen
from ..screens.history import HistoryScreen
from ..screens.set_key import SetKeyScreen
from ..session import Session
from ..widgets.cell_style import cell_style
from ..widgets.counts import counted
from ..widgets.fitting import (COLUMN_PADDING_WIDTH, SCROLLBAR_WIDTH, fit_when_sized,
                               label_first_widths, middle_truncated)
from ..widgets.histogram import Histogram
from ..widgets.pane_input import PaneInput
from ..widgets.sizes import format_bytes
from ..widgets.ttl import TTL_BUCKET_LABELS, humanize_ttl, next_change_ms, ttl_bucket, ttl_urgency
from ..widgets.value_text import escaped, holds_stray_bytes

WORKING_PANE_PAGE_ROWS = 100
WORKING_DUE_SLACK_COUNT = 1024  # superseded schedule entries tolerated before compaction
WORKING_SYNC_KEYS_MAX = 64  # more changed keys than this at once: reload the whole listing
WORKING_FILTER_DEBOUNCE_SECS = 0.15
VALUE_PREVIEW_CHARS_MAX = 200
COLUMN_SIZE_WIDTH = 9
COLUMN_TTL_WIDTH = 4
COLUMN_KEY_WIDTH_MIN = 8
COLUMNS_VALUE_ROOM_WIDTH_MIN = 24  # narrower, the value column's room goes to the key


def value_preview(value: bytes) -> str:
    """The start of a value as one line of text; bytes that are not UTF-8 escaped (\\xNN)."""
    start = value[:VALUE_PREVIEW_CHARS_MAX * 4]  # holds the first VALUE_PREVIEW_CHARS_MAX chars
    text = start.decode("utf-8", "surrogateescape")[:VALUE_PREVIEW_CHARS_MAX]
    if holds_stray_bytes(text):
        text = escaped(text.encode("utf-8", "surrogateescape"))[:VALUE_PREVIEW_CHARS_MAX]
    return text.replace("\n", "⏎").replace("\t", " ")


class WorkingPane(Widget):
    """Working memory: keys, sizes and live TTLs of the app's store."""

    DEFAULT_CSS = """
    WorkingPane { layout: vertical; height: 1fr; }
    WorkingPane #working-filter { margin-bottom: 0; }
    WorkingPane #working-table { height: 1fr; }
    WorkingPane #working-totals { height: 1; color: $text-muted; }
    WorkingPane > .working-pane--ttl-soon { color: $error; text-style: bold; }
    WorkingPane > .working-pane--ttl-minutes { color: $warning; }
    WorkingPane > .working-pane--ttl-later { color: $success; }
    WorkingPane > .working-pane--value { color: $text-muted; }
    """
    COMPONENT_CLASSES = {"working-pane--ttl-soon", "working-pane--ttl-minutes",
                         "working-pane--ttl-later", "working-pane--value"}
    BINDINGS = [
        Binding("s", "set_key", "Set key"),
        Binding("e", "edit_key", "Edit key"),
        Binding("d", "delete_key", "Delete key"),
        Binding("x", "expire_key", "Expire key"),
        Binding("t", "touch_key", "Touch key"),
        Binding("h", "key_history", "Key history"),
        Binding("slash", "focus_filter", "Filter keys"),
        Binding("n", "page(1)", "Next page"),
        Binding("p", "page(-1)", "Previous page"),
    ]

    def __init__(self, session: Session, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.session = session
        self._prefix = ""
        self._now_ms = 0
        self._entries: dict[str, WorkingEntry] = {}
        self._sorted: list[str] = []
        self._shown: list[str] = []
        self._page = 0
        self._due: list[tuple[int, int, str]] = []
        self._generation: dict[str, int] = {}
        self._generations = itertools.count()
        self._bucket: dict[str, int] = {}
        self._bucket_counts = [0] * len(TTL_BUCKET_LABELS)
        self._dirty: set[str] = set()
        self._reload_wanted = False
        self._syncing = False
        self._totals: tuple[int, int] | None = None
        self._widths: tuple[int, int] = (0, 0)
        self._key_width_wanted = 0
        self._totals_line = "loading…"

    def compose(self) -> ComposeResult:
        yield PaneInput(placeholder="filter by key prefix  ( / )", id="working-filter",
                        leave_to=lambda: self.table)
        yield DataTable(id="working-table", cursor_type="row")
        yield Histogram(TTL_BUCKET_LABELS, id="working-histogram")
        yield Static(self._totals_line, id="working-totals", markup=False)

    @property
    def table(self) -> DataTable:
        return self.query_one("#working-table", DataTable)

    def focus(self, scroll_visible: bool = True) -> WorkingPane:
        """Focusing the pane focuses its table, where its bindings act."""
        self.table.focus(scroll_visible)
        return self

    def on_mount(self) -> None:
        fit_when_sized(self, self._layout_columns)
        self.app.theme_changed_signal.subscribe(self, lambda _: self._render_page(force=True))
        self._reload()

    def on_resize(self) -> None:
        self._layout_columns()

    # ---- what the app sends down -------------------------------------------------------

    def on_clock_moved(self, message: ClockMoved) -> None:
        self._now_ms = max(self._now_ms, message.now_ms)
        self._advance()

    def on_store_changed(self, message: StoreChanged) -> None:
        if message.event.tier == Tier.WORKING:
            self._mark_dirty({message.event.key})

    def on_view_changed(self, message: ViewChanged) -> None:
        """Another instant (or live again): forget every key and its countdown, read anew."""
        self.workers.cancel_group(self, "working-sync")
        self._syncing, self._dirty, self._now_ms = False, set(), 0
        for key in list(self._entries):
            self._untrack(key)
        self._due.clear()
        self._reload()

    # ---- countdowns ----------------------------------------------------------------------

    def _advance(self) -> None:
        """Redraw the countdowns whose label changed by now; drop keys whose deadline passed."""
        now, table = self._now_ms, self.table
        shown = set(self._shown)
        expired: list[str] = []
        while self._due and self._due[0][0] <= now:
            _, generation, key = heapq.heappop(self._due)
            if self._generation.get(key) != generation:
                continue
            entry = self._entries[key]
            if not entry.is_live(now):
                expired.append(key)
                self._untrack(key)
                continue
            self._track(entry)
            if key in shown:
                table.update_cell(key, "ttl", self._ttl_cell(entry))
        for key in expired:
            if key in shown:
                table.remove_row(key)
                self._shown.remove(key)
        if expired:
            self._mark_dirty(set(expired))  # confirm from the store; refreshes the totals
        self._show_counts()

    def _track(self, entry: WorkingEntry) -> None:
        """Hold `entry` (new or replacing its key) and schedule its next label change."""
        key = entry.key
        if key not in self._entries:
            bisect.insort(self._sorted, key)
        else:
            self._bucket_counts[self._bucket[key]] -= 1
        self._entries[key] = entry
        bucket = ttl_bucket(entry.remaining_ms(self._now_ms))
        self._bucket[key] = bucket
        self._bucket_counts[bucket] += 1
        generation = next(self._generations)
        self._generation[key] = generation
        heapq.heappush(self._due, (next_change_ms(entry.expires_at_ms, self._now_ms),
                                   generation, key))
        if len(self._due) > 2 * len(self._entries) + WORKING_DUE_SLACK_COUNT:
            self._due = [due for due in self._due if self._generation.get(due[2]) == due[1]]
            heapq.heapify(self._due)  # drop the superseded schedule entries of rewritten keys

    def _untrack(self, key: str) -> None:
        del self._entries[key]
        del self._generation[key]
        self._bucket_counts[self._bucket.pop(key)] -= 1
        del self._sorted[bisect.bisect_left(self._sorted, key)]

    # ---- refreshing from the store -------------------------------------------------------

    def _mark_dirty(self, keys: set[str]) -> None:
        self._dirty |= keys
        self._request_sync()

    def _reload(self) -> None:
        self._reload_wanted = True
        self._request_sync()

    def _request_sync(self) -> None:
        if not self._syncing:
            self._syncing = True
            self._sync()

    @work(group="working-sync")
    async def _sync(self) -> None:
        """Fetch what changed until nothing is pending: a few keys one by one, else all."""
        store = await self.session.ready()
        working = store.working
        self._now_ms = max(self._now_ms, store.clock.now_ms())  # as of an instant: then
        try:
            while self._reload_wanted or self._dirty:
                prefix = self._prefix
                if self._reload_wanted or len(self._dirty) > WORKING_SYNC_KEYS_MAX:
                    self._reload_wanted, self._dirty = False, set()
                    fresh = await working.entries(prefix=prefix)
                    if prefix != self._prefix:
                        continue
                    changed = self._apply({e.key: e for e in fresh}, set(self._entries))
                else:
                    keys, self._dirty = sorted(self._dirty), set()
                    found = {key: await working.entry(key) for key in keys
                             if key.startswith(prefix)}
                    if prefix != self._prefix:
                        continue
                    changed = self._apply({k: e for k, e in found.items() if e}, set(found))
                self._render_page(changed)
                self._totals = (await working.used_bytes(), await working.entry_count())
                self._show_counts()
        except UmiError as error:
            report_error(self, "refresh working memory", error)
        finally:
            self._syncing = False

    def _apply(self, fresh: dict[str, WorkingEntry], checked: set[str]) -> set[str]:
        """Take the store's word for the keys in `checked`; which keys changed."""
        changed = set()
        for key in checked - fresh.keys():
            if key in self._entries:
                self._untrack(key)
                changed.add(key)
        for key, entry in fresh.items():
            if entry.is_live(self._now_ms) and self._entries.get(key) != entry:
                self._track(entry)
                changed.add(key)
        return changed

    # ---- drawing -------------------------------------------------------------------------

    def _layout_columns(self) -> bool:
        """Give the key the width of the longest key shown (up to half the pane) and the value
        the rest; when narrow, drop the value and give the key its room, so size and ttl
        always show. Re-add the columns when that changes (and say so)."""
        room = (self.size.width - COLUMN_SIZE_WIDTH - COLUMN_TTL_WIDTH
                - 3 * COLUMN_PADDING_WIDTH - SCROLLBAR_WIDTH)
        if room >= COLUMNS_VALUE_ROOM_WIDTH_MIN:
            widths = label_first_widths(room - COLUMN_PADDING_WIDTH, self._key_width_wanted,
                                        self.size.width)
        else:
            widths = (max(COLUMN_KEY_WIDTH_MIN, room), 0)
        if widths == self._widths:
            return False
        self._widths = widths
        table, selected = self.table, self.selected_key
        table.clear(columns=True)
        table.add_column("key", key="key", width=widths[0])
        if widths[1]:
            table.add_column("value", key="value", width=widths[1])
        table.add_column(Text("size", justify="right"), key="size", width=COLUMN_SIZE_WIDTH)
        table.add_column(Text("ttl", justify="right"), key="ttl", width=COLUMN_TTL_WIDTH)
        self._render_page(force=True, selected=selected)
        return True

    def _ttl_cell(self, entry: WorkingEntry) -> Text:
        remaining = entry.remaining_ms(self._now_ms)
        style = self._style(f"working-pane--ttl-{ttl_urgency(remaining)}")
        return Text(humanize_ttl(remaining), style=style, justify="right")

    def _style(self, component: str) -> Style:
        return cell_style(self, component)

    def _row(self, entry: WorkingEntry) -> dict[str, Text]:
        """The cells of `entry`'s row, by column key, for the columns shown."""
        cells = {"key": Text(middle_truncated(entry.key, self._widths[0]), no_wrap=True)}
        if self._widths[1]:
            cells["value"] = Text(value_preview(entry.value), no_wrap=True, overflow="ellipsis",
                                  style=self._style("working-pane--value"))
        cells["size"] = Text(format_bytes(entry.size_bytes), justify="right")
        cells["ttl"] = self._ttl_cell(entry)
        return cells

    def _render_page(self, changed: Set[str] = frozenset(), *, force: bool = False,
                     selected: str | None = None) -> None:
        """Show the current page: rebuild its rows only if they are other keys than before
        (keeping the cursor on the `selected` key, by default the one under it)."""
        if not self.is_mounted:
            return
        pages = max(1, -(-len(self._sorted) // WORKING_PANE_PAGE_ROWS))
        self._page = min(self._page, pages - 1)
        start = self._page * WORKING_PANE_PAGE_ROWS
        target = self._sorted[start:start + WORKING_PANE_PAGE_ROWS]
        wanted = max(map(cell_len, target), default=0)
        if wanted != self._key_width_wanted:
            self._key_width_wanted = wanted
            if self._layout_columns():
                return  # the columns were re-added, and the page drawn with them
        table = self.table
        if target == self._shown and not force:
            for key in changed & set(target):
                for column, cell in self._row(self._entries[key]).items():
                    table.update_cell(key, column, cell)
        else:
            selected = selected or self.selected_key
            table.clear()
            for key in target:
                table.add_row(*self._row(self._entries[key]).values(), key=key)
            self._shown = list(target)
            if selected in self._entries and selected in target:
                table.move_cursor(row=target.index(selected), animate=False)
        self._show_counts()

    def _show_counts(self) -> None:
        self.query_one(Histogram).set_counts(self._bucket_counts)
        parts = []
        if self._totals is not None:
            used, count = self._totals
            parts.append(f"{count:,} / {WORKING_MEMORY_ENTRIES_COUNT_MAX:,} keys")
            parts.append(f"{format_bytes(used)} / "
                         f"{format_bytes(WORKING_MEMORY_SIZE_BYTES_MAX)}")
        if self._prefix:
            parts.append(counted(len(self._sorted), "match", "matches"))
        elif self._totals is not None and not self._sorted:
            parts.append("s sets a key")
        if len(self._sorted) > WORKING_PANE_PAGE_ROWS:
            start = self._page * WORKING_PANE_PAGE_ROWS
            parts.append(f"rows {start + 1:,}–{start + len(self._shown):,} (n/p)")
        line = " · ".join(parts)
        if line != self._totals_line:
            self._totals_line = line
            self.query_one("#working-totals", Static).update(line, layout=False)  # fixed size

    # ---- filter --------------------------------------------------------------------------

    @on(Input.Changed, "#working-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self._debounce_filter(event.value)

    @work(exclusive=True, group="working-filter")
    async def _debounce_filter(self, prefix: str) -> None:
        await asyncio.sleep(WORKING_FILTER_DEBOUNCE_SECS)
        self._prefix, self._page = prefix, 0
        self._reload()

    @on(Input.Submitted, "#working-filter")
    def _filter_done(self) -> None:
        self.table.focus()

    # ---- actions -------------------------------------------------------------------------

    def action_key_history(self) -> None:
        key = self.selected_key
        if key is None:
            self.notify("Select a key first.", severity="warning")
            return
        self.app.push_screen(HistoryScreen(self.session, Tier.WORKING, key, f"key {key!r}"))

    @property
    def selected_key(self) -> str | None:
        """The key under the table's cursor, if any."""
        table = self.table
        if not table.row_count or not table.is_valid_coordinate(table.cursor_coordinate):
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    def _after_change(self, key: str | None) -> None:
        if key is not None:
            self._mark_dirty({key})

    def action_focus_filter(self) -> None:
        self.query_one("#working-filter", Input).focus()

    def action_page(self, step: int) -> None:
        pages = max(1, -(-len(self._sorted) // WORKING_PANE_PAGE_ROWS))
        page = min(max(0, self._page + step), pages - 1)
        if page != self._page:
            self._page = page
            self._render_page()
            self.table.move_cursor(row=0, animate=False)

    def action_set_key(self) -> None:
        if refused_as_of(self, self.session):
            return
        async def save(key: str, value: bytes, ttl_ms: int | None) -> WorkingEntry:
            return await (await self.session.ready()).working.set(key, value, ttl_ms)

        def done(entry: WorkingEntry | None) -> None:
            if entry is not None and not entry.key.startswith(self._prefix):
                self.notify(f"set {entry.key} — hidden by the filter {self._prefix!r}",
                            severity="warning")
            self._after_change(entry.key if entry else None)
        self.app.push_screen(SetKeyScreen(save), done)

    def action_edit_key(self) -> None:
        if refused_as_of(self, self.session):
            return
        key = self.selected_key
        if key is None:
            return
        entry = self._entries[key]

        async def save(key: str, value: bytes, ttl_ms: int | None) -> WorkingEntry:
            if ttl_ms is None:  # the TTL field left as shown: keep the deadline to the ms
                ttl_ms = entry.expires_at_ms - self.session.clock.now_ms()
                if ttl_ms <= 0:
                    raise InvalidInputError(f"{key} expired meanwhile; give it a TTL to set "
                                            "it again")
            return await (await self.session.ready()).working.set(key, value, ttl_ms)
        screen = SetKeyScreen(save, entry=entry, remaining_ms=entry.remaining_ms(self._now_ms))
        self.app.push_screen(screen, lambda stored: self._after_change(stored and stored.key))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_edit_key()

    def action_delete_key(self) -> None:
        if refused_as_of(self, self.session):
            return
        key = self.selected_key
        if key is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._delete(key)
        self.app.push_screen(ConfirmScreen(f"Delete key {key}?"), confirmed)

    @work(group="working-action")
    async def _delete(self, key: str) -> None:
        try:
            if not await (await self.session.ready()).working.delete(key):
                self.notify(f"{key} was already gone", severity="warning")
        except UmiError as error:
            report_error(self, "delete key", error)
        self._after_change(key)

    def action_expire_key(self) -> None:
        if refused_as_of(self, self.session):
            return
        key = self.selected_key
        if key is None:
            return

        async def expire(ttl_ms: int) -> bool:
            return await (await self.session.ready()).working.expire(key, ttl_ms)

        def done(live: bool | None) -> None:
            if live is False:
                self.notify(f"{key} had already expired", severity="warning")
            self._after_change(key)
        ttl = humanize_ttl(self._entries[key].remaining_ms(self._now_ms))
        self.app.push_screen(ExpireKeyScreen(key, expire, ttl=ttl), done)

    def action_touch_key(self) -> None:
        if refused_as_of(self, self.session):
            return
        key = self.selected_key
        if key is not None:
            self._touch(key)

    @work(group="working-action")
    async def _touch(self, key: str) -> None:
        try:
            if not await (await self.session.ready()).working.touch(key):
                self.notify(f"{key} had already expired", severity="warning")
        except UmiError as error:
            report_error(self, "touch key", error)
        self._after_change(key)
