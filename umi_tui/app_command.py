"""`umi-tui [URL] [--agent NAME] [--theme NAME] [--demo [--seed N]]`: open the inspector."""

from __future__ import annotations

import sys
from typing import Any

import click
from umi_store import InvalidInputError, UmiError, __version__

EXIT_CODE_STORE_UNAVAILABLE = 1
EXIT_CODE_BAD_USAGE = 2


@click.command("open", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("url", required=False)
@click.option("--agent", help="the agent whose memory to inspect (default: default; `a` in "
              "the app switches)")
@click.option("--theme", help="umi-dark, umi-light, umi-dusk, any Textual theme, or one from "
              "the config dir's themes/")
@click.option("--demo", is_flag=True, default=None,
              help="open the simulator with a seeded, realistic dataset")
@click.option("--seed", type=int, help="the demo dataset's seed (default 42)")
@click.version_option(__version__, "--version", prog_name="umi-tui",
                      message="%(prog)s %(version)s")
def open_command(**given: object) -> None:
    """Open the inspector on a store.

    URL: sim://?seed=N, sqlite:///path.db or postgresql://…; default: a SQLite file in
    your data dir. `umi-tui URL` is the same as `umi-tui open URL`."""
    sys.exit(run(_given(given)))


def _given(params: dict[str, Any]) -> dict[str, Any]:
    """The flags given, and only those (they override env and file)."""
    return {name: value for name, value in params.items() if value is not None}


def parse_args(argv: list[str]) -> dict[str, Any]:
    """The flags given on the command line; --help and --version print and exit, as does
    bad usage (exit 2)."""
    try:
        context = open_command.make_context("umi-tui", list(argv))
    except click.exceptions.Exit as done:
        raise SystemExit(done.exit_code) from None
    except click.ClickException as error:
        error.show()
        raise SystemExit(error.exit_code) from None
    return _given(context.params)


def main(argv: list[str]) -> int:
    return run(parse_args(argv))


def run(given: dict[str, Any]) -> int:
    """Open the inspector with the settings `given`; the exit code."""
    from .settings import SettingsError, load_settings
    try:
        settings = load_settings(given)
    except SettingsError as error:
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
