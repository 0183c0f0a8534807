"""`umi-tui [URL]`: open the inspector. The app arrives with its own issue; for now --version."""

import argparse

from umi_store import __version__


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="umi-tui", description="Inspect an agent's memory.")
    parser.add_argument("--version", action="version", version=f"umi-tui {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0
