"""`umi-tui serve`: the inspector in a browser, through textual-serve, for real.

A server on a free port, headless Chromium on its page; the password rule checked on what
textual-serve sends (the page, the websocket) and on the command it runs."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
from click.testing import CliRunner

from tests.browser_support import (PANE_TITLES, chromium, inspector_page, served,
                                   wait_for_screen)
from tests.conftest import postgres_url, wipe_postgres
from tests.tui_support import isolated_user_dirs  # noqa: F401 - an autouse fixture
from umi_tui import serve_command as serve_module
from umi_tui.cli import cli

CONNECTED = "● connected"
WEBSOCKET_SIZE = "width=120&height=40"


async def test_the_browser_shows_the_four_panes_and_keys_reach_the_app(tmp_path):
    browser_binary, screenshot = chromium(), tmp_path / "serve.png"
    with served(["--demo"], tmp_path / "serve.log") as (origin, _):
        async with inspector_page(origin, browser_binary) as page:
            text = await wait_for_screen(page, shows=(*PANE_TITLES, CONNECTED))
            await page.screenshot(path=screenshot)
            await page.keyboard.press("z")  # maximise the focused pane, Core
            maximised = await wait_for_screen(page, shows=("1 Core",), hides=("2 Working",))
    for number, title in enumerate(PANE_TITLES, start=1):
        assert f"{number} {title}" in text
    assert "sim://?seed=42" in text
    assert "4 Simulation" not in maximised
    assert screenshot.read_bytes().startswith(b"\x89PNG")


async def test_other_sites_may_not_open_the_websocket(tmp_path):
    with served(["sim://?seed=1"], tmp_path / "serve.log") as (origin, _):
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"{origin}/ws?{WEBSOCKET_SIZE}",
                                         headers={"Origin": "http://attacker.example"})
            assert refused.value.status == 403
            websocket = await session.ws_connect(f"{origin}/ws?{WEBSOCKET_SIZE}",
                                                 headers={"Origin": origin})
            assert CONNECTED in await screen_until(websocket, CONNECTED)
            await websocket.close()


def test_a_port_in_use_is_said_in_one_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run([sys.executable, "-m", "umi_tui", "serve", "--port", str(port)],
                             capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    assert f"Error: cannot listen on 127.0.0.1 port {port}: Address already in use" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.username or "postgres"
    netloc = f"{user}:{password}@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.mark.postgres
async def test_the_password_never_reaches_the_page_nor_a_command_line(tmp_path):
    url = postgres_url()
    await wipe_postgres(url)
    password = urlsplit(url).password or "not-a-real-secret-81"  # trust auth ignores it
    secret_url = with_password(url, password)
    log = tmp_path / "serve.log"
    with served([secret_url], log) as (origin, server):
        async with aiohttp.ClientSession() as session:
            async with session.get(origin + "/") as page:
                html = await page.text()
            websocket = await session.ws_connect(f"{origin}/ws?{WEBSOCKET_SIZE}")
            screen = await screen_until(websocket, CONNECTED)
            apps = descendants(server.pid)
            commands = [command_line(pid) for pid in apps]
            app_env = environment(apps[-1])
            await websocket.close()
    assert CONNECTED in screen  # the app found the password itself
    assert apps and all("umi_tui open" in command for command in commands)
    for seen in (html, screen, *commands, log.read_text()):
        assert password not in seen
    assert app_env.get("PGPASSWORD") == password


async def screen_until(websocket: aiohttp.ClientWebSocketResponse, text: str) -> str:
    """What the app drew, as text, up to the first frame that holds `text`."""
    seen = ""
    async with asyncio.timeout(60):
        async for message in websocket:
            if message.type == aiohttp.WSMsgType.BINARY:
                seen += message.data.decode("utf-8", "replace")
                if text in seen:
                    return seen
    return seen


def descendants(pid: int) -> list[int]:
    """The processes below `pid` (Linux /proc), parents first."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in sorted(children.get(todo.pop(0), [])):
            found.append(child)
            todo.append(child)
    return found


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def environment(pid: int) -> dict[str, str]:
    entries = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(entry.decode().split("=", 1) for entry in entries if b"=" in entry)


# The command line itself, with textual-serve replaced by a recorder


@pytest.fixture
def recorded(monkeypatch):
    """What `umi-tui serve` would hand textual-serve, instead of serving."""
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(serve_module, "serve", lambda command, host, port, public_url, title:
                        calls.append({"command": command, "host": host, "port": port,
                                      "public_url": public_url, "title": title}))
    monkeypatch.setenv("PGPASSWORD", "left-as-it-was")
    return calls


def test_serve_binds_localhost_by_default_and_says_nothing(recorded):
    result = CliRunner().invoke(cli, ["serve", "--demo"])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    [call] = recorded
    assert (call["host"], call["port"]) == ("127.0.0.1", 8000)
    assert call["public_url"] == "http://127.0.0.1:8000"
    assert call["command"].endswith("-m umi_tui open --demo")


def test_serve_warns_when_bound_beyond_localhost(recorded):
    result = CliRunner().invoke(cli, ["serve", "--host", "192.0.2.7", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert "Warning: listening on 192.0.2.7, not localhost" in result.stderr
    assert "no login" in result.stderr
    assert recorded[0]["public_url"] == "http://192.0.2.7:8123"


def test_serve_on_every_address_needs_the_public_url(recorded):
    refused = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert refused.exit_code == 2
    assert "give --public-url" in refused.stderr
    assert recorded == []
    given = CliRunner().invoke(cli, ["serve", "--host", "0.0.0.0", "--public-url",
                                     "https://umi.example.org"])
    assert given.exit_code == 0
    assert "Warning: listening on 0.0.0.0" in given.stderr
    assert recorded[0]["public_url"] == "https://umi.example.org"


def test_serve_hands_the_password_over_by_environment(recorded):
    result = CliRunner().invoke(cli, ["serve", "postgresql://ada:p%40ss@db.local/umi",
                                      "--agent", "tern"])
    assert result.exit_code == 0, result.output
    [call] = recorded
    assert "p%40ss" not in str(call) and "p@ss" not in str(call)
    assert "open postgresql://ada@db.local/umi --agent tern" in str(call["command"])
    assert os.environ["PGPASSWORD"] == "p@ss"  # decoded, as libpq wants it


def test_serve_leaves_pgpassword_alone_without_a_password_in_the_url(recorded):
    result = CliRunner().invoke(cli, ["serve", "postgresql://ada@db.local/umi"])
    assert result.exit_code == 0, result.output
    assert os.environ["PGPASSWORD"] == "left-as-it-was"


def test_serve_help_names_its_flags():
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for flag in ("--host", "--port", "--public-url", "[default: 127.0.0.1]", "PGPASSWORD"):
        assert flag in result.output
