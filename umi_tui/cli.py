"""The umi-tui command line, on click: one group, one style, one --help for every command."""

from __future__ import annotations

import click

from .app_command import open_command
from .serve_command import serve_command
from .sim_command import sim_cli
from .store_commands import STORE_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Umi: an agent's memory in a store (sim://?seed=N, sqlite:///path, postgresql://…).

    `umi-tui [URL] [--agent NAME]` opens the inspector (the same as `umi-tui open`); the
    commands below look at or change a store from the shell. Exit codes of the store
    commands: 0 found, 1 not found, 2 bad input, 3 store unavailable.
    """


for command in (open_command, serve_command, sim_cli, *STORE_COMMANDS):
    cli.add_command(command)

COMMAND_NAMES = frozenset(cli.commands) | {"-h", "--help"}


def main(argv: list[str]) -> int:
    """Run `umi-tui ARGV` through click; the exit code instead of SystemExit."""
    try:
        cli.main(argv, prog_name="umi-tui", standalone_mode=True)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
    return 0
