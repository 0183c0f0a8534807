"""History views, driven as a person would: h opens a block's, key's or entity's versions
with a diff against the version before; u restores a block or entity after asking."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from umi_tui.app import person_actor
from umi_tui.panes.working import WorkingPane
from umi_tui.screens.confirm import ConfirmScreen
from umi_tui.screens.history import HistoryScreen

from .tui_harness import PaneHarness
from .tui_support import isolated_user_dirs, make_app, settle  # noqa: F401 (fixture)


async def two_versions(store) -> None:
    await store.core.set_block("human", "Ada likes tea.\nShe works on payments.")
    await store.as_actor("person:bob").core.set_block(
        "human", "Ada likes coffee.\nShe works on payments.")


def diff_text(screen: HistoryScreen) -> str:
    return str(screen.query_one("#history-diff-text", Static).render())


async def test_h_lists_a_blocks_versions_with_actor_and_a_diff_of_the_selected_one():
    app = make_app(demo=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await two_versions(app.store.as_actor("agent:harness"))
        await settle(pilot)
        await pilot.press("j", "j", "h")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        table = screen.query_one(DataTable)
        assert [table.get_row_at(i)[0] for i in range(table.row_count)] == ["v2", "v1"]
        assert table.get_row_at(0)[2] == "person:bob"
        assert table.get_row_at(1)[2] == "agent:harness"
        diff = diff_text(screen)
        assert "-Ada likes tea." in diff and "+Ada likes coffee." in diff
        await pilot.press("down")
        await settle(pilot)
        assert "+Ada likes tea." in diff_text(screen), "v1 against nothing: all added"


async def test_u_restores_the_selected_version_after_asking():
    app = make_app(demo=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await two_versions(app.store)
        await settle(pilot)
        await pilot.press("j", "j", "h")
        await settle(pilot)
        await pilot.press("down", "u")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert (await app.store.core.get_block("human")).content.startswith("Ada likes coffee")
        await pilot.press("u", "y")
        await settle(pilot)
        assert not isinstance(app.screen, HistoryScreen)
        block = await app.store.core.get_block("human")
        assert block.content.startswith("Ada likes tea") and block.version == 3


async def test_working_h_shows_a_keys_sets_and_expiry():
    async def seed(store) -> None:
        await store.working.set("session:topic", b"billing", ttl_ms=5_000)
        await store.working.set("session:topic", b"refunds", ttl_ms=5_000)
    app = PaneHarness(WorkingPane, seed=seed)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("h")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        assert screen.query_one(DataTable).row_count == 2
        assert "+refunds" in diff_text(screen)
        await pilot.press("u")  # a working key has no restore
        await settle(pilot)
        assert isinstance(app.screen, HistoryScreen)


async def test_the_inspector_writes_as_the_person_at_the_keys():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await app.store.core.set_block("goals", "Ship history.")
        assert (await app.store.history("core", "goals"))[0].actor == person_actor()
        assert person_actor().startswith("person:")
