"""The Working pane in a harness app: countdowns, expiry, actions, filter, errors."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, Static

from tests.tui_harness import PaneHarness
from tests.tui_support import fitting_columns, settle
from umi_store import DeterministicRng, FaultConfig, FaultInjector
from umi_tui.panes.working import WORKING_PANE_PAGE_ROWS, WorkingPane, middle_truncated
from umi_tui.screens.confirm import ConfirmScreen
from umi_tui.screens.set_key import SetKeyScreen
from umi_tui.formatting import parse_duration
from umi_tui.widgets.ttl import humanize_ttl, next_change_ms
from umi_tui.widgets.value_text import escaped, is_plain_text, unescaped

SECOND_MS, MINUTE_MS, HOUR_MS, DAY_MS = 1_000, 60_000, 3_600_000, 86_400_000
SIZE = (60, 19)


async def seed_keys(store) -> None:
    await store.working.set("session:goal", b"find a flat in Lyon", ttl_ms=42 * SECOND_MS)
    await store.working.set("session:step", b"3", ttl_ms=5 * MINUTE_MS + 30 * SECOND_MS)
    await store.working.set("tool:weather", b'{"city": "Lyon", "temp": 21}',
                            ttl_ms=5 * HOUR_MS + 30 * MINUTE_MS)
    await store.working.set("user:[bold]name", b"Ada", ttl_ms=2 * DAY_MS + HOUR_MS)


def harness(**options) -> PaneHarness:
    return PaneHarness(WorkingPane, seed=options.pop("seed", seed_keys), **options)


def rows(app: PaneHarness) -> dict[str, tuple[str, ...]]:
    table = app.pane.query_one(DataTable)
    return {key.value: tuple(str(cell) for cell in table.get_row(key)) for key in table.rows}


def totals(app: PaneHarness) -> str:
    return str(app.pane.query_one("#working-totals", Static).render())


async def test_keys_show_size_and_ttl_in_first_unit():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = rows(app)
        assert shown["session:goal"][2:] == ("31 B", "42s")
        assert shown["session:step"][3] == "5m"
        assert shown["tool:weather"][3] == "5h"
        assert shown["user:[bold]name"][0] == "user:[bold]name"  # text, never markup
        assert shown["user:[bold]name"][3] == "2d"


async def test_an_empty_working_memory_says_how_to_set_a_key():
    app = harness(seed=None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert totals(app).endswith("· s sets a key")
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, SetKeyScreen)


@pytest.mark.parametrize("width, columns", [(60, ["key", "value", "size", "ttl"]),
                                            (38, ["key", "size", "ttl"])])
async def test_size_and_ttl_always_fit_and_a_narrow_pane_drops_the_value(width, columns):
    app = harness()
    async with app.run_test(size=(width, 19)) as pilot:
        await settle(pilot)
        assert fitting_columns(app.pane.query_one(DataTable)) == columns
        assert rows(app)["session:goal"][-1] == "42s"


async def test_long_keys_that_share_a_prefix_stay_apart():
    async def long_keys(store) -> None:
        for index in (7, 8):
            await store.working.set(f"scratch:customer_statements:{index}", b"v")

    app = harness(seed=long_keys)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = [row[0] for row in rows(app).values()]
        assert len(shown) == 2 and shown[0] != shown[1]
        assert all(key.startswith("scratch:") and "…" in key for key in shown)
        assert [key[-2:] for key in shown] == [":7", ":8"]


async def test_the_key_column_takes_the_width_its_keys_need_and_the_value_is_cut():
    async def statements(store) -> None:
        for month in ("2025-11", "2025-12"):
            await store.working.set(f"cache:statement:{month}", b"balance 184 302.17 EUR " * 4)

    app = harness(seed=statements)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = rows(app)
        assert [row[0] for row in shown.values()] == ["cache:statement:2025-11",
                                                      "cache:statement:2025-12"]
        table = app.pane.query_one(DataTable)
        assert table.columns["key"].width <= SIZE[0] // 2, "at most half the pane"
        assert table.columns["value"].width >= 8, "the value keeps what is left"
        assert fitting_columns(table) == ["key", "value", "size", "ttl"]


@pytest.mark.parametrize("text, width, cut", [
    ("session:goal", 12, "session:goal"),
    ("scratch:customer_statements:12", 15, "scratch…ents:12"),
    ("日本語のキー:12345", 9, "日本…2345"),  # wide characters count two cells
    ("日本語のキー:12345", 10, "日本…2345"),  # and are never cut in half
])
def test_keys_are_cut_in_the_middle_to_their_width(text, width, cut):
    assert middle_truncated(text, width) == cut


async def test_countdown_follows_the_clock_and_expired_key_leaves():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.advance(30 * SECOND_MS)
        await settle(pilot)
        assert rows(app)["session:goal"][3] == "12s"
        assert rows(app)["session:step"][3] == "5m"
        app.advance(SECOND_MS)
        await settle(pilot)
        assert rows(app)["session:step"][3] == "4m"
        assert rows(app)["session:goal"][3] == "11s"
        app.advance(11 * SECOND_MS)  # exactly the deadline: gone
        await settle(pilot)
        assert "session:goal" not in rows(app)
        assert totals(app).startswith("3 / 10,000 keys")


async def test_a_tick_redraws_only_cells_whose_label_changed(monkeypatch):
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.pane.query_one(DataTable)
        updated = []
        original = table.update_cell
        monkeypatch.setattr(table, "update_cell",
                            lambda row, column, value, **kw: (updated.append(row),
                                                              original(row, column, value, **kw)))
        app.advance(SECOND_MS)
        await pilot.pause()
        assert updated == ["session:goal"]  # 42s → 41s; 5m, 5h and 2d still read the same


async def test_set_key_in_the_modal_stores_it():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        assert isinstance(app.screen, SetKeyScreen)
        await pilot.press(*"plan", "tab", *"walk", "tab", "ctrl+a", "ctrl+k", *"90s", "enter")
        await settle(pilot)
        assert await app.store.working.get("plan") == b"walk"
        assert await app.store.working.ttl_ms("plan") == 90 * SECOND_MS
        assert rows(app)["plan"][1:] == ("walk", "8 B", "1m")


async def test_a_bad_ttl_is_shown_in_the_modal_and_keeps_what_was_typed():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s", *"plan", "tab", *"walk", "tab", "ctrl+a", "ctrl+k", *"soon", "enter")
        await settle(pilot)
        assert isinstance(app.screen, SetKeyScreen)
        assert "cannot read 'soon' as a duration" in str(app.screen.query_one(".dialog--error").render())
        assert app.screen.query_one("#key", Input).value == "plan"
        assert await app.store.working.get("plan") is None


async def test_enter_edits_the_selected_key():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.pane.query_one(DataTable).focus()
        await pilot.press("down", "enter")
        assert app.screen.query_one("#value", Input).value == "3"
        await pilot.press("ctrl+a", "ctrl+k", *"4", "enter")
        await settle(pilot)
        assert await app.store.working.get("session:step") == b"4"


async def test_edit_changes_value_and_ttl_only_the_key_is_not_editable():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.pane.query_one(DataTable).focus()
        await pilot.press("down", "e")
        assert isinstance(app.screen, SetKeyScreen)
        assert not app.screen.query("Input#key"), "the key's name is shown, not edited"
        assert str(app.screen.query_one("#key", Static).render()) == "session:step"
        await pilot.press("ctrl+a", "ctrl+k", *"4", "tab", "ctrl+a", "ctrl+k", *"2h", "enter")
        await settle(pilot)
        entries = await app.store.working.entries()
        assert [e.key for e in entries] == ["session:goal", "session:step", "tool:weather",
                                            "user:[bold]name"]
        assert await app.store.working.get("session:step") == b"4"
        assert await app.store.working.ttl_ms("session:step") == 2 * HOUR_MS


async def seed_binary(store) -> None:
    await store.working.set("blob", b"\xff\x00ab\\\xc3\xa9", ttl_ms=DAY_MS)


async def test_a_binary_value_is_shown_escaped_and_saved_unchanged_writes_nothing():
    app = harness(seed=seed_binary)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert rows(app)["blob"][1] == r"\xff\x00ab\\é", "the row shows the bytes escaped too"
        before = await app.store.working.entry("blob")
        app.advance(5 * SECOND_MS)
        await settle(pilot)
        app.pane.query_one(DataTable).focus()
        await pilot.press("e")
        assert app.screen.query_one("#value", Input).value == r"\xff\x00ab\\é"
        labels = " ".join(str(label.render()) for label in app.screen.query(".dialog--field"))
        assert "escaped bytes" in labels
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is app.screen_stack[0]
        assert await app.store.working.entry("blob") == before, "nothing was written"
        await pilot.press("e", "end", *r"\x01", "enter")
        await settle(pilot)
        assert await app.store.working.get("blob") == b"\xff\x00ab\\\xc3\xa9\x01"


async def test_a_bad_escape_is_refused_in_the_modal():
    app = harness(seed=seed_binary)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.pane.query_one(DataTable).focus()
        await pilot.press("e", "end", *r"\q", "enter")
        await settle(pilot)
        assert isinstance(app.screen, SetKeyScreen)
        assert "unknown escape" in str(app.screen.query_one(".dialog--error").render())
        assert await app.store.working.get("blob") == b"\xff\x00ab\\\xc3\xa9"


async def test_an_untouched_ttl_field_keeps_the_exact_deadline():
    async def long_lived(store) -> None:
        await store.working.set("plan", b"walk", ttl_ms=2 * DAY_MS + 22 * HOUR_MS + 1_234)

    app = harness(seed=long_lived)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        deadline = (await app.store.working.entry("plan")).expires_at_ms
        app.advance(90 * SECOND_MS)
        await settle(pilot)
        app.pane.query_one(DataTable).focus()
        await pilot.press("e")
        assert app.screen.query_one("#ttl", Input).value == "2d21h58m32s"
        await pilot.press("end", *" fast", "enter")
        await settle(pilot)
        entry = await app.store.working.entry("plan")
        assert entry.value == b"walk fast"
        assert entry.expires_at_ms == deadline


async def test_delete_asks_first_and_removes_the_key():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.pane.query_one(DataTable).focus()
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert await app.store.working.exists("session:goal")
        await pilot.press("d", "y")
        await settle(pilot)
        assert not await app.store.working.exists("session:goal")
        assert "session:goal" not in rows(app)


async def test_expire_gives_the_key_a_new_ttl():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.pane.query_one(DataTable).focus()
        await pilot.press("x", "ctrl+a", "ctrl+k", *"2h", "enter")
        await settle(pilot)
        assert await app.store.working.ttl_ms("session:goal") == 2 * HOUR_MS
        assert rows(app)["session:goal"][3] == "2h"


async def test_touch_restarts_the_ttl():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.advance(40 * SECOND_MS)
        await settle(pilot)
        assert rows(app)["session:goal"][3] == "2s"
        app.pane.query_one(DataTable).focus()
        await pilot.press("t")
        await settle(pilot)
        assert rows(app)["session:goal"][3] == "42s"


async def test_prefix_filter_shows_only_matching_keys():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.pane.query_one(DataTable).focus()
        await pilot.press("slash", *"session:")
        await settle(pilot)
        assert set(rows(app)) == {"session:goal", "session:step"}
        assert totals(app).endswith("· 2 matches")
        await pilot.press("ctrl+a", "ctrl+k", *"tool:")
        await settle(pilot)
        assert totals(app).endswith("· 1 match")


async def test_a_key_set_while_the_filter_hides_it_says_so():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"session:", "enter", "s", *"plan:x", "tab", *"walk", "enter")
        await settle(pilot)
        assert await app.store.working.get("plan:x") == b"walk"
        assert "plan:x" not in rows(app)
        messages = [str(n.message) for n in app._notifications]
        assert "set plan:x — hidden by the filter 'session:'" in messages
        await pilot.press("s", *"session:new", "tab", *"v", "enter")  # shown: nothing to say
        await settle(pilot)
        assert "session:new" in rows(app)
        assert not any("session:new" in str(n.message) for n in app._notifications)


async def test_totals_and_histogram_count_against_the_limits():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert totals(app) == "4 / 10,000 keys · 102 B / 1.0 MiB"
        assert app.pane.query_one("#working-histogram").counts == (1, 1, 1, 1)
        app.advance(MINUTE_MS)
        await settle(pilot)
        assert app.pane.query_one("#working-histogram").counts == (0, 1, 1, 1)


async def test_a_change_from_elsewhere_appears():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await app.store.working.set("agent:mood", b"curious", ttl_ms=10 * MINUTE_MS)
        await app.store.working.delete("tool:weather")
        await settle(pilot)
        assert rows(app)["agent:mood"][3] == "10m"
        assert "tool:weather" not in rows(app)


async def test_pages_through_many_keys():
    async def many(store):
        for i in range(WORKING_PANE_PAGE_ROWS + 20):
            await store.working.set(f"k{i:04d}", b"v", ttl_ms=HOUR_MS)
    app = harness(seed=many)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert len(rows(app)) == WORKING_PANE_PAGE_ROWS
        app.pane.query_one(DataTable).focus()
        await pilot.press("n")
        assert list(rows(app)) == [f"k{i:04d}" for i in range(WORKING_PANE_PAGE_ROWS,
                                                              WORKING_PANE_PAGE_ROWS + 20)]
        assert "rows 101–120" in totals(app)
        await pilot.press("p")
        assert "k0000" in rows(app)


def failing_writes() -> FaultInjector:
    return FaultInjector(DeterministicRng(1), [FaultConfig("storage_write_fail", 1.0)])


async def test_a_store_error_is_reported_and_nothing_typed_is_lost():
    app = harness(faults=failing_writes(), seed=None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s", *"plan", "tab", *"walk", "enter")
        await settle(pilot)
        assert isinstance(app.screen, SetKeyScreen)
        assert "write failed" in str(app.screen.query_one(".dialog--error").render())
        assert app.screen.query_one("#value", Input).value == "walk"
        assert any("write failed" in str(n.message) for n in app._notifications)
        await pilot.press("escape")
        assert app.screen is app.screen_stack[0]


# ---- snapshots ---------------------------------------------------------------------------

def test_snapshot_at_rest(snap_compare):
    assert snap_compare(harness(), terminal_size=SIZE, run_before=settle)


def test_snapshot_at_rest_full_size(snap_compare):
    assert snap_compare(harness(), terminal_size=(120, 40), run_before=settle)


def test_snapshot_key_expiring(snap_compare):
    async def expire_goal(pilot):
        await settle(pilot)
        pilot.app.advance(42 * SECOND_MS)
        await settle(pilot)
    assert snap_compare(harness(), terminal_size=SIZE, run_before=expire_goal)


def test_snapshot_set_key_modal(snap_compare):
    async def open_modal(pilot):
        await settle(pilot)
        await pilot.press("s", *"plan", "tab", *"walk to the river")
    assert snap_compare(harness(), terminal_size=(80, 24), run_before=open_modal)


def test_snapshot_error_from_a_fault(snap_compare):
    async def fail_a_write(pilot):
        await settle(pilot)
        await pilot.press("s", *"plan", "tab", *"walk", "enter")
        await settle(pilot)
    assert snap_compare(harness(faults=failing_writes(), seed=None), terminal_size=(80, 24),
                        run_before=fail_a_write)


async def test_countdown_colours_follow_a_live_theme_switch():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.pane.query_one(DataTable)

        def soon_colour():
            return table.get_cell("session:goal", "ttl").style.color
        dark = soon_colour()
        app.theme = "gruvbox"
        await settle(pilot)
        expected = app.pane.get_component_rich_style("working-pane--ttl-soon", partial=True)
        assert soon_colour() == expected.color != dark


async def test_a_key_rewritten_many_times_keeps_one_countdown():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for _ in range(1_500):
            app.pane._track(app.pane._entries["session:goal"])  # as a feed of rewrites would
        assert len(app.pane._due) <= 2 * 4 + 1_024 + 1
        app.advance(SECOND_MS)
        await settle(pilot)
        assert rows(app)["session:goal"][3] == "41s"


@pytest.mark.parametrize("remaining_ms, label", [
    (1, "1s"), (59_000, "59s"), (59_001, "1m"), (3_599_000, "59m"), (3_600_000, "1h"),
    (86_399_000, "23h"), (2 * DAY_MS + HOUR_MS, "2d")])
def test_ttl_reads_in_its_first_unit(remaining_ms, label):
    assert humanize_ttl(remaining_ms) == label


def test_the_next_label_change_is_when_the_label_really_changes():
    now = 1_000_000
    for remaining in (1, 999, 1_000, 59_001, 60_000, 3_599_000, 3_600_001, 90_000_000):
        changes_at = next_change_ms(now + remaining, now)
        assert humanize_ttl(now + remaining - (changes_at - 1)) == humanize_ttl(remaining)
        assert changes_at == now + remaining or \
            humanize_ttl(now + remaining - changes_at) != humanize_ttl(remaining)


@pytest.mark.parametrize("text, ms", [("90s", 90_000), ("5m", 300_000), ("1h30m", 5_400_000),
                                      ("45", 45_000), ("2 D", 2 * DAY_MS)])
def test_ttl_text_is_read_in_units(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "soon", "5x", "0s", "1h then"])
def test_unreadable_ttl_text_is_refused(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("value", [b"", b"plain", "Zoë · 東京".encode(), b"\xff\xfe", b"a\\b",
                                   b"\x00\n\t\r\x7f", "\u0085".encode(), b"\xc3"])
def test_escaped_values_read_back_as_the_same_bytes(value):
    assert unescaped(escaped(value)) == value


def test_only_utf8_text_without_control_characters_is_edited_as_text():
    assert is_plain_text("Zoë".encode()) and is_plain_text(b"a\\b")
    assert not is_plain_text(b"\xff") and not is_plain_text(b"two\nlines")
