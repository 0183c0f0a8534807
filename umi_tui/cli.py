"""The umi-tui command line, on click: one group, one style, one --help for every command."""

from __future__ import annotations

import click

from .store_commands import STORE_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Umi: an agent's memory in a store (sim://, sqlite:///path, postgresql://…).

    Exit codes of the store commands: 0 found, 1 not found, 2 bad input, 3 store
    unavailable.
    """


for command in STORE_COMMANDS:
    cli.add_command(command)

STORE_COMMAND_NAMES = frozenset(command.name for command in STORE_COMMANDS)


def main(argv: list[str]) -> int:
    """Run `umi-tui ARGV` through click; the exit code instead of SystemExit."""
    try:
        cli.main(argv, prog_name="umi-tui", standalone_mode=True)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
    return 0
