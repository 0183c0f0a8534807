"""`umi-tui sim`: a headless deterministic simulation. Built in its own issue."""

import sys


def main(argv: list[str]) -> int:
    print("umi-tui sim: the simulation harness is not built yet", file=sys.stderr)
    return 2
