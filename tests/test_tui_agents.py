"""The agent switcher: `a` lists the store's agents, filters them, and switches every pane."""

from __future__ import annotations

from textual.widgets import DataTable

from umi_tui.screens.agents import AgentSwitcherScreen

from .tui_support import fixed_query_timer, isolated_user_dirs, make_app, settle  # noqa: F401


async def _add_agents(app) -> None:
    bob = app.store.for_agent("bob-the-builder")
    await bob.core.set_block("human", "Bob builds houses")
    await bob.working.set("site:current", b"Elm Street")
    await app.store.for_agent("carol").archival.remember("Carol audits", "person", name="Carol")


async def _open_switcher(pilot) -> None:
    """Settle the app, add two agents beside its own, and press `a`."""
    await settle(pilot)
    await _add_agents(pilot.app)
    await pilot.press("a")
    await settle(pilot)


def _listed(app) -> dict[str, tuple[str, ...]]:
    table = app.screen.query_one("#agents", DataTable)
    return {key.value: tuple(str(cell) for cell in table.get_row(key)) for key in table.rows}


async def test_a_lists_every_agent_with_counts_and_last_change():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_switcher(pilot)
        assert isinstance(app.screen, AgentSwitcherScreen)
        listed = _listed(app)
        assert list(listed) == ["bob-the-builder", "carol", "default"]
        assert listed["bob-the-builder"][1:4] == ("1", "1", "0")
        assert listed["carol"][1:4] == ("0", "0", "1")
        assert listed["default"][0] == "● default"  # the agent shown now
        assert listed["carol"][4] == "2026-01-01 00:00:00"


async def test_typing_filters_fuzzily_and_enter_switches_every_pane():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await _open_switcher(pilot)
        await pilot.press(*"btb")
        assert list(_listed(app)) == ["bob-the-builder"]
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, AgentSwitcherScreen)
        assert app.store.agent == "bob-the-builder"
        assert "agent bob-the-builder" in app.sub_title
        assert app.query_one("#block-human").block.content == "Bob builds houses"
        working = app.query_one("#working").query_one(DataTable)
        assert [key.value for key in working.rows] == ["site:current"]
        assert app.query_one("#archival").query_one(DataTable).row_count == 0


async def test_the_switched_panes_follow_the_new_agents_changes():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await _add_agents(app)
        await app.switch_agent("carol")
        await settle(pilot)
        await app.store.working.set("note", b"from carol's agent")
        await app.store.for_agent("default").working.set("elsewhere", b"not shown")
        await settle(pilot)
        working = app.query_one("#working").query_one(DataTable)
        assert [key.value for key in working.rows] == ["note"]


async def test_escape_keeps_the_agent_and_a_new_name_opens_an_empty_agent():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("escape")
        assert app.store.agent == "default"
        await pilot.press("a")
        await settle(pilot)
        await pilot.press(*"zed", "enter")
        await settle(pilot)
        assert app.store.agent == "zed"
        assert app.query_one("#block-human").block is None


async def test_the_palette_has_switch_agent():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert "Switch agent" in titles


def test_switcher_snapshot(snap_compare, fixed_query_timer):  # noqa: F811 (fixture)
    async def open_switcher(pilot):
        await _open_switcher(pilot)
        await pilot.press("b")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=open_switcher)
