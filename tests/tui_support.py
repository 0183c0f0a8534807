"""What the umi-tui tests share: a deterministic app and a way to let it settle."""

from __future__ import annotations

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from umi_store import FaultInjector, SimClock
from umi_tui.app import UmiApp
from umi_tui.panes.archival import ArchivalPane
from umi_tui.settings import Settings

TEST_SEED = 7


@pytest.fixture(autouse=True)
def isolated_user_dirs(tmp_path, monkeypatch):
    """No test reads the developer's config, themes, data or UMI_* environment."""
    for name in ("UMI_URL", "UMI_AGENT", "UMI_THEME", "UMI_DEMO", "UMI_SEED", "UMI_SIM_SEED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")


class FixedTimer:
    """Stands in for perf_counter so query times in snapshots never change."""

    def __init__(self) -> None:
        self.reading = 0.0

    def __call__(self) -> float:
        self.reading += 0.0042  # every round trip reads as 4.2 ms
        return self.reading


@pytest.fixture
def fixed_query_timer(monkeypatch):
    """Every archival query in the app reads as 4.2 ms, so snapshots stay byte-stable."""
    monkeypatch.setattr(ArchivalPane, "perf_counter", FixedTimer())


def make_app(*, demo: bool = True, url: str = f"sim://?seed={TEST_SEED}",
             faults: FaultInjector | None = None, **settings: object) -> UmiApp:
    """The app on a sim store at the fixed epoch whose clock never follows wall time."""
    app = UmiApp(Settings(url=url, demo=demo, seed=TEST_SEED, **settings), clock=SimClock(),
                 faults=faults, follow_wall_clock=False)
    app.animation_level = "none"
    return app


async def settle(pilot: Pilot) -> None:
    """Wait until every worker but the endless change feed is done, and the screen drawn.

    Text cursors stop blinking (they stay shown), so a slow machine that takes over half a
    second to settle draws the same screen as a fast one."""
    for _ in range(3):
        await pilot.pause()
        finite = [w for w in pilot.app.workers if w.group != "store-changes"]
        if finite:  # (an empty list would mean: wait for every worker, forever)
            await pilot.app.workers.wait_for_complete(finite)
    for editor in pilot.app.screen.query("Input, TextArea"):
        editor.cursor_blink = False
    await pilot.pause()


def fitting_columns(table: DataTable) -> list[str]:
    """The table's column keys, once it is checked that all fit its width (no sideways scroll)."""
    used = sum(column.get_render_width(table) for column in table.columns.values())
    assert used <= table.scrollable_content_region.width, f"the columns need {used} cells"
    return [str(key.value) for key in table.columns]


async def a_second_human_version(store) -> None:
    """A person's edit of the demo's human block, so its history has a diff to show."""
    ada = store.as_actor("person:ada")
    block = await ada.core.get_block("human")
    await ada.core.set_block("human", block.content.replace("short", "long")
                             + "\nPrefers examples in Python.")


async def a_morning_of_changes(app: UmiApp) -> None:
    """Twenty simulated minutes after the demo loaded: the agent rewrites its scratch block
    each minute, a person sets a key now and then, and the demo's short TTLs run out."""
    clock = app.session.sim_clock
    assert clock is not None, "the tests' app runs on a sim clock"
    agent, ada = app.store.as_actor("agent:tern"), app.store.as_actor("person:ada")
    for minute in range(1, 21):
        clock.advance(60_000)
        await agent.core.set_block("scratch", f"Minute {minute}: waiting on the card network.")
        if minute % 4 == 0:
            await ada.working.set(f"note:minute-{minute}", b"checked by Ada", ttl_ms=3_600_000)
    app.clock_moved()
