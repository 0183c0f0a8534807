"""How the app tells a person that something failed: a notification, never a traceback."""

from __future__ import annotations

from typing import Any

from textual.app import App
from textual.widget import Widget

from umi_store import UmiError


def report_error(node: Widget | App[Any], action: str, error: UmiError) -> None:
    """Show a store error raised while doing `action` ("save block", "search", …)."""
    node.notify(f"{action}: {error}", title=type(error).__name__, severity="error", timeout=8)
