"""Messages the app sends down to its panes, so every pane follows the store live."""

from __future__ import annotations

from textual.message import Message

from umi_store import ChangeEvent


class ClockMoved(Message):
    """The store clock now reads `now_ms` (sent on every tick and every simulated step)."""

    def __init__(self, now_ms: int) -> None:
        super().__init__()
        self.now_ms = now_ms


class StoreChanged(Message):
    """A committed change to the inspected agent's memory, from any process."""

    def __init__(self, event: ChangeEvent) -> None:
        super().__init__()
        self.event = event


class ViewChanged(Message):
    """The panes now show memory as of another instant (the timeline moved), or live
    again: read everything anew from the session's view."""
