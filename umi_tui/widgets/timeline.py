"""The timeline: the agent's changes over time, one lane per kind of actor (agent, person,
clock), one column per interval, and a cursor. Moving the cursor asks the app to show
memory as of that instant (Timeline.Moved); the cursor at None means live."""

from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widget import Widget

from ..formatting import format_ms

ACTOR_KINDS = ("agent", "person", "clock")  # the lanes; any other actor is "other"
TIMELINE_INTERVALS_MS = (1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000,
                         300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000,
                         10_800_000, 21_600_000, 43_200_000, 86_400_000, 172_800_000,
                         604_800_000, 2_592_000_000)
TIMELINE_LANE_LABEL_WIDTH = 7
TIMELINE_COMPACT_SCREEN_HEIGHT_MAX = 30  # at most this tall, one lane coloured by its kinds
SPARK_LEVELS = "▁▂▃▄▅▆▇█"


def actor_kind(actor: str) -> str:
    """'agent', 'person' or 'clock' from an actor name ('person:ada' → 'person'), else 'other'."""
    kind = actor.split(":", 1)[0]
    return kind if kind in ACTOR_KINDS else "other"


def interval_ms_for(span_ms: int, columns: int) -> int:
    """The shortest round interval that fits `span_ms` in `columns` columns."""
    wanted = -(-max(1, span_ms) // max(1, columns))
    for interval in TIMELINE_INTERVALS_MS:
        if interval >= wanted:
            return interval
    longest = TIMELINE_INTERVALS_MS[-1]
    return -(-wanted // longest) * longest


def spark(count: int, largest: int) -> str:
    """`count` as one of eight bar heights, on a log scale (one change still shows)."""
    if count <= 0:
        return " "
    if largest <= 1:
        return SPARK_LEVELS[-1]
    level = math.log(count) / math.log(largest)
    return SPARK_LEVELS[min(len(SPARK_LEVELS) - 1, round(level * (len(SPARK_LEVELS) - 1)))]


def interval_label(interval_ms: int) -> str:
    for unit_ms, unit in ((86_400_000, "d"), (3_600_000, "h"), (60_000, "min")):
        if interval_ms >= unit_ms:
            return f"{interval_ms // unit_ms:,} {unit}"
    return f"{interval_ms // 1000:,} s"


def short_time(at_ms: int, span_ms: int) -> str:
    """A clock reading as short as the timeline's span lets it be."""
    full = format_ms(at_ms)
    return full[11:] if span_ms < 86_400_000 else full[:16]


class Timeline(Widget, can_focus=True):
    """Changes per interval by actor kind; ←/→ home/end move by interval, [ ] by change."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left", "move(-1)", "Earlier", show=False),
        Binding("right", "move(1)", "Later", show=False),
        Binding("home", "edge(0)", "First changes", show=False),
        Binding("end", "edge(1)", "Latest changes", show=False),
        Binding("left_square_bracket", "step(-1)", "Previous change", show=False),
        Binding("right_square_bracket", "step(1)", "Next change", show=False),
        Binding("w", "toggle_workload", "Step the Simulation's workload", show=False),
    ]
    DEFAULT_CSS = """
    Timeline { height: auto; border-top: solid $primary; padding: 0 1; }
    Timeline > .timeline--agent { color: $primary; }
    Timeline > .timeline--person { color: $warning; }
    Timeline > .timeline--clock { color: $text-muted; }
    Timeline > .timeline--other { color: $secondary; }
    Timeline > .timeline--cursor { background: $accent 50%; }
    Timeline > .timeline--live { color: $text; background: $primary 30%; text-style: bold; }
    Timeline > .timeline--as-of { color: $text; background: $warning 45%; text-style: bold; }
    Timeline > .timeline--muted { color: $text-muted; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "timeline--agent", "timeline--person", "timeline--clock", "timeline--other",
        "timeline--cursor", "timeline--live", "timeline--as-of", "timeline--muted"}

    class Moved(Message):
        """The cursor moved: show memory as of `at_ms` (None: live)."""

        def __init__(self, at_ms: int | None) -> None:
            super().__init__()
            self.at_ms = at_ms

    class WorkloadToggled(Message):
        """`w`: step through the Simulation pane's workload run (or back to the agent)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._times: list[int] = []  # every change's at_ms, oldest first
        self._kinds: list[str] = []  # and its actor kind, in the same order
        self.now_ms = 0
        self.at_ms: int | None = None
        self.loaded = False
        self.steps: list[int] = []  # stepping a workload: the clock after each of its steps
        self.scratch_agent = ""  # and whose memory that is

    # What it shows

    def show_changes(self, changes: list[tuple[int, str]], now_ms: int,
                     steps: list[int] | None = None, scratch_agent: str = "") -> None:
        """All changes as (at_ms, actor), up to `now_ms`; with `steps` (the clock after
        each workload step of `scratch_agent`), [ and ] move step by step."""
        self.steps, self.scratch_agent = list(steps or []), scratch_agent
        self.at_ms = None
        ordered = sorted((at, actor_kind(actor)) for at, actor in changes)
        self._times = [at for at, _ in ordered]
        self._kinds = [kind for _, kind in ordered]
        self.now_ms = max(now_ms, self._times[-1] if self._times else now_ms)
        self.loaded = True
        self.refresh(layout=True)

    def add_change(self, at_ms: int, actor: str) -> None:
        index = bisect.bisect_right(self._times, at_ms)
        self._times.insert(index, at_ms)
        self._kinds.insert(index, actor_kind(actor))
        self.now_ms = max(self.now_ms, at_ms)
        self.refresh()

    def clock_moved(self, now_ms: int) -> None:
        if now_ms != self.now_ms:
            self.now_ms = max(self.now_ms, now_ms)
            self.refresh()

    @property
    def change_count(self) -> int:
        return len(self._times)

    def changes_until(self, at_ms: int) -> int:
        """How many changes are part of memory as of `at_ms`."""
        return bisect.bisect_right(self._times, at_ms)

    # The grid: columns of one interval each, from the first change's interval to now

    @property
    def _compact(self) -> bool:
        return self.app.size.height <= TIMELINE_COMPACT_SCREEN_HEIGHT_MAX

    def _columns_room(self) -> int:
        return max(1, self.content_size.width - TIMELINE_LANE_LABEL_WIDTH)

    def _grid(self) -> tuple[int, int, int]:
        """(start_ms, interval_ms, columns): column c covers [start + c·interval, +interval);
        the last column holds now, and the round interval is the shortest that reaches back
        to the first change."""
        first = self._times[0] if self._times else self.now_ms
        columns = self._columns_room()
        interval = interval_ms_for(self.now_ms - first + 1, columns)
        start = (self.now_ms // interval - (columns - 1)) * interval
        return start, interval, columns

    def _column_of(self, at_ms: int) -> int:
        start, interval, columns = self._grid()
        return min(columns - 1, max(0, (at_ms - start) // interval))

    def _column_end_ms(self, column: int) -> int:
        start, interval, _ = self._grid()
        return min(self.now_ms, start + (column + 1) * interval - 1)

    # Moving the cursor

    def _move_to(self, at_ms: int | None) -> None:
        if at_ms != self.at_ms:
            self.at_ms = at_ms
            self.refresh()
            self.post_message(self.Moved(at_ms))

    def go_live(self) -> None:
        self._move_to(None)

    def action_move(self, step: int) -> None:
        _, _, columns = self._grid()
        column = columns if self.at_ms is None else self._column_of(self.at_ms)
        self._move_to(self._column_end_ms(min(columns - 1, max(0, column + step))))

    def action_edge(self, end: int) -> None:
        """To the end of the first interval with a change (home), or to now (end)."""
        _, _, columns = self._grid()
        first = self._column_of(self._times[0]) if self._times else columns - 1
        self._move_to(self._column_end_ms(columns - 1 if end else first))

    def action_toggle_workload(self) -> None:
        self.post_message(self.WorkloadToggled())

    def action_step(self, step: int) -> None:
        """To the state just after the previous (-1) or next (+1) change (or workload step)."""
        times = self.steps or self._times
        if not times:
            self.notify("No changes yet.", severity="warning")
            return
        shown = bisect.bisect_right(times, self.now_ms if self.at_ms is None else self.at_ms)
        if step < 0:  # before the newest instant shown: every change then goes
            index = bisect.bisect_left(times, times[shown - 1]) if shown else 0
            self._move_to(times[index - 1] if index > 0 else times[0] - 1)
        else:
            self._move_to(times[shown] if shown < len(times) else times[-1])

    # Drawing

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return 3 if self._compact else 2 + len(self._lanes())

    def _lanes(self) -> list[str]:
        return [*ACTOR_KINDS, *(["other"] if "other" in self._kinds else [])]

    def _counts(self) -> list[Counter[str]]:
        start, interval, columns = self._grid()
        counts: list[Counter[str]] = [Counter() for _ in range(columns)]
        for at_ms, kind in zip(self._times, self._kinds):
            counts[min(columns - 1, max(0, (at_ms - start) // interval))][kind] += 1
        return counts

    def _style(self, name: str) -> Style:
        return self.get_component_rich_style(f"timeline--{name}")

    def render(self) -> Text:
        counts = self._counts()
        cursor = None if self.at_ms is None else self._column_of(self.at_ms)
        lines = [self._banner()]
        if self._compact:
            lines.append(self._lane("all", counts, cursor, None))
        else:
            lines += [self._lane(kind, counts, cursor, kind) for kind in self._lanes()]
        lines.append(self._axis(cursor))
        return Text("\n").join(lines)

    def _lane(self, label: str, counts: list[Counter[str]], cursor: int | None,
              kind: str | None) -> Text:
        """One row of bars: `kind`'s changes, or (None) all of them in the main kind's colour."""
        values = [c[kind] if kind else sum(c.values()) for c in counts]
        largest = max(values, default=0)
        line = Text(label[:TIMELINE_LANE_LABEL_WIDTH - 1].ljust(TIMELINE_LANE_LABEL_WIDTH),
                    style=self._style(kind or "muted"))
        for column, value in enumerate(values):
            main = kind or (counts[column].most_common(1)[0][0] if value else "muted")
            style = self._style(main)
            if column == cursor:
                style += self._style("cursor")
            line.append(spark(value, largest) if value or column != cursor else "│", style)
        return line

    def _axis(self, cursor: int | None) -> Text:
        """The first interval's start, the interval, 'now', and ▲ under the cursor."""
        start, interval, columns = self._grid()
        room = TIMELINE_LANE_LABEL_WIDTH + columns
        cells = [" "] * room

        def put(at: int, label: str) -> None:
            for i, char in enumerate(label):
                if 0 <= at + i < room:
                    cells[at + i] = char
        left = short_time(start, columns * interval)
        unit = f"1 bar = {interval_label(interval)}"
        put(TIMELINE_LANE_LABEL_WIDTH, left)
        if room >= TIMELINE_LANE_LABEL_WIDTH + len(left) + len(unit) + 8:
            put((TIMELINE_LANE_LABEL_WIDTH + len(left) + room - len(unit)) // 2, unit)
        if cursor is None or cursor < columns - 4:
            put(room - 3, "now")
        text = Text("".join(cells), style=self._style("muted"))
        if cursor is not None:
            at = TIMELINE_LANE_LABEL_WIDTH + cursor
            text = text[:at] + Text("▲", style=self._style("as-of")) + text[at + 1:]
        return text

    def _step_label(self, at_ms: int) -> str:
        """Which workload steps memory as of `at_ms` has seen (steps that ran within one
        ms of the clock count together: as of that ms, all of them had run)."""
        done = bisect.bisect_right(self.steps, at_ms)
        if not done:
            return f"{self.scratch_agent} before step 1"
        first = bisect.bisect_left(self.steps, self.steps[done - 1]) + 1
        together = f" (steps {first:,}–{done:,} at this ms)" if first < done else ""
        return f"{self.scratch_agent} after step {done:,} of {len(self.steps):,}{together}"

    def _banner(self) -> Text:
        width = self.content_size.width or 80
        if not self.loaded:
            return Text("loading the agent's changes…".ljust(width), style=self._style("live"))
        if self.at_ms is None:
            kinds = Counter(self._kinds)
            tally = " · ".join(f"{kind} {kinds[kind]:,}" for kind in (*ACTOR_KINDS, "other")
                               if kinds[kind])
            unit = "step" if self.steps else "change"
            whose = f"{self.scratch_agent}'s workload: " if self.steps else ""
            variants = [f"LIVE · {whose}{len(self._times):,} changes ({tally or 'none yet'}) · "
                        f"←/→ go back in time · [ ] by {unit} · T closes",
                        f"LIVE · {len(self._times):,} changes · ←/→ back in time · T closes",
                        "LIVE · ← back in time · T closes"]
            style = self._style("live")
        else:
            shown = f"{self.changes_until(self.at_ms):,} of {len(self._times):,} changes"
            if self.steps:
                shown = self._step_label(self.at_ms)
            when = f"AS OF {format_ms(self.at_ms)} UTC"
            variants = [f"{when} · {shown} · read-only · press T to go live",
                        f"{when} · read-only · press T to go live",
                        f"{when} · press T to go live",
                        f"{when[6:]} · T: live"]
            style = self._style("as-of")
        chosen = next((v for v in variants if len(v) <= width), variants[-1][:width])
        return Text(chosen.ljust(width), style=style)
