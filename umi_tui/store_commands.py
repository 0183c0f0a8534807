"""Scriptable commands over a store: `umi-tui get|set|del|ttl|search|blocks|render|agents
URL …`, and `umi-tui export` / `umi-tui import`.

Human-readable by default, `--json` for machines. Exit codes: 0 found (or done), 1 not
found, 2 bad input, 3 store unavailable (or failing). A value of `-` is read from stdin.
No textual import here: a quick look starts in the time Python and the driver take.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, BinaryIO

import click

from umi_store import (ConflictError, Entity, EntityType, InvalidInputError, NotFoundError,
                       StorageError, Store, WorkingEntry, open_store)
from umi_store.constants import SEARCH_RESULTS_COUNT_MAX
from umi_store.portable import (OnConflict, entity_record, export_memory, import_memory,
                                key_record)

from .formatting import parse_duration
from .widgets.ttl import humanize_ttl

EXIT_FOUND = 0
EXIT_NOT_FOUND = 1
EXIT_BAD_INPUT = 2
EXIT_STORE_UNAVAILABLE = 3
STDIN_MARK = "-"

StoreWork = Callable[[Store], Awaitable[int]]


class NotFound(Exception):
    """What the command looked for is not there: exit 1, with this message on stderr."""


def run_on_store(url: str, agent: str, work: StoreWork) -> None:
    """Open the store, run `work`, close it; exit with the code of what happened."""
    async def opened() -> int:
        async with open_store(url, agent=agent) as store:
            return await work(store)
    try:
        code = asyncio.run(opened())
    except NotFound as missing:
        click.echo(str(missing), err=True)
        code = EXIT_NOT_FOUND
    except (InvalidInputError, ConflictError, NotFoundError) as error:
        raise click.UsageError(str(error)) from None
    except StorageError as error:
        click.echo(f"Error: {error}", err=True)
        code = EXIT_STORE_UNAVAILABLE
    except BrokenPipeError:  # piped into `head`: stop quietly, as other tools do
        code = EXIT_FOUND
    sys.exit(code)


def read_value(text: str) -> bytes:
    """The value given, or stdin's bytes for `-` (a trailing newline is kept)."""
    return sys.stdin.buffer.read() if text == STDIN_MARK else text.encode()


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _ttl(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--ttl") from None


def _entry_json(store: Store, entry: WorkingEntry) -> dict[str, Any]:
    record = key_record(store.agent, entry, store.clock.now_ms())
    record.pop("type")
    return record


# The shared arguments and options, declared once.
url_argument = click.argument("url")
agent_option = click.option("--agent", "-a", default="default", show_default=True,
                            envvar="UMI_AGENT", help="the agent whose memory to use")
json_option = click.option("--json", "as_json", is_flag=True,
                           help="print JSON for machines instead of text for people")


@click.command("get")
@url_argument
@click.argument("key")
@agent_option
@json_option
def get_command(url: str, key: str, agent: str, as_json: bool) -> None:
    """Print the value of a working-memory key.

    Exit 1 when KEY is missing or expired."""
    async def work(store: Store) -> int:
        entry = await store.working.entry(key)
        if entry is None:
            raise NotFound(f"no key {key!r} (missing or expired)")
        if as_json:
            emit_json(_entry_json(store, entry))
        else:
            sys.stdout.flush()
            sys.stdout.buffer.write(entry.value + (b"" if entry.value.endswith(b"\n") else b"\n"))
        return EXIT_FOUND
    run_on_store(url, agent, work)


@click.command("set")
@url_argument
@click.argument("key")
@click.argument("value")
@click.option("--ttl", help="time to live: 90s, 5m, 2h, 1d or 1h30m (default 1h)")
@agent_option
@json_option
def set_command(url: str, key: str, value: str, ttl: str | None, agent: str,
                as_json: bool) -> None:
    """Set a working-memory key.

    VALUE `-` reads the value from stdin, as bytes."""
    ttl_ms = _ttl(ttl)
    data = read_value(value)

    async def work(store: Store) -> int:
        entry = await store.working.set(key, data, ttl_ms=ttl_ms)
        if as_json:
            emit_json(_entry_json(store, entry))
        else:
            click.echo(f"set {key} ({len(entry.value)} bytes, ttl {humanize_ttl(entry.ttl_ms)})")
        return EXIT_FOUND
    run_on_store(url, agent, work)


@click.command("del")
@url_argument
@click.argument("key")
@agent_option
@json_option
def del_command(url: str, key: str, agent: str, as_json: bool) -> None:
    """Delete a working-memory key.

    Exit 1 when KEY was not there."""
    async def work(store: Store) -> int:
        deleted = await store.working.delete(key)
        if as_json:
            emit_json({"key": key, "deleted": deleted})
        elif deleted:
            click.echo(f"deleted {key}")
        if not deleted:
            raise NotFound(f"no key {key!r} (missing or expired)")
        return EXIT_FOUND
    run_on_store(url, agent, work)


@click.command("ttl")
@url_argument
@click.argument("key")
@click.option("--set", "new_ttl", metavar="TTL", help="give the key a new TTL from now")
@agent_option
@json_option
def ttl_command(url: str, key: str, new_ttl: str | None, agent: str, as_json: bool) -> None:
    """Print the time a key has left, or set it.

    With --set, KEY gets a new TTL from now. Exit 1 when KEY is missing or expired."""
    ttl_ms = _ttl(new_ttl)

    async def work(store: Store) -> int:
        if ttl_ms is not None and not await store.working.expire(key, ttl_ms):
            raise NotFound(f"no key {key!r} (missing or expired)")
        remaining = await store.working.ttl_ms(key)
        if remaining is None:
            raise NotFound(f"no key {key!r} (missing or expired)")
        if as_json:
            emit_json({"key": key, "ttl_ms": remaining})
        else:
            click.echo(f"{humanize_ttl(remaining)} ({remaining} ms)")
        return EXIT_FOUND
    run_on_store(url, agent, work)


def _entity_line(entity: Entity) -> str:
    first_line = entity.content.split("\n", 1)[0]
    return f"{entity.entity_type:<12} {entity.name:<32} {first_line[:60]}"


@click.command("search")
@url_argument
@click.argument("query")
@click.option("--type", "entity_type", type=click.Choice([t.value for t in EntityType]),
              help="only entities of this type")
@click.option("--limit", type=click.IntRange(1, SEARCH_RESULTS_COUNT_MAX), default=20,
              show_default=True, help="at most this many results")
@agent_option
@json_option
def search_command(url: str, query: str, entity_type: str | None, limit: int, agent: str,
                   as_json: bool) -> None:
    """Search archival entities.

    QUERY matches names and content literally, case-insensitively; newest first. Exit 1
    when nothing matches."""
    async def work(store: Store) -> int:
        hits = await store.archival.search(query, entity_type=entity_type, limit=limit)
        if as_json:
            emit_json([_without_agent(entity_record(store.agent, hit)) for hit in hits])
        else:
            for hit in hits:
                click.echo(_entity_line(hit))
        if not hits:
            raise NotFound(f"no entity matches {query!r}")
        return EXIT_FOUND
    run_on_store(url, agent, work)


def _without_agent(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("type", "agent")}


@click.command("blocks")
@url_argument
@click.argument("block_type", required=False)
@agent_option
@json_option
def blocks_command(url: str, block_type: str | None, agent: str, as_json: bool) -> None:
    """List the core blocks, or print one.

    BLOCK_TYPE (system, persona, human, facts, goals, scratch) prints that block's
    content. Exit 1 when there is no such block."""
    async def work(store: Store) -> int:
        if block_type is None:
            blocks = await store.core.blocks()
        else:
            block = await store.core.get_block(block_type)
            blocks = [] if block is None else [block]
        if as_json:
            emit_json([{"block_type": b.block_type.value, "label": b.label,
                        "importance": b.importance, "size_bytes": b.size_bytes,
                        "version": b.version, "updated_at": b.updated_at,
                        "content": b.content} for b in blocks])
        elif block_type is not None and blocks:
            click.echo(blocks[0].content)
        else:
            for b in blocks:
                click.echo(f"{b.block_type:<8} {b.label or '':<20} {b.importance:.2f} "
                           f"{b.size_bytes:>6} B  v{b.version}")
        if not blocks:
            raise NotFound(f"no {block_type} block" if block_type else "no core blocks")
        return EXIT_FOUND
    run_on_store(url, agent, work)


@click.command("render")
@url_argument
@click.option("--markdown", is_flag=True, help="the markdown rendering instead of the XML")
@agent_option
def render_command(url: str, markdown: bool, agent: str) -> None:
    """Print core memory as the LLM sees it.

    The XML of render(), or with --markdown the markdown rendering."""
    async def work(store: Store) -> int:
        click.echo(await (store.core.render_markdown() if markdown else store.core.render()))
        return EXIT_FOUND
    run_on_store(url, agent, work)


@click.command("agents")
@url_argument
@json_option
def agents_command(url: str, as_json: bool) -> None:
    """List the agents in the store.

    With each: its core blocks, live working keys and entities. Exit 1 when none."""
    async def work(store: Store) -> int:
        agents = await store.agents()
        if as_json:
            emit_json([{"agent": a.agent, "blocks": a.blocks, "keys": a.keys,
                        "entities": a.entities, "last_change_at": a.last_change_at}
                       for a in agents])
        else:
            for a in agents:
                click.echo(f"{a.agent:<32} {a.blocks:>2} blocks {a.keys:>6} keys "
                           f"{a.entities:>8} entities")
        if not agents:
            raise NotFound("no agents")
        return EXIT_FOUND
    run_on_store(url, "default", work)


Progress = Callable[..., None]  # update(done, total, description=None)


@contextmanager
def _progress_bar(description: str, *, in_bytes: bool = False) -> Iterator[Progress]:
    """A rich progress bar on stderr (only on a terminal); yields update(done, total,
    description=None): a total of 0 pulses, for work of unknown length."""
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress,
                               TextColumn)

    console = Console(stderr=True)
    amount = DownloadColumn() if in_bytes else MofNCompleteColumn()
    with Progress(TextColumn("{task.description}"), BarColumn(), amount, console=console,
                  transient=True, disable=not console.is_terminal) as bar:
        tasks = [bar.add_task(description, total=None)]

        def update(done: int, total: int, description: str | None = None) -> None:
            if description is not None:  # a new phase: its own bar, the old one hidden
                bar.update(tasks[-1], visible=False)
                tasks.append(bar.add_task(description, total=None))
            bar.update(tasks[-1], completed=done, total=total or None)
        yield update


@click.command("export")
@url_argument
@agent_option
@click.option("--all", "all_agents", is_flag=True, help="every agent in the store")
@click.option("--output", "-o", type=click.File("w", encoding="utf-8", lazy=True),
              default=STDIN_MARK, help="file to write (default: stdout)")
def export_command(url: str, agent: str, all_agents: bool, output: IO[str]) -> None:
    """Export memory as JSON Lines.

    An agent's memory (--all: every agent's), to stdout or -o FILE, with a progress bar
    on stderr. The format is in the README."""
    if all_agents and click.get_current_context().get_parameter_source("agent") is \
            click.core.ParameterSource.COMMANDLINE:
        raise click.UsageError("give --agent A or --all, not both")

    async def work(store: Store) -> int:
        agents = [a.agent for a in await store.agents()] if all_agents else [agent]
        with _progress_bar("exporting") as update:
            summary = await export_memory(store, output, agents, update)
        click.echo(f"exported {summary.blocks} blocks, {summary.keys} keys, "
                   f"{summary.entities} entities of {len(agents)} agent(s)", err=True)
        return EXIT_FOUND
    run_on_store(url, agent, work)


def _lines_with_progress(source: BinaryIO, update: Progress, total: int) -> Iterator[str]:
    """The file's lines as text, the bar following the bytes read; then "writing"."""
    done = number = 0
    for number, raw in enumerate(source, 1):
        done += len(raw)
        if number % 1000 == 0:
            update(done, total)
        try:
            yield raw.decode()
        except UnicodeDecodeError as error:
            raise InvalidInputError(f"line {number}: not UTF-8 text: {error}") from None
    update(0, 0, f"{number:,} lines checked; writing")


@click.command("import")
@url_argument
@click.argument("file", type=click.File("rb"))
@click.option("--agent", "-a", help="import every record into this agent instead")
@click.option("--on-conflict", type=click.Choice([c.value for c in OnConflict]),
              default=OnConflict.FAIL.value, show_default=True,
              help="a block, key or entity already there: keep it, replace it, or refuse "
                   "the whole import")
def import_command(url: str, file: BinaryIO, agent: str | None, on_conflict: str) -> None:
    """Import an export into the store.

    FILE (- for stdin) is checked line by line first: a bad line is refused with its
    number, and nothing is written. Then each agent's records land in one transaction."""
    total = _size(file)

    async def work(store: Store) -> int:
        with _progress_bar("checking", in_bytes=True) as update:
            summary = await import_memory(store, _lines_with_progress(file, update, total),
                                          agent=agent, on_conflict=on_conflict)
        click.echo(f"imported into {', '.join(summary.agents) or 'no agent'}: "
                   f"{summary.written} written, {summary.replaced} replaced, "
                   f"{summary.skipped} skipped", err=True)
        return EXIT_FOUND
    run_on_store(url, agent or "default", work)


def _size(file: BinaryIO) -> int:
    try:
        return file.seek(0, 2) - file.seek(0)  # to the end, then back: a file's size
    except OSError:  # stdin, a pipe
        return 0


STORE_COMMANDS = (get_command, set_command, del_command, ttl_command, search_command,
                  blocks_command, render_command, agents_command, export_command,
                  import_command)
