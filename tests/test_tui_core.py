"""The Core pane, driven as a person would: keys in, the store and the screen checked."""

from __future__ import annotations

from textual.widgets import Input, Static, TextArea

from umi_store import DeterministicRng, FaultConfig, FaultInjector
from umi_store.constants import CORE_MEMORY_BLOCK_SIZE_BYTES_MAX
from umi_tui.panes.core import BlockRow, CorePane
from umi_tui.screens.confirm import ConfirmScreen
from umi_tui.screens.edit_block import EditBlockScreen
from umi_tui.screens.preview import PreviewScreen
from umi_tui.screens.prompt import PromptScreen
from umi_tui.widgets.byte_gauge import ByteGauge

from .tui_support import isolated_user_dirs, make_app, settle  # noqa: F401 (fixture)


def error_text(screen) -> str:
    return str(screen.query_one("#error", Static).render())


async def test_pane_shows_every_block_with_size_and_the_total():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        blocks = {b.block_type: b for b in await app.store.core.blocks()}
        for row in app.query(BlockRow):
            assert row.block == blocks[row.block_type]
            assert row.query_one(ByteGauge).used == blocks[row.block_type].size_bytes
        total = app.query_one("#core-total-gauge", ByteGauge)
        assert total.used == await app.store.core.used_bytes()
        assert total.limit == total.used + await app.store.core.available_bytes()


async def test_down_selects_the_next_block_and_shows_its_content():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("j", "j")
        pane = app.query_one(CorePane)
        assert pane.selected == "human"
        assert "Ada Okafor" in str(app.query_one("#core-detail-content", Static).render())
        await pilot.press("k")
        assert pane.selected == "persona"


async def test_edit_saves_content_label_and_importance():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        screen = app.screen
        assert isinstance(screen, EditBlockScreen)
        screen.query_one(TextArea).text = "Be kind.\nBe brief."
        screen.query_one("#label", Input).value = "house rules"
        screen.query_one("#importance", Input).value = "0.9"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert not isinstance(app.screen, EditBlockScreen)
        block = await app.store.core.get_block("system")
        assert (block.content, block.label, block.importance) == \
            ("Be kind.\nBe brief.", "house rules", 0.9)
        assert app.query_one("#block-system", BlockRow).block == block


async def test_cancel_leaves_the_block_as_it_was():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        before = await app.store.core.get_block("system")
        await pilot.press("e")
        app.screen.query_one(TextArea).text = "changed my mind"
        await pilot.press("escape")
        await settle(pilot)
        assert await app.store.core.get_block("system") == before


async def test_over_the_limit_shows_inline_and_keeps_the_text():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        screen = app.screen
        too_long = "x" * (CORE_MEMORY_BLOCK_SIZE_BYTES_MAX + 1)
        screen.query_one(TextArea).text = too_long
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is screen
        assert "limit" in error_text(screen)
        assert screen.query_one(TextArea).text == too_long


async def test_concurrent_write_is_a_conflict_not_an_overwrite():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        screen = app.screen
        await app.store.core.set_block("system", "written by the agent meanwhile")
        screen.query_one(TextArea).text = "mine"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is screen
        assert "changed this block since you opened it" in error_text(screen)
        assert (await app.store.core.get_block("system")).content == \
            "written by the agent meanwhile"
        assert screen.query_one(TextArea).text == "mine"
        await pilot.press("ctrl+s")  # a second save overwrites, knowingly
        await settle(pilot)
        assert (await app.store.core.get_block("system")).content == "mine"


async def test_delete_asks_first_and_no_keeps_the_block():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await settle(pilot)
        assert await app.store.core.get_block("system") is not None
        await pilot.press("d", "y")
        await settle(pilot)
        assert await app.store.core.get_block("system") is None
        assert app.query_one("#block-system", BlockRow).has_class("-empty")


async def test_set_importance_and_label_from_prompts():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("i")
        assert isinstance(app.screen, PromptScreen)
        app.screen.query_one(Input).value = "0.25"
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("l")
        app.screen.query_one(Input).value = "ground rules"
        await pilot.press("enter")
        await settle(pilot)
        block = await app.store.core.get_block("system")
        assert (block.importance, block.label) == (0.25, "ground rules")


async def test_bad_importance_stays_in_the_prompt_with_an_error():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("i")
        screen = app.screen
        screen.query_one(Input).value = "1.5"
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is screen
        assert "between 0.0 and 1.0" in error_text(screen)
        assert screen.query_one(Input).value == "1.5"


async def test_preview_shows_exactly_what_render_returns():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert isinstance(app.screen, PreviewScreen)
        assert app.screen.query_one("#xml-text", TextArea).text == await app.store.core.render()
        assert app.screen.query_one("#markdown-text", TextArea).text == \
            await app.store.core.render_markdown()
        await pilot.press("escape")
        await pilot.press("w")
        await settle(pilot)
        assert app.screen.query_one("TabbedContent").active == "markdown"


async def test_a_change_from_elsewhere_shows_in_the_pane():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        other = app.store.for_agent(app.settings.agent)
        await other.core.set_block("scratch", "from another writer")
        await settle(pilot)
        assert app.query_one("#block-scratch", BlockRow).block.content == "from another writer"


async def test_a_failing_save_is_shown_and_the_app_keeps_working():
    faults = FaultInjector(DeterministicRng(1), [
        FaultConfig("storage_write_fail", 1.0, operation_filter="core", max_injections=1)])
    app = make_app(demo=False, faults=faults)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        screen = app.screen
        screen.query_one(TextArea).text = "first try"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is screen and "Not saved" in error_text(screen)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert (await app.store.core.get_block("system")).content == "first try"


async def test_typing_in_the_editor_appends_to_the_block():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        before = (await app.store.core.get_block("persona")).content
        await pilot.press("j", "e")
        await settle(pilot)
        await pilot.press(*" Likes tea.", "ctrl+s")
        await settle(pilot)
        assert (await app.store.core.get_block("persona")).content == before + " Likes tea."


async def test_click_selects_a_block_and_double_click_edits_it():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.click("#block-goals")
        assert app.query_one(CorePane).selected == "goals"
        await pilot.double_click("#block-facts")
        await settle(pilot)
        assert isinstance(app.screen, EditBlockScreen)
        assert app.screen.block_type == "facts"


async def test_an_over_limit_size_is_shown_exactly():
    gauge = ByteGauge(16_390, 16_384)
    app = make_app(demo=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await app.screen.mount(gauge)
        await pilot.pause()
        assert "6 B over 16,384" in str(gauge.render())
