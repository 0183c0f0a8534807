"""Snapshot SVGs of the app: the sim store at a fixed seed and clock, animations off, a fixed
terminal size, workers awaited. Regenerate with `pytest tests/test_tui_snapshots.py
--snapshot-update` after a deliberate change to the screen."""

from __future__ import annotations

import pytest
from textual.widgets import TextArea

from umi_store.constants import CORE_MEMORY_BLOCK_SIZE_BYTES_MAX

from .tui_support import fixed_query_timer, isolated_user_dirs, make_app, settle  # noqa: F401 (fixtures)

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
