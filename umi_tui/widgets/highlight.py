"""Finding a query in text the way the store's search does (Unicode case folding), and
marking it: 'ÉMILE' finds and highlights 'émile', 'STRASSE' finds 'Straße'."""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

SNIPPET_SCAN_CHARS_MAX = 20_000  # look this far into long content for a match to show
SNIPPET_LEAD_CHARS = 16  # context kept before the match in a snippet


def match_spans(text: str, query: str) -> list[tuple[int, int]]:
    """(start, end) character spans of `text` that case-fold to `query`, left to right."""
    needle = query.casefold()
    if not needle:
        return []
    folded_parts, origins = [], []
    for index, char in enumerate(text):
        folded = char.casefold()
        folded_parts.append(folded)
        origins.extend([index] * len(folded))
    folded_text = "".join(folded_parts)
    spans, start = [], folded_text.find(needle)
    while start != -1:
        end = start + len(needle)
        spans.append((origins[start], origins[end - 1] + 1))
        start = folded_text.find(needle, end)
    return spans


def highlighted(text: str, query: str, style: Style, *, base: Style | None = None) -> Text:
    """`text` as one line with every match of `query` in `style`."""
    line = Text(text.replace("\n", " "), style=base or "", no_wrap=True, overflow="ellipsis")
    for start, end in match_spans(text, query):
        line.stylize(style, start, end)
    return line


def snippet(content: str, query: str, *, name: str = "", lead: int = SNIPPET_LEAD_CHARS) -> str:
    """The part of `content` around its first match (or its start), as one line, with
    at most `lead` characters before the match.

    Content that opens with the entity's `name` (a remembered name is the first line)
    shows what follows the name, so the row doesn't say the same thing twice.
    """
    if name and content.startswith(name) and content[len(name):].strip():
        content = content[len(name):].lstrip(" \n:;,.-")
    head = content[:SNIPPET_SCAN_CHARS_MAX]
    spans = match_spans(head, query)
    start = 0
    if spans and spans[0][0] > lead:
        start = spans[0][0] - lead
        word = head.find(" ", start, spans[0][0])
        start = word + 1 if word != -1 else start  # begin at a word where one is near
    text = head[start:start + 400].replace("\n", " ")
    return ("…" + text) if start else text
