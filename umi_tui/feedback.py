"""How the app tells a person that something failed: a notification, never a traceback."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.widget import Widget

from umi_store import UmiError

from .formatting import format_ms
from .session import Session


def report_error(node: Widget | App[Any], action: str, error: UmiError) -> None:
    """Show a store error raised while doing `action` ("save block", "search", …)."""
    node.notify(f"{action}: {error}", title=type(error).__name__, severity="error", timeout=8)


def refused_as_of(node: Widget | App[Any], session: Session) -> bool:
    """True, after saying why, when the panes show memory as of a past instant: nothing can
    be changed there (a write key answers this instead of opening its dialog)."""
    at_ms = session.as_of_ms
    if at_ms is None:
        return False
    node.notify(f"Memory is shown as of {format_ms(at_ms)} UTC, read-only. Press T to go "
                "live to change it.", title="Read-only", severity="warning", timeout=5)
    return True
