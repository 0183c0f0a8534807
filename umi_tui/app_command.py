"""`umi-tui [URL] [--agent NAME] [--theme NAME] [--demo [--seed N]]`: open the inspector."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError

from umi_store import InvalidInputError, UmiError, __version__

EXIT_CODE_STORE_UNAVAILABLE = 1
EXIT_CODE_BAD_USAGE = 2


def parse_args(argv: list[str]) -> dict[str, Any]:
    """The flags given on the command line, and only those (they override env and file)."""
    parser = argparse.ArgumentParser(prog="umi-tui", description="Inspect an agent's memory.",
                                     argument_default=argparse.SUPPRESS)
    parser.add_argument("url", nargs="?", help="store URL: sim://?seed=N, sqlite:///path.db, "
                        "postgresql://…; default: a SQLite file in your data dir")
    parser.add_argument("--agent", help="the agent whose memory to inspect (default: default)")
    parser.add_argument("--theme", help="umi-dark, umi-light, umi-dusk, any Textual theme, "
                        "or one from the config dir's themes/")
    parser.add_argument("--demo", action="store_true",
                        help="open the simulator with a seeded, realistic dataset")
    parser.add_argument("--seed", type=int, help="the demo dataset's seed (default 42)")
    parser.add_argument("--version", action="version", version=f"umi-tui {__version__}")
    return vars(parser.parse_args(argv))


def main(argv: list[str]) -> int:
    from .settings import Settings
    try:
        settings = Settings(**parse_args(argv))
    except ValidationError as error:
        print(f"umi-tui: bad setting: {error}", file=sys.stderr)
        return EXIT_CODE_BAD_USAGE
    from .app import UmiApp
    app = UmiApp(settings)
    app.run()
    if app.open_error is None:
        return 0
    print(f"umi-tui: {one_line(app.open_error)}", file=sys.stderr)
    return exit_code_for(app.open_error)


def one_line(error: UmiError) -> str:
    return " ".join(str(error).split())


def exit_code_for(error: UmiError) -> int:
    """2 for a URL or setting that can never work, 1 for a store that cannot be reached."""
    return EXIT_CODE_BAD_USAGE if isinstance(error, InvalidInputError) \
        else EXIT_CODE_STORE_UNAVAILABLE
