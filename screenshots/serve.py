"""Regenerate screenshots/serve-browser.png: `umi-tui serve --demo` in headless Chromium.

    .venv/bin/python screenshots/serve.py

Needs Debian's chromium package (`apt-get install chromium`; .ci/run installs it) and the
dev extras (playwright drives the browser). The same helpers as tests/test_serve.py.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # the checkout's tests/, for their browser helpers

from tests.browser_support import (PANE_TITLES, chromium, inspector_page,  # noqa: E402
                                   served, wait_for_screen)

SHOT = HERE / "serve-browser.png"

# the demo's data on screen: the system block, and the archival pane's count line
DEMO_SHOWN = ("● connected", "You are Tern", "2,000 entities")


async def shoot(origin: str, browser_binary: str) -> None:
    async with inspector_page(origin, browser_binary) as page:
        await wait_for_screen(page, shows=(*PANE_TITLES, *DEMO_SHOWN))
        await page.screenshot(path=SHOT)


def main() -> None:
    os.environ["TEXTUAL_ANIMATIONS"] = "none"  # the served app draws its final frame at once
    browser_binary = chromium()
    with tempfile.TemporaryDirectory() as scratch, \
            served(["--demo"], Path(scratch) / "serve.log") as (origin, _):
        asyncio.run(shoot(origin, browser_binary))
    print(SHOT)


if __name__ == "__main__":
    main()
