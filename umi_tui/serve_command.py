"""`umi-tui serve [URL] [--host 127.0.0.1] [--port 8000]`: the inspector in a browser.

textual-serve (the optional extra `serve`) runs `umi-tui open` once per browser tab and
streams its screen over a websocket. Anyone who reaches the port drives the inspector, and
with it the store, so the server listens on localhost unless told otherwise, and only pages
it served itself may open the websocket. The store URL's password stays out of the page and
of the command line: the app gets the URL without it, and the password in PGPASSWORD.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import click

from umi_store import url_without_password

from .app_command import open_command

if TYPE_CHECKING:
    from aiohttp import web

SERVE_HOST_DEFAULT = "127.0.0.1"
SERVE_PORT_DEFAULT = 8000
SERVE_TITLE = "umi-tui"
PASSWORD_ENV = "PGPASSWORD"  # libpq's variable; asyncpg reads it too
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
APP_FLAGS = ("agent", "theme", "demo", "seed")  # passed on to `umi-tui open`


def is_loopback(host: str) -> bool:
    """True when `host` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_wildcard(host: str) -> bool:
    """True for 0.0.0.0 and ::, which listen on every address."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def host_in_url(host: str) -> str:
    """`host` as it stands in a URL: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def url_password(url: str) -> str | None:
    """The password written in the URL, decoded, or None."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return None
    return None if password is None else unquote(password)


def app_command(url: str | None, app_flags: dict[str, Any]) -> str:
    """The shell command textual-serve runs for each browser tab: `umi-tui open` with the
    URL less its password and the app flags given."""
    argv = [sys.executable, "-m", "umi_tui", "open"]
    if url is not None:
        argv.append(url_without_password(url))
    for name, value in app_flags.items():
        if value is True:
            argv.append(f"--{name}")
        elif value is not None and value is not False:
            argv += [f"--{name}", str(value)]
    return shlex.join(argv)


def allowed_origins(host: str, port: int, public_url: str) -> frozenset[str]:
    """The page origins that may open the websocket: the public URL's, and localhost's when
    the server listens there. Any other page (another site in the same browser) may not."""
    parts = urlsplit(public_url)
    origins = {f"{parts.scheme}://{parts.netloc}"}
    if is_loopback(host) or is_wildcard(host):
        origins |= {f"http://{name}:{port}" for name in LOOPBACK_NAMES}
    return frozenset(origins)


def serve(command: str, host: str, port: int, public_url: str, title: str) -> None:
    """Run textual-serve until Ctrl+C or SIGTERM; only our own pages open the websocket."""
    from aiohttp import web
    from textual_serve.server import Server

    origins = allowed_origins(host, port, public_url)

    class InspectorServer(Server):
        async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
            origin = request.headers.get("Origin")
            if origin is not None and origin not in origins:
                raise web.HTTPForbidden(text=f"origin {origin} may not open the inspector")
            return await super().handle_websocket(request)

    InspectorServer(command, host=host, port=port, title=title, public_url=public_url).serve()


@click.command("serve", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("url", required=False)
@click.option("--host", default=SERVE_HOST_DEFAULT, show_default=True,
              help="the address to listen on; any but localhost lets others reach the "
              "inspector, and the store, with no login")
@click.option("--port", type=click.IntRange(1, 65535), default=SERVE_PORT_DEFAULT,
              show_default=True, help="the port to listen on")
@click.option("--public-url", help="the address browsers reach the server by (default "
              "http://HOST:PORT); needed behind a proxy or with --host 0.0.0.0")
def serve_command(url: str | None, host: str, port: int, public_url: str | None,
                  **app_flags: Any) -> None:
    """Serve the inspector to a web browser, through textual-serve.

    Each browser tab runs its own `umi-tui open URL`. A password in a postgresql:// URL is
    never sent to the page nor put on a command line: the app reads it from PGPASSWORD.
    Needs the extra: pip install 'umi[serve]'."""
    try:
        import textual_serve  # noqa: F401 - only to say clearly when the extra is missing
    except ImportError:
        raise click.ClickException(
            "umi-tui serve needs textual-serve: pip install 'umi[serve]'") from None
    if is_wildcard(host) and public_url is None:
        raise click.UsageError(f"--host {host} listens on every address; give --public-url, "
                               "the address browsers reach the server by")
    if not is_loopback(host):
        click.echo(f"Warning: listening on {host}, not localhost: anyone who reaches port "
                   f"{port} can read and change the store, with no login.", err=True)
    if url is not None and (password := url_password(url)) is not None:
        os.environ[PASSWORD_ENV] = password  # the app's processes inherit it
    title = SERVE_TITLE if url is None else f"{SERVE_TITLE} {url_without_password(url)}"
    try:
        serve(app_command(url, app_flags), host, port,
              (public_url or f"http://{host_in_url(host)}:{port}").rstrip("/"), title)
    except OSError as error:  # the port is taken, or the address is not this machine's
        reason = os.strerror(error.errno) if error.errno else str(error)
        raise click.ClickException(f"cannot listen on {host} port {port}: {reason}") from None


serve_command.params += [param for param in open_command.params if param.name in APP_FLAGS]
