"""KeyFooter: the footer of key bindings, showing only entries that fit whole."""

from __future__ import annotations

from collections.abc import Hashable

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

FOOTER_LAYOUT_WAIT_REFRESHES_MAX = 10  # refreshes to wait for the keys' first layout


class KeyFooter(Footer):
    """A Footer that hides the entries that would be cut at its right edge (or under the
    command palette's key), so no entry ever reads half a word; F1 lists them all. It
    recomposes only when the entries it shows change (focus moves often, between widgets
    with the same keys; each recompose mounts every entry again)."""

    _composed: Hashable = None  # the entries and width of the last compose

    def _entries(self) -> Hashable:
        return tuple((binding.key, binding.description, binding.action, enabled, tooltip)
                     for _, binding, enabled, tooltip in self.screen.active_bindings.values()
                     if binding.show)

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, FooterKey) and not widget.has_class("-command-palette"):
                # Born with the compactness the footer binds it to after mounting: saves
                # each key two restyles (on, then off) at every compose. (The palette's key
                # is not bound: it keeps its own.)
                widget.set_reactive(FooterKey.compact, self.compact)
            yield widget

    async def recompose(self) -> None:
        composed = (self._entries() if self._bindings_ready else None, self.size.width)
        if composed == self._composed:
            return
        self._composed = composed
        await super().recompose()
        self.call_after_refresh(self._hide_cut_entries)

    def on_resize(self) -> None:
        self.call_after_refresh(self.recompose)

    def _hide_cut_entries(self, attempts_left: int = FOOTER_LAYOUT_WAIT_REFRESHES_MAX) -> None:
        keys = list(self.query("FooterKey"))
        if attempts_left and any(key.region.width == 0 for key in keys):
            # Freshly composed keys have no region until a layout pass places them.
            self.call_after_refresh(self._hide_cut_entries, attempts_left - 1)
            return
        palette = [key for key in keys if key.has_class("-command-palette")]
        limit = palette[0].region.x if palette else self.region.right
        for key in keys:
            if not key.has_class("-command-palette") and key.region.right > limit:
                key.display = False
