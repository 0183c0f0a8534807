"""Snapshot SVGs of the app: the sim store at a fixed seed and clock, animations off, a fixed
terminal size, workers awaited. Regenerate with `pytest tests/test_tui_snapshots.py
--snapshot-update` after a deliberate change to the screen."""

from __future__ import annotations

import pytest
from textual.widgets import TextArea

from umi_store.constants import CORE_MEMORY_BLOCK_SIZE_BYTES_MAX

from .tui_support import (a_morning_of_changes, a_second_human_version,  # noqa: F401
                          fixed_query_timer, isolated_user_dirs, make_app, settle)

pytestmark = pytest.mark.usefixtures("fixed_query_timer")


def test_whole_app_at_120_by_40(snap_compare):
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=settle)


def test_whole_app_at_80_by_24(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=settle)


def test_core_pane_maximised(snap_compare):
    async def maximise_core(pilot):
        await settle(pilot)
        await pilot.press("j", "j", "z")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(100, 24), run_before=maximise_core)


def test_help_screen(snap_compare):
    async def open_help(pilot):
        await settle(pilot)
        await pilot.press("f1")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=open_help)


def test_command_palette_filtered_to_core(snap_compare):
    async def open_palette(pilot):
        await settle(pilot)
        await pilot.press("ctrl+p", *"core")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=open_palette)


def test_edit_with_a_limit_error(snap_compare):
    async def save_too_much(pilot):
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        too_long = "Too long. " * (CORE_MEMORY_BLOCK_SIZE_BYTES_MAX // 10 + 1)
        pilot.app.screen.query_one(TextArea).text = too_long
        await pilot.press("ctrl+s")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=save_too_much)


def test_xml_preview(snap_compare):
    async def preview(pilot):
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=preview)


def test_core_block_history_with_a_diff(snap_compare):
    async def open_history(pilot):
        await settle(pilot)
        await a_second_human_version(pilot.app.store)
        await settle(pilot)
        await pilot.press("j", "j", "h")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=open_history)


async def open_the_timeline(pilot) -> None:
    await settle(pilot)
    await a_morning_of_changes(pilot.app)
    await settle(pilot)
    await pilot.press("T")
    await settle(pilot)


async def go_back_five_minutes(pilot) -> None:
    """The timeline, its cursor five minutes back: every agent pane as of then."""
    await open_the_timeline(pilot)
    await pilot.press(*["left"] * 20)
    await pilot.pause(0.3)
    await settle(pilot)


def test_timeline_live(snap_compare):
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=open_the_timeline)


def test_timeline_as_of_banner(snap_compare):
    assert snap_compare(make_app(), terminal_size=(120, 40), run_before=go_back_five_minutes)


def test_timeline_as_of_banner_at_80_by_24(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=go_back_five_minutes)
