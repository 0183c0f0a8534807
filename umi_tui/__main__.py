"""The umi-tui command. The inspector app arrives with its own issue; for now --version."""

import argparse

from umi_store import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="umi-tui", description="Inspect an agent's memory.")
    parser.add_argument("--version", action="version", version=f"umi-tui {__version__}")
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
