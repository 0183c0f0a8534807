"""The umi-tui app shell: entry and settings, layout, keys, help, palette, themes, clock,
and errors shown, never raised."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, UTC
import stat

import pytest
from rich.cells import cell_len
from textual.command import CommandPalette
from textual.widgets import Label

from umi_store import DeterministicRng, FaultConfig, FaultInjector, SimClock
from umi_tui.__main__ import main
from umi_tui.app import PANES, UmiApp, bindings_by_action
from umi_tui.app_command import parse_args
from umi_tui.screens.help import HelpScreen
from umi_tui.screens.set_key import SetKeyScreen
from umi_tui.settings import Settings, config_dir, load_settings
from umi_tui.widgets.footer import KeyFooter
from umi_tui.widgets.histogram import Histogram
from umi_tui.widgets.ttl import TTL_BUCKET_LABELS

from .tui_support import isolated_user_dirs, make_app, settle  # noqa: F401 (fixture)


def write_config(text: str) -> None:
    config_dir().mkdir(parents=True, exist_ok=True)
    (config_dir() / "config.toml").write_text(text)


# Entry and settings


def test_flags_override_env_which_overrides_the_config_file(monkeypatch):
    write_config('agent = "from-file"\ntheme = "umi-light"\nseed = 3\n')
    monkeypatch.setenv("UMI_AGENT", "from-env")
    settings = load_settings(parse_args(["--agent", "from-flag"]))
    assert (settings.agent, settings.theme, settings.seed) == ("from-flag", "umi-light", 3)
    assert load_settings(parse_args([])).agent == "from-env"


def test_the_config_file_alone_is_read(monkeypatch):
    write_config('theme = "umi-light"\nagent = "from-file"\n')
    assert load_settings(parse_args(["--demo"])) == Settings(agent="from-file",
                                                              theme="umi-light", demo=True)


def test_a_setting_of_the_wrong_type_is_bad_usage(monkeypatch, capsys):
    monkeypatch.setenv("UMI_SEED", "forty-two")
    assert main(["--demo"]) == 2
    err = capsys.readouterr().err
    assert "umi-tui: bad setting" in err and "seed" in err


def test_without_env_or_config_file_the_settings_do_not_load_pydantic(tmp_path):
    probe = ("import sys; from umi_tui.settings import load_settings; "
             "print(load_settings({'demo': True}).store_url(), "
             "'pydantic_settings' in sys.modules)")
    env = {key: value for key, value in os.environ.items()
           if not key.casefold().startswith("umi_")}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == ["sim://?seed=42", "False"]


def test_demo_opens_the_seeded_simulator():
    assert load_settings(parse_args(["--demo", "--seed", "9"])).store_url() == "sim://?seed=9"


def test_no_url_is_a_sqlite_file_in_the_user_data_dir(tmp_path):
    url = Settings().store_url()
    assert url == f"sqlite:///{tmp_path}/data/umi/umi.db"


async def test_the_default_store_file_is_private_to_its_owner(tmp_path):
    app = UmiApp(Settings(), follow_wall_clock=False)
    async with app.run_test() as pilot:
        await settle(pilot)
        assert app.connection == "connected"
    mode = stat.S_IMODE(os.stat(tmp_path / "data" / "umi" / "umi.db").st_mode)
    assert mode == 0o600


def test_version_still_prints(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("umi-tui ")


# Layout, keys, maximise


async def test_all_four_panes_are_visible_at_120_by_40():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for spec in PANES:
            frame = app.query_one(f"#{spec.name}-frame")
            assert frame.region.width >= 55 and frame.region.height >= 17
            assert frame.border_title == f"{spec.key} {spec.title}"


async def test_number_keys_focus_their_pane():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("j")  # core: persona
        await pilot.press("4")
        assert app.focused_frame() is None or app.focused_frame().id != "core-frame"
        await pilot.press("1")
        assert app.focused_frame().id == "core-frame"
        assert app.screen.focused.id == "block-persona"  # where the person left it


async def test_a_pane_key_works_right_after_its_number_key():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2", "s")  # focus Working, then "set key": not typed into a filter
        assert isinstance(app.screen, SetKeyScreen)
        await pilot.press("escape", "3")
        assert app.screen.focused is app.query_one("#archival").table


@pytest.mark.parametrize("number, open_input, input_id, back_to", [
    ("2", "slash", "working-filter", "working-table"),
    ("3", "slash", "archival-query", "archival-table"),
    ("4", "L", "log-filter", "sim-log"),
])
async def test_esc_leaves_a_search_box_and_the_number_key_goes_to_the_table(
        number, open_input, input_id, back_to):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press(number, open_input, *"se")
        assert app.screen.focused.id == input_id
        await pilot.press("escape")
        assert app.screen.focused.id == back_to
        await pilot.press("slash" if number != "4" else "L")
        assert app.screen.focused.id == input_id, "the pane's keys act again"
        await pilot.click("#block-facts")  # leave the input for another pane with the mouse
        await pilot.press(number)
        assert app.screen.focused.id != input_id, "the number key focuses the pane, not its input"
        pane = next(spec.name for spec in PANES if spec.key == number)
        assert app.focused_frame().id == f"{pane}-frame"
        assert app.query_one(f"#{input_id}").value == "se", "what was typed stays"


async def test_esc_in_a_maximised_pane_leaves_the_search_box_then_restores_the_pane():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("2", "z", "slash", *"cache")
        await pilot.press("escape")
        assert app.screen.focused.id == "working-table"
        assert app.screen.maximized is app.query_one("#working-frame")
        await pilot.press("escape")
        assert app.screen.maximized is None


async def test_at_80_by_24_the_histogram_buttons_and_footer_show_whole():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        histogram = app.query_one(Histogram)
        line = histogram.render()
        assert line.cell_len <= histogram.size.width
        for label, count in zip(TTL_BUCKET_LABELS, histogram.counts):
            assert f"{label} " in line.plain and f" {count}" in line.plain
        await pilot.press("4", "x", "x", "x", "space")  # 600×, running: the widest labels
        await settle(pilot)
        pane = app.query_one("#simulation")
        assert str(pane.query_one("#toggle-clock").label) == "‖ pause"
        for button in pane.query("#sim-controls Button"):
            assert button.region.right <= pane.content_region.right, button.id
            assert button.content_size.width >= cell_len(str(button.label)), button.id
        footer = app.query_one(KeyFooter)
        palette = footer.query_one(".-command-palette")
        shown = [key for key in footer.query("FooterKey") if key.display and key is not palette]
        assert shown and all(key.region.right <= palette.region.x for key in shown)
        assert len(shown) < len(footer.query("FooterKey")) - 1, "what does not fit is hidden"


async def test_z_maximises_the_focused_pane_and_restores_it():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("z")
        assert app.screen.maximized is app.query_one("#core-frame")
        await pilot.press("z")
        assert app.screen.maximized is None


async def test_header_masks_the_password_and_an_unopenable_store_is_reported():
    app = make_app(demo=False, url="postgresql://umi:hunter2@127.0.0.1:1/umi")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert "hunter2" not in app.sub_title and "umi:***@" in app.sub_title
        assert app.connection == "unavailable"
        shown = str(app.query_one("#loading-text", Label).render())
        assert "umi:***@" in shown and "the server is unreachable" in shown
        await pilot.press("f1")  # still alive
        assert isinstance(app.screen, HelpScreen)


async def test_the_reason_a_store_cannot_open_is_shown_once():
    app = make_app(demo=False, url="notaurl://x")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert list(app._notifications) == [], "no toast repeats the reason"
        shown = str(app.query_one("#loading-text", Label).render())
        assert shown.count("unknown store URL 'notaurl://x'") == 1
        assert "q quits" in shown


@pytest.mark.parametrize("url, exit_code, reason", [
    ("notaurl://x", 2, "unknown store URL 'notaurl://x'"),
    ("postgresql://umi:hunter2@127.0.0.1:1/umi", 1, "the server is unreachable"),
    ("sqlite:///nonexistent/dir/x.db", 1, "nonexistent/dir does not exist"),
])
def test_quitting_the_error_screen_exits_non_zero_with_the_reason_on_stderr(
        monkeypatch, capsys, url, exit_code, reason):
    run = UmiApp.run

    async def quit_once_settled(pilot):
        await settle(pilot)
        assert pilot.app.connection == "unavailable"
        await pilot.press("q")

    monkeypatch.setattr(UmiApp, "run", lambda app: run(app, headless=True, size=(120, 40),
                                                       auto_pilot=quit_once_settled))
    assert main([url]) == exit_code
    out, err = capsys.readouterr()
    assert reason in err and err.startswith("umi-tui: ") and err.count("\n") == 1
    assert "hunter2" not in err


# Help and palette


async def test_help_lists_every_binding_of_the_app_and_the_panes():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        listed = {description for _, rows in app.screen.sections for _, description in rows}
        for node_class in [UmiApp, *(spec.pane_class for spec in PANES)]:
            for _, description in bindings_by_action(node_class.BINDINGS):
                assert description in listed
        await pilot.press("escape")
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


async def test_the_palette_has_a_command_for_every_action():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        titles = {command.title for command in app.get_system_commands(app.screen)}
        for _, description in bindings_by_action(UmiApp.BINDINGS):
            assert description in titles
        for spec in PANES:
            for _, description in bindings_by_action(spec.pane_class.BINDINGS):
                assert f"{spec.title}: {description}" in titles


async def test_a_palette_command_runs_the_pane_action():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press(*"Core: Delete")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen).__name__ == "ConfirmScreen"


# Themes


async def test_ctrl_t_switches_between_the_shipped_themes_live_from_any_pane():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.theme == "umi-dark"
        seen = set()
        for pane in "123":  # the Working pane's own "t" (touch) must not shadow it
            await pilot.press(pane, "ctrl+t")
            seen.add(app.theme)
        assert {"umi-dark", "umi-light", "umi-dusk"} <= seen


async def test_theme_flag_selects_and_user_themes_load_from_the_config_dir():
    (config_dir() / "themes").mkdir(parents=True)
    (config_dir() / "themes" / "mine.toml").write_text('name = "mine"\nprimary = "#123456"\n')
    (config_dir() / "themes" / "broken.toml").write_text('name = "broken"\ncolour = 1\n')
    app = make_app(theme="mine")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.theme == "mine"
        assert any("broken.toml" in n.message for n in app._notifications)


async def test_an_unknown_theme_falls_back_with_a_warning():
    app = make_app(theme="no-such-theme")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.theme == "umi-dark"
        assert any("no-such-theme" in n.message for n in app._notifications)


# Clock and errors


async def test_a_tick_moves_a_sim_clock_by_real_elapsed_time_and_tells_the_panes():
    clock = SimClock()
    app = UmiApp(Settings(url="sim://?seed=1"), clock=clock, follow_wall_clock=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        start = clock.now_ms()
        app.session._wall_ms -= 90_000  # as if 90 s passed since the last tick
        app.tick()
        await settle(pilot)
        assert clock.now_ms() - start >= 90_000  # (the app's own tick may add a second)
        shown = datetime.fromtimestamp(clock.now_ms() / 1000, UTC).strftime("%H:%M:%S")
        assert shown >= "00:01:30"
        assert shown in str(app.query_one("#sim-header").render())
        assert f"{shown} sim" in app.sub_title


async def test_a_failing_read_is_a_notification_and_reload_recovers():
    faults = FaultInjector(DeterministicRng(1), [
        FaultConfig("storage_read_fail", 1.0, operation_filter="core", max_injections=1)])
    app = make_app(demo=False, faults=faults)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert any(n.severity == "error" for n in app._notifications)
        await app.store.core.set_block("human", "Ada")
        await pilot.press("r")
        await settle(pilot)
        assert app.query_one("#block-human").block.content == "Ada"
