"""Regenerate screenshots/*.svg and *.png from the demo dataset (seed 42, clock at the epoch).

    .venv/bin/python screenshots/make.py

The SVGs come from Textual's own export; resvg-py (a dev extra) turns each into a PNG with the
system's monospace font (DejaVu Sans Mono here).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))  # the checkout's tests/, for their settle()
SHOTS = {  # name: (terminal size, theme, keys pressed after the demo has loaded)
    "app-120x40": ((120, 40), "umi-dark", []),
    "app-80x24": ((80, 24), "umi-dark", []),
    "app-light": ((120, 40), "umi-light", []),
    "app-dusk": ((120, 40), "umi-dusk", []),
    "core-maximised": ((100, 24), "umi-dark", ["j", "j", "z"]),
    "working-maximised": ((120, 40), "umi-dark", ["2", "z"]),
    "archival-search": ((120, 40), "umi-dark", ["3", "slash", *"follow up"]),
    "help": ((120, 40), "umi-dark", ["f1"]),
    "palette": ((120, 40), "umi-dark", ["ctrl+p", *"core"]),
    "xml-preview": ((120, 40), "umi-dark", ["p"]),
    "console-faults": ((120, 40), "umi-dark", ["4", "F"]),
    "console-maximised": ((120, 40), "umi-dark", ["4", "r", "z"]),
    "core-history": ((120, 40), "umi-dark", ["j", "j", "h"]),
    "timeline": ((120, 40), "umi-dark", ["T", *["left"] * 20]),
}





async def shoot(name: str, size: tuple[int, int], theme: str, keys: list[str]) -> str:
    from umi_store import SimClock
    from umi_tui.app import UmiApp
    from umi_tui.settings import Settings

    from tests.tui_support import (a_morning_of_changes, a_second_human_version,  # the tests'
                                   settle)

    prepare = {"core-history": lambda app: a_second_human_version(app.store),
               "timeline": a_morning_of_changes}  # store changes before the keys

    app = UmiApp(Settings(demo=True, seed=42, theme=theme), clock=SimClock(),
                 follow_wall_clock=False)
    app.animation_level = "none"
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        if name in prepare:
            await prepare[name](app)
            await settle(pilot)
        await pilot.press(*keys)
        await pilot.pause(0.3)  # the timeline's cursor rests: the panes read as of it
        await settle(pilot)
        return app.export_screenshot(title=f"umi-tui: {name}")


def main() -> int:
    os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp()  # never the developer's own config
    os.environ["TEXTUAL_ANIMATIONS"] = "none"
    import resvg_py
    for name, (size, theme, keys) in SHOTS.items():
        svg = asyncio.run(shoot(name, size, theme, keys))
        (HERE / f"{name}.svg").write_text(svg)
        png = resvg_py.svg_to_bytes(svg_string=svg, monospace_family="DejaVu Sans Mono",
                                    background="#000000")
        (HERE / f"{name}.png").write_bytes(bytes(png))
        print(f"screenshots/{name}.svg .png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
