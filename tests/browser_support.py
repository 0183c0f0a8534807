"""A real `umi-tui serve` on a free port, and headless Chromium (Debian's package) to look at it.

xterm.js draws the terminal on a canvas, so the page has no text to read. An init script
keeps the page's xterm.js Terminal as it is made (textual.js sets it as `.terminal`) and the
tests read the rows from its buffer: the characters xterm.js draws.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
from playwright.async_api import Page, Route, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.conftest import in_ci

SERVER_START_SECS_MAX = 60
SERVER_STOP_SECS_MAX = 30
BROWSER_WAIT_MS_MAX = 60_000
VIEWPORT = {"width": 1280, "height": 800}
PANE_TITLES = ("Core", "Working", "Archival", "Simulation")

KEEP_TERMINAL = """
Object.defineProperty(Object.prototype, "terminal", {
  configurable: true,
  set(value) {
    Object.defineProperty(this, "terminal", {value, writable: true, configurable: true,
                                             enumerable: true});
    if (value && value.buffer && typeof value.write === "function") window.umiTerminal = value;
  },
});
"""
TERMINAL_TEXT = """() => {
  const terminal = window.umiTerminal;
  if (!terminal) return "";
  const buffer = terminal.buffer.active, rows = [];
  for (let row = 0; row < buffer.length; row++)
    rows.push(buffer.getLine(row).translateToString(true));
  return rows.join("\\n");
}"""


def chromium() -> str:
    """The Chromium binary; skips when it is missing (fails under CI=true, whose .ci/run
    installs it)."""
    found = shutil.which("chromium")
    if found is None:
        reason = "chromium not found: apt-get install chromium (.ci/run does, when it can)"
        if in_ci():
            pytest.fail(f"{reason} (CI=true: the browser test must run)", pytrace=False)
        pytest.skip(reason)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(args: list[str], log: Path, env: dict[str, str] | None = None
           ) -> Iterator[tuple[str, subprocess.Popen]]:
    """`umi-tui serve ARGS --port P` running: its origin and process; stopped after."""
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    with log.open("wb") as output:
        server = subprocess.Popen([sys.executable, "-m", "umi_tui", "serve", *args,
                                   "--port", str(port)], stdout=output, stderr=output, env=env)
    try:
        wait_until_up(origin, server, log)
        yield origin, server
    finally:
        server.terminate()
        try:
            server.wait(SERVER_STOP_SECS_MAX)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def wait_until_up(origin: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECS_MAX
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"umi-tui serve exited {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(origin, timeout=5):
                return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"umi-tui serve did not answer in {SERVER_START_SECS_MAX} s:\n{log.read_text()}")


@asynccontextmanager
async def inspector_page(origin: str, browser_binary: str) -> AsyncIterator[Page]:
    """The served page open in headless Chromium (`browser_binary`, from chromium()), keys
    going to the terminal. The browser
    asks nothing of any other host (the page links a web font: that request is refused)."""
    async def this_server_only(route: Route) -> None:
        if route.request.url.startswith(origin + "/"):
            await route.continue_()
        else:
            await route.abort()

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=browser_binary,
                                                   timeout=BROWSER_WAIT_MS_MAX)
        try:
            page = await browser.new_page(viewport=VIEWPORT)
            await page.route("**/*", this_server_only)
            await page.add_init_script(KEEP_TERMINAL)
            await page.goto(origin + "/", timeout=BROWSER_WAIT_MS_MAX)
            await page.focus(".xterm-helper-textarea", timeout=BROWSER_WAIT_MS_MAX)
            yield page
        finally:
            await browser.close()


async def terminal_text(page: Page) -> str:
    """Every row of the terminal, as xterm.js holds it."""
    return await page.evaluate(TERMINAL_TEXT)


async def wait_for_screen(page: Page, shows: tuple[str, ...], hides: tuple[str, ...] = ()
                          ) -> str:
    """Wait until the terminal shows every text in `shows` and none in `hides`; its text."""
    try:
        await page.wait_for_function(
            f"([shows, hides]) => {{ const text = ({TERMINAL_TEXT})(); "
            "return shows.every(t => text.includes(t)) && !hides.some(t => text.includes(t)); }",
            arg=[list(shows), list(hides)], timeout=BROWSER_WAIT_MS_MAX)
    except PlaywrightTimeoutError:
        pytest.fail(f"in {BROWSER_WAIT_MS_MAX} ms the page did not come to show {shows}"
                    f"{f' and hide {hides}' if hides else ''}; it shows:\n"
                    f"{await terminal_text(page)}", pytrace=False)
    return await terminal_text(page)
