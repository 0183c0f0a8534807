"""How the app tells a person that something failed: a notification, never a traceback."""

from __future__ import annotations

from textual.dom import DOMNode

from umi_store import UmiError


def report_error(node: DOMNode, action: str, error: UmiError) -> None:
    """Show a store error raised while doing `action` ("save block", "search", …)."""
    node.notify(f"{action}: {error}", title=type(error).__name__, severity="error", timeout=8)
