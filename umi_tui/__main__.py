"""The umi-tui command: `umi-tui sim …` runs a headless simulation, `umi-tui get …` and
the other store commands (umi_tui.cli) work on a store from the shell, anything else
opens the inspector."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["sim"]:
        from .sim_command import main as sim_main
        return sim_main(args[1:])
    from .cli import COMMAND_NAMES
    if args[:1] and args[0] in COMMAND_NAMES:
        from .cli import main as cli_main
        return cli_main(args)
    from .app_command import main as app_main
    return app_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
