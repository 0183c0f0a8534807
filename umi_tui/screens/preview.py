"""The core blocks exactly as the LLM sees them: the XML of `render()` and the markdown of
`render_markdown()`, read-only but selectable so the text can be copied out."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import TabbedContent, TabPane, TextArea


class PreviewScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss", "Close"),
                Binding("x", "show('xml')", "XML"), Binding("m", "show('markdown')", "Markdown")]
    DEFAULT_CSS = """
    PreviewScreen { align: center middle; }
    PreviewScreen > Vertical { width: 90%; max-width: 120; height: 90%; border: thick $primary;
                               background: $surface; }
    PreviewScreen TextArea { height: 1fr; }
    """

    def __init__(self, xml: str, markdown: str, initial: str = "xml") -> None:
        super().__init__()
        self.xml = xml
        self.markdown = markdown
        self.initial = initial

    def compose(self) -> ComposeResult:
        with Vertical() as frame:
            frame.border_title = "Core memory as the LLM sees it"
            frame.border_subtitle = "x XML · m markdown · esc close"
            with TabbedContent(initial=self.initial):
                with TabPane("XML (render)", id="xml"):
                    yield TextArea(self.xml, read_only=True, id="xml-text")
                with TabPane("Markdown (render_markdown)", id="markdown"):
                    yield TextArea(self.markdown, read_only=True, id="markdown-text")

    def action_show(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
        self.query_one(f"#{tab}-text", TextArea).focus()
