"""The Archival pane in a harness app: search, highlight, paging, detail, create/edit/forget."""

from __future__ import annotations

import asyncio
import io

import pytest

from rich.console import Console
from rich.text import Text
from textual.widgets import DataTable, Input, Select, Static, TextArea

from tests.tui_harness import PaneHarness
from tests.tui_support import FixedTimer, fitting_columns, settle
from umi_store import DeterministicRng, Entity, EntityType, FaultConfig, FaultInjector
from umi_tui.panes.archival import ArchivalPane
from umi_tui.screens.confirm import ConfirmScreen
from umi_tui.screens.entity_detail import EntityDetailScreen, entity_fields
from umi_tui.screens.entity_edit import EntityEditScreen
from umi_tui.widgets.highlight import match_spans, snippet

SIZE = (60, 19)


async def seed_entities(store) -> None:
    await store.archival.store(Entity(EntityType.PERSON, "Émile Zola",
                                      "Wrote Germinal.\nLived in Paris.",
                                      metadata={"born": "1840", "source": "library"},
                                      embedding=tuple([0.5] * 1536)))
    await store.archival.remember("Orion: a telescope project for the winter", "project")
    await store.archival.remember("Lyon: the city of lights and bouchons", "location")
    await store.archival.remember("Call the emile plumber about the leak", "task")


def harness(**options) -> PaneHarness:
    def make_pane(session) -> ArchivalPane:
        pane = ArchivalPane(session)
        pane.perf_counter = FixedTimer()
        return pane
    return PaneHarness(make_pane, seed=options.pop("seed", seed_entities), **options)


def names(app: PaneHarness) -> list[str]:
    """The names as the table shows them: cut (with …) to the column's width."""
    table = app.pane.query_one(DataTable)
    width = table.columns["name"].width
    shown = [Text(str(table.get_row(key)[1])) for key in table.rows]
    for name in shown:
        name.truncate(width, overflow="ellipsis")
    return [name.plain for name in shown]


def status(app: PaneHarness) -> str:
    return str(app.pane.query_one("#archival-status", Static).render())


async def search(pilot, text: str) -> None:
    pilot.app.pane.query_one("#archival-query", Input).focus()
    await pilot.press(*text, "enter")  # Enter moves on to the results
    await settle(pilot)


async def test_empty_query_lists_recent_entities_with_the_count():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert len(names(app)) == 4
        assert status(app) == "4 entities, newest first · 1–4 · 4.2 ms"


async def test_an_empty_store_says_how_to_add_an_entity():
    app = harness(seed=None)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert status(app) == "no entities yet; c creates one · 4.2 ms"
        app.pane.query_one("#archival-type", Select).value = EntityType.TASK
        await settle(pilot)
        assert status(app).startswith("no task entities yet; c creates one")


@pytest.mark.parametrize("width, columns", [(60, ["type", "name", "content"]),
                                            (38, ["name", "content"])])
async def test_name_and_content_fit_and_a_narrow_pane_drops_the_type(width, columns):
    app = harness()
    async with app.run_test(size=(width, 19)) as pilot:
        await settle(pilot)
        assert fitting_columns(app.pane.query_one(DataTable)) == columns


async def test_names_sharing_a_long_prefix_show_whole_and_the_content_is_cut():
    async def offices(store) -> None:
        for index in range(101, 106):
            await store.archival.remember(f"The Lisbon office of Lumen Textiles, run by Ada "
                                          f"Okafor since {index}", "location",
                                          name=f"Lisbon office #{index}")

    app = harness(seed=offices)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert sorted(names(app)) == [f"Lisbon office #{index}" for index in range(101, 106)]
        table = app.pane.query_one(DataTable)
        assert fitting_columns(table) == ["type", "name", "content"]
        assert table.columns["name"].width <= SIZE[0] // 2


async def test_a_name_too_long_for_half_the_pane_is_cut_in_the_middle():
    async def calls(store) -> None:
        for index in (456, 457):
            await store.archival.remember("Call about payroll", "event",
                                          name=f"November call with Hana Lund of Kite #{index}")

    app = harness(seed=calls)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = sorted(names(app))
        assert all("…" in name for name in shown)
        assert [name[-4:] for name in shown] == ["#456", "#457"], "the ends still tell them apart"


async def test_search_highlights_the_match_with_case_folding():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await search(pilot, "ÉMILE")
        assert names(app) == ["Émile Zola"]
        table = app.pane.query_one(DataTable)
        name_cell = table.get_row(next(iter(table.rows)))[1]
        marked = [name_cell.plain[span.start:span.end] for span in name_cell.spans]
        assert marked == ["Émile"]
        assert status(app) == "1 match · 1–1 · 4.2 ms"


async def test_a_stale_result_never_replaces_a_newer_one(monkeypatch):
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        real_search = app.store.archival.search
        stale_asked, stale_released = asyncio.Event(), asyncio.Event()

        async def slow_old_query(query, **options):
            if query == "lyon":
                stale_asked.set()
                try:  # a driver that finishes its round trip even when cancelled
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    await stale_released.wait()
            return await real_search(query, **options)
        monkeypatch.setattr(app.store.archival, "search", slow_old_query)
        query = app.pane.query_one("#archival-query", Input)
        query.value = "lyon"
        await asyncio.wait_for(stale_asked.wait(), 5)  # the older query is in the slow store …
        query.value = "orion"  # … when a newer one is asked for and answered
        orion = ["Orion: a teles…or the winter"]  # cut in the middle to its column
        for _ in range(100):
            await pilot.pause(0.05)
            if names(app) == orion:
                break
        assert names(app) == orion
        stale_released.set()  # now the older answer arrives
        await settle(pilot)
        assert names(app) == orion


async def test_type_filter_narrows_results():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await search(pilot, "the")
        assert len(names(app)) == 3
        app.pane.query_one("#archival-type", Select).value = EntityType.TASK
        await settle(pilot)
        assert names(app) == ["Call the emile…bout the leak"]


async def many_notes(store) -> None:
    for number in range(130):
        await store.archival.remember(f"note {number:03d} about the garden", "note")


async def test_pages_through_a_long_listing():
    app = harness(seed=many_notes)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert status(app).startswith("130 entities, newest first · 1–50 (n/p)")
        first_page = names(app)
        await pilot.press("n")
        await settle(pilot)
        assert status(app).startswith("130 entities, newest first · 51–100")
        assert not set(first_page) & set(names(app))
        await pilot.press("n", "n")
        await settle(pilot)
        assert "101–130" in status(app)
        await pilot.press("p")
        await settle(pilot)
        assert "51–100" in status(app)


async def test_search_says_when_it_is_capped_and_pages_the_hits():
    app = harness(seed=many_notes)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await search(pilot, "garden")
        assert status(app).startswith("100+ matches (newest 100 shown) · 1–50 (n/p)")
        app.pane.query_one(DataTable).focus()
        await pilot.press("n")
        assert "51–100" in status(app)


async def test_detail_shows_fields_metadata_and_embedding():
    app = harness()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await search(pilot, "zola")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, EntityDetailScreen)
        console = Console(width=80, record=True, file=io.StringIO())
        console.print(entity_fields(app.screen.entity))
        text = console.export_text()
        for expected in ("Émile Zola", "person", "born", "1840", "source", "library",
                         "yes, 1536 dimensions", "2026-01-01 00:00:00 UTC"):
            assert expected in text
        await pilot.press("escape")
        assert not isinstance(app.screen, EntityDetailScreen)


async def test_create_in_the_modal_remembers_the_entity():
    app = harness()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        assert isinstance(app.screen, EntityEditScreen)
        await pilot.press(*"Ada", "tab", *"Maths", "tab", *"era: 19")
        await pilot.press("ctrl+s")
        await settle(pilot)
        created = await app.store.archival.search("maths")
        assert [(e.name, e.content, dict(e.metadata)) for e in created] == [
            ("Ada", "Maths", {"era": "19"})]
        assert "Ada" in names(app)


async def test_edit_updates_the_entity_in_place():
    app = harness()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await search(pilot, "lyon")
        before = (await app.store.archival.search("lyon"))[0]
        await pilot.press("e")
        assert isinstance(app.screen, EntityEditScreen)
        await pilot.press("end", *" and silk", "ctrl+s")
        await settle(pilot)
        after = await app.store.archival.get(before.id)
        assert after.content == "Lyon: the city of lights and bouchons and silk"
        assert after.created_at == before.created_at


async def test_forget_asks_first():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await search(pilot, "orion")
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert await app.store.archival.count() == 4
        await pilot.press("d", "y")
        await settle(pilot)
        assert await app.store.archival.count() == 3
        assert names(app) == []


async def test_a_change_from_elsewhere_appears():
    app = harness()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await app.store.archival.remember("Grenoble: mountains", "location")
        await settle(pilot)
        assert "Grenoble: mountains" in names(app)
        assert status(app).startswith("5 entities")


async def test_a_failed_search_is_reported_and_the_pane_keeps_working():
    faults = FaultInjector(DeterministicRng(1),
                           [FaultConfig("storage_read_fail", 1.0, operation_filter="search")])
    app = harness(faults=faults)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await search(pilot, "orion")
        assert status(app).startswith("search failed")
        assert app.pane.query_one("#archival-query", Input).value == "orion"
        faults.remove("storage_read_fail")
        await search(pilot, "orion")
        assert names(app) == ["Orion: a teles…or the winter"]


async def test_a_failed_save_keeps_the_modal_and_what_was_typed():
    faults = FaultInjector(DeterministicRng(1), [FaultConfig("storage_write_fail", 1.0)])
    app = harness(faults=faults, seed=None)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("c", *"Ada", "tab", *"Maths", "ctrl+s")
        await settle(pilot)
        assert isinstance(app.screen, EntityEditScreen)
        assert "write failed" in str(app.screen.query_one(".dialog--error").render())
        assert app.screen.query_one("#entity-content-editor", TextArea).text == "Maths"


# ---- snapshots ---------------------------------------------------------------------------

def test_snapshot_at_rest(snap_compare):
    assert snap_compare(harness(), terminal_size=SIZE, run_before=settle)


def test_snapshot_search_results_with_highlight(snap_compare):
    assert snap_compare(harness(), terminal_size=SIZE,
                        run_before=lambda pilot: search(pilot, "emile"))


def test_snapshot_entity_detail(snap_compare):
    async def open_zola(pilot):
        await search(pilot, "zola")
        await pilot.press("enter")
        await settle(pilot)
    assert snap_compare(harness(), terminal_size=(100, 30), run_before=open_zola)


def test_matches_are_found_through_unicode_case_folding():
    assert match_spans("Émile and ÉMILE", "émile") == [(0, 5), (10, 15)]
    assert match_spans("the Straße", "STRASSE") == [(4, 10)]  # ß folds to two letters
    assert match_spans("100% sure", "%") == [(3, 4)]


def test_a_snippet_starts_near_the_match_at_a_word():
    content = "a long preamble about many unrelated things before the word lyon appears"
    assert snippet(content, "lyon", lead=12) == "…the word lyon appears"
    assert snippet("Lyon: the city\nof lights", "", name="Lyon: the city") == "of lights"
