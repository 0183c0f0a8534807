"""The timeline (T) and as-of mode, driven as a person would: the bar of changes by actor
kind, a cursor that puts the Core, Working and Archival panes as of an instant (read-only,
with a banner), T to go live; the Forgotten filter and restore; a key's history."""

from __future__ import annotations

from textual.widgets import DataTable, Select, Static

from umi_tui.panes.archival import FORGOTTEN, ArchivalPane
from umi_tui.screens.confirm import ConfirmScreen
from umi_tui.screens.edit_block import EditBlockScreen
from umi_tui.screens.entity_edit import EntityEditScreen
from umi_tui.screens.history import HistoryScreen
from umi_tui.screens.set_key import SetKeyScreen
from umi_tui.widgets.timeline import Timeline, interval_ms_for, spark

from .tui_harness import PaneHarness
from .tui_support import a_morning_of_changes, isolated_user_dirs, make_app, settle  # noqa: F401

SCRATCH_NOW = "Minute 20: waiting on the card network."


async def open_timeline(pilot, app) -> Timeline:
    await settle(pilot)
    await a_morning_of_changes(app)
    await settle(pilot)
    await pilot.press("T")
    await settle(pilot)
    return app.timeline


async def rest(pilot) -> None:
    """Let the cursor rest, so the panes read as of it."""
    await pilot.pause(0.3)
    await settle(pilot)


async def back_to_the_start(pilot, app) -> Timeline:
    """The timeline open, its cursor on the first changes (home), the panes as of then."""
    timeline = await open_timeline(pilot, app)
    await pilot.press("home")
    await rest(pilot)
    return timeline


def banner(timeline: Timeline) -> str:
    return timeline.render().plain.split("\n")[0]


def core_content(app) -> str:
    return str(app.query_one("#core-detail-content", Static).render())


def test_the_interval_is_round_and_one_change_still_shows():
    assert interval_ms_for(20 * 60_000, 100) == 15_000
    assert interval_ms_for(1, 100) == 1_000
    assert spark(1, 2_000) == "▁" and spark(2_000, 2_000) == "█" and spark(0, 5) == " "


async def test_t_shows_the_changes_by_actor_kind_and_t_again_closes_it():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        timeline = await open_timeline(pilot, app)
        assert timeline.display and timeline.has_focus
        text = timeline.render().plain
        assert banner(timeline).startswith("LIVE · ")
        assert "agent 2,0" in text and "person 5" in text
        assert [line.split()[0] for line in text.split("\n")[1:4]] == ["agent", "person", "clock"]
        assert app.session.as_of_ms is None
        await pilot.press("T")
        await settle(pilot)
        assert not timeline.display and app.session.as_of_ms is None


async def test_moving_the_cursor_shows_every_pane_as_of_then_and_t_goes_live():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        timeline = await back_to_the_start(pilot, app)
        at_ms = app.session.as_of_ms
        assert at_ms is not None
        assert banner(timeline).startswith("AS OF 2026-01-01 00:00:")
        assert "press T to go live" in banner(timeline)
        assert str(app.query_one("#working-frame").border_subtitle).startswith("as of 2026")
        assert app.query_one("#core-frame").has_class("-as-of")
        await pilot.press("1", "up")  # the scratch block, as the demo first wrote it
        await settle(pilot)
        assert core_content(app).startswith("Refund request #R-2231")
        working = app.query_one("#working-table", DataTable)
        assert not any(str(key.value).startswith("note:") for key in working.rows), \
            "Ada's notes came later"
        await pilot.press("T")
        await settle(pilot)
        assert app.session.as_of_ms is None
        assert not app.query_one("#core-frame").has_class("-as-of")
        assert core_content(app) == SCRATCH_NOW
        assert any(str(key.value).startswith("note:") for key in working.rows)


async def test_brackets_step_change_by_change_and_end_reaches_now():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        timeline = await open_timeline(pilot, app)
        total = timeline.change_count
        await pilot.press("left_square_bracket")
        assert timeline.at_ms is not None
        before_last = timeline.changes_until(timeline.at_ms)
        assert before_last < total
        await pilot.press("right_square_bracket")
        assert timeline.changes_until(timeline.at_ms) == total
        await pilot.press("left", "left")
        assert timeline.changes_until(timeline.at_ms) < total
        await pilot.press("end")
        assert timeline.at_ms == app.session.clock.now_ms()
        await rest(pilot)
        assert f"{total:,} of {total:,} changes" in banner(timeline)


async def test_write_keys_answer_read_only_in_as_of_mode():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await back_to_the_start(pilot, app)
        scratch = (await app.store.core.get_block("scratch")).version
        shown: list[str] = []
        notify = app.notify
        app.notify = lambda message, **kw: (shown.append(message), notify(message, **kw))[1]
        for pane, keys in (("1", ("e", "d", "i", "l")), ("2", ("s", "e", "d", "x", "t")),
                           ("3", ("c", "e", "d"))):
            await pilot.press(pane)
            for key in keys:
                await pilot.press(key)
                await settle(pilot)
                assert not isinstance(app.screen, (EditBlockScreen, ConfirmScreen, SetKeyScreen,
                                                   EntityEditScreen)), key
        notes = [n.message for n in app._notifications] + shown
        assert any("read-only" in note and "Press T to go live" in note for note in notes)
        assert (await app.store.core.get_block("scratch")).version == scratch


async def test_as_of_panes_stand_still_while_the_live_store_changes():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        timeline = await back_to_the_start(pilot, app)
        total = timeline.change_count
        await app.store.core.set_block("scratch", "Written while someone looked back.")
        await settle(pilot)
        await pilot.press("1", "up")
        assert core_content(app).startswith("Refund request #R-2231")
        assert timeline.change_count == total + 1, "the timeline hears the new change"


async def test_working_h_shows_ttl_changes_and_the_delete_of_a_key_seen_as_of_then():
    async def seed(store) -> None:
        await store.working.set("session:topic", b"billing", ttl_ms=5_000)
    app = PaneHarness(lambda session: __import__(
        "umi_tui.panes.working", fromlist=["WorkingPane"]).WorkingPane(session), seed=seed)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.advance(1_000)
        await app.store.working.expire("session:topic", 60_000)
        app.advance(1_000)
        await app.store.working.touch("session:topic")
        await pilot.press("h")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        changes = [screen.query_one(DataTable).get_row_at(i)[3] for i in range(3)]
        assert changes == ["touched (ttl renewed)", "ttl → 1m", "set, 7 B"]
        await pilot.press("down")
        await settle(pilot)
        diff = str(screen.query_one("#history-diff-text", Static).render())
        assert "-· ttl: 5s" in diff and "+· ttl: 1m" in diff


async def forget_one(app, pilot) -> tuple[str, ArchivalPane]:
    """Forget the newest entity; the Archival pane, focused, showing its Forgotten filter."""
    entity = (await app.store.archival.list(limit=1))[0]
    await app.store.archival.forget(entity.id)
    await settle(pilot)
    pane = app.query_one(ArchivalPane)
    await pilot.press("3")
    await pilot.press("u")  # not in the Forgotten filter: it says how, restores nothing
    await settle(pilot)
    assert not isinstance(app.screen, ConfirmScreen)
    pane.query_one(Select).value = FORGOTTEN
    await settle(pilot)
    return entity.name, pane


async def test_the_forgotten_filter_lists_forgotten_entities_and_u_restores_one():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        name, pane = await forget_one(app, pilot)
        assert [e.name for e in pane._shown] == [name]
        status = str(pane.query_one("#archival-status", Static).render())
        assert status.startswith("1 forgotten entity") and "u restores" in status
        await pilot.press("e")  # a forgotten entity cannot be edited
        await settle(pilot)
        assert not isinstance(app.screen, EntityEditScreen)
        await pilot.press("u")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert pane._shown == []
        restored = await app.store.archival.list(limit=1)
        assert restored[0].name == name


async def test_a_forgotten_entitys_history_opens_from_the_filter_and_restores_there():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        name, _ = await forget_one(app, pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        table = screen.query_one(DataTable)
        assert [table.get_row_at(i)[3] for i in range(2)][0] == "delete"
        await pilot.press("down", "u", "y")
        await settle(pilot)
        assert (await app.store.archival.list(limit=1))[0].name == name


async def test_the_entity_detail_has_a_history_button():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("3", "o")
        await settle(pilot)
        await pilot.click("#history")
        await settle(pilot)
        assert isinstance(app.screen, HistoryScreen)
        await pilot.press("escape", "h")  # and h from the pane does the same
        await settle(pilot)
        assert isinstance(app.screen, HistoryScreen)


async def test_restore_in_history_is_refused_as_of_a_past_instant():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await back_to_the_start(pilot, app)
        await pilot.press("1", "up", "h")
        await settle(pilot)
        assert isinstance(app.screen, HistoryScreen)
        assert app.screen.query_one(DataTable).row_count == 21, "history is all of it"
        await pilot.press("down", "u")
        await settle(pilot)
        assert isinstance(app.screen, HistoryScreen), "no confirm: read-only"


async def test_t_is_in_the_help_and_the_palette():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        described = [d for section in app.help_sections() for _, d in section[1]]
        assert "Timeline (as of)" in described
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert "Timeline (as of)" in commands


async def test_w_steps_the_simulations_workload_run_step_by_step():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("T", "w")  # no run yet: it says how, and stays on the agent
        await settle(pilot)
        assert app.timeline.steps == []
        await pilot.press("T", "4", "r")
        console = app.query_one("#simulation")
        while console._run_active or console.workload() is None:
            await pilot.pause(0.05)
        await settle(pilot)
        await pilot.press("T", "w")
        await settle(pilot)
        timeline = app.timeline
        assert len(timeline.steps) == 100 and "sim-7's workload" in banner(timeline)
        await pilot.press("left_square_bracket")
        await rest(pilot)
        assert app.session.view.agent == "sim-7"
        assert " after step " in banner(timeline) and "of 100" in banner(timeline)
        assert str(app.query_one("#core-frame").border_subtitle).startswith("sim-7 as of")
        await pilot.press("w")  # back to the inspected agent, live
        await settle(pilot)
        assert timeline.steps == [] and app.session.view.agent == "default"
